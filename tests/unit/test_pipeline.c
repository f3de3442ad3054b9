/* SPDX-License-Identifier: ISC */
/*
 * test_pipeline.c: the ring of page requests of a pass (pipeline.c): what
 * to ask for next, what a step back drops, what a 429 turns into holes and
 * how wide the window of requests in flight is.  Linked with pipeline.o
 * alone (Makefile): the module needs neither libev, libcurl nor SQLite.
 * A request in flight is a fake pointer; releases are counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline.h"

static int released; /* pipe_slot releases with a request in flight */
static int settled;  /* ... with an unread answer */
static char reqs[PIPE_RING];

static void
release(struct pipe_slot *sl)
{
	if (sl->req != NULL)
		released++;
	if (sl->unread)
		settled++;
}

struct fixture {
	struct pipeline pl;
	struct walk walk;
	struct pipe_walk pw;
};

/* A full resync at offset 0 of total runs, pages of 100, any offset. */
static void
setup(struct fixture *f, enum walk_mode mode, int64_t total)
{
	memset(f, 0, sizeof(*f));
	released = settled = 0;
	pipe_init(&f->pl, release, f);
	f->walk.mode = mode;
	f->walk.page_limit = 100;
	f->walk.max_pages = INT64_MAX;
	f->walk.pass_cap = INT64_MAX;
	f->pw.walk = &f->walk;
	f->pw.offset = 0;
	f->pw.total = total;
	f->pw.any_offset = 1;
	f->pw.in_flight = 4;
}

/* Ask for what the window allows, as sync's src_fill() does. */
static int
fill(struct fixture *f)
{
	struct pipe_slot *sl;
	int64_t off;
	int i, limit, asked = 0, window = pipe_window(&f->pw);
	enum pipe_next next;

	for (i = 0; i < window; i++) {
		next = pipe_next(&f->pl, &f->pw, i, &off, &limit, &sl);
		if (next == PIPE_SKIP)
			continue;
		if (next == PIPE_STOP)
			break;
		sl->offset = off;
		sl->limit = limit;
		sl->req = &reqs[i];
		pipe_asked(&f->pl, i);
		asked++;
	}
	return asked;
}

static void
answer(struct pipe_slot *sl, long status)
{
	sl->req = NULL;
	sl->status = status;
	sl->body = strdup("{}");
	assert_non_null(sl->body);
	sl->len = 2;
	sl->answered = 1;
	sl->unread = status / 100 == 2;
}

/* The cursor's page is stored: the walk moves on (any offset: the next
 * page starts one early, at its anchor). */
static void
store_head(struct fixture *f)
{
	struct pipe_slot cur;

	pipe_take(&f->pl, &cur);
	cur.unread = 0; /* parsed */
	pipe_clear(&cur);
	f->walk.pages++;
	f->pw.offset = pipe_slot(&f->pl, 0)->offset + 100 + 1;
	pipe_advance(&f->pl);
}

static void
test_first_page_alone(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f, WALK_FULL, 1000);
	assert_int_equal(pipe_window(&f.pw), 1);
	assert_int_equal(fill(&f), 1);
	assert_int_equal(f.pl.n, 1);
	assert_int_equal(pipe_slot(&f.pl, 0)->offset, 0);
	assert_int_equal(pipe_slot(&f.pl, 0)->limit, 100);
	/* asked for already: nothing more until it is handled */
	assert_int_equal(fill(&f), 0);
}

static void
test_full_walk_opens_the_window(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f, WALK_FULL, 1000);
	fill(&f);
	answer(pipe_slot(&f.pl, 0), 200);
	store_head(&f);
	assert_int_equal(pipe_window(&f.pw), 4);
	assert_int_equal(fill(&f), 4);
	/* any offset: each page one early, at the anchor */
	assert_int_equal(pipe_slot(&f.pl, 0)->offset, 100);
	assert_int_equal(pipe_slot(&f.pl, 1)->offset, 199);
	assert_int_equal(pipe_slot(&f.pl, 2)->offset, 298);
	assert_int_equal(pipe_slot(&f.pl, 3)->offset, 397);
}

