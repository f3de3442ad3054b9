/* SPDX-License-Identifier: ISC */
/*
 * test_third_adapter.c: a third API is one file and one table entry.
 *
 * tests/unit/third/third.c defines the adapter "third" and this build's
 * source_types[] (instead of daemon/adapters.c); nothing in daemon/ names
 * it.  A source of type third goes through the configuration (type,
 * defaults, key checks), the adapter's URL and page parser, the walk and
 * the store, and lands in the mirror with kind 'third', its typed columns
 * and child table filled from what its fields[] declare (with the one
 * migration third.sql that adds them).
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

#include "conf.h"
#include "log.h"
#include "source.h"
#include "store.h"
#include "walk.h"
#include "testutil.h"

extern const struct source_type source_third;

#define NOW "2026-03-01T12:00:00.000Z"

static char dir[64], errbuf[4096];

static struct conf *
load(const char *body)
{
	char path[128], db[128], text[1024];
	struct conf *c;
	FILE *f, *err;

	snprintf(path, sizeof(path), "%s/agentsyncd.conf", dir);
	snprintf(db, sizeof(db), "%s/mirror.db", dir);
	snprintf(text, sizeof(text), "[agentsyncd]\ndatabase = %s\n%s", db,
	    body);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
	memset(errbuf, 0, sizeof(errbuf));
	err = fmemopen(errbuf, sizeof(errbuf) - 1, "w");
	assert_non_null(err);
	c = conf_load(path, err, CONF_CHECK_DATABASE);
	fclose(err);
	return c;
}

static void
test_configuration(void **state)
{
	struct conf *c;

	(void)state;
	setenv("T_THIRD", "third-secret-token", 1);
	c = load("[source t]\ntype = third\ntoken_env = T_THIRD\n");
	if (c == NULL)
		fail_msg("%s", errbuf);
	assert_ptr_equal(c->sources[0].type, &source_third);
	assert_string_equal(conf_type_name(&c->sources[0]), "third");
	assert_string_equal(c->sources[0].base_url,
	    "https://api.third.example");
	assert_int_equal(c->sources[0].rate_requests, 10);
	assert_true(c->sources[0].rate_window == 1);
	conf_free(c);
	/* its key rules come from the adapter */
	assert_null(load("[source t]\ntype = third\ntoken_env = T_THIRD\n"
			 "org_id = 5\n"));
	assert_non_null(strstr(errbuf, "org_id is not a key of third"));
	assert_null(load("[source t]\ntype = fourth\ntoken_env = T_THIRD\n"));
	assert_non_null(strstr(errbuf, "(codegen, cotool, third)"));
}

