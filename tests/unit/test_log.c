/* SPDX-License-Identifier: ISC */
/*
 * test_log.c: journal priority prefixes exactly when JOURNAL_STREAM names
 * stderr, timestamps otherwise, levels honoured, secrets redacted, and one
 * line per call whatever the message holds.
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

#include "log.h"

static char logpath[64];
static int saved_stderr;

/* Point stderr at a fresh file; optionally announce it as the journal. */
static void
capture(int journal)
{
	struct stat st;
	char env[64];
	int fd;

	fflush(stderr);
	snprintf(logpath, sizeof(logpath), "/tmp/agentsyncd-log-XXXXXX");
	fd = mkstemp(logpath);
	assert_true(fd >= 0);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
	assert_int_equal(fstat(2, &st), 0);
	if (journal == 1) {
		snprintf(env, sizeof(env), "%llu:%llu",
		    (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", env, 1);
	} else if (journal == 2) {
		/* another file's identity: not our stderr */
		setenv("JOURNAL_STREAM", "1:2", 1);
	} else {
		unsetenv("JOURNAL_STREAM");
	}
	log_init();
}

static char *
release(void)
{
	static char buf[8192];
	FILE *f;
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	f = fopen(logpath, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(logpath);
	return buf;
}

static void
test_journal_prefix(void **state)
{
	char *out;

	(void)state;
	log_set_level(LOG_LEVEL_DEBUG);
	capture(1);
	log_error("e %d", 1);
	log_warnx("w");
	log_info("i");
	log_debug("d");
	out = release();
	assert_string_equal(out, "<3>e 1\n<4>w\n<6>i\n<7>d\n");
}

static void
test_plain_has_timestamps(void **state)
{
	char *out;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		log_set_level(LOG_LEVEL_INFO);
		capture(i == 0 ? 0 : 2);
		log_warnx("something '%s'", "x");
		log_debug("hidden at info");
		out = release();
		/* 2026-11-24T20:11:03.123Z warning: something 'x' */
		assert_int_equal(strlen(out), 24 + 1 + 22 + 1);
		assert_true(out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
		assert_string_equal(out + 25, "warning: something 'x'\n");
	}
}

static void
test_secrets_redacted(void **state)
{
	char *out;

	(void)state;
	log_set_level(LOG_LEVEL_DEBUG);
	assert_int_equal(log_add_secret("sk-live-0123456789abcdef"), 0);
	capture(1);
	log_debug("header Authorization: Bearer sk-live-0123456789abcdef, "
		  "again sk-live-0123456789abcdef");
	log_info("multi\nline\rmessage\x1b[31m");
	out = release();
	assert_null(strstr(out, "sk-live"));
	assert_string_equal(out,
	    "<7>header Authorization: Bearer [REDACTED], "
	    "again [REDACTED]\n<6>multi line message?[31m\n");
	log_clear_secrets();
	capture(1);
	log_info("sk-live-0123456789abcdef");
	out = release();
	assert_string_equal(out, "<6>sk-live-0123456789abcdef\n");
}

/* A secret that straddles a cut: neither the line nor an excerpt may keep
 * its head (the cut used to come before the redaction). */
static void
test_secret_across_cut(void **state)
{
	static const char tok[] = "tok-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char body[400], out[700], *line;
	size_t at = 100;

	(void)state;
	log_set_level(LOG_LEVEL_DEBUG);
	assert_int_equal(log_add_secret(tok), 0);
	memset(body, 'x', sizeof(body));
	memcpy(body + at, tok, sizeof(tok) - 1);
	log_excerpt(body, sizeof(body), 120, out, sizeof(out));
	assert_null(strstr(out, "tok-ABCDEF"));
	assert_non_null(strstr(out, "[REDACTED]"));
	/* A NUL and a backslash are escaped, the rest kept. */
	log_excerpt("a\0b\\c", 5, 120, out, sizeof(out));
	assert_string_equal(out, "a?b\\x5cc");

	{
		static char big[4200 + sizeof(tok)];

		memset(big, 'y', 4090);
		memcpy(big + 4090, tok, sizeof(tok));
		capture(1);
		log_info("%s", big);
		line = release();
		assert_null(strstr(line, "tok-"));
		assert_true(strlen(line) < 4200);
	}
	log_clear_secrets();
}

/* More secrets than any fixed table held: every one is redacted. */
static void
test_many_secrets(void **state)
{
	char tok[32], *out;
	int i;

	(void)state;
	for (i = 0; i < 100; i++) {
		snprintf(tok, sizeof(tok), "secret-number-%03d", i);
		assert_int_equal(log_add_secret(tok), 0);
	}
	capture(1);
	log_info("first secret-number-000 last secret-number-099");
	out = release();
	assert_string_equal(out, "<6>first [REDACTED] last [REDACTED]\n");
	log_clear_secrets();
}

/* Issue 13, item 4: nothing a terminal would obey gets through: C0, DEL,
 * C1 as UTF-8 (U+0080-U+009F) and as lone bytes, invalid UTF-8; text
 * in other scripts stays. */
static void
test_sanitize(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain text", "plain text" }, { "a\nb\rc\td", "a b c d" },
		{ "\x1b]0;title\x07\x1b[31mred", "?]0;title??[31mred" },
		{ "csi \xc2\x9b"
		  "31m",
		    "csi ??31m" },		/* U+009B */
		{ "nel \xc2\x85.", "nel ??." }, /* U+0085 */
		{ "raw \x9b"
		  "31m",
		    "raw ?31m" }, /* lone C1 byte */
		{ "del \x7f.", "del ?." },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", /* kept */
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "nbsp \xc2\xa0.", "nbsp \xc2\xa0." }, /* U+00A0: kept */
		{ "cut \xe2\x82", "cut ??" },		/* truncated */
		{ "over \xc0\xaf", "over ??" },		/* overlong */
		{ "surr \xed\xa0\x80", "surr ???" },	/* surrogate */
	};
	char buf[128], *out;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		log_sanitize(buf);
		if (strcmp(buf, cases[i].out) != 0)
			fail_msg("case %zu: got '%s'", i, buf);
	}
	/* and every log line goes through it */
	log_set_level(LOG_LEVEL_INFO);
	capture(1);
	log_error("ct %s",
	    "\x1b]0;x\x07\xc2\x9b"
	    "31m\x9b");
	out = release();
	assert_string_equal(out, "<3>ct ?]0;x???31m?\n");
}