static void
test_incremental_one_more_a_page(void **state)
{
	struct fixture f;
	int pages;

	(void)state;
	setup(&f, WALK_INCREMENTAL, 100000);
	for (pages = 0; pages < 6; pages++) {
		f.walk.pages = pages;
		assert_int_equal(pipe_window(&f.pw),
		    pages == 0	      ? 1 :
			pages + 1 < 4 ? pages + 1 :
					4);
	}
	/* a re-check: one request at a time, each depends on the last */
	{
		struct recheck_group g = { .start = 7, .limit = 3 };
		int64_t off;
		int limit;

		f.pw.recheck = &g;
		assert_int_equal(pipe_window(&f.pw), 1);
		pipe_want(&f.pw, &off, &limit);
		assert_int_equal(off, 7);
		assert_int_equal(limit, 3);
	}
}

static void
test_never_past_total_or_pass_cap(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f, WALK_FULL, 250); /* pages at 0, 99, 198: 198+100 >= 250 */
	fill(&f);
	answer(pipe_slot(&f.pl, 0), 200);
	store_head(&f);
	assert_int_equal(fill(&f), 2);
	assert_int_equal(f.pl.n, 2);
	assert_int_equal(pipe_slot(&f.pl, 1)->offset, 199);

	setup(&f, WALK_FULL, 100000);
	f.walk.pass_cap = 3; /* max_pass_pages */
	fill(&f);
	answer(pipe_slot(&f.pl, 0), 200);
	store_head(&f);
	/* one page handled, two more may be asked for */
	assert_int_equal(fill(&f), 2);
	assert_int_equal(f.pl.n, 2);
}

static void
test_step_back_drops_the_requests_ahead(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f, WALK_FULL, 1000);
	fill(&f);
	answer(pipe_slot(&f.pl, 0), 200);
	store_head(&f);
	fill(&f);
	answer(pipe_slot(&f.pl, 0), 200);
	answer(pipe_slot(&f.pl, 2), 200);
	assert_int_equal(f.pl.n, 4);
	/* the head is wanted while the cursor is where it was */
	assert_int_equal(pipe_head_wanted(&f.pl, &f.pw), 1);
	assert_int_equal(f.pl.n, 4);
	/* runs moved upstream: the walk steps back to offset 50 */
	f.pw.offset = 50;
	assert_int_equal(pipe_head_wanted(&f.pl, &f.pw), 0);
	assert_int_equal(f.pl.n, 0);
	assert_int_equal(released, 2); /* the two in flight, cancelled */
	assert_int_equal(settled, 2);  /* the two answers, counted */
	/* and the next request is the cursor's new page */
	assert_int_equal(fill(&f), 4);
	assert_int_equal(pipe_slot(&f.pl, 0)->offset, 49);
}

static void
test_429_turns_in_flight_into_holes(void **state)
{
	struct fixture f;
	struct pipe_slot *sl;
	int i;

	(void)state;
	setup(&f, WALK_FULL, 1000);
	fill(&f);
	answer(pipe_slot(&f.pl, 0), 200);
	store_head(&f);
	fill(&f);
	answer(pipe_slot(&f.pl, 1), 200);
	/* slot 2 gets the 429: its answer is not kept, it is a hole */
	sl = pipe_slot(&f.pl, 2);
	sl->req = NULL;
	pipe_hole(sl);
	pipe_holes_in_flight(&f.pl);
	assert_int_equal(released, 2); /* slots 0 and 3 */
	assert_int_equal(f.pl.n, 4);
	for (i = 0; i < 4; i++) {
		sl = pipe_slot(&f.pl, i);
		assert_null(sl->req);
		assert_int_equal(sl->offset, 100 + 99 * i);
		assert_int_equal(sl->limit, 100);
		assert_int_equal(sl->answered, i == 1);
	}
	assert_non_null(pipe_slot(&f.pl, 1)->body);
	/* after the wait the holes are asked for again, the answer kept */
	assert_int_equal(fill(&f), 3);
	assert_non_null(pipe_slot(&f.pl, 0)->req);
	assert_null(pipe_slot(&f.pl, 1)->req);
	assert_non_null(pipe_slot(&f.pl, 2)->req);
	assert_int_equal(pipe_slot(&f.pl, 2)->offset, 298);
	pipe_drop(&f.pl, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_page_alone),
		cmocka_unit_test(test_full_walk_opens_the_window),
		cmocka_unit_test(test_incremental_one_more_a_page),
		cmocka_unit_test(test_never_past_total_or_pass_cap),
		cmocka_unit_test(test_step_back_drops_the_requests_ahead),
		cmocka_unit_test(test_429_turns_in_flight_into_holes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
