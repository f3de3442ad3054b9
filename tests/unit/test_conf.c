/* SPDX-License-Identifier: ISC */
/*
 * test_conf.c: configuration defaults, every error class with its
 * FILE:LINE, durations, token sources, and no token in any message.
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
#include "log.h"
#include "source.h"

static char confpath[64];
static char errbuf[65536];

static struct conf *
load_flags(const char *text, mode_t mode, int flags)
{
	struct conf *c;
	FILE *f, *err;
	int fd;

	snprintf(confpath, sizeof(confpath), "/tmp/agentsyncd-conf-XXXXXX");
	fd = mkstemp(confpath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(confpath, mode);
	memset(errbuf, 0, sizeof(errbuf));
	err = fmemopen(errbuf, sizeof(errbuf) - 1, "w");
	assert_non_null(err);
	c = conf_load(confpath, err, flags);
	fclose(err);
	f = NULL;
	(void)f;
	unlink(confpath);
	return c;
}

static struct conf *
load(const char *text, mode_t mode)
{
	return load_flags(text, mode, 0);
}

/* The error output holds "FILE:LINE: " followed (later) by needle. */
static void
expect_error(const char *text, int line, const char *needle)
{
	char prefix[96], *p;
	struct conf *c = load(text, 0600);

	assert_null(c);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", confpath, line);
	p = strstr(errbuf, prefix);
	if (p == NULL || strstr(p, needle) == NULL)
		fail_msg("want '%s...%s' in:\n%s", prefix, needle, errbuf);
}

#define HEAD "[agentsyncd]\ndatabase = /tmp/x.db\n"
#define CG   "[source cg]\ntype = codegen\norg_id = 42\ntoken_env = T_CG\n"
#define CT   "[source ct]\ntype = cotool\ntoken_env = T_CT\n"

static int
setup(void **state)
{
	(void)state;
	setenv("T_CG", "cg-secret-AAAAAAAAAA", 1);
	setenv("T_CT", "ct-secret-BBBBBBBBBB", 1);
	return 0;
}

