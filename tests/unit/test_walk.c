/* SPDX-License-Identifier: ISC */
/*
 * test_walk.c: the walk's decisions (walk.c), table-driven: what a page
 * means for the cursor, the high-water mark and the next action, in every
 * branch, including those the integration tests reach only by timing
 * (drift, step-back limits, a capped page size, the page cap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "walk.h"

#define T(s) "2026-01-01T00:00:" s ".000Z" /* T("05"): a key */
#define NOW  "2026-02-01T00:00:00.000Z"
#define MAXR 8

/* A run of a page: id, created, updated (the key is the walk's order). */
struct r {
	const char *id, *created, *updated;
};

/* An item set aside (rejected): where it stands among the page's items,
 * the id read from it (NULL: none), its bytes. */
struct rj {
	size_t pos;
	const char *id, *raw;
};

/* Rejected items' bytes: each has its own identity (walk_item_id()). */
#define RAW1 "{\"id\": null, \"n\": 1}"
#define RAW2 "{\"id\": null, \"n\": 2}"

struct tcase {
	const char *name;
	/* the source */
	int any_offset, can_order_updated, page_size;
	/* the committed state (walk already under way unless offset 0 and
	 * no anchor) */
	enum walk_mode mode;
	int64_t offset, total;
	const char *anchor_id, *anchor_key, *high_water, *walk_high_water;
	const char *anchor_raw; /* the anchor is an item without an id */
	const char *started;	/* walk_started_at; NULL: NOW */
	int degraded, step_backs;
	double skew; /* st.clock_skew: the host this far ahead (0: unset) */
	const char *stop_key; /* incremental */
	/* the page */
	int64_t off, page_total;
	size_t nitems;	     /* 0: the number of runs and rejects */
	struct r runs[MAXR]; /* in order, around the rejects */
	struct rj rejects[MAXR];
	unsigned known; /* bit i: runs[i] was in the mirror before */
	/* expected */
	enum walk_action action;
	int stepped_back, became_degraded, capped, mark_deleted, clock_back;
	int64_t next_offset;
	const char *next_anchor, *next_walk_hw, *next_hw;
	const char *next_anchor_raw; /* the anchor is an item without an id */
	const char *next_anchor_key; /* NULL: not checked */
	enum walk_mode next_mode;
	int next_limit;
};

