/* SPDX-License-Identifier: ISC */
/*
 * test_conf_same.c: every key of conf_keys[] that a reload compares
 * changes conf_source_same()'s answer when its value changes, and the one
 * a reload may not change is named by conf_reload_refused().
 *
 * Each source key needs a row below: a key added to the table without one
 * fails here, so reload equality cannot forget it.  Built with the third
 * test adapter (tests/unit/third/third.c), so that `type` can change
 * while every other value stays: cotool and third both refuse org_id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "source.h"

#define TOKEN_A "token-AAAAAAAAAAAAAAAA"
#define TOKEN_B "token-BBBBBBBBBBBBBBBB"

static char dir[64], errbuf[4096];

/* One change: [source s] of base, with key = from (or absent when NULL)
 * in the first configuration and key = to in the second. */
struct change {
	const char *key, *from, *to;
	int codegen; /* base: codegen with org_id, else cotool */
};

static const struct change changes[] = {
	{ "type", NULL, "third", 0 },
	{ "base_url", NULL, "https://b.example", 0 },
	{ "proxy", NULL, "env", 0 },
	{ "proxy", "env", "http://p1.example:3128", 0 },
	{ "proxy", "http://p1.example:3128", "http://p2.example:3128", 0 },
	{ "org_id", NULL, "43", 1 },
	{ "token_env", NULL, "T_B", 0 },
	{ "token_file", NULL, "FILE", 0 },
	{ "token_credential", NULL, "cred", 0 },
	{ "token", NULL, TOKEN_B, 0 },
	{ "poll_interval", NULL, "61s", 0 },
	{ "page_size", NULL, "50", 0 },
	{ "rate_limit", NULL, "11/1s", 0 },
	{ "rate_limit", NULL, "10/2s", 0 },
	{ "refresh_window", NULL, "23h", 1 },
	{ "refresh_max_interval", NULL, "4m", 1 },
	{ "full_resync_interval", NULL, "0", 0 },
	{ "backoff_initial", NULL, "2s", 0 },
	{ "backoff_max", NULL, "6m", 0 },
	{ "max_retries", NULL, "6", 0 },
	{ "max_pass_pages", NULL, "99", 0 },
	{ "requests_in_flight", NULL, "2", 0 },
	{ "auth_backoff", NULL, "14m", 0 },
	{ "request_timeout", NULL, "59s", 0 },
	{ "request_deadline", NULL, "3m", 0 },
};

static int
is_token_key(const char *key)
{
	return strncmp(key, "token", 5) == 0;
}

/* Load [agentsyncd] head and [source s] of the base, with key = val
 * replacing the base's line of that key (any token_* line for a token
 * key). */