static void
test_defaults(void **state)
{
	struct conf *c;

	(void)state;
	c = load(HEAD CG CT, 0644);
	if (c == NULL)
		fail_msg("%s", errbuf);
	assert_string_equal(c->database, "/tmp/x.db");
	assert_int_equal(c->log_level, LOG_LEVEL_INFO);
	assert_int_equal(c->nsources, 2);
	assert_string_equal(c->sources[0].name, "cg");
	assert_ptr_equal(c->sources[0].type, &source_codegen);
	assert_string_equal(c->sources[0].base_url, "https://api.codegen.com");
	assert_int_equal(c->sources[0].org_id, 42);
	assert_string_equal(c->sources[0].token, "cg-secret-AAAAAAAAAA");
	assert_true(c->sources[0].poll_interval == 60);
	assert_int_equal(c->sources[0].page_size, 100);
	assert_int_equal(c->sources[0].requests_in_flight, 4);
	assert_int_equal(c->sources[0].rate_requests, 60);
	assert_true(c->sources[0].rate_window == 30);
	assert_true(c->sources[0].refresh_window == 86400);
	assert_true(c->sources[0].full_resync_interval == 86400);
	assert_true(c->sources[0].backoff_initial == 1);
	assert_true(c->sources[0].backoff_max == 300);
	assert_int_equal(c->sources[0].max_retries, 5);
	assert_true(c->sources[0].auth_backoff == 900);
	assert_true(c->sources[0].request_timeout == 60);
	assert_string_equal(c->sources[1].base_url, "https://app.cotool.ai");
	assert_int_equal(c->sources[1].org_id, -1);
	assert_true(c->sources[1].rate_window == 60);
	conf_free(c);
	conf_free(NULL);
	/* the default database, trailing slash trimmed, rate limit off */
	c = load("[source ct]\ntype = cotool\ntoken_env = T_CT\n"
		 "base_url = http://127.0.0.1:8080/\nrate_limit = off\n"
		 "log_level = debug\n",
	    0600);
	assert_null(c); /* log_level belongs to [agentsyncd] */
	c = load("[agentsyncd]\nlog_level = debug\n[source ct]\n"
		 "type = cotool\ntoken_env = T_CT\nbase_url = "
		 "http://127.0.0.1:8080/\nrate_limit = off\n",
	    0600);
	assert_non_null(c);
	assert_string_equal(c->database, "/var/lib/agentsyncd/agentsyncd.db");
	assert_string_equal(c->sources[0].base_url, "http://127.0.0.1:8080");
	assert_int_equal(c->sources[0].rate_requests, 0);
	assert_int_equal(c->log_level, LOG_LEVEL_DEBUG);
	conf_free(c);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error(HEAD "colour = blue\n" CG, 3, "unknown key 'colour'");
	expect_error(HEAD CG "pol_interval = 5s\n", 7,
	    "unknown key "
	    "'pol_interval'");
	expect_error(HEAD "[sauce x]\ntype = codegen\n" CG, 3,
	    "unknown section [sauce x]");
	expect_error(HEAD CG "poll_interval = soon\n", 7, "not a duration");
	expect_error(HEAD CG "page_size = 0\n", 7, "page_size");
	expect_error(HEAD CG "page_size = 101\n", 7, "page_size");
	/* Codegen pages overlap by one run: a page of 1 never moves on */
	expect_error(HEAD CG "page_size = 1\n", 7,
	    "page_size '1' must be an integer from 2 to 100 for codegen "
	    "sources");
	expect_error(HEAD CG "page_size = 01\n", 7, "page_size '01'");
	expect_error(HEAD CG "requests_in_flight = 0\n", 7,
	    "requests_in_flight '0' must be an integer from 1 to 16");
	expect_error(HEAD CG "requests_in_flight = 17\n", 7,
	    "requests_in_flight");
	expect_error(HEAD "[source cg]\ntype = codegen\ntoken_env = T_CG\n", 3,
	    "needs org_id");
	expect_error(HEAD "[source cg]\ntype = gitlab\n", 4,
	    "unknown type 'gitlab' (codegen, cotool)");
	expect_error(HEAD CG CG, 7, "repeats the one at line 3");
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n", 3,
	    "needs a token");
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
			  "token_env = T_MISSING_XYZ\n",
	    6, "T_MISSING_XYZ");
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
			  "token_file = /nonexistent/token\n",
	    6, "cannot read");
	unsetenv("CREDENTIALS_DIRECTORY");
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
			  "token_credential = cg\n",
	    6, "CREDENTIALS_DIRECTORY");
	expect_error(HEAD CG "base_url = http://api.example.com\n", 7,
	    "loopback");
	expect_error(HEAD CG "base_url = ftp://127.0.0.1\n", 7, "https://");
	expect_error(HEAD CG "base_url = https://u:p@api.codegen.com\n", 7,
	    "credentials");
	expect_error(HEAD CG "rate_limit = lots\n", 7, "rate_limit");
	expect_error(HEAD CG "org_id = 43\n", 7, "given twice");
	expect_error(HEAD CT "org_id = 1\n", 6,
	    "org_id is not a key of cotool");
	expect_error(HEAD "[source bad name!]\ntype = cotool\ntoken_env = "
			  "T_CT\n",
	    3, "source name");
	expect_error(HEAD CG "this line is not ini\n", 7, "syntax error");
	/* a control character in a value stays on the message's line */
	expect_error(HEAD CG "page_size = 1\r2\x1b\n", 7, "page_size '1?2?'");
	assert_null(strchr(errbuf, '\r'));
}

/* Cotool pages do not overlap: a page of 1 is fine there; 2 is the
 * least for Codegen. */
static void
test_page_size_by_type(void **state)
{
	struct conf *c;

	(void)state;
	c = load(HEAD CG "page_size = 2\n" CT "page_size = 1\n", 0600);
	if (c == NULL)
		fail_msg("%s", errbuf);
	assert_int_equal(c->sources[0].page_size, 2);
	assert_int_equal(c->sources[1].page_size, 1);
	conf_free(c);
}

static void
test_every_error_reported(void **state)
{
	(void)state;
	expect_error(HEAD "colour = blue\n" CG "page_size = 500\n"
			  "poll_interval = soon\n",
	    3, "colour");
	assert_non_null(strstr(errbuf, ":8: "));
	assert_non_null(strstr(errbuf, ":9: "));
}