static const struct tcase cases[] = {
	{ .name = "backfill first page sets anchor and walk high-water",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .off = 0,
	    .page_total = 10,
	    .runs = { { "9", T("09"), "" }, { "8", T("08"), "" },
		{ "7", T("07"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "7",
	    .next_walk_hw = T("09"),
	    .next_hw = "",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "codegen page overlapping the anchor: no drift",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 3,
	    .total = 10,
	    .anchor_id = "7",
	    .anchor_key = T("07"),
	    .walk_high_water = T("09"),
	    .off = 2,
	    .page_total = 10,
	    .runs = { { "7", T("07"), "" }, { "6", T("06"), "" },
		{ "5", T("05"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 5,
	    .next_anchor = "5",
	    .next_walk_hw = T("09"),
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "anchor gone and page starts older: step back",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 6,
	    .total = 10,
	    .anchor_id = "4",
	    .anchor_key = T("04"),
	    .off = 5,
	    .page_total = 9,
	    .runs = { { "3", T("03"), "" }, { "2", T("02"), "" },
		{ "1", T("01"), "" } },
	    .action = WALK_FETCH,
	    .stepped_back = 1,
	    .next_offset = 3,
	    .next_anchor = "4",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "step back from the first page stays at 0",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 2,
	    .total = 10,
	    .anchor_id = "4",
	    .anchor_key = T("04"),
	    .off = 1,
	    .page_total = 9,
	    .runs = { { "3", T("03"), "" } },
	    .action = WALK_FETCH,
	    .stepped_back = 1,
	    .next_offset = 0,
	    .next_anchor = "4",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "anchor gone but page starts newer: boundary inside",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 3,
	    .total = 10,
	    .anchor_id = "7",
	    .anchor_key = T("07"),
	    .off = 2,
	    .page_total = 11,
	    .runs = { { "8", T("08"), "" }, { "6", T("06"), "" },
		{ "5", T("05"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 5,
	    .next_anchor = "5",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "too many step backs: degraded, goes on",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .offset = 6,
	    .total = 10,
	    .anchor_id = "4",
	    .anchor_key = T("04"),
	    .step_backs = WALK_MAX_STEP_BACKS,
	    .off = 5,
	    .page_total = 9,
	    .runs = { { "3", T("03"), "" }, { "2", T("02"), "" },
		{ "1", T("01"), "" } },
	    .action = WALK_FETCH,
	    .became_degraded = 1,
	    .next_offset = 8,
	    .next_anchor = "1",
	    .next_mode = WALK_FULL,
	    .next_limit = 3 },
	{ .name = "page numbers: total changed and page older: step back",
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 3,
	    .total = 10,
	    .anchor_id = "7",
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 9,
	    .runs = { { "5", T("05"), "" }, { "4", T("04"), "" },
		{ "3", T("03"), "" } },
	    .action = WALK_FETCH,
	    .stepped_back = 1,
	    .next_offset = 0,
	    .next_anchor = "7",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "page numbers: same total, no step back",
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 3,
	    .total = 10,
	    .anchor_id = "7",
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 10,
	    .runs = { { "6", T("06"), "" }, { "5", T("05"), "" },
		{ "4", T("04"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 6,
	    .next_anchor = "4",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "short page that is not the last: the server caps",
	    .page_size = 5,
	    .mode = WALK_BACKFILL,
	    .off = 0,
	    .page_total = 10,
	    .runs = { { "9", T("09"), "" }, { "8", T("08"), "" } },
	    .action = WALK_FETCH,
	    .capped = 1,
	    .next_offset = 2,
	    .next_anchor = "8",
	    .next_walk_hw = T("09"),
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 2 },
	{ .name = "backfill ends at the total: done, high-water moves",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 9,
	    .total = 10,
	    .anchor_id = "2",
	    .anchor_key = T("02"),
	    .walk_high_water = T("09"),
	    .off = 8,
	    .page_total = 10,
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .next_offset = 10,
	    .next_anchor = "1",
	    .next_walk_hw = T("09"),
	    .next_hw = T("09"),
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "empty page ends the walk",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .offset = 3,
	    .total = 100,
	    .anchor_id = "7",
	    .anchor_key = T("07"),
	    .off = 2,
	    .page_total = 100,
	    .action = WALK_DONE,
	    .next_offset = 2,
	    .next_anchor = "7",
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "verified full walk done: runs not seen are gone",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .offset = 3,
	    .total = 4,
	    .anchor_id = "2",
	    .anchor_key = T("02"),
	    .off = 2,
	    .page_total = 4,
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .mark_deleted = 1,
	    .next_offset = 4,
	    .next_anchor = "1",
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "full walk done, clock stepped forward since its start",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .started = "2026-01-31T23:00:00.000Z",
	    .offset = 3,
	    .total = 4,
	    .anchor_id = "2",
	    .anchor_key = T("02"),
	    .off = 2,
	    .page_total = 4,
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .mark_deleted = 1,
	    .next_offset = 4,
	    .next_anchor = "1",
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "full walk done, clock gone back since its start: "
		  "nothing marked",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .started = "2026-02-01T00:00:00.001Z",
	    .offset = 3,
	    .total = 4,
	    .anchor_id = "2",
	    .anchor_key = T("02"),
	    .off = 2,
	    .page_total = 4,
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .clock_back = 1,
	    .next_offset = 4,
	    .next_anchor = "1",
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "backfill done, clock gone back: counts from now",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .started = "2026-02-01T01:00:00.000Z",
	    .offset = 3,
	    .total = 4,
	    .anchor_id = "2",
	    .anchor_key = T("02"),
	    .off = 2,
	    .page_total = 4,
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .next_offset = 4,
	    .next_anchor = "1",
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "degraded full walk done: nothing marked",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .degraded = 1,
	    .offset = 3,
	    .total = 4,
	    .anchor_id = "2",
	    .anchor_key = T("02"),
	    .off = 2,
	    .page_total = 4,
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .next_offset = 4,
	    .next_anchor = "1",
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "incremental by update reaches the stop key",
	    .can_order_updated = 1,
	    .page_size = 3,
	    .mode = WALK_INCREMENTAL,
	    .high_water = T("05"),
	    .stop_key = T("05"),
	    .off = 0,
	    .page_total = 50,
	    /* issue 25, part 3: the page's last two runs are older than
	     * the stop key and were both in the mirror */
	    .runs = { { "a", T("01"), T("09") }, { "b", T("02"), T("04") },
		{ "c", T("03"), T("03") } },
	    .known = 0x6,
	    .action = WALK_DONE,
	    .next_offset = 3,
	    .next_anchor = "c",
	    .next_walk_hw = T("09"),
	    .next_hw = T("09"),
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "incremental: one old run last, the one before newer: on",
	    .can_order_updated = 1,
	    .page_size = 3,
	    .mode = WALK_INCREMENTAL,
	    .high_water = T("05"),
	    .stop_key = T("05"),
	    .off = 0,
	    .page_total = 50,
	    .runs = { { "a", T("01"), T("09") }, { "b", T("02"), T("06") },
		{ "c", T("03"), T("04") } },
	    .known = 0x7,
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "c",
	    .next_walk_hw = T("09"),
	    .next_hw = T("05"),
	    .next_mode = WALK_INCREMENTAL,
	    .next_limit = 3 },
	{ .name = "incremental: the last two old, one not mirrored: on",
	    .can_order_updated = 1,
	    .page_size = 3,
	    .mode = WALK_INCREMENTAL,
	    .high_water = T("05"),
	    .stop_key = T("05"),
	    .off = 0,
	    .page_total = 50,
	    .runs = { { "a", T("01"), T("09") }, { "b", T("02"), T("04") },
		{ "c", T("03"), T("03") } },
	    .known = 0x5,
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "c",
	    .next_walk_hw = T("09"),
	    .next_hw = T("05"),
	    .next_mode = WALK_INCREMENTAL,
	    .next_limit = 3 },
	{ .name = "incremental: nothing older than the stop key yet",
	    .can_order_updated = 1,
	    .page_size = 3,
	    .mode = WALK_INCREMENTAL,
	    .high_water = T("01"),
	    .stop_key = T("01"),
	    .off = 0,
	    .page_total = 50,
	    .runs = { { "a", T("01"), T("09") }, { "b", T("02"), T("06") },
		{ "c", T("03"), T("04") } },
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "c",
	    .next_walk_hw = T("09"),
	    .next_hw = T("01"),
	    .next_mode = WALK_INCREMENTAL,
	    .next_limit = 3 },
	{ .name = "walk by creation: updates before its start count",
	    .can_order_updated = 1,
	    .page_size = 2,
	    .mode = WALK_BACKFILL,
	    .offset = 2,
	    .total = 10,
	    .anchor_id = "x",
	    .anchor_key = T("08"),
	    .walk_high_water = T("20"),
	    .started = "2026-01-01T00:10:00.000Z",
	    .off = 2,
	    .page_total = 10,
	    /* 00:04:00 is before start - 300 s: counts; 00:09:00 is not */
	    .runs = { { "y", T("07"), "2026-01-01T00:04:00.000Z" },
		{ "z", T("06"), "2026-01-01T00:09:00.000Z" } },
	    .action = WALK_FETCH,
	    .next_offset = 4,
	    .next_anchor = "z",
	    .next_walk_hw = "2026-01-01T00:04:00.000Z",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 2 },
	{ .name = "host 10 min ahead: the cutoff is upstream's start",
	    .can_order_updated = 1,
	    .page_size = 2,
	    .mode = WALK_BACKFILL,
	    .offset = 2,
	    .total = 10,
	    .anchor_id = "x",
	    .anchor_key = T("08"),
	    .walk_high_water = T("20"),
	    .started = "2026-01-01T00:10:00.000Z",
	    .skew = 600,
	    .off = 2,
	    .page_total = 10,
	    /* upstream's start is 00:00:00: neither update counts */
	    .runs = { { "y", T("07"), "2026-01-01T00:04:00.000Z" },
		{ "z", T("06"), "2026-01-01T00:09:00.000Z" } },
	    .action = WALK_FETCH,
	    .next_offset = 4,
	    .next_anchor = "z",
	    .next_walk_hw = T("20"),
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 2 },
	{ .name = "host 10 min behind: the cutoff is upstream's start",
	    .can_order_updated = 1,
	    .page_size = 2,
	    .mode = WALK_BACKFILL,
	    .offset = 2,
	    .total = 10,
	    .anchor_id = "x",
	    .anchor_key = T("08"),
	    .walk_high_water = T("20"),
	    .started = "2026-01-01T00:10:00.000Z",
	    .skew = -600,
	    .off = 2,
	    .page_total = 10,
	    /* upstream's start is 00:20:00: both updates count */
	    .runs = { { "y", T("07"), "2026-01-01T00:04:00.000Z" },
		{ "z", T("06"), "2026-01-01T00:09:00.000Z" } },
	    .action = WALK_FETCH,
	    .next_offset = 4,
	    .next_anchor = "z",
	    .next_walk_hw = "2026-01-01T00:09:00.000Z",
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 2 },
	/* Issue 25, part 2: the anchor is the last item, whatever it is. */
	{ .name = "codegen page ending with a rejected item: it is the anchor",
	    .any_offset = 1,
	    .page_size = 4,
	    .mode = WALK_FULL,
	    .off = 0,
	    .page_total = 10,
	    .runs = { { "9", T("09"), "" }, { "8", T("08"), "" },
		{ "7", T("07"), "" } },
	    .rejects = { { 3, NULL, RAW1 } },
	    .action = WALK_FETCH,
	    .next_offset = 4,
	    .next_anchor_raw = RAW1,
	    .next_anchor_key = T("07"),
	    .next_mode = WALK_FULL,
	    .next_limit = 4 },
	{ .name = "codegen page starting with the rejected anchor: no drift",
	    .any_offset = 1,
	    .page_size = 4,
	    .mode = WALK_FULL,
	    .offset = 4,
	    .total = 10,
	    .anchor_raw = RAW1,
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 10,
	    .rejects = { { 0, NULL, RAW1 } },
	    .runs = { { "6", T("06"), "" }, { "5", T("05"), "" },
		{ "4", T("04"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 7,
	    .next_anchor = "4",
	    .next_anchor_key = T("04"),
	    .next_mode = WALK_FULL,
	    .next_limit = 4 },
	{ .name = "the last page starting with the rejected anchor: marks gone",
	    .any_offset = 1,
	    .page_size = 4,
	    .mode = WALK_FULL,
	    .offset = 8,
	    .total = 10,
	    .anchor_raw = RAW1,
	    .anchor_key = T("03"),
	    .off = 7,
	    .page_total = 10,
	    .rejects = { { 0, NULL, RAW1 } },
	    .runs = { { "2", T("02"), "" }, { "1", T("01"), "" } },
	    .action = WALK_DONE,
	    .mark_deleted = 1,
	    .next_offset = 10,
	    .next_anchor = "1",
	    .next_mode = WALK_NONE,
	    .next_limit = 4 },
	{ .name = "a rejected anchor gone and the page older: step back",
	    .any_offset = 1,
	    .page_size = 4,
	    .mode = WALK_FULL,
	    .offset = 4,
	    .total = 10,
	    .anchor_raw = RAW1,
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 9,
	    .rejects = { { 0, NULL, RAW2 } },
	    .runs = { { "5", T("05"), "" }, { "4", T("04"), "" },
		{ "3", T("03"), "" } },
	    .action = WALK_FETCH,
	    .stepped_back = 1,
	    .next_offset = 0,
	    .next_anchor_raw = RAW1,
	    .next_anchor_key = T("07"),
	    .next_mode = WALK_FULL,
	    .next_limit = 4 },
	{ .name = "a rejected item first, anchor gone, a newer run: no gap",
	    .any_offset = 1,
	    .page_size = 4,
	    .mode = WALK_FULL,
	    .offset = 4,
	    .total = 10,
	    .anchor_id = "7",
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 11,
	    .rejects = { { 0, NULL, RAW2 } },
	    .runs = { { "8", T("08"), "" }, { "6", T("06"), "" },
		{ "5", T("05"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 7,
	    .next_anchor = "5",
	    .next_mode = WALK_FULL,
	    .next_limit = 4 },
	{ .name = "a rejected item with a readable id is the anchor by it",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .off = 0,
	    .page_total = 10,
	    .runs = { { "9", T("09"), "" }, { "8", T("08"), "" } },
	    .rejects = { { 2, "77", RAW1 } },
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "77",
	    .next_anchor_key = T("08"),
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "a rejected item amid the page: the last run is the anchor",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .off = 0,
	    .page_total = 10,
	    .rejects = { { 1, NULL, RAW1 } },
	    .runs = { { "9", T("09"), "" }, { "7", T("07"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "7",
	    .next_anchor_key = T("07"),
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "a run without a key last: its key is the run's before",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_BACKFILL,
	    .off = 0,
	    .page_total = 10,
	    .runs = { { "9", T("09"), "" }, { "8", T("08"), "" },
		{ "7", "", "" } },
	    .action = WALK_FETCH,
	    .next_offset = 3,
	    .next_anchor = "7",
	    .next_anchor_key = T("08"),
	    .next_mode = WALK_BACKFILL,
	    .next_limit = 3 },
	{ .name = "a page of rejected items only, holding the anchor: done",
	    .any_offset = 1,
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .offset = 4,
	    .total = 6,
	    .anchor_raw = RAW1,
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 6,
	    .rejects = { { 0, NULL, RAW1 }, { 1, NULL, RAW2 },
		{ 2, "x", "{\"id\": \"x\"}" } },
	    .action = WALK_DONE,
	    .mark_deleted = 1,
	    .next_offset = 6,
	    .next_anchor = "x",
	    .next_anchor_key = T("07"),
	    .next_mode = WALK_NONE,
	    .next_limit = 3 },
	{ .name = "cotool page ending with a rejected item: it is the anchor",
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .offset = 3,
	    .total = 10,
	    .anchor_id = "d",
	    .anchor_key = T("07"),
	    .off = 3,
	    .page_total = 10,
	    .runs = { { "c", T("06"), "" }, { "b", T("05"), "" } },
	    .rejects = { { 2, NULL, RAW2 } },
	    .action = WALK_FETCH,
	    .next_offset = 6,
	    .next_anchor_raw = RAW2,
	    .next_anchor_key = T("05"),
	    .next_mode = WALK_FULL,
	    .next_limit = 3 },
	{ .name = "cotool page starting with a rejected item, same total",
	    .page_size = 3,
	    .mode = WALK_FULL,
	    .offset = 6,
	    .total = 10,
	    .anchor_raw = RAW2,
	    .anchor_key = T("05"),
	    .off = 6,
	    .page_total = 10,
	    .rejects = { { 0, NULL, RAW1 } },
	    .runs = { { "a", T("04"), "" }, { "z", T("03"), "" } },
	    .action = WALK_FETCH,
	    .next_offset = 9,
	    .next_anchor = "z",
	    .next_anchor_key = T("03"),
	    .next_mode = WALK_FULL,
	    .next_limit = 3 },
};

static void
fill_page(const struct tcase *tc, struct run *runs, struct reject *rejects,
    struct page *p)
{
	size_t n = 0, k;

	memset(p, 0, sizeof(*p));
	memset(runs, 0, MAXR * sizeof(*runs));
	memset(rejects, 0, MAXR * sizeof(*rejects));
	for (k = 0; k < MAXR && tc->rejects[k].raw != NULL; k++) {
		rejects[k].pos = tc->rejects[k].pos;
		rejects[k].external_id = tc->rejects[k].id;
		rejects[k].raw = tc->rejects[k].raw;
		rejects[k].raw_len = strlen(tc->rejects[k].raw);
	}
	p->rejects = rejects;
	p->nrejects = k;
	for (n = 0; n < MAXR && tc->runs[n].id != NULL; n++) {
		runs[n].external_id = tc->runs[n].id;
		/* "" in the table: upstream gave no such time (NULL) */
		runs[n].created_at = tc->runs[n].created[0] != '\0' ?
		    tc->runs[n].created :
		    NULL;
		runs[n].updated_at = tc->runs[n].updated[0] != '\0' ?
		    tc->runs[n].updated :
		    NULL;
	}
	p->runs = runs;
	p->nruns = n;
	p->nitems = tc->nitems ? tc->nitems : n + k;
	p->total = tc->page_total;
}

/* The anchor id a case names: id, or the identity of the bytes raw. */
static void
case_anchor(const char *id, const char *raw, char *out)
{
	if (raw != NULL)
		walk_item_id(NULL, raw, strlen(raw), out);
	else
		snprintf(out, SOURCE_MAX_ID + 1, "%s", id ? id : "");
}

static void
run_case(const struct tcase *tc)
{
	struct sync_state st, next;
	struct walk w;
	struct walk_step step;
	struct run runs[MAXR];
	struct reject rejects[MAXR];
	struct page p;
	struct walk_ask ask;
	char want[SOURCE_MAX_ID + 1];
	size_t j;

	memset(&st, 0, sizeof(st));
	st.walk_mode = tc->mode;
	st.backfill_done = tc->mode != WALK_BACKFILL;
	st.walk_offset = tc->offset;
	st.walk_total = tc->total ? tc->total : -1;
	case_anchor(tc->anchor_id, tc->anchor_raw, st.walk_anchor_id);
	snprintf(st.walk_anchor_key, TS_LEN, "%s",
	    tc->anchor_key ? tc->anchor_key : "");
	snprintf(st.high_water, TS_LEN, "%s",
	    tc->high_water ? tc->high_water : "");
	snprintf(st.walk_high_water, TS_LEN, "%s",
	    tc->walk_high_water ? tc->walk_high_water : "");
	snprintf(st.walk_started_at, TS_LEN, "%s",
	    tc->started ? tc->started : NOW);
	st.walk_degraded = tc->degraded;
	st.clock_skew.set = tc->skew != 0;
	st.clock_skew.v = tc->skew;
	st.walk_generation = 7;
	/* resumed: walk_begin keeps the cursor and the walk's number */
	assert_int_equal(walk_begin(&w, &st, tc->any_offset,
			     tc->can_order_updated, tc->page_size, NOW, ""),
	    1);
	assert_int_equal(st.walk_generation, 7);
	if (tc->stop_key != NULL)
		assert_string_equal(w.stop_key, tc->stop_key);
	w.step_backs = tc->step_backs;
	fill_page(tc, runs, rejects, &p);
	next = st;
	walk_ask(&w, &p, &ask);
	for (j = 0; j < ask.n; j++)
		ask.known[j] = (int)((tc->known >> ask.run[j]) & 1u);
	walk_page(&w, &p, tc->off, NOW, &ask, &next, &step);
	if (step.action != tc->action ||
	    step.stepped_back != tc->stepped_back ||
	    step.degraded != tc->became_degraded ||
	    step.page_capped != tc->capped ||
	    step.mark_deleted != tc->mark_deleted ||
	    step.clock_back != tc->clock_back)
		fail_msg("%s: action %d stepped %d degraded %d capped %d "
			 "deleted %d clock back %d",
		    tc->name, step.action, step.stepped_back, step.degraded,
		    step.page_capped, step.mark_deleted, step.clock_back);
	if (next.walk_offset != tc->next_offset)
		fail_msg("%s: offset %lld, want %lld", tc->name,
		    (long long)next.walk_offset, (long long)tc->next_offset);
	case_anchor(tc->next_anchor, tc->next_anchor_raw, want);
	if (strcmp(next.walk_anchor_id, want) != 0)
		fail_msg("%s: anchor '%s', want '%s'", tc->name,
		    next.walk_anchor_id, want);
	if (tc->next_anchor_key != NULL &&
	    strcmp(next.walk_anchor_key, tc->next_anchor_key) != 0)
		fail_msg("%s: anchor key '%s'", tc->name, next.walk_anchor_key);
	if (tc->next_walk_hw != NULL &&
	    strcmp(next.walk_high_water, tc->next_walk_hw) != 0)
		fail_msg("%s: walk high-water '%s'", tc->name,
		    next.walk_high_water);
	if (tc->next_hw != NULL && strcmp(next.high_water, tc->next_hw) != 0)
		fail_msg("%s: high-water '%s'", tc->name, next.high_water);
	if (next.walk_mode != tc->next_mode)
		fail_msg("%s: mode %d", tc->name, next.walk_mode);
	if (w.page_limit != tc->next_limit)
		fail_msg("%s: page limit %d", tc->name, w.page_limit);
	assert_int_equal(next.walk_total, tc->page_total);
	assert_int_equal(next.walk_generation, 7);
	if (tc->action == WALK_DONE) {
		assert_string_equal(next.last_success_at, NOW);
		assert_int_equal(next.backfill_done, 1);
		/* from its start; from now if the clock went back since */
		if (tc->mode != WALK_INCREMENTAL)
			assert_string_equal(next.last_full_resync_at,
			    strcmp(next.walk_started_at, NOW) > 0 ?
				NOW :
				next.walk_started_at);
	}
	if (tc->became_degraded)
		assert_int_equal(next.walk_degraded, 1);
}

static void
test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* Which walk is due, and what a new one resets. */
static void
test_begin(void **state)
{
	struct sync_state st;
	struct walk w;

	(void)state;
	memset(&st, 0, sizeof(st));
	assert_int_equal(walk_begin(&w, &st, 1, 0, 100, NOW, ""), 0);
	assert_int_equal(st.walk_generation, 1); /* each new walk: one more */
	assert_int_equal(w.mode, WALK_BACKFILL);
	assert_int_equal(w.order, ORDER_CREATED);
	assert_int_equal(st.walk_total, -1);
	assert_string_equal(st.walk_started_at, NOW);
	assert_int_equal(w.max_pages, INT64_MAX);
	/* after a backfill: incremental by update where the API can */
	st.walk_mode = WALK_NONE;
	st.backfill_done = 1;
	snprintf(st.high_water, TS_LEN, "%s", T("30"));
	snprintf(st.last_full_resync_at, TS_LEN, "%s", T("50"));
	walk_begin(&w, &st, 0, 1, 100, NOW, T("40"));
	assert_int_equal(st.walk_generation, 2);
	assert_int_equal(w.mode, WALK_INCREMENTAL);
	assert_int_equal(w.order, ORDER_UPDATED);
	assert_string_equal(w.stop_key, T("30"));
	/* a full resync is due when the last one is older than due */
	st.walk_mode = WALK_NONE;
	walk_begin(&w, &st, 0, 1, 100, NOW, T("55"));
	assert_int_equal(st.walk_generation, 3);
	assert_int_equal(w.mode, WALK_FULL);
	assert_int_equal(w.order, ORDER_CREATED);
	assert_string_equal(w.stop_key, "");
	/* by creation everywhere where the API cannot order by update */
	st.walk_mode = WALK_NONE;
	walk_begin(&w, &st, 1, 0, 100, NOW, "");
	assert_int_equal(w.mode, WALK_INCREMENTAL);
	assert_int_equal(w.order, ORDER_CREATED);
	assert_int_equal(st.walk_generation, 4);
	/* a walk under way is resumed as it was, with its number (after a
	 * restart: the state loaded from the database) */
	st.walk_mode = WALK_FULL;
	st.walk_offset = 700;
	snprintf(st.walk_started_at, TS_LEN, "%s", T("10"));
	assert_int_equal(walk_begin(&w, &st, 1, 0, 100, NOW, ""), 1);
	assert_int_equal(w.mode, WALK_FULL);
	assert_int_equal(st.walk_offset, 700);
	assert_int_equal(st.walk_generation, 4);
	assert_string_equal(st.walk_started_at, T("10"));
	assert_string_equal(walk_mode_name(WALK_FULL), "full");
}

/* A server that never stops paging is cut after twice its first total's
 * pages, plus 10. */
static void
test_page_cap(void **state)
{
	struct sync_state st, next;
	struct walk w;
	struct walk_step step;
	struct run runs[1];
	struct page p;
	char id[24], ts[TS_LEN];
	int i;

	(void)state;
	memset(&st, 0, sizeof(st));
	walk_begin(&w, &st, 1, 0, 1, NOW, "");
	memset(runs, 0, sizeof(runs));
	memset(&p, 0, sizeof(p));
	p.runs = runs;
	p.nruns = p.nitems = 1;
	p.total = 5;
	next = st;
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "%d", 1000 - i);
		runs[0].external_id = id;
		/* every page a run newer than the last: the boundary is
		 * inside the page, never a drift; the total always grows */
		runs[0].created_at = ts;
		snprintf(ts, sizeof(ts),
		    "2026-01-01T%02d:%02d:00"
		    ".000Z",
		    i / 60, i % 60);
		p.total = next.walk_offset + 5; /* always more to come */
		walk_page(&w, &p,
		    next.walk_offset > 0 ? next.walk_offset - 1 : 0, NOW, NULL,
		    &next, &step);
		if (step.action != WALK_FETCH)
			break;
	}
	assert_int_equal(step.action, WALK_OVER_CAP);
	assert_int_equal(w.pages, 2 * (5 / 1 + 1) + 10);
	assert_false(step.over_pass_cap);
}

/* Issue 13, item 3: a total of 2^53 - 1 and fresh ids on every page make
 * the total-derived cap useless; max_pass_pages (pass_cap) still ends the
 * pass, and says so. */
static void
test_pass_cap(void **state)
{
	struct sync_state st, next;
	struct walk w;
	struct walk_step step;
	struct run runs[2];
	struct page p;
	char id[2][24];
	int i, j;

	(void)state;
	memset(&st, 0, sizeof(st));
	walk_begin(&w, &st, 0, 0, 2, NOW, "");
	w.pass_cap = 7;
	memset(runs, 0, sizeof(runs));
	memset(&p, 0, sizeof(p));
	p.runs = runs;
	p.nruns = p.nitems = 2;
	p.total = 9007199254740991LL;
	next = st;
	for (i = 0; i < 1000; i++) {
		for (j = 0; j < 2; j++) {
			snprintf(id[j], sizeof(id[j]), "fresh-%d", 2 * i + j);
			runs[j].external_id = id[j];
		}
		walk_page(&w, &p, next.walk_offset, NOW, NULL, &next, &step);
		if (step.action != WALK_FETCH)
			break;
	}
	assert_int_equal(step.action, WALK_OVER_CAP);
	assert_true(step.over_pass_cap);
	assert_int_equal(w.pages, 7);
	assert_int_equal(next.walk_offset,
	    14); /* kept: the next pass resumes */
}

/*
 * The stop rule over whole incremental walks (issue 25, part 3): a
 * listing of runs, newest first (ids in order; a key each, 'o' older than
 * the stop key, 'n' newer, '-' none), a mirror (the ids it holds), a page
 * size.  Each page is cut from the listing where the walk wants it (one
 * item early where any offset is taken), asked about (walk_ask()),
 * answered from the mirror, decided, then "written" (its ids join the
 * mirror).  Returns the pages until the walk was done; *taken: the
 * listing's items the walk had reached.
 */
#define MAXL 64

/* A key of walk_listing()'s: older or newer than its stop key, or none. */
static const char *
key_of(char k)
{
	if (k == 'o')
		return T("40");
	return k == 'n' ? T("59") : NULL;
}

static int
walk_listing(int any_offset, int page_size, const char *ids, const char *keys,
    const char *mirror, int64_t *taken)
{
	struct sync_state st, next;
	struct walk w;
	struct walk_step step;
	struct walk_ask ask;
	struct run runs[MAXL];
	struct page p;
	char held[MAXL + 1], id[MAXL][2];
	size_t n = strlen(ids), i, j;
	int64_t off;
	int pages = 0;

	assert_true(n <= MAXL && strlen(keys) == n);
	snprintf(held, sizeof(held), "%s", mirror);
	memset(&st, 0, sizeof(st));
	st.backfill_done = 1;
	snprintf(st.high_water, TS_LEN, "%s", T("50"));
	snprintf(st.last_full_resync_at, TS_LEN, "%s", NOW);
	walk_begin(&w, &st, any_offset, !any_offset, page_size, NOW, "");
	assert_int_equal(w.mode, WALK_INCREMENTAL);
	next = st;
	do {
		off = any_offset ?
		    (next.walk_offset > 0 ? next.walk_offset - 1 : 0) :
		    next.walk_offset;
		memset(&p, 0, sizeof(p));
		memset(runs, 0, sizeof(runs));
		for (i = (size_t)off; i < n && i < (size_t)off + page_size;
		     i++) {
			struct run *r = &runs[p.nruns++];

			id[i][0] = ids[i];
			id[i][1] = '\0';
			r->external_id = id[i];
			r->updated_at = r->created_at = key_of(keys[i]);
		}
		p.runs = runs;
		p.nitems = p.nruns;
		p.total = (int64_t)n;
		walk_ask(&w, &p, &ask);
		assert_true(ask.n <= 2);
		for (j = 0; j < ask.n; j++) {
			const char *rid = runs[ask.run[j]].external_id;

			ask.known[j] = strchr(held, rid[0]) != NULL;
		}
		walk_page(&w, &p, off, NOW, &ask, &next, &step);
		assert_int_equal(step.stepped_back, 0);
		for (j = 0; j < p.nruns; j++)
			if (strchr(held, runs[j].external_id[0]) == NULL)
				strncat(held, runs[j].external_id, 1);
		pages++;
	} while (step.action == WALK_FETCH && pages < 100);
	assert_int_equal(step.action, WALK_DONE);
	*taken = next.walk_offset;
	return pages;
}

static void
test_stop_rule(void **state)
{
	/* ten runs, all old and mirrored: an idle poll */
	const char *ids = "ABCDEFGHIJ", *old10 = "oooooooooo";
	int64_t taken;
	int any;

	(void)state;
	for (any = 0; any <= 1; any++) {
		/* an idle poll is one page, from page_size 2 (Cotool: 1 costs
		 * two, the rule needs two runs) */
		assert_int_equal(walk_listing(any, 5, ids, old10, ids, &taken),
		    1);
		assert_int_equal(walk_listing(any, 2, ids, old10, ids, &taken),
		    1);
		if (!any)
			assert_int_equal(walk_listing(0, 1, ids, old10, ids,
					     &taken),
			    2);
		/* three new runs, one old run out of order among them, not
		 * mirrored: every new one and it are taken, wherever it is */
		assert_int_equal(walk_listing(any, 3, "abXcDEFGHI",
				     "nnonoooooo", "DEFGHI", &taken),
		    any ? 3 : 2);
		assert_true(taken >= 5);
		walk_listing(any, 3, "abcXDEFGHI", "nnnooooooo", "DEFGHI",
		    &taken);
		assert_true(taken >= 5);
		walk_listing(any, 3, "XabcDEFGHI", "onnnoooooo", "DEFGHI",
		    &taken);
		assert_true(taken >= 5);
		/* ... or mirrored: the same */
		walk_listing(any, 3, "abXcDEFGHI", "nnonoooooo", "XDEFGHI",
		    &taken);
		assert_true(taken >= 5);
		/* a page of 2 whose old run is not mirrored: the next page,
		 * which starts with it where pages overlap, stops only on two
		 * more runs the mirror held before */
		walk_listing(any, 2, "aXDEFGHIJK", "nooooooooo", "DEFGHIJK",
		    &taken);
		assert_true(taken >= 4);
		/* runs without a key are passed over, not counted as old */
		assert_int_equal(walk_listing(any, 4, "ABC-DEFGHI",
				     "oo-ooooooo", "ABCDEFGHI-", &taken),
		    1);
		walk_listing(any, 4, "aXY-DEFGHI", "noo-oooooo", "DEFGHI",
		    &taken);
		assert_true(taken >= 6);
	}
}

/* What the stop rule asks of the mirror: nothing outside an incremental
 * walk with a stop key, nothing when the last run is newer than it, the
 * last run alone when the one before is newer, both when both are old. */
static void
test_ask(void **state)
{
	struct sync_state st;
	struct walk w;
	struct walk_ask ask;
	struct run runs[3];
	struct page p;

	(void)state;
	memset(&st, 0, sizeof(st));
	memset(runs, 0, sizeof(runs));
	runs[0].external_id = "a";
	runs[1].external_id = "b";
	runs[2].external_id = "c";
	runs[0].updated_at = T("09");
	runs[1].updated_at = T("08");
	runs[2].updated_at = T("03");
	memset(&p, 0, sizeof(p));
	p.runs = runs;
	p.nruns = p.nitems = 3;
	p.total = 10;
	walk_begin(&w, &st, 0, 1, 3, NOW, ""); /* a backfill */
	walk_ask(&w, &p, &ask);
	assert_int_equal(ask.n, 0);
	st.walk_mode = WALK_NONE;
	st.backfill_done = 1;
	walk_begin(&w, &st, 0, 1, 3, NOW, ""); /* incremental, no mark */
	walk_ask(&w, &p, &ask);
	assert_int_equal(ask.n, 0);
	snprintf(st.high_water, TS_LEN, "%s", T("05"));
	st.walk_mode = WALK_NONE;
	walk_begin(&w, &st, 0, 1, 3, NOW, "");
	walk_ask(&w, &p, &ask);
	assert_int_equal(ask.n, 1);
	assert_int_equal(ask.run[0], 2);
	assert_int_equal(ask.known[0], 0);
	runs[1].updated_at = T("04");
	walk_ask(&w, &p, &ask);
	assert_int_equal(ask.n, 2);
	assert_int_equal(ask.run[0], 2);
	assert_int_equal(ask.run[1], 1);
	runs[2].updated_at = T("06");
	walk_ask(&w, &p, &ask);
	assert_int_equal(ask.n, 0);
}

/* An item's identity: its id, else a hash of its bytes that no id's
 * identity can equal, and that fits sync_state.walk_anchor_id. */
static void
test_item_id(void **state)
{
	char out[SOURCE_MAX_ID + 1], id[SOURCE_MAX_ID + 2];

	(void)state;
	walk_item_id("12345", "{}", 2, out);
	assert_string_equal(out, "12345");
	/* FNV-1a 64's published values for "" and "a" */
	walk_item_id(NULL, "", 0, out);
	assert_string_equal(out, WALK_RAW_ID_PREFIX "cbf29ce484222325");
	walk_item_id(NULL, "a", 1, out);
	assert_string_equal(out, WALK_RAW_ID_PREFIX "af63dc4c8601ec8c");
	walk_item_id("", "a", 1, out);
	assert_string_equal(out, WALK_RAW_ID_PREFIX "af63dc4c8601ec8c");
	/* an id that looks like an identity of bytes is not taken as one */
	walk_item_id(WALK_RAW_ID_PREFIX "0000000000000000", "a", 1, out);
	assert_string_equal(out, WALK_RAW_ID_PREFIX "af63dc4c8601ec8c");
	/* the longest id is itself; a longer one (a reject's) is hashed */
	memset(id, 'x', sizeof(id));
	id[SOURCE_MAX_ID] = '\0';
	walk_item_id(id, "a", 1, out);
	assert_string_equal(out, id);
	id[SOURCE_MAX_ID] = 'x';
	id[SOURCE_MAX_ID + 1] = '\0';
	walk_item_id(id, "a", 1, out);
	assert_string_equal(out, WALK_RAW_ID_PREFIX "af63dc4c8601ec8c");
	/* other bytes, another identity */
	walk_item_id(NULL, RAW1, strlen(RAW1), out);
	walk_item_id(NULL, RAW2, strlen(RAW2), id);
	assert_string_not_equal(out, id);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_item_id),
		cmocka_unit_test(test_stop_rule),
		cmocka_unit_test(test_ask),
		cmocka_unit_test(test_pass_cap),
		cmocka_unit_test(test_begin),
		cmocka_unit_test(test_page_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
