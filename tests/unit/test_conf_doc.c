/* SPDX-License-Identifier: ISC */
/*
 * test_conf_doc.c: agentsyncd.conf(5) and README's Configuration table
 * list exactly the keys of conf_keys[], each in its section, with the
 * table's defaults (per adapter where the adapter sets it); the example
 * agentsyncd.conf has every key, and its commented values are the
 * defaults.  Run from the source tree (tests/runtests.py does).
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "source.h"

#define MAXDOC 64 /* entries of one document */

/* A document's entry: the keys it names, its section, its text. */
struct entry {
	char keys[4][64];
	int nkeys;
	enum conf_section section;
	char text[4096]; /* plain, lowercase, spaces collapsed */
};

static struct entry doc[MAXDOC];
static int ndoc;

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s (run from the source tree)", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* Append troff line to plain text: macro names, quotes and escapes go,
 * spaces collapse, letters are lowercased. */
static void
append_plain(char *out, size_t len, const char *line)
{
	size_t n = strlen(out);
	const char *p = line;

	if (*p == '.') {
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
	}
	if (n > 0 && n < len - 1 && out[n - 1] != ' ')
		out[n++] = ' ';
	for (; *p != '\0' && n < len - 1; p++) {
		if (*p == '"' || (*p == '\\' && p[1] == '-'))
			continue;
		if (isspace((unsigned char)*p) && (n == 0 || out[n - 1] == ' '))
			continue;
		out[n++] = isspace((unsigned char)*p) ?
		    ' ' :
		    (char)tolower((unsigned char)*p);
	}
	out[n] = '\0';
}

/* The key names of a .TP tag line: ".B name" or ".BR a ", " b". */
static void
tag_keys(struct entry *e, const char *line)
{
	char buf[256], *tok, *save;

	snprintf(buf, sizeof(buf), "%s", line + strcspn(line, " "));
	for (tok = strtok_r(buf, " \",", &save); tok != NULL && e->nkeys < 4;
	     tok = strtok_r(NULL, " \",", &save))
		snprintf(e->keys[e->nkeys++], sizeof(e->keys[0]), "%s", tok);
}

/* The entries of the man page's [agentsyncd] and [source NAME]. */
static void
read_man(void)
{
	char *text = slurp("doc/agentsyncd.conf.5"), *line, *save;
	int section = -1, tag = 0;
	struct entry *e = NULL;

	ndoc = 0;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, ".SH", 3) == 0) {
			section = strstr(line, "[agentsyncd]") ?
			    CONF_SECTION_DAEMON :
			    strstr(line, "[source NAME]") ?
			    CONF_SECTION_SOURCE :
			    -1;
			e = NULL;
		} else if (section != -1 && strcmp(line, ".TP") == 0) {
			assert_true(ndoc < MAXDOC);
			e = &doc[ndoc++];
			memset(e, 0, sizeof(*e));
			e->section = (enum conf_section)section;
			tag = 1;
		} else if (e != NULL && tag) {
			tag_keys(e, line);
			tag = 0;
		} else if (e != NULL) {
			append_plain(e->text, sizeof(e->text), line);
		}
	}
	free(text);
}

/* The entry naming key in section, or NULL. */
static const struct entry *
entry_of(const struct conf_key *k, int *pos)
{
	int i, j;

	for (i = 0; i < ndoc; i++)
		for (j = 0; j < doc[i].nkeys; j++)
			if (doc[i].section == k->section &&
			    strcmp(doc[i].keys[j], k->name) == 0) {
				*pos = j;
				return &doc[i];
			}
	return NULL;
}

/* Every key of the document is in the table, and the reverse. */
static void
check_same_keys(const char *what)
{
	const struct conf_key *k;
	size_t i;
	int d, j, found, pos;

	for (i = 0; i < conf_nkeys; i++)
		if (entry_of(&conf_keys[i], &pos) == NULL)
			fail_msg("%s: key '%s' of the table is missing", what,
			    conf_keys[i].name);
	for (d = 0; d < ndoc; d++)
		for (j = 0; j < doc[d].nkeys; j++) {
			found = 0;
			for (i = 0; i < conf_nkeys; i++) {
				k = &conf_keys[i];
				found |= k->section == doc[d].section &&
				    strcmp(k->name, doc[d].keys[j]) == 0;
			}
			if (!found)
				fail_msg("%s: key '%s' is not in the table",
				    what, doc[d].keys[j]);
		}
}