static void
test_inline_token_and_files(void **state)
{
	char dir[64], path[128], text[512];
	struct conf *c;
	FILE *f;

	(void)state;
	/* readable by others: refused, and the token is never printed */
	c = load(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
		      "token = inline-SECRET-99999\n",
	    0644);
	assert_null(c);
	assert_non_null(strstr(errbuf, ":6: inline token refused"));
	assert_non_null(strstr(errbuf, "readable by group or others"));
	assert_null(strstr(errbuf, "inline-SECRET-99999"));
	c = load(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
		      "token = inline-SECRET-99999\n",
	    0600);
	assert_non_null(c);
	assert_string_equal(c->sources[0].token, "inline-SECRET-99999");
	conf_free(c);
	/* token_file and token_credential: first line, trimmed */
	snprintf(dir, sizeof(dir), "/tmp/agentsyncd-cred-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cg", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("file-SECRET-77777  \nsecond line\n", f);
	fclose(f);
	chmod(path, 0600);
	snprintf(text, sizeof(text),
	    HEAD "[source a]\ntype = codegen\n"
		 "org_id = 1\ntoken_file = %s\n[source b]\ntype = codegen\n"
		 "org_id = 2\ntoken_credential = cg\n",
	    path);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	c = load(text, 0600);
	if (c == NULL)
		fail_msg("%s", errbuf);
	assert_string_equal(c->sources[0].token, "file-SECRET-77777");
	assert_string_equal(c->sources[1].token, "file-SECRET-77777");
	conf_free(c);
	expect_error(HEAD "[source b]\ntype = codegen\norg_id = 2\n"
			  "token_credential = ../cg\n",
	    6, "plain name");
	unsetenv("CREDENTIALS_DIRECTORY");
	/* a token with a space would break the header */
	setenv("T_SPACE", "abc def-ghijklmnopq", 1);
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
			  "token_env = T_SPACE\n",
	    6, "spaces or control");
	assert_null(strstr(errbuf, "abc def-ghij"));
	unlink(path);
	rmdir(dir);
}

/* Issue 13, item 6: careless files are refused, saying what to run, and
 * nothing secret is echoed. */
static void
test_careless_files(void **state)
{
	static const mode_t loose[] = { 0644, 0666, 0640, 0604 };
	char dir[64], path[128], text[8192], want[256];
	struct conf *c;
	size_t i, n;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/agentsyncd-tok-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cg", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("file-SECRET-LOOSE-1\n", f);
	fclose(f);
	snprintf(text, sizeof(text),
	    HEAD "[source a]\ntype = codegen\norg_id = 1\ntoken_file = %s\n",
	    path);
	/* a token_file group or others may read: refused with the chmod */
	for (i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		chmod(path, loose[i]);
		c = load(text, 0600);
		if (c != NULL)
			fail_msg("token_file of mode %04o accepted",
			    (unsigned)loose[i]);
		snprintf(want, sizeof(want),
		    ":6: token_file '%s' refused: its "
		    "mode %04o",
		    path, (unsigned)loose[i]);
		if (strstr(errbuf, want) == NULL)
			fail_msg("want '%s' in:\n%s", want, errbuf);
		snprintf(want, sizeof(want), "(run: chmod 600 %s)", path);
		assert_non_null(strstr(errbuf, want));
		assert_null(strstr(errbuf, "SECRET-LOOSE"));
	}
	chmod(path, 0600);
	c = load(text, 0600);
	if (c == NULL)
		fail_msg("%s", errbuf);
	conf_free(c);
	/* a credential's mode is systemd's: not checked */
	chmod(path, 0644);
	setenv("CREDENTIALS_DIRECTORY", dir, 1);
	c = load(HEAD "[source b]\ntype = codegen\norg_id = 2\n"
		      "token_credential = cg\n",
	    0600);
	if (c == NULL)
		fail_msg("%s", errbuf);
	conf_free(c);
	unsetenv("CREDENTIALS_DIRECTORY");
	unlink(path);
	rmdir(dir);

	/* a configuration group or others may write: refused */
	c = load(HEAD CG, 0622);
	assert_null(c);
	assert_non_null(strstr(errbuf,
	    ":0: refused: mode 0622 lets group or "
	    "others write it (run: chmod go-w "));
	c = load(HEAD CG, 0620);
	assert_null(c);
	c = load(HEAD CG, 0644); /* readable is fine without an inline token */
	if (c == NULL)
		fail_msg("%s", errbuf);
	conf_free(c);

	/* a token too short to be real: refused, never echoed */
	setenv("T_SHORT", "d", 1);
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
			  "token_env = T_SHORT\n",
	    6, "shorter than 16 bytes");
	setenv("T_SHORT", "fifteen-bytes-x", 1);
	expect_error(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
			  "token_env = T_SHORT\n",
	    6, "shorter than 16 bytes");
	assert_null(strstr(errbuf, "fifteen-bytes-x"));
	setenv("T_SHORT", "sixteen-bytes-xx", 1);
	c = load(HEAD "[source cg]\ntype = codegen\norg_id = 1\n"
		      "token_env = T_SHORT\n",
	    0600);
	if (c == NULL)
		fail_msg("%s", errbuf);
	conf_free(c);

	/* a line longer than inih's buffer: reported by length, unechoed;
	 * the longest that fits (199 bytes) is read whole */
	n = (size_t)snprintf(text, sizeof(text),
	    HEAD "[source cg]\ntype = codegen\norg_id = 1\ntoken = ");
	for (i = 0; i < 300; i++)
		text[n++] = (char)('a' + i % 26);
	memcpy(text + n, "TAIL = x\n", 10);
	text[n + 10] = '\0';
	expect_error(text, 6, "line too long (316 bytes, at most 199)");
	assert_null(strstr(errbuf, "abcdefgh"));
	assert_null(strstr(errbuf, "TAIL"));
	assert_null(strstr(errbuf, "unknown key"));
	n = (size_t)snprintf(text, sizeof(text),
	    HEAD "[source cg]\ntype = codegen\norg_id = 1\ntoken = ");
	for (i = 0; i < 199 - 8; i++)
		text[n++] = (char)('a' + i % 26);
	text[n++] = '\n';
	text[n] = '\0';
	c = load(text, 0600);
	if (c == NULL)
		fail_msg("a 199-byte line: %s", errbuf);
	assert_int_equal(strlen(c->sources[0].token), 199 - 8);
	conf_free(c);

	/* every section is checked, not the first 256 */
	n = (size_t)snprintf(text, sizeof(text), "%s", HEAD);
	for (i = 0; i < 299; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[x%zu]\n",
		    i);
	snprintf(text + n, sizeof(text) - n, "[x5]\n");
	expect_error(text, 3 + 298, "unknown section [x298]");
	expect_error(text, 3 + 299, "[x5] repeats the one at line 8");
}

