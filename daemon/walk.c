/* SPDX-License-Identifier: ISC */
/*
 * walk.c: the decisions of a walk over a listing paged by offset, newest
 * first.  Pure: what happens (requests, transactions, timers, log lines) is
 * sync.c's; this file only says what a page means.
 *
 * Offset drift.  Listings are paged by offset, so runs created or deleted
 * upstream during a walk shift what a page holds.  After the first page we
 * know the last item we took (the anchor): the offset counts items, runs
 * and items set aside as rejected alike, so the anchor is the page's last
 * item whatever it is, known by its id or, when it has none, by a hash of
 * its bytes (walk_item_id()).  Where the API takes any offset (Codegen's
 * skip) each page starts one item early, so the anchor must be among its
 * items (its first, unless runs moved); where it takes page numbers only
 * (Cotool) we watch the reported total.  When the anchor is not where it
 * should be and the page starts older than it (its first run with a key
 * against the anchor's key: the anchor's own, or the nearest run's before
 * it), runs may have slid past unseen: step back one page and look again.
 * Insertions only cause duplicates, which the upsert absorbs.
 *
 * Order.  Backfills and full resyncs walk by creation time, which never
 * changes: in update order a run updated during the walk jumps to the head,
 * and the run behind the page boundary slides past unseen.  Incremental
 * polls walk by update time where the API can, so that updated old runs
 * come first.  The high-water mark is the newest update time (creation time
 * where the API cannot order by update) on the first page of the last
 * complete walk: anything that changes after that request gets a newer one.
 * A walk by creation also counts update times older than its start (less
 * WALK_HW_CLOCK_MARGIN for the server's clock): the walk itself saw those
 * changes, so the first poll after a backfill stays one page.
 *
 * Stop rules.  A backfill or full resync walks to the end (an empty page,
 * or the reported total reached).  An incremental walk stops at runs it
 * already has, not at an old timestamp: after the page on which the last
 * two runs it has taken (with a key, in listing order; the one before may
 * be an earlier page's last) are both older than its stop key, the
 * high-water mark of the last complete walk, and were both in the mirror
 * before the page was written (sync.c asks the store: walk_ask()).  One
 * run out of order upstream, mirrored or not, anywhere on a page, cannot
 * stop the walk; a run never seen is stored and the walk goes on.  The
 * run that set the mark heads an idle listing and is not older than it,
 * so an idle poll is one page from page_size 3 up.  (Codegen's older
 * unfinished runs are fetched again by targeted requests after the walk:
 * recheck.c.)  A server that never stops paging is cut after twice the
 * pages its first total needs.
 *
 * Deletion marks.  Each walk begun takes the next number of its source
 * (walk_generation, saved with the cursor: a resumed walk keeps it), and
 * the store writes it on every run the walk writes or confirms.  A
 * complete full walk that verified every boundary has seen all upstream
 * holds: the runs numbered below it are gone.  No wall time decides that;
 * a clock stepped back during the walk made its sightings look older than
 * its start, and so gone.
 */
#include <stdio.h>
#include <string.h>

#include "walk.h"

static const char *const mode_names[] = {
	[WALK_NONE] = "none",
	[WALK_BACKFILL] = "backfill",
	[WALK_INCREMENTAL] = "incremental",
	[WALK_FULL] = "full",
};

const char *
walk_mode_name(enum walk_mode mode)
{
	if ((unsigned)mode >= sizeof(mode_names) / sizeof(mode_names[0]))
		return "none";
	return mode_names[mode];
}

/* The key a run is ordered by in this walk. */
static const char *
run_key(const struct walk *w, const struct run *r)
{
	const char *k = w->order == ORDER_UPDATED ? r->updated_at :
						    r->created_at;

	return k != NULL ? k : "";
}

/* The key the high-water mark is kept in: the incremental walk's. */
static const char *
hw_key(const struct walk *w, const struct run *r)
{
	const char *k = w->can_order_updated ? r->updated_at : r->created_at;

	return k != NULL ? k : "";
}

static enum walk_mode
due_mode(const struct sync_state *st, const char *resync_due)
{
	if (!st->backfill_done)
		return WALK_BACKFILL;
	if (resync_due[0] != '\0' &&
	    (st->last_full_resync_at[0] == '\0' ||
		strcmp(st->last_full_resync_at, resync_due) <= 0))
		return WALK_FULL;
	return WALK_INCREMENTAL;
}