/* 1 when text holds needle followed by neither a letter nor a digit. */
static int
has_word(const char *text, const char *needle)
{
	const char *p = text;
	size_t n = strlen(needle);

	while ((p = strstr(p, needle)) != NULL) {
		if (!isalnum((unsigned char)p[n]))
			return 1;
		p++;
	}
	return 0;
}

static void
test_man_page(void **state)
{
	const struct source_type *const *t;
	const struct conf_key *k;
	const struct entry *e;
	char dflt[256], want[300], alt[300];
	size_t i;
	int pos = 0;

	(void)state;
	read_man();
	check_same_keys("agentsyncd.conf(5)");
	for (i = 0; i < conf_nkeys; i++) {
		k = &conf_keys[i];
		e = entry_of(k, &pos);
		if (e == NULL) /* check_same_keys() failed */
			continue;
		if (conf_key_default(k, NULL, dflt, sizeof(dflt))) {
			snprintf(want, sizeof(want), "default %s", dflt);
			snprintf(alt, sizeof(alt), "%s (default)", dflt);
			if (!has_word(e->text, want) && !strstr(e->text, alt))
				fail_msg(
				    "agentsyncd.conf(5): %s: no 'default %s' in: %s",
				    k->name, dflt, e->text);
			continue;
		}
		for (t = source_types; *t != NULL; t++)
			if (conf_key_default(k, *t, dflt, sizeof(dflt)) &&
			    (!strstr(e->text, "default") ||
				!has_word(e->text, dflt)))
				fail_msg(
				    "agentsyncd.conf(5): %s: no default %s (%s) in: %s",
				    k->name, dflt, (*t)->name, e->text);
	}
}

/* The cells of a README table row "| a | b | c | d |", trimmed. */
static int
cells(char *row, char *cell[4])
{
	int n = 0;
	char *p = row + 1, *bar;

	while (n < 4 && (bar = strstr(p, " |")) != NULL) {
		*bar = '\0';
		while (*p == ' ')
			p++;
		cell[n++] = p;
		p = bar + 2;
	}
	return n;
}

/* README's Configuration table as entries; text is the default cell. */
static void
read_readme(void)
{
	char *text = slurp("README.md"), *line, *save, *cell[4], *tok, *s2;
	int in = 0;
	struct entry *e;

	ndoc = 0;
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "## ", 3) == 0)
			in = strcmp(line, "## Configuration") == 0;
		if (!in || strncmp(line, "| `", 3) != 0 ||
		    cells(line, cell) != 4)
			continue;
		assert_true(ndoc < MAXDOC);
		e = &doc[ndoc];
		memset(e, 0, sizeof(*e));
		e->section = strcmp(cell[1], "`[agentsyncd]`") == 0 ?
		    CONF_SECTION_DAEMON :
		    CONF_SECTION_SOURCE;
		for (tok = strtok_r(cell[0], "` /", &s2); tok != NULL;
		     tok = strtok_r(NULL, "` /", &s2))
			snprintf(e->keys[e->nkeys++], sizeof(e->keys[0]), "%s",
			    tok);
		snprintf(e->text, sizeof(e->text), "%s", cell[2]);
		ndoc++;
	}
	free(text);
}

/* The default cell of e, or its pos-th part where the row names several
 * keys with one default each ("`1s` / `5m`"). */
static void
default_part(const struct entry *e, int pos, char *out, size_t len)
{
	const char *p = e->text, *q;
	int j;

	if (e->nkeys == 1 || strstr(p, "` / `") == NULL) {
		snprintf(out, len, "%s", p);
		return;
	}
	for (j = 0; j < pos && (q = strstr(p, " / ")) != NULL; j++)
		p = q + 3;
	snprintf(out, len, "%.*s", (int)strcspn(p, " "), p);
}

