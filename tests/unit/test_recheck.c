/* SPDX-License-Identifier: ISC */
/*
 * test_recheck.c: the re-check schedule (recheck.c): intervals, the seen
 * map, how due runs are grouped into requests, and what a targeted page
 * that drifted means.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "recheck.h"

static void
test_interval(void **state)
{
	(void)state;
	/* young: the poll; 30 min: 3 min; old: the cap */
	assert_true(recheck_interval(30, 60, 300) == 60);
	assert_true(recheck_interval(1800, 60, 300) == 180);
	assert_true(recheck_interval(86400, 60, 300) == 300);
	assert_true(recheck_interval(-5, 2, 30) == 2);
}

static void
test_seen(void **state)
{
	struct recheck_seen seen = { 0 };
	struct store_run_key keep[2];
	char id[16];
	int i;

	(void)state;
	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "%d", (i * 37) % 200);
		assert_int_equal(recheck_seen_note(&seen, id, i), 0);
	}
	assert_int_equal(seen.n, 200);
	assert_true(recheck_seen_get(&seen, "37") == 1);
	assert_true(recheck_seen_get(&seen, "nope") == -1);
	assert_int_equal(recheck_seen_note(&seen, "37", 500), 0);
	assert_int_equal(seen.n, 200);
	assert_true(recheck_seen_get(&seen, "37") == 500);
	memset(keep, 0, sizeof(keep));
	snprintf(keep[0].external_id, sizeof(keep[0].external_id), "37");
	snprintf(keep[1].external_id, sizeof(keep[1].external_id), "199");
	recheck_seen_keep(&seen, keep, 2);
	assert_int_equal(seen.n, 2);
	assert_true(recheck_seen_get(&seen, "37") == 500);
	assert_true(recheck_seen_get(&seen, "5") == -1);
	recheck_seen_free(&seen);
}

/* A listing of n runs, ids "n-1".."0" newest first, one a second. */
static struct store_run_key *
listing(size_t n)
{
	struct store_run_key *k = calloc(n, sizeof(*k));
	size_t i;

	assert_non_null(k);
	for (i = 0; i < n; i++) {
		snprintf(k[i].external_id, sizeof(k[i].external_id), "%zu",
		    n - 1 - i);
		snprintf(k[i].created_at, sizeof(k[i].created_at),
		    "2026-01-01T%02zu:%02zu:%02zu.000Z", (n - 1 - i) / 3600,
		    (n - 1 - i) / 60 % 60, (n - 1 - i) % 60);
	}
	return k;
}

static void
test_plan_groups(void **state)
{
	struct store_run_key *k = listing(500);
	unsigned char due[500] = { 0 };
	struct recheck rc;

	(void)state;
	assert_int_equal(recheck_plan(&rc, k, due, 500, 100), 0);
	due[0] = due[5] = due[99] = 1; /* one request: 0..99 */
	due[100] = 1;		       /* 99 + 1 > page: a second */
	due[350] = 1;		       /* alone: 349, 2 items */
	assert_int_equal(recheck_plan(&rc, k, due, 500, 100), 3);
	assert_int_equal(rc.ndue, 5);
	assert_int_equal(rc.groups[0].start, 0);
	assert_int_equal(rc.groups[0].limit, 100);
	assert_int_equal(rc.groups[1].start, 99);
	assert_int_equal(rc.groups[1].limit, 2 + RECHECK_SLACK);
	assert_int_equal(rc.groups[2].start, 349);
	assert_int_equal(rc.groups[2].limit, 2 + RECHECK_SLACK);
	assert_string_equal(rc.due[4].id, "149");
	recheck_free(&rc);
	free(k);
}

/* A page of the listing k[off..off+n) as the adapter would give it. */
static void
page_of(struct page *p, struct run *runs, const struct store_run_key *k,
    size_t off, size_t n)
{
	size_t i;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < n; i++) {
		memset(&runs[i], 0, sizeof(runs[i]));
		runs[i].external_id = k[off + i].external_id;
		runs[i].created_at = k[off + i].created_at;
	}
	p->runs = runs;
	p->nruns = p->nitems = n;
}

