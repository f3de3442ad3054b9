/* SPDX-License-Identifier: ISC */
/*
 * test_store_pg_claim.c: the PostgreSQL side of fail-over, through
 * store.h alone: two processes opening one empty database at once migrate
 * it once; store_claim() gives a source to one process at a time and
 * tells the other who holds it ("HOST pid PID", also in --status's
 * source_status.holder); a holder killed (SIGKILL) or releasing lets the
 * other take the source at its next try.
 *
 * Needs a database: AGENTSYNCD_TEST_PG_URI (tests/integration/
 * test_postgresql.py runs it against its throwaway cluster); skipped
 * without it, as in make test.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

static const char *
uri(void)
{
	const char *u = getenv("AGENTSYNCD_TEST_PG_URI");

	if (u == NULL || *u == '\0')
		skip();
	return u;
}

/* A child that opens the store, claims source (or not), says so on fd
 * and waits to be killed.  Its pid. */
static pid_t
child_holding(const char *source, int fd)
{
	pid_t pid = fork();
	struct store *s;
	char msg[8];
	int got = -1;

	assert_true(pid >= 0);
	if (pid > 0)
		return pid;
	s = store_open(uri(), 0);
	if (s != NULL)
		got = source != NULL ? store_claim(s, source, NULL, 0) : 1;
	snprintf(msg, sizeof(msg), "%d", got);
	if (write(fd, msg, strlen(msg) + 1) < 0)
		_exit(2);
	for (;;)
		pause();
}

static int
read_answer(int fd)
{
	char buf[8] = "";

	assert_true(read(fd, buf, sizeof(buf)) > 0);
	return (int)strtol(buf, NULL, 10);
}

static char holder_seen[320];

static void
status_cb(const struct source_status *ss, void *arg)
{
	(void)arg;
	if (strcmp(ss->source, "claimed") == 0 && ss->holder != NULL)
		snprintf(holder_seen, sizeof(holder_seen), "%s", ss->holder);
}

static void
test_concurrent_open_migrates_once(void **state)
{
	int fds[2];
	pid_t a, b;
	struct store *s;

	(void)state;
	uri();
	assert_int_equal(pipe(fds), 0);
	a = child_holding(NULL, fds[1]);
	b = child_holding(NULL, fds[1]);
	assert_int_equal(read_answer(fds[0]), 1);
	assert_int_equal(read_answer(fds[0]), 1);
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	s = store_open(uri(), STORE_NOMIGRATE);
	assert_non_null(s);
	assert_int_equal(store_version(s), store_known_version());
	assert_int_equal(store_migrate(s), 0); /* nothing left to apply */
	store_close(s);
	close(fds[0]);
	close(fds[1]);
}

static void
test_one_holder_then_take_over(void **state)
{
	struct store *s;
	char holder[320], want[64];
	int fds[2], got = 0, tries;
	pid_t a;
	struct store_source src = { "claimed", "cotool", "cotool x", "x", -1 };

	(void)state;
	uri();
	assert_int_equal(pipe(fds), 0);
	a = child_holding("claimed", fds[1]);
	assert_int_equal(read_answer(fds[0]), 1);
	s = store_open(uri(), 0);
	assert_non_null(s);
	assert_int_equal(store_sources_sync(s, &src, 1,
			     "2026-01-01T00:00:00.000Z", NULL, NULL),
	    0);
	assert_int_equal(store_claim(s, "claimed", holder, sizeof(holder)), 0);
	snprintf(want, sizeof(want), " pid %ld", (long)a);
	assert_non_null(strstr(holder, want));
	assert_true(store_status_each(s, status_cb, NULL) >= 1);
	assert_string_equal(holder_seen, holder);
	/* another source is free meanwhile */
	assert_int_equal(store_claim(s, "other", NULL, 0), 1);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	for (tries = 0; tries < 300 && got != 1; tries++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		got = store_claim(s, "claimed", NULL, 0);
		if (got != 1)
			nanosleep(&ts, NULL);
	}
	assert_int_equal(got, 1); /* within 30 s */
	assert_int_equal(store_claim(s, "claimed", NULL, 0), 1); /* held */
	/* released: another process may take it */
	store_release(s, "claimed");
	a = child_holding("claimed", fds[1]);
	assert_int_equal(read_answer(fds[0]), 1);
	assert_int_equal(store_claim(s, "claimed", NULL, 0), 0);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	store_close(s);
	close(fds[0]);
	close(fds[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_open_migrates_once),
		cmocka_unit_test(test_one_holder_then_take_over),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