static void
test_readme(void **state)
{
	const struct source_type *const *t;
	const struct conf_key *k;
	const struct entry *e;
	char dflt[256], want[300], part[sizeof(doc[0].text)];
	size_t i;
	int pos = 0;

	(void)state;
	read_readme();
	check_same_keys("README Configuration");
	for (i = 0; i < conf_nkeys; i++) {
		k = &conf_keys[i];
		e = entry_of(k, &pos);
		if (e == NULL) /* check_same_keys() failed */
			continue;
		default_part(e, pos, part, sizeof(part));
		if (conf_key_default(k, NULL, dflt, sizeof(dflt))) {
			snprintf(want, sizeof(want), "`%s`", dflt);
			if (strcmp(part, want) != 0)
				fail_msg("README: %s: default '%s', not %s",
				    k->name, part, want);
			continue;
		}
		for (t = source_types; *t != NULL; t++) {
			if (!conf_key_default(k, *t, dflt, sizeof(dflt)))
				continue;
			snprintf(want, sizeof(want), "`%s`", dflt);
			if (strstr(part, want) == NULL)
				fail_msg(
				    "README: %s: no default %s (%s) in '%s'",
				    k->name, want, (*t)->name, part);
		}
		if (!conf_key_default(k, source_types[0], dflt, sizeof(dflt)) &&
		    part[0] == '`')
			fail_msg("README: %s has no default, not %s", k->name,
			    part);
	}
}

/* The key of table in section named by the text up to " =", or NULL. */
static const struct conf_key *
key_named(enum conf_section section, const char *text)
{
	size_t i, n = strcspn(text, " =");

	for (i = 0; i < conf_nkeys; i++)
		if (conf_keys[i].section == section &&
		    strlen(conf_keys[i].name) == n &&
		    strncmp(conf_keys[i].name, text, n) == 0)
			return &conf_keys[i];
	return NULL;
}

/* One "[;]key = value[ ; comment]" line of the example in section: a
 * known key, and a commented value is the default (t's, for a source). */
static void
example_line(enum conf_section section, const struct source_type *t,
    const char *line, int *seen)
{
	const struct conf_key *k;
	const char *v;
	char dflt[256];
	size_t n;

	k = key_named(section, line + (line[0] == ';'));
	if (k == NULL)
		fail_msg("agentsyncd.conf: not a key of the table: %s", line);
	seen[k - conf_keys] = 1;
	v = strstr(line, " = ") + 3;
	n = strcspn(v, " ;");
	if (line[0] == ';' && conf_key_default(k, t, dflt, sizeof(dflt)) &&
	    (strlen(dflt) != n || strncmp(v, dflt, n) != 0))
		fail_msg("agentsyncd.conf: %s: '%.*s', the default is %s",
		    k->name, (int)n, v, dflt);
}

static void
test_example(void **state)
{
	char *text = slurp("agentsyncd.conf"), *line, *save, *body, name[64];
	const struct source_type *t = NULL;
	int seen[64] = { 0 }, section = -1;
	size_t i;

	(void)state;
	assert_true(conf_nkeys <= sizeof(seen) / sizeof(seen[0]));
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		body = line + (line[0] == ';'); /* commented out, or not */
		if (strncmp(body, "[agentsyncd]", 12) == 0) {
			section = CONF_SECTION_DAEMON;
		} else if (strncmp(body, "[source ", 8) == 0) {
			section = CONF_SECTION_SOURCE;
			t = NULL;
		} else if (section != -1 && isalpha((unsigned char)*body) &&
		    strstr(body, " = ") != NULL) {
			if (strncmp(body, "type = ", 7) == 0) {
				snprintf(name, sizeof(name), "%.*s",
				    (int)strcspn(body + 7, " ;"), body + 7);
				t = source_type_find(name);
			}
			example_line((enum conf_section)section, t, line, seen);
		}
	}
	for (i = 0; i < conf_nkeys; i++)
		if (!seen[i])
			fail_msg(
			    "agentsyncd.conf: key '%s' of the table is missing",
			    conf_keys[i].name);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_man_page),
		cmocka_unit_test(test_readme),
		cmocka_unit_test(test_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