/* A fresh install's file has no source: it loads (the daemon idles). */
static void
test_no_source_loads(void **state)
{
	struct conf *c;

	(void)state;
	c = load(HEAD, 0600);
	assert_non_null(c);
	assert_int_equal(c->nsources, 0);
	conf_free(c);
}

/* conf_source_find(): the section of that name, by exact name; none for an
 * unknown name, a prefix, another case or NULL. */
static void
test_source_find(void **state)
{
	struct conf *c;

	(void)state;
	c = load(HEAD CG CT, 0600);
	assert_non_null(c);
	assert_ptr_equal(conf_source_find(c, "cg"), &c->sources[0]);
	assert_ptr_equal(conf_source_find(c, "ct"), &c->sources[1]);
	assert_null(conf_source_find(c, "c"));
	assert_null(conf_source_find(c, "CT"));
	assert_null(conf_source_find(c, "ct2"));
	assert_null(conf_source_find(c, NULL));
	conf_free(c);
	c = load(HEAD, 0600);
	assert_non_null(c);
	assert_null(conf_source_find(c, "cg"));
	conf_free(c);
}

/* --check-config from an operator's shell: a credential or an environment
 * variable only the service has is a note naming the line, not an error;
 * the daemon itself (no CONF_CHECK_ONLY) still refuses it. */
static void
test_check_only_notes_unreachable_tokens(void **state)
{
	static const char text[] = HEAD "[source a]\ntype = codegen\n"
					"org_id = 1\ntoken_credential = "
					"cg\n[source b]\ntype = cotool\n"
					"token_env = T_UNSET_QQ\n";
	struct conf *c;
	char want[96];

	(void)state;
	unsetenv("CREDENTIALS_DIRECTORY");
	unsetenv("T_UNSET_QQ");
	c = load_flags(text, 0600, CONF_CHECK_ONLY);
	assert_non_null(c);
	assert_int_equal(c->nsources, 2);
	snprintf(want, sizeof(want), "%s:6: note: ", confpath);
	assert_non_null(strstr(errbuf, want));
	assert_non_null(strstr(errbuf, "CREDENTIALS_DIRECTORY"));
	snprintf(want, sizeof(want), "%s:9: note: ", confpath);
	assert_non_null(strstr(errbuf, want));
	assert_non_null(strstr(errbuf, "T_UNSET_QQ"));
	conf_free(c);
	c = load_flags(text, 0600, 0);
	assert_null(c);
}

/* errf for the case below: the first line written makes the file private,
 * as a file replaced (or chmod'ed) after the read would be. */
static ssize_t
chmod_on_write(void *cookie, const char *data, size_t n)
{
	size_t *len = cookie;

	if (*len == 0)
		chmod(confpath, 0600);
	if (n > sizeof(errbuf) - 1 - *len)
		n = sizeof(errbuf) - 1 - *len;
	memcpy(errbuf + *len, data, n);
	*len += n;
	return (ssize_t)n;
}

