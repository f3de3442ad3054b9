/* SPDX-License-Identifier: ISC */
/*
 * test_sync.c: a reload is all or nothing.
 *
 * sync_configure() switching to a new configuration must, when it runs out
 * of memory half way, leave the running sources as they were: pointing at
 * the configuration they run (the caller frees the refused one), none
 * stopped, none added.  Allocation failures are injected by wrapping
 * calloc (this binary is linked with -Wl,--wrap=calloc); under ASan a
 * source left pointing at the freed configuration is a heap-use-after-free.
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
#include <sqlite3.h>
#include <ev.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "sync.h"
#include "testutil.h"

/* The linker's names for --wrap=calloc. */
/* NOLINTNEXTLINE(cert-dcl37-c,cert-dcl51-cpp) */
void *__real_calloc(size_t n, size_t size);
/* NOLINTNEXTLINE(cert-dcl37-c,cert-dcl51-cpp) */
void *__wrap_calloc(size_t n, size_t size);

static int fail_callocs; /* 0: never; N: the Nth from now fails */

void *
__wrap_calloc(size_t n, size_t size)
{
	if (fail_callocs > 0 && --fail_callocs == 0)
		return NULL;
	return __real_calloc(n, size);
}

static char dir[64];

static struct conf *
load(const char *sources)
{
	char path[128], text[2048];
	struct conf *c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/agentsyncd.conf", dir);
	snprintf(text, sizeof(text), "[agentsyncd]\ndatabase = %s/m.db\n%s",
	    dir, sources);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	c = conf_load(path, stderr, 0);
	assert_non_null(c);
	return c;
}

/* Sources point at a closed loopback port and poll rarely: nothing of
 * this test waits on the network. */
#define SRC(name)                                             \
	"[source " name "]\ntype = cotool\n"                  \
	"base_url = http://127.0.0.1:9\ntoken_env = T_SYNC\n" \
	"poll_interval = 1h\n"

static void
test_reload_out_of_memory_keeps_running_config(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct store *store;
	struct http *http;
	struct sync *sync;
	struct conf *a, *b;
	char before[512], after[512], path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/m.db", dir);
	store = store_open(path, 0);
	assert_non_null(store);
	http = http_new(loop);
	assert_non_null(http);
	sync = sync_new(loop, store, http, 0);
	assert_non_null(sync);
	a = load(SRC("one") SRC("two"));
	assert_int_equal(sync_configure(sync, a), 0);
	sync_status(sync, before, sizeof(before));

	/* one and two unchanged, three new: its source cannot be made */
	b = load(SRC("one") SRC("two") SRC("three"));
	fail_callocs = 1;
	assert_int_equal(sync_configure(sync, b), -1);
	fail_callocs = 0;
	/* the caller keeps a and frees b, as main.c's reload does */
	memset(b->sources[0].name, 'X', strlen(b->sources[0].name));
	conf_free(b);
	sync_status(sync, after, sizeof(after));
	assert_string_equal(after, before);
	assert_non_null(strstr(after, "one: "));
	assert_non_null(strstr(after, "two: "));
	assert_null(strstr(after, "three"));

	/* and a reload that can be done still is */
	b = load(SRC("two") SRC("three"));
	assert_int_equal(sync_configure(sync, b), 0);
	conf_free(a);
	sync_status(sync, after, sizeof(after));
	assert_null(strstr(after, "one: "));
	assert_non_null(strstr(after, "two: "));
	assert_non_null(strstr(after, "three: "));

	sync_stop(sync);
	sync_free(sync);
	http_free(http);
	store_close(store);
	conf_free(b);
	ev_loop_destroy(loop);
}

/*
 * A reload while a pass is under way: the kept source's pass goes on, and
 * what it writes at its end names the source from the new file (the old
 * one is freed).  Its interrupted pass must land under its name.
 */
static void
test_reload_mid_pass(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct store *store;
	struct http *http;
	struct sync *sync;
	struct conf *a, *b;
	char status[512], path[128];
	sqlite3 *db;
	int i;

	(void)state;
	snprintf(path, sizeof(path), "%s/m.db", dir);
	store = store_open(path, 0);
	assert_non_null(store);
	http = http_new(loop);
	sync = sync_new(loop, store, http, 0);
	assert_non_null(sync);
	a = load(SRC("mid"));
	assert_int_equal(sync_configure(sync, a), 0);
	/* Turn the loop until the pass has begun (bounded: 2 s). */
	for (i = 0; i < 200; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		sync_status(sync, status, sizeof(status));
		if (strstr(status, "mid: backfill") != NULL)
			break;
		usleep(10 * 1000);
	}
	assert_non_null(strstr(status, "mid: backfill"));
	b = load(SRC("mid"));
	assert_int_equal(sync_configure(sync, b), 0);
	memset(a->sources[0].name, 'X', strlen(a->sources[0].name));
	conf_free(a);
	sync_stop(sync);
	sync_free(sync);
	http_free(http);
	store_close(store);
	conf_free(b);
	ev_loop_destroy(loop);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM sync_runs WHERE "
			     "source = 'mid' AND outcome = 'interrupted'"),
	    1);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM sync_runs WHERE "
			     "outcome = 'running'"),
	    0);
	/* the cursor was saved under the source's name, to resume from */
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM sync_state WHERE "
			     "source = 'mid' AND walk_mode = 'backfill'"),
	    1);
	sqlite3_close(db);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/agentsyncd-sync-XXXXXX");
	assert_non_null(mkdtemp(dir));
	setenv("T_SYNC", "sync-test-token-0001", 1);
	log_set_level(LOG_LEVEL_ERROR);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	return rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
		    test_reload_out_of_memory_keeps_running_config),
		cmocka_unit_test(test_reload_mid_pass),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