static void
test_level_parse(void **state)
{
	(void)state;
	assert_int_equal(log_level_parse("error"), LOG_LEVEL_ERROR);
	assert_int_equal(log_level_parse("warning"), LOG_LEVEL_WARNING);
	assert_int_equal(log_level_parse("info"), LOG_LEVEL_INFO);
	assert_int_equal(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("loud"), -1);
}

/*
 * log_duration(): one part as --status words an age ("last success 5m
 * ago"), rounded in the largest unit held twice; two parts as a progress
 * line's ETA, in whole seconds.  The rows are the outputs of status.c's
 * fmt_age and sync.c's fmt_duration, which it replaced.
 */
static void
test_duration(void **state)
{
	static const struct {
		double secs;
		const char *one, *two;
	} t[] = {
		{ -3, "-3s", "0s" },
		{ 0, "0s", "0s" },
		{ 0.4, "0s", "0s" },
		{ 0.5, "0s", "1s" },
		{ 12, "12s", "12s" },
		{ 59.6, "60s", "1m00s" },
		{ 60, "60s", "1m00s" },
		{ 119, "119s", "1m59s" },
		{ 120, "2m", "2m00s" },
		{ 220, "4m", "3m40s" },
		{ 3599.5, "60m", "1h00m" },
		{ 3720, "62m", "1h02m" },
		{ 7199, "120m", "1h59m" },
		{ 7200, "2h", "2h00m" },
		{ 9000, "2h", "2h30m" },
		{ 86400, "24h", "24h00m" },
		{ 1e9, "277778h", "0s" },
	};
	char buf[32];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		log_duration(t[i].secs, 1, buf, sizeof(buf));
		assert_string_equal(buf, t[i].one);
		log_duration(t[i].secs, 2, buf, sizeof(buf));
		assert_string_equal(buf, t[i].two);
	}
	log_duration(3720, 2, buf, 4);
	assert_string_equal(buf, "1h0");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal_prefix),
		cmocka_unit_test(test_plain_has_timestamps),
		cmocka_unit_test(test_secrets_redacted),
		cmocka_unit_test(test_secret_across_cut),
		cmocka_unit_test(test_many_secrets),
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_sanitize),
		cmocka_unit_test(test_duration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
