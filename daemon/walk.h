/* SPDX-License-Identifier: ISC */
/*
 * walk.h: a source's walk cursor and the decisions of a walk, as pure
 * functions of (state, page) -> (next state, action).
 *
 * No libev, curl or SQLite here: sync.c does what these decide (fetch,
 * store, log, sleep) and store.c keeps struct sync_state.  See the top of
 * walk.c for the rules (offset drift, order, high-water mark, stop rules).
 */
#ifndef AGENTSYNCD_WALK_H
#define AGENTSYNCD_WALK_H

#include <stdint.h>

#include "source.h"

/* An identity made from an item's bytes starts with this; no identity
 * made from an id does (walk_item_id()). */
#define WALK_RAW_ID_PREFIX "#raw:"

/* Step backs in one pass before going on unverified (and saying so). */
#define WALK_MAX_STEP_BACKS 8
/* Seconds of server clock skew the high-water cutoff allows. */
#define WALK_HW_CLOCK_MARGIN 300.0

enum walk_mode {
	WALK_NONE,
	WALK_BACKFILL,	  /* first complete walk of a source */
	WALK_INCREMENTAL, /* newest first until known territory */
	WALK_FULL,	  /* periodic complete re-walk */
};

/* "none", "backfill", "incremental", "full" */
const char *walk_mode_name(enum walk_mode mode);

/*
 * A source's persistent sync state: the high-water mark and, while a walk
 * is under way, its cursor.  Saved with every page (store.c).  Strings are
 * "" when unset.
 */
struct sync_state {
	char high_water[TS_LEN];
	int backfill_done;
	enum walk_mode walk_mode; /* WALK_NONE: no walk under way */
	int64_t walk_offset;	  /* items consumed */
	/* The last item taken (walk_item_id()) and the key of it or, when
	 * it has none, of the nearest run before it that has one. */
	char walk_anchor_id[SOURCE_MAX_ID + 1];
	char walk_anchor_key[TS_LEN];
	int64_t walk_total; /* total reported by the last page */
	char walk_high_water[TS_LEN];
	char walk_started_at[TS_LEN];
	int64_t walk_pages;
	char last_full_resync_at[TS_LEN];
	char last_success_at[TS_LEN];
	int walk_degraded; /* went past an unverified boundary */
	/* The number of the walk under way (or of the last one): one more
	 * for each walk begun, kept when one is resumed.  Each sighting of
	 * a run records it (runs.last_seen_walk): a complete full walk
	 * marks gone what it did not number, whatever the wall clock did. */
	int64_t walk_generation;
	/* Seconds the host's clock is ahead of upstream's (negative: behind),
	 * from the Date header of the source's responses; unset until one
	 * had one.  Upstream times are compared with upstream's "now": the
	 * host's now less this. */
	struct opt_num clock_skew;
};

/* One pass of a walk: set up by walk_begin(), advanced by walk_page(). */
struct walk {
	/* What the adapter can do (struct source_type). */
	int any_offset;
	int can_order_updated;
	/* Fixed for the pass. */
	enum walk_mode mode;
	enum walk_order order;
	char stop_key[TS_LEN]; /* incremental: "" = walk to the end */
	/* Advanced page by page. */
	int page_limit;	   /* items a page really holds */
	int64_t pages;	   /* pages handled in this pass */
	int64_t max_pages; /* INT64_MAX until the first page */
	int64_t pass_cap;  /* max_pass_pages: a bound upstream cannot move
			    * (INT64_MAX unless the caller sets it) */
	int step_backs;
	/* The stop rule's memory: the last run with a key taken so far. */
	struct {
		int set;
		int older; /* older than the stop key */
		int known; /* in the mirror before this walk wrote it */
		char id[SOURCE_MAX_ID + 1];
	} last;
};

/*
 * What the stop rule asks of the mirror about a page (walk_ask()): the
 * runs of the page, at most two, whose presence in the mirror before the
 * page is written decides whether the walk stops.  The caller answers in
 * known[] (store_has_run(); an error is "not known": the walk goes on).
 */
struct walk_ask {
	size_t n;
	size_t run[2]; /* indexes into the page's runs */
	int known[2];  /* 1: a live row of the source holds its id */
};

/*
 * The identity of an item of a page, as the walk's anchor
 * (sync_state.walk_anchor_id) holds it: its external id (NULL: none could
 * be read) when that has 1 to SOURCE_MAX_ID bytes and does not start with
 * WALK_RAW_ID_PREFIX, else that prefix and a 64-bit hash (FNV-1a) of its
 * verbatim bytes raw, in hex.  out: SOURCE_MAX_ID + 1 bytes.
 */
void walk_item_id(const char *external_id, const char *raw, size_t raw_len,
    char *out);

/*
 * Begin a pass on *st at wall time now ("YYYY-...Z"): resume the walk under
 * way, or start the one that is due (a backfill, a full resync when
 * last_full_resync_at is older than resync_due, else an incremental walk;
 * resync_due "" = never) with the next walk_generation.  Sets up *w for
 * page_size items a page.  Returns 1 when a walk was resumed, 0 when one
 * was started.
 */
int walk_begin(struct walk *w, struct sync_state *st, int any_offset,
    int can_order_updated, int page_size, const char *now,
    const char *resync_due);

enum walk_action {
	WALK_FETCH,    /* fetch the page at next->walk_offset */
	WALK_DONE,     /* the walk ended: the pass succeeded */
	WALK_OVER_CAP, /* still paging after max_pages or pass_cap: the
			* pass fails (the cursor is kept) */
};

/* What walk_page() decided, for the caller to do and to say. */
struct walk_step {
	enum walk_action action;
	int stepped_back;  /* offset drift: the same boundary again */
	int degraded;	   /* drift past WALK_MAX_STEP_BACKS: the walk
				 * goes on unverified (set on this page) */
	int page_capped;   /* the server holds at most w->page_limit */
	int over_pass_cap; /* WALK_OVER_CAP because of w->pass_cap */
	int mark_deleted;  /* a complete, verified full walk: runs not
				 * seen by it (last_seen_walk below
				 * next->walk_generation) are gone */
	int clock_back;	   /* such a walk ended with the wall clock
				 * earlier than its start: nothing marked */
};

/* Fill *ask with the runs of page p the stop rule needs to know about
 * (none outside an incremental walk with a stop key); known[] zeroed. */
void walk_ask(const struct walk *w, const struct page *p, struct walk_ask *ask);

/*
 * Decide what page p, asked for at offset off, means, with ask as
 * walk_ask() left it and the caller answered it (NULL: nothing known).
 * *next comes in as the committed state and goes out as the state to
 * commit with the page (now is the time of a success).  *w advances;
 * *step says what to do.
 */
void walk_page(struct walk *w, const struct page *p, int64_t off,
    const char *now, const struct walk_ask *ask, struct sync_state *next,
    struct walk_step *step);

#endif