int
walk_begin(struct walk *w, struct sync_state *st, int any_offset,
    int can_order_updated, int page_size, const char *now,
    const char *resync_due)
{
	int resumed = st->walk_mode != WALK_NONE;

	memset(w, 0, sizeof(*w));
	w->any_offset = any_offset;
	w->can_order_updated = can_order_updated;
	if (!resumed) {
		st->walk_mode = due_mode(st, resync_due);
		st->walk_offset = 0;
		st->walk_anchor_id[0] = '\0';
		st->walk_anchor_key[0] = '\0';
		st->walk_total = -1;
		st->walk_high_water[0] = '\0';
		snprintf(st->walk_started_at, sizeof(st->walk_started_at), "%s",
		    now);
		st->walk_pages = 0;
		st->walk_degraded = 0;
		st->walk_generation++;
	}
	w->mode = st->walk_mode;
	w->order = w->mode == WALK_INCREMENTAL && can_order_updated ?
	    ORDER_UPDATED :
	    ORDER_CREATED;
	if (w->mode == WALK_INCREMENTAL)
		memcpy(w->stop_key, st->high_water, TS_LEN);
	w->page_limit = page_size;
	w->max_pages = INT64_MAX;
	w->pass_cap = INT64_MAX;
	return resumed;
}

void
walk_item_id(const char *external_id, const char *raw, size_t raw_len,
    char *out)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a, 64 bits */
	size_t len, i;

	len = external_id != NULL ? strnlen(external_id, SOURCE_MAX_ID + 1) : 0;
	if (len > 0 && len <= SOURCE_MAX_ID &&
	    strncmp(external_id, WALK_RAW_ID_PREFIX,
		sizeof(WALK_RAW_ID_PREFIX) - 1) != 0) {
		memcpy(out, external_id, len + 1);
		return;
	}
	for (i = 0; i < raw_len; i++) {
		h ^= (unsigned char)raw[i];
		h *= 1099511628211ULL;
	}
	snprintf(out, SOURCE_MAX_ID + 1, WALK_RAW_ID_PREFIX "%016llx",
	    (unsigned long long)h);
}

/* Is the item whose identity is id on the page? */
static int
page_holds(const struct page *p, const char *id)
{
	char item[SOURCE_MAX_ID + 1];
	size_t i;

	for (i = 0; i < p->nruns; i++) {
		walk_item_id(p->runs[i].external_id, p->runs[i].raw,
		    p->runs[i].raw_len, item);
		if (strcmp(item, id) == 0)
			return 1;
	}
	for (i = 0; i < p->nrejects; i++) {
		walk_item_id(p->rejects[i].external_id, p->rejects[i].raw,
		    p->rejects[i].raw_len, item);
		if (strcmp(item, id) == 0)
			return 1;
	}
	return 0;
}

/* The key of the page's first run that has one, or "". */
static const char *
first_key(const struct walk *w, const struct page *p)
{
	const char *k;
	size_t i;

	for (i = 0; i < p->nruns; i++) {
		k = run_key(w, &p->runs[i]);
		if (k[0] != '\0')
			return k;
	}
	return "";
}

/* The key of the page's last run that has one, or "": the anchor's key
 * (rejects have none, and come after the runs before them). */
static const char *
last_key(const struct walk *w, const struct page *p)
{
	const char *k;
	size_t i = p->nruns;

	while (i-- > 0) {
		k = run_key(w, &p->runs[i]);
		if (k[0] != '\0')
			return k;
	}
	return "";
}

/* The identity of the page's last item into id; "" for an empty page. */
static void
last_item(const struct page *p, char *id)
{
	const struct reject *rj = p->nrejects > 0 ?
	    &p->rejects[p->nrejects - 1] :
	    NULL;
	const struct run *r = p->nruns > 0 ? &p->runs[p->nruns - 1] : NULL;

	id[0] = '\0';
	if (rj != NULL && (r == NULL || rj->pos + 1 >= p->nitems))
		walk_item_id(rj->external_id, rj->raw, rj->raw_len, id);
	else if (r != NULL)
		walk_item_id(r->external_id, r->raw, r->raw_len, id);
}

/* Does the page leave a possible gap behind the anchor?  1: step back. */
static int
drifted(const struct walk *w, const struct sync_state *st, const struct page *p,
    int64_t off)
{
	const char *key;

	if (st->walk_anchor_id[0] == '\0' || p->nitems == 0)
		return 0;
	if (page_holds(p, st->walk_anchor_id))
		return 0; /* we see what follows the anchor */
	/* The anchor is gone from where it was.  If the page starts with a
	 * run newer than it, the boundary is inside the page: no gap. */
	key = first_key(w, p);
	if (key[0] == '\0' || st->walk_anchor_key[0] == '\0' ||
	    strcmp(key, st->walk_anchor_key) > 0)
		return 0;
	if (w->any_offset)
		return off < st->walk_offset;
	return p->total != st->walk_total;
}