/* Issue 25, item 4: the inline token's mode check is on the file that was
 * read, not on what the path names once it is closed.  The file is
 * readable by others when read; the note about source a (written after
 * the file is closed, before source b's token is checked) makes it 0600. */
static void
test_inline_token_mode_of_the_file_read(void **state)
{
	static const char text[] = HEAD "[source a]\ntype = codegen\n"
					"org_id = 1\ntoken_env = T_UNSET_QQ\n"
					"[source b]\ntype = codegen\n"
					"org_id = 2\ntoken = "
					"inline-SECRET-99999\n";
	cookie_io_functions_t io = { .write = chmod_on_write };
	struct stat sb;
	struct conf *c;
	size_t len = 0;
	FILE *err;
	int fd;

	(void)state;
	unsetenv("T_UNSET_QQ");
	snprintf(confpath, sizeof(confpath), "/tmp/agentsyncd-conf-XXXXXX");
	fd = mkstemp(confpath);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(confpath, 0644);
	memset(errbuf, 0, sizeof(errbuf));
	err = fopencookie(&len, "w", io);
	assert_non_null(err);
	setvbuf(err, NULL, _IONBF, 0);
	c = conf_load(confpath, err, CONF_CHECK_ONLY);
	fclose(err);
	assert_int_equal(stat(confpath, &sb), 0);
	unlink(confpath);
	assert_int_equal(sb.st_mode & 0777, 0600); /* the note made it so */
	if (c != NULL)
		fail_msg("inline token read from a 0644 file accepted:\n%s",
		    errbuf);
	assert_non_null(strstr(errbuf, ":10: inline token refused"));
	assert_null(strstr(errbuf, "inline-SECRET-99999"));
}

/* The database's directory must exist; the file, if any, be a file. */
static void
test_check_database(void **state)
{
	struct conf *c;

	(void)state;
	c = load_flags("[agentsyncd]\ndatabase = /nonexistent/dir/x.db\n" CT,
	    0600, CONF_CHECK_DATABASE);
	assert_null(c);
	assert_non_null(strstr(errbuf,
	    ":2: database '/nonexistent/dir/x.db'"
	    ": directory '/nonexistent/dir': does not exist"));
	c = load_flags("[agentsyncd]\ndatabase = /tmp\n" CT, 0600,
	    CONF_CHECK_DATABASE);
	assert_null(c);
	assert_non_null(strstr(errbuf, "is not a regular file"));
	c = load_flags("[agentsyncd]\ndatabase = /etc/passwd/x.db\n" CT, 0600,
	    CONF_CHECK_DATABASE);
	assert_null(c);
	assert_non_null(strstr(errbuf, "'/etc/passwd' is not a directory"));
	c = load_flags("[agentsyncd]\ndatabase = /tmp/agentsyncd-new.db\n" CT,
	    0600, CONF_CHECK_DATABASE);
	if (c == NULL)
		fail_msg("%s", errbuf);
	conf_free(c);
	/* without the flag the path is not looked at */
	c = load("[agentsyncd]\ndatabase = /nonexistent/dir/x.db\n" CT, 0600);
	assert_non_null(c);
	conf_free(c);
}

static void
test_durations(void **state)
{
	static const struct {
		const char *text;
		double want;
	} good[] = {
		{ "45", 45 },
		{ "45s", 45 },
		{ "5m", 300 },
		{ "2h", 7200 },
		{ "1d", 86400 },
		{ "250ms", 0.25 },
		{ "1.5m", 90 },
		{ "0", 0 },
	};
	static const char *const bad[] = {
		"",
		"-5s",
		"5x",
		"m",
		"5 m",
		"1e999",
		"s5",
		"99999999999d",
	};
	double v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(conf_parse_duration(good[i].text, &v), 0);
		assert_true(v == good[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (conf_parse_duration(bad[i], &v) != -1)
			fail_msg("'%s' accepted", bad[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_page_size_by_type),
		cmocka_unit_test(test_every_error_reported),
		cmocka_unit_test(test_inline_token_and_files),
		cmocka_unit_test(test_careless_files),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_no_source_loads),
		cmocka_unit_test(test_source_find),
		cmocka_unit_test(test_check_only_notes_unreachable_tokens),
		cmocka_unit_test(test_check_database),
		cmocka_unit_test(test_inline_token_mode_of_the_file_read),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