static struct conf *
load(const char *head, int codegen, const char *key, const char *val)
{
	static const char *const cotool[] = { "type = cotool",
		"base_url = https://a.example", "rate_limit = 10/1s",
		"token_env = T_A", NULL };
	static const char *const cg[] = { "type = codegen", "org_id = 42",
		"token_env = T_A", NULL };
	const char *const *base = codegen ? cg : cotool;
	char path[128];
	struct conf *c;
	FILE *f, *err;
	size_t i, n;

	snprintf(path, sizeof(path), "%s/agentsyncd.conf", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s[source s]\n", head);
	for (i = 0; base[i] != NULL; i++) {
		n = strcspn(base[i], " ");
		if (key != NULL && val != NULL &&
		    ((strlen(key) == n && strncmp(base[i], key, n) == 0) ||
			(is_token_key(key) &&
			    strncmp(base[i], "token", 5) == 0)))
			continue;
		fprintf(f, "%s\n", base[i]);
	}
	if (key != NULL && val != NULL)
		fprintf(f, "%s = %s\n", key, val);
	fclose(f);
	chmod(path, 0600);
	memset(errbuf, 0, sizeof(errbuf));
	err = fmemopen(errbuf, sizeof(errbuf) - 1, "w");
	assert_non_null(err);
	c = conf_load(path, err, 0);
	fclose(err);
	if (c == NULL)
		fail_msg("%s = %s: %s", key, val, errbuf);
	return c;
}

static int
setup(void **state)
{
	char path[128];
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/agentsyncd-same-XXXXXX");
	assert_non_null(mkdtemp(dir));
	setenv("T_A", TOKEN_A, 1);
	setenv("T_B", TOKEN_B, 1);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	snprintf(path, sizeof(path), "%s/cred", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(TOKEN_B "\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/FILE", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(TOKEN_B "\n", f);
	fclose(f);
	chmod(path, 0600);
	return 0;
}

static int
teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/cred", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/FILE", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/agentsyncd.conf", dir);
	unlink(path);
	return rmdir(dir);
}

/* The value of a token_file change is the file made by setup(). */
static const char *
value(const char *v)
{
	static char path[128];

	if (v == NULL || strcmp(v, "FILE") != 0)
		return v;
	snprintf(path, sizeof(path), "%s/FILE", dir);
	return path;
}

static void
check_change(const struct change *ch)
{
	struct conf *a, *b, *again;

	a = load("", ch->codegen, ch->key, value(ch->from));
	again = load("", ch->codegen, ch->key, value(ch->from));
	b = load("", ch->codegen, ch->key, value(ch->to));
	if (!conf_source_same(&a->sources[0], &again->sources[0]))
		fail_msg("%s = %s: not the same as itself", ch->key, ch->from);
	if (conf_source_same(&a->sources[0], &b->sources[0]) ||
	    conf_source_same(&b->sources[0], &a->sources[0]))
		fail_msg("%s from %s to %s: conf_source_same() says the same",
		    ch->key, ch->from != NULL ? ch->from : "(default)", ch->to);
	conf_free(a);
	conf_free(again);
	conf_free(b);
}

static void
test_every_source_key_compared(void **state)
{
	size_t i, j;
	int found;

	(void)state;
	for (i = 0; i < conf_nkeys; i++) {
		if (conf_keys[i].section != CONF_SECTION_SOURCE)
			continue;
		assert_int_equal(conf_keys[i].reload, CONF_RELOAD_RESTART);
		found = 0;
		for (j = 0; j < sizeof(changes) / sizeof(changes[0]); j++)
			if (strcmp(changes[j].key, conf_keys[i].name) == 0) {
				check_change(&changes[j]);
				found = 1;
			}
		if (!found)
			fail_msg("key '%s' has no change in this test",
			    conf_keys[i].name);
	}
}

/* What a reload compares and what it does not: the token's origin is not
 * the source (the same token from another place keeps it running). */
static void
test_same_token_elsewhere(void **state)
{
	struct conf *a, *b;

	(void)state;
	setenv("T_B", TOKEN_A, 1);
	a = load("", 0, NULL, NULL);
	b = load("", 0, "token_env", "T_B");
	assert_true(conf_source_same(&a->sources[0], &b->sources[0]));
	conf_free(a);
	conf_free(b);
	setenv("T_B", TOKEN_B, 1);
}

static void
test_reload_refused(void **state)
{
	char h1[160], h2[160];
	struct conf *a, *b, *c;

	(void)state;
	snprintf(h1, sizeof(h1), "[agentsyncd]\ndatabase = %s/a.db\n", dir);
	snprintf(h2, sizeof(h2), "[agentsyncd]\ndatabase = %s/b.db\n", dir);
	a = load(h1, 0, NULL, NULL);
	b = load(h2, 0, NULL, NULL);
	snprintf(h2, sizeof(h2),
	    "[agentsyncd]\ndatabase = %s/a.db\nlog_level = debug\n"
	    "history_retention = 1d\n",
	    dir);
	c = load(h2, 0, NULL, NULL);
	assert_string_equal(conf_reload_refused(a, b), "database");
	assert_null(conf_reload_refused(a, c));
	assert_null(conf_reload_refused(a, a));
	conf_free(a);
	conf_free(b);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_source_key_compared),
		cmocka_unit_test(test_same_token_elsewhere),
		cmocka_unit_test(test_reload_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