/*
 * In a walk by creation where the mark is kept in update time: update
 * times before the walk began, in upstream's clock (the walk's start on
 * the host's clock less the measured skew), less WALK_HW_CLOCK_MARGIN;
 * else "" (none counts).
 */
static void
hw_cutoff(const struct walk *w, const struct sync_state *st, char *out)
{
	double started;

	out[0] = '\0';
	if (w->order == ORDER_CREATED && w->can_order_updated &&
	    time_to_unix(st->walk_started_at, &started) == 0)
		time_format(started -
			(st->clock_skew.set ? st->clock_skew.v : 0) -
			WALK_HW_CLOCK_MARGIN,
		    out);
}

/* Raise the walk's high-water mark from the page's runs (see the top). */
static void
raise_high_water(const struct walk *w, const struct page *p,
    struct sync_state *next)
{
	char cutoff[TS_LEN];
	const char *key;
	size_t i;

	hw_cutoff(w, next, cutoff);
	for (i = 0; i < p->nruns; i++) {
		key = hw_key(w, &p->runs[i]);
		/* the first page of the walk: every key counts */
		if (next->walk_anchor_id[0] == '\0' && next->walk_offset == 0) {
			if (strcmp(key, next->walk_high_water) > 0)
				snprintf(next->walk_high_water, TS_LEN, "%s",
				    key);
		} else if (cutoff[0] != '\0' && strcmp(key, cutoff) <= 0 &&
		    strcmp(key, next->walk_high_water) > 0) {
			snprintf(next->walk_high_water, TS_LEN, "%s", key);
		}
	}
}

/* Is run r older than the stop key?  (A run without a key is not.) */
static int
older(const struct walk *w, const struct run *r)
{
	const char *key = run_key(w, r);

	return key[0] != '\0' && strcmp(key, w->stop_key) < 0;
}

/*
 * The runs of the page the stop rule looks at: the last two with a key
 * that the walk had not taken yet (a page that starts with the last run
 * taken, Codegen's overlap, does not count it again), pair[1] the last.
 * Returns how many (0 to 2); with 1, the other is w->last.
 */
static int
stop_pair(const struct walk *w, const struct page *p, size_t pair[2])
{
	size_t i = p->nruns, found[2] = { 0, 0 }; /* the last, the one before */
	int n = 0;

	if (w->mode != WALK_INCREMENTAL || w->stop_key[0] == '\0')
		return 0;
	while (i-- > 0 && n < 2) {
		if (run_key(w, &p->runs[i])[0] == '\0' ||
		    (w->last.set &&
			strcmp(p->runs[i].external_id, w->last.id) == 0))
			continue;
		found[n++] = i;
	}
	pair[1] = found[0];
	pair[0] = n == 2 ? found[1] : found[0];
	return n;
}

void
walk_ask(const struct walk *w, const struct page *p, struct walk_ask *ask)
{
	size_t pair[2];
	int n = stop_pair(w, p, pair);

	memset(ask, 0, sizeof(*ask));
	/* the last one is carried to the next page when it is older; the
	 * one before it matters only when both are */
	if (n >= 1 && older(w, &p->runs[pair[1]]))
		ask->run[ask->n++] = pair[1];
	if (n == 2 && ask->n == 1 && older(w, &p->runs[pair[0]]))
		ask->run[ask->n++] = pair[0];
}

/* Was the page's run i in the mirror before the page (ask's answer)? */
static int
known(const struct walk_ask *ask, size_t i)
{
	size_t j;

	for (j = 0; ask != NULL && j < ask->n; j++)
		if (ask->run[j] == i)
			return ask->known[j];
	return 0;
}

/*
 * The stop rule of an incremental walk: stop after the page on which the
 * last two runs taken (with a key, in listing order; the one before may
 * be the last of an earlier page) are both older than the stop key and
 * both were in the mirror before.  One run out of order, mirrored or not,
 * anywhere on a page, cannot stop the walk.  Remembers the page's last.
 */
static int
reached_stop(struct walk *w, const struct page *p, const struct walk_ask *ask)
{
	size_t pair[2];
	int n = stop_pair(w, p, pair), stop, b_older, b_known;
	const struct run *b;

	if (n == 0)
		return 0;
	b = &p->runs[pair[1]];
	b_older = older(w, b);
	b_known = b_older && known(ask, pair[1]);
	if (n == 2)
		stop = older(w, &p->runs[pair[0]]) && known(ask, pair[0]);
	else
		stop = w->last.set && w->last.older && w->last.known;
	w->last.set = 1;
	w->last.older = b_older;
	w->last.known = b_known;
	snprintf(w->last.id, sizeof(w->last.id), "%s", b->external_id);
	return stop && b_older && b_known;
}

