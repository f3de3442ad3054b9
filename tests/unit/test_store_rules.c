/* SPDX-License-Identifier: ISC */
/*
 * test_store_rules.c: what every storage engine decides alike
 * (store_rules.c), one row a case: what an upsert writes for a run the
 * mirror holds, how a schema version is judged and said, the stored walk
 * modes, an idle pass, and the warning about a page with fields left out.
 * Linked with store_rules.o alone (Makefile), log_warnx() defined here: the
 * rules need neither SQLite, libev nor libcurl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "store_engine.h"

static char warned[512];

/* The one log call of the rules, kept for the test to read. */
void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(warned, sizeof(warned), fmt, ap);
	va_end(ap);
}

struct rcase {
	int found, same, gone, touch;
	enum store_run_write write;
	int64_t seen, new_, changed;
};

static const struct rcase rcases[] = {
	/* new to the mirror: inserted, whatever the walk */
	{ 0, 0, 0, 0, STORE_RUN_INSERT, 1, 1, 0 },
	{ 0, 0, 0, 1, STORE_RUN_INSERT, 1, 1, 0 },
	/* held, changed: rewritten (and back if it was gone) */
	{ 1, 0, 0, 0, STORE_RUN_UPDATE, 1, 0, 1 },
	{ 1, 0, 1, 0, STORE_RUN_UPDATE, 1, 0, 1 },
	{ 1, 0, 0, 1, STORE_RUN_UPDATE, 1, 0, 1 },
	/* held byte for byte: nothing on an incremental walk ... */
	{ 1, 1, 0, 0, STORE_RUN_SKIP, 1, 0, 0 },
	/* ... the sighting on a full walk, or when it was marked gone */
	{ 1, 1, 0, 1, STORE_RUN_TOUCH, 1, 0, 0 },
	{ 1, 1, 1, 0, STORE_RUN_TOUCH, 1, 0, 0 },
	{ 1, 1, 1, 1, STORE_RUN_TOUCH, 1, 0, 0 },
};

static void
test_run_decide(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *k = &rcases[i];
		struct pass_counts c;

		memset(&c, 0, sizeof(c));
		c.runs_seen = 10;
		assert_int_equal(store_run_decide(k->found, k->same, k->gone,
				     k->touch, &c),
		    k->write);
		assert_int_equal(c.runs_seen, 10 + k->seen);
		assert_int_equal(c.runs_new, k->new_);
		assert_int_equal(c.runs_changed, k->changed);
		assert_int_equal(c.runs_partial + c.runs_deleted +
			c.runs_rejected + c.pages,
		    0);
	}
}

static void
test_schema_judge(void **state)
{
	char why[256];

	(void)state;
	/* the known version passes at every moment */
	assert_int_equal(schema_judge("m.db", 9, 9, SCHEMA_IN_USE, why,
			     sizeof(why)),
	    1);
	assert_string_equal(why, "");
	/* an older file passes before a write (it will be migrated) only */
	assert_int_equal(schema_judge("m.db", 3, 9, SCHEMA_BEFORE_WRITE, why,
			     sizeof(why)),
	    1);
	assert_int_equal(schema_judge("m.db", 3, 9, SCHEMA_IN_USE, why,
			     sizeof(why)),
	    0);
	assert_string_equal(why,
	    "database 'm.db' is at schema version 3, this agentsyncd knows 9 (run agentsyncd --migrate)");
	assert_int_equal(schema_judge("m.db", 3, 9, SCHEMA_MIGRATED, why,
			     sizeof(why)),
	    0);
	assert_string_equal(why,
	    "database 'm.db' is at schema version 3, expected 9");
	/* a newer file never passes */
	assert_int_equal(schema_judge("m.db", 10, 9, SCHEMA_BEFORE_WRITE, why,
			     sizeof(why)),
	    0);
	assert_string_equal(why,
	    "database 'm.db' has schema version 10, newer than this agentsyncd knows (9): refusing to touch it");
	assert_int_equal(schema_judge("m.db", 10, 9, SCHEMA_IN_USE, why,
			     sizeof(why)),
	    0);
	assert_string_equal(why,
	    "database 'm.db' is at schema version 10, this agentsyncd knows 9");
	/* no room for why: the judgement alone */
	assert_int_equal(schema_judge("m.db", 10, 9, SCHEMA_IN_USE, NULL, 0),
	    0);
}

static void
test_walk_mode_parse(void **state)
{
	(void)state;
	assert_int_equal(store_walk_mode_parse("backfill"), WALK_BACKFILL);
	assert_int_equal(store_walk_mode_parse("incremental"),
	    WALK_INCREMENTAL);
	assert_int_equal(store_walk_mode_parse("full"), WALK_FULL);
	assert_int_equal(store_walk_mode_parse(NULL), WALK_NONE);
	assert_int_equal(store_walk_mode_parse("Full"), WALK_NONE);
	assert_int_equal(store_walk_mode_parse(""), WALK_NONE);
}

static void
test_pass_idle(void **state)
{
	struct store_pass p;

	(void)state;
	memset(&p, 0, sizeof(p));
	p.mode = WALK_INCREMENTAL;
	p.counts.runs_seen = 50; /* seen, unchanged: still idle */
	p.counts.requests = 2;
	assert_true(store_pass_idle(&p));
	p.mode = WALK_FULL;
	assert_false(store_pass_idle(&p));
	p.mode = WALK_INCREMENTAL;
	p.counts.runs_new = 1;
	assert_false(store_pass_idle(&p));
	p.counts.runs_new = 0;
	p.counts.runs_changed = 1;
	assert_false(store_pass_idle(&p));
	p.counts.runs_changed = 0;
	p.counts.runs_deleted = 1;
	assert_false(store_pass_idle(&p));
	p.counts.runs_deleted = 0;
	p.counts.runs_rejected = 1;
	assert_false(store_pass_idle(&p));
}

static void
test_page_problems_line(void **state)
{
	struct field_problem fp = { 0 };
	struct run r;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.external_id = "r-7";
	fp.field = "eval_score";
	fp.problem = "is not a number";
	r.problems = &fp;
	r.nproblems = 1;
	store_log_page_problems("cotool", &r, 1);
	assert_string_equal(warned,
	    "source 'cotool': 1 run stored with fields left out, e.g. run 'r-7': \"eval_score\" is not a number (see run_field_problems)");
	store_log_page_problems("cotool", &r, 3);
	assert_string_equal(warned,
	    "source 'cotool': 3 runs stored with fields left out, e.g. run 'r-7': \"eval_score\" is not a number (see run_field_problems)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_decide),
		cmocka_unit_test(test_schema_judge),
		cmocka_unit_test(test_walk_mode_parse),
		cmocka_unit_test(test_pass_idle),
		cmocka_unit_test(test_page_problems_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