static void
test_drift(void **state)
{
	struct store_run_key *k = listing(1000), *up;
	unsigned char due[1000] = { 0 };
	struct recheck rc;
	struct page p;
	struct run runs[100];
	int64_t off;
	int limit;

	(void)state;
	due[300] = 1; /* "699": the mirror says offset 300 */
	assert_int_equal(recheck_plan(&rc, k, due, 1000, 100), 1);
	/* 150 runs created upstream since: it is at 450 now */
	up = listing(1150);
	page_of(&p, runs, up, 299, 6);
	recheck_found(&rc, &p, 299);
	assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
	assert_int_equal(off, 304); /* forward, a whole page */
	assert_int_equal(limit, 100);
	page_of(&p, runs, up, 304, 100);
	recheck_found(&rc, &p, 304);
	assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
	assert_int_equal(off, 403);
	page_of(&p, runs, up, 403, 100);
	recheck_found(&rc, &p, 403);
	assert_true(rc.due[0].found);
	assert_int_equal(rc.shift, 150);
	assert_int_equal(recheck_next(&rc, &p, &off, &limit), 0);
	assert_int_equal(rc.not_found, 0);
	assert_int_equal(rc.steps, 2);
	recheck_free(&rc);

	/* 200 runs deleted upstream before it: it is at 100 now (the ids
	 * 700..899 are gone) */
	assert_int_equal(recheck_plan(&rc, k, due, 1000, 100), 1);
	{
		struct store_run_key *gone = listing(1000);

		memmove(&gone[100], &gone[300], 700 * sizeof(*gone));
		page_of(&p, runs, gone, 299, 6);
		recheck_found(&rc, &p, 299);
		assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
		assert_int_equal(off, 200); /* back a page */
		page_of(&p, runs, gone, 200, 100);
		recheck_found(&rc, &p, 200);
		assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
		assert_int_equal(off, 101);
		page_of(&p, runs, gone, 101, 100);
		recheck_found(&rc, &p, 101);
		assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
		assert_int_equal(off, 2);
		page_of(&p, runs, gone, 2, 100);
		recheck_found(&rc, &p, 2);
		assert_true(rc.due[0].found);
		assert_int_equal(recheck_next(&rc, &p, &off, &limit), 0);
		free(gone);
	}
	recheck_free(&rc);

	/* gone itself: missing inside the span of its page: given up, no
	 * step */
	assert_int_equal(recheck_plan(&rc, k, due, 1000, 100), 1);
	{
		struct store_run_key *gone = listing(1000);

		memmove(&gone[300], &gone[301], 699 * sizeof(*gone));
		page_of(&p, runs, gone, 299, 6);
		recheck_found(&rc, &p, 299);
		assert_int_equal(recheck_next(&rc, &p, &off, &limit), 0);
		assert_int_equal(rc.not_found, 1);
		assert_int_equal(rc.steps, 0);
		free(gone);
	}
	recheck_free(&rc);
	free(up);
	free(k);
}

/* Runs created since the head: the slack absorbs a few without a step,
 * and the shift found carries to the next request; an empty page (past
 * the end) steps back. */
static void
test_shift_and_empty(void **state)
{
	struct store_run_key *k = listing(1000), *up = listing(1003);
	unsigned char due[1000] = { 0 };
	struct recheck rc;
	struct page p;
	struct run runs[100];
	int64_t off;
	int limit;

	(void)state;
	due[300] = due[600] = 1;
	assert_int_equal(recheck_plan(&rc, k, due, 1000, 100), 2);
	/* 3 runs created: "699" is at 303, inside 299 + 6 */
	page_of(&p, runs, up, 299, 6);
	recheck_found(&rc, &p, 299);
	assert_true(rc.due[0].found);
	assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
	assert_int_equal(off, 599 + 3); /* the next starts shifted */
	assert_int_equal(limit, 6);
	page_of(&p, runs, up, 602, 6);
	recheck_found(&rc, &p, 602);
	assert_true(rc.due[1].found);
	assert_int_equal(recheck_next(&rc, &p, &off, &limit), 0);
	assert_int_equal(rc.steps, 0);
	recheck_free(&rc);

	/* the listing now ends at 250: an empty page steps back */
	assert_int_equal(recheck_plan(&rc, k, due, 1000, 100), 2);
	memset(&p, 0, sizeof(p));
	p.total = 250;
	assert_int_equal(recheck_next(&rc, &p, &off, &limit), 1);
	assert_int_equal(off, 200);
	assert_int_equal(limit, 100);
	recheck_free(&rc);
	free(up);
	free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_interval),
		cmocka_unit_test(test_seen),
		cmocka_unit_test(test_plan_groups),
		cmocka_unit_test(test_drift),
		cmocka_unit_test(test_shift_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