/* Advance past the page: anchor, offset, the end, a capped page size. */
static int
advance(struct walk *w, const struct page *p, int64_t off,
    struct sync_state *next, struct walk_step *step)
{
	int64_t npos = off + (int64_t)p->nitems;
	const char *key = last_key(w, p);
	char id[SOURCE_MAX_ID + 1];
	int complete;

	raise_high_water(w, p, next);
	last_item(p, id);
	if (id[0] != '\0')
		snprintf(next->walk_anchor_id, sizeof(next->walk_anchor_id),
		    "%s", id);
	/* no run with a key here: the nearest before is the last anchor's */
	if (key[0] != '\0')
		snprintf(next->walk_anchor_key, TS_LEN, "%s", key);
	next->walk_offset = npos;
	complete = p->nitems == 0 || npos >= p->total;
	if (!complete && !w->any_offset && (int64_t)p->nitems < w->page_limit) {
		/* A short page that is not the last: the server caps the
		 * page size.  Page numbers must follow its size, or the next
		 * one would round back onto this page. */
		step->page_capped = 1;
		w->page_limit = (int)p->nitems;
		w->max_pages = w->pages +
		    2 * ((p->total - npos) / w->page_limit + 1) + 10;
	}
	return complete;
}

/* The walk ended: its marks become the source's.  A complete walk counts
 * from its start, or from now when the clock went back since: a start
 * later than now would put off the next full resync by the step. */
static void
finish(const struct walk *w, const char *now, struct sync_state *next)
{
	const char *since = strcmp(now, next->walk_started_at) < 0 ?
	    now :
	    next->walk_started_at;

	if (strcmp(next->walk_high_water, next->high_water) > 0)
		memcpy(next->high_water, next->walk_high_water, TS_LEN);
	if (w->mode == WALK_BACKFILL)
		next->backfill_done = 1;
	if (w->mode != WALK_INCREMENTAL)
		snprintf(next->last_full_resync_at,
		    sizeof(next->last_full_resync_at), "%s", since);
	snprintf(next->last_success_at, sizeof(next->last_success_at), "%s",
	    now);
	next->walk_mode = WALK_NONE;
}

void
walk_page(struct walk *w, const struct page *p, int64_t off, const char *now,
    const struct walk_ask *ask, struct sync_state *next, struct walk_step *step)
{
	int complete = 0, reached = 0;

	memset(step, 0, sizeof(*step));
	w->pages++;
	/* A server that never stops paging cannot hold us: twice the pages
	 * the first total asks for, and some. */
	if (w->max_pages == INT64_MAX)
		w->max_pages = 2 *
			((p->total > 0 ? p->total : 0) / w->page_limit + 1) +
		    10;
	if (drifted(w, next, p, off)) {
		if (w->step_backs < WALK_MAX_STEP_BACKS) {
			w->step_backs++;
			step->stepped_back = 1;
		} else if (!next->walk_degraded) {
			/* Kept with the cursor: a resumed walk must still
			 * know it cannot tell what is gone upstream. */
			next->walk_degraded = 1;
			step->degraded = 1;
		}
	}
	if (step->stepped_back) {
		/* the anchor stays: we are still looking for it */
		next->walk_offset = next->walk_offset > w->page_limit ?
		    next->walk_offset - w->page_limit :
		    0;
	} else {
		complete = advance(w, p, off, next, step);
		reached = reached_stop(w, p, ask);
	}
	next->walk_total = p->total;
	next->walk_pages++;
	if (complete || reached) {
		step->action = WALK_DONE;
		/* A complete full walk that verified every boundary has seen
		 * every run upstream holds: the rest is gone.  Its sightings
		 * carry its number, not a time; but a wall clock that went
		 * back during it says the host's time cannot be trusted
		 * yet: mark nothing, the next full resync will. */
		step->mark_deleted = w->mode == WALK_FULL && complete &&
		    !next->walk_degraded;
		if (step->mark_deleted &&
		    strcmp(now, next->walk_started_at) < 0) {
			step->mark_deleted = 0;
			step->clock_back = 1;
		}
		finish(w, now, next);
	} else if (w->pages >= w->pass_cap) {
		step->action = WALK_OVER_CAP;
		step->over_pass_cap = 1;
	} else if (w->pages >= w->max_pages) {
		step->action = WALK_OVER_CAP;
	} else {
		step->action = WALK_FETCH;
	}
}