static void
test_walk_and_store(void **state)
{
	static const char body[] =
	    "{\"count\": 3, \"things\": ["
	    "{\"id\": \"t-3\", \"state\": \"busy\", "
	    "\"name\": \"third run\", "
	    "\"created\": \"2026-03-01T11:00:00Z\", "
	    "\"size\": 12, \"owner\": {\"name\": \"ann\"}, "
	    "\"labels\": [\"x\", null, 3, \"y\"]},"
	    "{\"id\": \"t-2\", \"state\": \"ok\", "
	    "\"created\": "
	    "\"2026-03-01T10:00:00Z\", \"extra\": [1, "
	    "2], \"size\": \"big\", \"owner\": 7},"
	    "{\"state\": \"bad\"}]}";
	char url[256], err[200], path[128];
	struct conf *c;
	struct page page;
	struct store *store;
	struct sync_state st, next;
	struct store_pass pass;
	struct walk w;
	struct walk_step step;
	const struct source_type *t;
	sqlite3 *db;

	(void)state;
	c = load("[source t]\ntype = third\ntoken_env = T_THIRD\n"
		 "base_url = http://127.0.0.1:9\n");
	if (c == NULL)
		fail_msg("%s", errbuf);
	t = c->sources[0].type;
	assert_int_equal(t->page_url(&c->sources[0], 0, 100, ORDER_CREATED, url,
			     sizeof(url)),
	    0);
	assert_string_equal(url,
	    "http://127.0.0.1:9/things?offset=0&"
	    "count=100");
	memset(&page, 0, sizeof(page));
	if (t->parse_page(body, strlen(body), 100, &page, err, sizeof(err)) !=
	    0)
		fail_msg("%s", err);
	assert_int_equal(page.nruns, 2);
	assert_int_equal(page.nrejects, 1);
	assert_int_equal(page.total, 3);

	store = store_open(c->database, 0);
	assert_non_null(store);
	memset(&st, 0, sizeof(st));
	assert_int_equal(store_state_load(store, "t", t->name, "third x", &st),
	    0);
	assert_int_equal(walk_begin(&w, &st, t->any_offset,
			     t->can_order_updated, c->sources[0].page_size, NOW,
			     ""),
	    0);
	assert_int_equal(w.mode, WALK_BACKFILL);
	pass.source = "t";
	pass.kind = t->name;
	assert_int_equal(store_pass_begin(store, &pass, w.mode, NOW), 0);
	next = st;
	walk_page(&w, &page, 0, NOW, NULL, &next, &step);
	assert_int_equal(step.action, WALK_DONE);
	assert_int_equal(store_page(store, &pass, &page, &next, 0, NOW), 0);
	assert_int_equal(pass.counts.runs_new, 2);
	assert_int_equal(pass.counts.runs_rejected, 1);
	page_free(&page);
	store_close(store);

	snprintf(path, sizeof(path), "%s", c->database);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM runs WHERE kind = "
			     "'third' AND source = 't'"),
	    2);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM runs WHERE "
			     "external_id = 't-3' AND state = 'running' AND "
			     "title = "
			     "'third run' AND created_at = "
			     "'2026-03-01T11:00:00.000Z'"),
	    1);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM runs WHERE "
			     "external_id = 't-2' AND state = 'succeeded' AND "
			     "raw_json LIKE '%\"extra\": [1, 2]%'"),
	    1);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM rejected_records "
			     "WHERE kind = 'third'"),
	    1);
	/* its own typed columns and child table */
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM runs WHERE "
			     "external_id = 't-3' AND thing_size = 12 AND "
			     "thing_owner = 'ann' AND label_count = 3"),
	    1);
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM thing_labels l JOIN runs r "
			     "ON r.id = l.run_id WHERE r.external_id = 't-3' "
			     "AND ((l.position = 0 AND l.label = 'x') OR "
			     "(l.position = 1 AND l.label IS NULL) OR "
			     "(l.position = 2 AND l.label = 'y'))"),
	    3);
	/* a value of the wrong type is NULL and a problem of the run */
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM runs WHERE "
			     "external_id = 't-2' AND thing_size IS NULL AND "
			     "thing_owner IS NULL AND label_count IS NULL"),
	    1);
	assert_int_equal(
	    q_int(db,
		"SELECT count(*) FROM run_field_problems p JOIN "
		"runs r ON r.id = p.run_id WHERE "
		"(r.external_id = 't-2' AND ((p.field = 'size' AND "
		"p.problem = 'is not an integer (below 2^53)') OR "
		"(p.field = 'owner' AND p.problem = "
		"'is not an object'))) OR (r.external_id = 't-3' "
		"AND p.field = 'labels[2]' AND p.problem = "
		"'is not a string')"),
	    3);
	/* the Codegen and Cotool columns are there too, NULL */
	assert_int_equal(q_int(db,
			     "SELECT count(*) FROM runs WHERE kind = 'third' "
			     "AND organization_id IS NULL AND "
			     "agent_name IS NULL"),
	    2);
	assert_int_equal(q_int(db,
			     "SELECT backfill_done FROM sync_state "
			     "WHERE source = 't' AND kind = 'third'"),
	    1);
	sqlite3_close(db);
	conf_free(c);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/agentsyncd-third-XXXXXX");
	assert_non_null(mkdtemp(dir));
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
		cmocka_unit_test(test_configuration),
		cmocka_unit_test(test_walk_and_store),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
