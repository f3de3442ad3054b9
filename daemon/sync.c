/* SPDX-License-Identifier: ISC */
/*
 * sync.c: walk each source's listing newest first and mirror it.
 *
 * One struct src per configured source, one ev_timer each: it fires for
 * the next poll, for the limiter's next slot and for retry waits.  A pass
 * is one walk (or the rest of an interrupted one):
 *
 *   pass_begin -> fetch -> (limiter) -> http GET -> on_response ->
 *   adapter parse -> handle_page -> writer_page (rows + cursor, one
 *   transaction or one savepoint of the writer's batch) -> fetch the next
 *   page, or pass_end and sleep.
 *
 * What a page means (drift, order, high-water mark, stop rules) is decided
 * in walk.c, without libev, curl or SQLite; this file does what it decides.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "conf.h"
#include "http.h"
#include "limit.h"
#include "log.h"
#include "metrics.h"
#include "pipeline.h"
#include "recheck.h"
#include "source.h"
#include "stats.h"
#include "store.h"
#include "sync.h"
#include "verdict.h"
#include "walk.h"
#include "writer.h"

/* "TYPE BASE_URL org N" */
#define SRC_MAX_IDENTITY (SOURCE_MAX_BASE_URL + 64)
#define MAX_429_RETRIES	 30	/* per page, then the pass fails */
#define MAX_BUSY_WAITS	 60	/* database locked by another, per page */
#define MAX_RETRY_AFTER	 3600.0 /* seconds we accept from Retry-After */
/* Seconds between the host's clock and upstream's worth a warning. */
#define CLOCK_WARN_SKEW	     60.0
#define WAL_CHECKPOINT_BYTES (4LL * 1024 * 1024)
/* The largest first page kept parsed for the next poll (struct src). */
#define FIRST_KEEP_MAX (1024 * 1024)

struct sync;

/*
 * The lifecycle of a source: one state, and every transition.
 *
 *   state          what it does                  leaves for
 *   SRC_NEW        its cursor not read yet       IDLE (read), FINISHED
 *   SRC_IDLE       between passes, timer armed   PASS (begun), ORPHANED,
 *                                                FINISHED (--once)
 *   SRC_PASS       walking: asks for pages       WAITING, RECHECK, IDLE,
 *                                                FINISHED, ORPHANED
 *   SRC_RECHECK    fetching the runs due for a   WAITING, IDLE, FINISHED,
 *                  re-check (pass.rc)            ORPHANED
 *   SRC_WAITING    in a pass, a retry's or a     PASS or RECHECK (its timer:
 *                  429's wait: asks for nothing  pass.rc has groups or not),
 *                                                IDLE, FINISHED, ORPHANED
 *   SRC_FINISHED   --once: its pass is over      (none)
 *   SRC_ORPHANED   renamed or forgotten in the   NEW (a reload that still
 *                  database: stopped             configures it)
 *
 * A pass begins in src_pass_begin() (NEW or IDLE to PASS) and is closed in
 * one place, src_pass_close(), whatever ends it: done or failed
 * (src_pass_end()), stopped (src_stop()) or orphaned (src_orphaned()).
 */
enum src_state {
	SRC_NEW,
	SRC_IDLE,
	SRC_PASS,
	SRC_RECHECK,
	SRC_WAITING,
	SRC_FINISHED,
	SRC_ORPHANED
};

/* The page at the cursor: what its failures have cost so far (reset when
 * a page is stored). */
struct attempt {
	int retries; /* failures of this page */
	int retries_429;
	int busy_waits; /* database locked by another */
};

/* The pass under way: begun by src_pass_begin() with one assignment. */
struct pass {
	struct recheck rc;  /* the requests of the re-check, if any */
	double t0;	    /* http_mono_now() at its start */
	int64_t off0;	    /* the walk's offset then (a resumed walk) */
	double last_report; /* http_mono_now() of the last progress line */
	struct walk walk;
	struct store_pass rec; /* its sync_runs row and counters */
	struct attempt at;
	int64_t stored; /* pages stored: src_pump() sees one was */
};

/* The first page of the last incremental pass, parsed.  A parse is a
 * function of the body's bytes and the limit asked for alone, so the next
 * poll that gets the same bytes for the same limit handles this page
 * instead of parsing them again: an idle poll's parse is three quarters of
 * its instructions.  Everything after the parse (the walk, the comparison
 * with the mirror, the re-checks) is done as for any page. */
struct first_page {
	int set;
	struct page page; /* page.text: the body's bytes, verbatim */
	size_t len;
	int limit;
};

/* One configured source (src_new()). */
struct src {
	struct sync *sync;
	const struct conf_source *conf;
	struct src *next;
	enum src_state state;
	/* Its pace: the limiter, the backoff and its one timer (the next
	 * poll, the limiter's next slot, a wait). */
	struct limit limit;
	struct backoff backoff;
	ev_timer timer;
	struct sync_state st;	  /* as last committed (and the clock skew) */
	struct recheck_seen seen; /* unfinished runs: when last fetched */
	struct pass pass;
	struct pipeline pipe; /* the pass's requests */
	/* Its part of the writer's open batch; past max_retries batches
	 * lost in a row (wpart.losses) the timer ends the pass. */
	struct writer_part wpart;
	struct first_page first;
	struct stats m; /* counters, status text */
};

struct sync {
	struct ev_loop *loop;
	struct store *store;   /* reads; every write goes through writer */
	struct writer *writer; /* &writer_mem */
	struct writer writer_mem;
	struct http *http;
	int once;
	int failed;
	struct src *srcs;
	const char *metrics_file; /* the configuration's, or NULL */
	int metrics_errno;	  /* the last write error said, or 0 */
	ev_timer batch_timer;	  /* the writer's: commits its batch */
};

static void src_pump(struct src *s);
static void src_orphaned(struct src *s);
static void sync_write_metrics(struct sync *sync);
static void src_pass_end(struct src *s, int ok, const char *error,
    double next_delay);

/* Parsing and writing pages, committing a batch: work that blocks the
 * loop since http_mono_now() was t0.  Over half a second, the requests' idle
 * clocks must not count it as upstream's silence (and libev's time is
 * refreshed for the timers armed next).  A slow commit inside a slow pump
 * is taken off twice: a stall is then cut that much later, never a live
 * request early. */
static void
sync_was_busy(struct sync *sync, double t0)
{
	double busy = http_mono_now() - t0;

	if (busy > 0.5)
		http_loop_was_busy(sync->http, busy);
}

static void
wall_ts(char *out, double offset)
{
	time_format(ev_time() + offset, out);
}

static void
src_arm(struct src *s, double delay)
{
	/* often called after long work (a page written, a pass ended): from
	 * the loop's cached time the timer would fire that much early */
	ev_now_update(s->sync->loop);
	ev_timer_stop(s->sync->loop, &s->timer);
	ev_timer_set(&s->timer, delay > 0 ? delay : 0, 0.);
	ev_timer_start(s->sync->loop, &s->timer);
}

/* A pass is under way (asking, or waiting). */
static int
src_in_pass(const struct src *s)
{
	return s->state == SRC_PASS || s->state == SRC_RECHECK ||
	    s->state == SRC_WAITING;
}

/* The pass may ask for pages and handle their answers. */
static int
src_may_ask(const struct src *s)
{
	return s->state == SRC_PASS || s->state == SRC_RECHECK;
}

static struct verdict
slot_verdict(const struct pipe_slot *sl, enum verdict_body body)
{
	return verdict_of(sl->status, sl->too_large, sl->retry_after >= 0,
	    body);
}

/* Count an answer's outcome once, when its verdict is final: on arrival,
 * or for a 2xx when its body is parsed or dropped unread (verdict.h). */
static void
src_count(struct src *s, struct verdict v)
{
	stats_request(&s->m, v.outcome);
}

/* The final verdict on sl's 2xx, now that body says what it is. */
static struct verdict
slot_settle(struct pipe_slot *sl, enum verdict_body body)
{
	struct verdict v = slot_verdict(sl, body);

	src_count(sl->pl->owner, v);
	sl->unread = 0;
	return v;
}

/* pipe_release: a slot let go (pipeline.h). */
static void
slot_release(struct pipe_slot *sl)
{
	if (sl->unread)
		(void)slot_settle(sl, VERDICT_UNREAD);
	http_cancel(sl->req);
}

/*
 * Wait delay seconds, asking for nothing meanwhile; then the page at the
 * cursor (a hole: its answer was taken) is asked for again.  Answers kept
 * stay; requests in flight go on unless cancel (a 429: they become holes,
 * asked for again after the wait).  The source's pages in the open batch
 * are committed first: a wait holds nothing uncommitted.
 */
static void
src_wait(struct src *s, double delay, int cancel)
{
	if (s->wpart.in_batch && writer_commit(s->sync->writer) == WRITE_LOST)
		return; /* lost: it waits already, from the cursor before */
	if (cancel)
		pipe_holes_in_flight(&s->pipe);
	/* already waiting longer (a retry, a 429 before): keep that */
	if (s->state == SRC_WAITING && ev_is_active(&s->timer) &&
	    ev_timer_remaining(s->sync->loop, &s->timer) > delay)
		return;
	s->state = SRC_WAITING;
	src_arm(s, delay);
}

/* The walk key of a run: what the listing is ordered by. */
static void
src_identity(const struct conf_source *c, char *buf, size_t len)
{
	if (c->type->needs_org_id)
		snprintf(buf, len, "%s %s org %lld", c->type->name, c->base_url,
		    (long long)c->org_id);
	else
		snprintf(buf, len, "%s %s", c->type->name, c->base_url);
}

static void
src_first_drop(struct src *s)
{
	if (s->first.set)
		page_free(&s->first.page);
	s->first.set = 0;
}

/* Begin a pass: resume the walk under way or start the one that is due. */
static int
src_pass_begin(struct src *s)
{
	const struct conf_source *c = s->conf;
	char now[TS_LEN], due[TS_LEN] = "", identity[SRC_MAX_IDENTITY];
	struct pass pass = { .t0 = 0 };

	wall_ts(now, 0);
	if (s->state == SRC_NEW) {
		src_identity(c, identity, sizeof(identity));
		if (writer_state_load(s->sync->writer, c->name, c->type->name,
			identity, &s->st) == -1)
			return -1;
		s->state = SRC_IDLE;
	}
	if (c->full_resync_interval > 0)
		wall_ts(due, -c->full_resync_interval);
	if (walk_begin(&pass.walk, &s->st, s->conf->type->any_offset,
		s->conf->type->can_order_updated, c->page_size, now, due))
		log_info("source '%s': resuming %s walk at offset %lld",
		    c->name, walk_mode_name(pass.walk.mode),
		    (long long)s->st.walk_offset);
	pass.walk.pass_cap = c->max_pass_pages;
	if (pass.walk.mode != WALK_INCREMENTAL)
		src_first_drop(s); /* not wanted for a while: its memory back */
	pass.t0 = pass.last_report = http_mono_now();
	pass.off0 = s->st.walk_offset;
	pass.rec.source = c->name;
	pass.rec.kind = c->type->name;
	if (writer_pass_begin(s->sync->writer, &pass.rec, pass.walk.mode,
		now) == -1)
		return -1;
	s->pass = pass;
	s->state = SRC_PASS;
	log_debug("source '%s': %s pass begins (stop key %s)", c->name,
	    walk_mode_name(pass.walk.mode),
	    pass.walk.stop_key[0] ? pass.walk.stop_key : "none");
	return 0;
}

/* Where the re-check window of refresh_window starts, in upstream's
 * clock (the host's, less the skew its Date headers told). */
static void
src_refresh_since(const struct src *s, char *since)
{
	const struct sync_state *st = &s->st;

	time_format(ev_time() - (st->clock_skew.set ? st->clock_skew.v : 0) -
		s->conf->refresh_window,
	    since);
}

/* A listing by creation only: note when each unfinished run in the
 * re-check window was fetched (any page of any walk). */
static void
src_note_seen(struct src *s, const struct page *p)
{
	char since[TS_LEN];
	double now = http_mono_now();
	size_t i;

	if (s->conf->type->can_order_updated)
		return;
	src_refresh_since(s, since);
	for (i = 0; i < p->nruns; i++) {
		const struct run *r = &p->runs[i];

		if (!run_state_terminal(r->state) && r->created_at != NULL &&
		    strcmp(r->created_at, since) >= 0 &&
		    recheck_seen_note(&s->seen, r->external_id, now) == -1)
			return; /* out of memory: it is due again, no harm */
	}
}

/*
 * After the head of an incremental walk of a listing by creation: plan the
 * targeted requests for the unfinished runs due for a re-check (recheck.c).
 * Returns 1 when there are some (the pass goes on), 0 when none, -1 on a
 * database error.
 */
static int
src_recheck_begin(struct src *s)
{
	const struct conf_source *c = s->conf;
	struct store_run_key *unf = NULL, *listing = NULL;
	unsigned char *is_due = NULL, *unf_due = NULL;
	char since[TS_LEN], oldest[TS_LEN] = "";
	double now = http_mono_now(), up_now, last, age, created;
	int64_t n, m = 0, i, j, ndue = 0;
	int rc = -1, oom = 0;

	/* targeted requests need any offset (skip), not page numbers */
	if (s->conf->type->can_order_updated || !s->conf->type->any_offset ||
	    s->pass.walk.mode != WALK_INCREMENTAL)
		return 0;
	src_refresh_since(s, since);
	if ((n = store_runs_since(s->sync->store, c->name, since, 1, &unf)) < 0)
		return -1;
	recheck_seen_keep(&s->seen, unf, (size_t)n);
	if ((unf_due = calloc((size_t)(n > 0 ? n : 1), 1)) == NULL) {
		oom = 1;
		goto out;
	}
	up_now = ev_time() - (s->st.clock_skew.set ? s->st.clock_skew.v : 0);
	/* unf is newest first: the last due one is the oldest */
	for (i = 0; i < n; i++) {
		last = recheck_seen_get(&s->seen, unf[i].external_id);
		age = time_to_unix(unf[i].created_at, &created) == 0 ?
		    up_now - created :
		    0;
		unf_due[i] = last < 0 ||
		    now - last + c->poll_interval / 2 >=
			recheck_interval(age, c->poll_interval,
			    c->refresh_max_interval);
		if (unf_due[i]) {
			snprintf(oldest, sizeof(oldest), "%s",
			    unf[i].created_at);
			ndue++;
		}
	}
	if (ndue == 0) {
		rc = 0;
		goto out;
	}
	/* every live run from the oldest due one on: offsets */
	if ((m = store_runs_since(s->sync->store, c->name, oldest, 0,
		 &listing)) < 0)
		goto out;
	if ((is_due = calloc((size_t)(m > 0 ? m : 1), 1)) == NULL) {
		oom = 1;
		goto out;
	}
	for (i = 0, j = 0; i < m && j < n; i++) {
		/* both lists are in listing order */
		while (j < n &&
		    strcmp(unf[j].created_at, listing[i].created_at) > 0)
			j++;
		if (j < n &&
		    strcmp(unf[j].external_id, listing[i].external_id) == 0)
			is_due[i] = unf_due[j++];
	}
	rc = recheck_plan(&s->pass.rc, listing, is_due, (size_t)m,
	    s->pass.walk.page_limit);
	oom = rc < 0;
	if (rc > 0) {
		s->state = SRC_RECHECK;
		log_debug("source '%s': %zu unfinished runs due for a re-check "
			  "in %d requests",
		    c->name, s->pass.rc.ndue, rc);
		rc = 1;
	}
out:
	if (oom)
		log_error("source '%s': out of memory planning re-checks",
		    c->name);
	free(unf);
	free(unf_due);
	free(listing);
	free(is_due);
	return rc;
}

/* Keep upstream's clock from the Date header of a response: how far this
 * host's is ahead; warned about once, and again when it moves. */
static void
src_note_clock(struct src *s, const struct http_response *resp)
{
	double skew;

	if (resp->date < 0)
		return;
	/* Date is whole seconds, cut: upstream's time was, on average, half
	 * a second past it. */
	skew = ev_time() - (resp->date + 0.5);
	s->st.clock_skew.set = 1;
	s->st.clock_skew.v = skew;
	stats_skew(&s->m, s->conf->name, skew, CLOCK_WARN_SKEW);
}

static void
src_retry(struct src *s, const char *reason)
{
	double delay;

	if (s->pass.at.retries >= s->conf->max_retries) {
		log_error("source '%s': giving up on this pass after %d "
			  "retries: %s",
		    s->conf->name, s->pass.at.retries, reason);
		src_pass_end(s, 0, reason, s->conf->poll_interval);
		return;
	}
	s->pass.at.retries++;
	s->pass.rec.counts.retries++;
	delay = backoff_next(&s->backoff);
	log_warnx("source '%s': %s; retry %d of %d in %.1fs", s->conf->name,
	    reason, s->pass.at.retries, s->conf->max_retries, delay);
	src_wait(s, delay, 0);
}

/* Say what walk_page() decided that an operator should know. */
static void
src_log_step(const struct src *s, const struct walk_step *step,
    const struct page *p, const struct sync_state *next)
{
	const char *name = s->conf->name;

	if (step->degraded)
		log_warnx("source '%s': upstream keeps changing under the "
			  "walk; going on without verifying the page boundary "
			  "(the "
			  "next full resync fills any gap)",
		    name);
	if (step->stepped_back)
		log_info("source '%s': runs moved upstream during the walk "
			 "(total %lld -> %lld); stepping back to offset %lld",
		    name, (long long)s->st.walk_total, (long long)p->total,
		    (long long)next->walk_offset);
	if (step->page_capped)
		log_info("source '%s': the server returns at most %zu runs a "
			 "page; following it",
		    name, p->nitems);
	if (step->clock_back)
		log_warnx(
		    "source '%s': the wall clock went back during the full resync (begun at %s, ended at %s): no run marked deleted upstream; the next full resync marks them",
		    name, s->st.walk_started_at, next->last_success_at);
}

/* The page could not be stored: nothing of it was written, fetch it
 * again.  Another process's lock is waited out (off the event loop)
 * without spending the retries meant for upstream failures. */
static void
src_store_failed(struct src *s, enum write_rc rc)
{
	double delay;

	if (rc == WRITE_LOST)
		return; /* back at the cursor before the batch, waiting */
	if (rc == WRITE_GONE) {
		src_orphaned(s);
		return;
	}
	if (rc == WRITE_BUSY && s->pass.at.busy_waits < MAX_BUSY_WAITS) {
		s->pass.at.busy_waits++;
		s->pass.rec.counts.retries++; /* the page is fetched again */
		delay = backoff_next(&s->backoff);
		log_warnx("source '%s': the database is locked by another "
			  "process; fetching and writing the page again in "
			  "%.1fs",
		    s->conf->name, delay);
		src_wait(s, delay, 0);
		return;
	}
	src_retry(s, "cannot write the page to the database");
}

/* What store_page() does besides writing the page. */
static unsigned
flags_of(const struct src *s, const struct walk_step *step)
{
	return (s->pass.walk.mode == WALK_FULL ? STORE_SEEN : 0) |
	    (step->mark_deleted ? STORE_MARK_GONE : 0);
}

/*
 * The writer's lost callback: this source's pages in the lost batch are
 * not in the database and the writer put its cursor, walk and counters
 * back as they were before them.  Fetch them again after a wait; past
 * max_retries losses in a row the timer ends the pass (not here: this
 * runs inside another write, or inside this source's own pass end).
 */
static void
src_batch_lost(void *arg)
{
	struct src *s = arg;
	int giving_up = s->wpart.losses > s->conf->max_retries;
	double delay = giving_up ? 0 : backoff_next(&s->backoff);

	log_error(
	    "source '%s': %lld pages could not be written to the database; %s from offset %lld%s (retry %d of %d)",
	    s->conf->name, (long long)s->wpart.lost_pages,
	    giving_up ? "giving up on them" : "fetching them again",
	    (long long)s->st.walk_offset, giving_up ? "" : " after a wait",
	    s->wpart.losses, s->conf->max_retries);
	s->pass.rec.counts.retries++;
	pipe_drop(&s->pipe, 0);
	s->state = SRC_WAITING;
	src_arm(s, delay);
}

/* writer_timer: the batch timer, in the loop. */
static void
sync_batch_arm(void *arg, double seconds)
{
	struct sync *sync = arg;

	ev_now_update(sync->loop); /* after the page's parse */
	ev_timer_set(&sync->batch_timer, seconds, 0.);
	ev_timer_start(sync->loop, &sync->batch_timer);
}

static void
sync_batch_disarm(void *arg)
{
	struct sync *sync = arg;

	ev_timer_stop(sync->loop, &sync->batch_timer);
}

/* Commit the writer's open batch, its fsyncs not counted as silence. */
static enum write_rc
sync_batch_commit(struct sync *sync, int last)
{
	double t0 = http_mono_now();
	enum write_rc rc = writer_settle(sync->writer, last, t0);

	sync_was_busy(sync, t0); /* fsyncs */
	return rc;
}

/* batch_timer: a batch holds at most WRITER_BATCH_SECONDS of pages. */
static void
sync_batch_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	(void)sync_batch_commit(w->data, 1);
}

/* A long backfill or full resync says how far it is, every
 * STATS_PROGRESS_INTERVAL. */
static void
src_report_progress(struct src *s)
{
	double now = http_mono_now();

	if (s->pass.walk.mode == WALK_INCREMENTAL ||
	    now - s->pass.last_report < STATS_PROGRESS_INTERVAL)
		return;
	s->pass.last_report = now;
	sync_write_metrics(s->sync);
	stats_progress(s->conf->name, s->pass.walk.mode, &s->st, s->pass.off0,
	    s->pass.t0, now);
}

/* A page of the re-check: store it (the walk's cursor is not moved),
 * then fetch the next targeted page or end the pass. */
static void
src_handle_recheck(struct src *s, const struct page *p, int64_t off)
{
	const struct conf_source *c = s->conf;
	struct recheck *rc = &s->pass.rc;
	struct sync_state next = s->st;
	char now[TS_LEN];
	int64_t steps = rc->steps, noff;
	enum write_rc wrc;
	int nlimit;

	wall_ts(now, 0);
	/* see src_handle_page() */
	if ((wrc = writer_begin_page(s->sync->writer, &s->wpart, 0,
		 http_mono_now())) != WRITE_OK ||
	    (wrc = writer_page(s->sync->writer, 0, &s->pass.rec, p, &next, 0,
		 now)) != WRITE_OK) {
		src_store_failed(s, wrc);
		return;
	}
	memset(&s->pass.at, 0, sizeof(s->pass.at));
	s->pass.stored++;
	backoff_reset(&s->backoff);
	src_note_seen(s, p);
	stats_page(&s->m, p->total, ev_time());
	recheck_found(rc, p, off);
	if (recheck_next(rc, p, &noff, &nlimit) == 1) {
		/* src_pump() asks for it */
		if (rc->steps > steps)
			log_info("source '%s': runs moved upstream since the "
				 "head request; looking for a run due for a "
				 "re-check at offset %lld",
			    c->name, (long long)noff);
		return;
	}
	if (rc->not_found > 0)
		log_info("source '%s': %zu of %zu runs due for a re-check are "
			 "not where the mirror has them (gone or moved "
			 "upstream): left for the next full resync",
		    c->name, rc->not_found, rc->ndue);
	/* each due run was fetched or looked for: not due again before its
	 * interval */
	{
		double t = http_mono_now();
		size_t i;

		for (i = 0; i < rc->ndue; i++)
			(void)recheck_seen_note(&s->seen, rc->due[i].id, t);
	}
	log_debug("source '%s': re-checked %zu runs", c->name, rc->ndue);
	src_pass_end(s, 1, NULL, c->poll_interval);
}

/* Answer what the walk's stop rule asks of the mirror about page p,
 * before the page is written (an error counts as "not there": the walk
 * goes on). */
static void
src_ask(const struct src *s, const struct page *p, struct walk_ask *ask)
{
	size_t i;

	walk_ask(&s->pass.walk, p, ask);
	for (i = 0; i < ask->n; i++)
		ask->known[i] = store_has_run(s->sync->store, s->conf->name,
				    p->runs[ask->run[i]].external_id) == 1;
}

static void
src_handle_page(struct src *s, const struct page *p, int64_t off)
{
	const struct conf_source *c = s->conf;
	struct sync_state next;
	struct walk_step step;
	struct walk_ask ask;
	struct walk walk;
	char now[TS_LEN], msg[256];
	int64_t deleted = s->pass.rec.counts.runs_deleted;
	enum write_rc wrc;
	int batched;

	if (s->state == SRC_RECHECK) {
		src_handle_recheck(s, p, off);
		return;
	}
	/* A backfill or full resync writes its pages in batches; any other
	 * page commits the open batch first, so that it is never written in
	 * a batch it did not join (a lost batch would take it along). */
	batched = s->pass.walk.mode != WALK_INCREMENTAL;
	wrc = writer_begin_page(s->sync->writer, &s->wpart, batched,
	    http_mono_now());
	if (wrc != WRITE_OK) {
		src_store_failed(s, wrc);
		return;
	}
	next = s->st;
	wall_ts(now, 0);
	walk = s->pass.walk;
	src_ask(s, p, &ask);
	walk_page(&s->pass.walk, p, off, now, &ask, &next, &step);
	wrc = writer_page(s->sync->writer, batched, &s->pass.rec, p, &next,
	    flags_of(s, &step), now);
	if (wrc != WRITE_OK) {
		if (wrc != WRITE_LOST) /* lost: the writer put it back */
			s->pass.walk = walk;
		src_store_failed(s, wrc);
		return;
	}
	src_log_step(s, &step, p, &next);
	s->st = next;
	memset(&s->pass.at, 0, sizeof(s->pass.at));
	s->pass.stored++;
	backoff_reset(&s->backoff);
	src_note_seen(s, p);
	stats_page(&s->m, p->total, ev_time());
	if (batched &&
	    sync_batch_commit(s->sync, step.action != WALK_FETCH) == WRITE_LOST)
		return; /* lost: back at its start, waiting */
	if (step.action == WALK_FETCH)
		src_report_progress(s);
	log_debug("source '%s': page at offset %lld: %zu items, total %lld",
	    c->name, (long long)off, p->nitems, (long long)p->total);
	switch (step.action) {
	case WALK_DONE:
		switch (src_recheck_begin(s)) {
		case 1:
			return; /* src_pump() asks for the first */
		case -1:
			src_pass_end(s, 0,
			    "cannot read the unfinished runs to re-check",
			    c->poll_interval);
			return;
		default:
			break;
		}
		if (s->pass.rec.counts.runs_deleted > deleted)
			log_info("source '%s': %lld runs no longer upstream",
			    c->name,
			    (long long)(s->pass.rec.counts.runs_deleted -
				deleted));
		src_pass_end(s, 1, NULL, c->poll_interval);
		break;
	case WALK_OVER_CAP:
		if (step.over_pass_cap)
			snprintf(msg, sizeof(msg),
			    "this pass fetched max_pass_pages (%lld) pages and "
			    "upstream is still paging (total %lld): stopping "
			    "it; the next pass goes on from here",
			    (long long)s->pass.walk.pages, (long long)p->total);
		else
			snprintf(msg, sizeof(msg),
			    "upstream is still paging after "
			    "%lld pages (total %lld): stopping this pass",
			    (long long)s->pass.walk.pages, (long long)p->total);
		log_error("source '%s': %s", c->name, msg);
		src_pass_end(s, 0, msg, c->poll_interval);
		break;
	case WALK_FETCH:
		break; /* src_pump() goes on */
	}
}

/* A 429 pauses the whole source: nothing in flight, nothing asked for
 * until the wait is over, then the page at the cursor again. */
static void
src_rate_limited(struct src *s, struct pipe_slot *sl, double retry_after)
{
	const struct conf_source *c = s->conf;
	double delay;

	s->pass.rec.counts.http_429++;
	if (++s->pass.at.retries_429 > MAX_429_RETRIES) {
		src_pass_end(s, 0, "HTTP 429: rate limited too long",
		    c->poll_interval);
		return;
	}
	if (retry_after >= 0)
		delay = fmin(retry_after, MAX_RETRY_AFTER);
	else
		delay = backoff_next(&s->backoff);
	log_warnx("source '%s': HTTP 429 from %s; waiting %.1fs%s", c->name,
	    sl->url, delay, retry_after >= 0 ? " as Retry-After asks" : "");
	pipe_hole(sl);
	src_wait(s, delay, 1);
}

/* Parse a 2xx answer; a bad page is said and retried (-1). */
static int
src_parse(struct src *s, struct pipe_slot *sl, struct page *page)
{
	char reason[4096], err[200], head[600], ctype[400];
	struct verdict v;
	int rc;

	memset(page, 0, sizeof(*page));
	rc = s->conf->type->parse_page(sl->body, sl->len, (size_t)sl->limit,
	    page, err, sizeof(err));
	v = slot_settle(sl, rc == 0 ? VERDICT_PAGE_OK : VERDICT_NOT_A_PAGE);
	if (v.action == VERDICT_PAGE)
		return 0;
	log_excerpt(sl->body, sl->len, 120, head, sizeof(head));
	/* upstream's bytes, like the body's: escaped */
	if (sl->content_type != NULL)
		log_excerpt(sl->content_type, strlen(sl->content_type), 80,
		    ctype, sizeof(ctype));
	snprintf(reason, sizeof(reason),
	    "bad page from %s (HTTP %ld, %zu bytes, %s): %s; body starts: %s",
	    sl->url, sl->status, sl->len,
	    sl->content_type != NULL ? ctype : "no content type", err, head);
	page_free(page);
	src_retry(s, reason);
	return -1;
}

/* A 401 or 403: the pass fails and the source waits auth_backoff. */
static void
src_auth_refused(struct src *s, const struct pipe_slot *sl)
{
	const struct conf_source *c = s->conf;
	char reason[4096], wait[64];

	snprintf(reason, sizeof(reason),
	    "HTTP %ld: the %s refused the token from %s", sl->status,
	    c->type->name, c->token_origin);
	snprintf(wait, sizeof(wait), "retrying in %.0fs", c->auth_backoff);
	log_error(
	    "source '%s': HTTP %ld from %s: %s; check that the token is valid and %s; %s",
	    c->name, sl->status, sl->url,
	    sl->status == 401 ? "authentication failed" : "access denied",
	    c->type->auth_hint, s->sync->once ? "this pass fails" : wait);
	src_pass_end(s, 0, reason, c->auth_backoff);
}

/* A 2xx at the cursor: parse it and handle the page. */
static void
src_read(struct src *s, struct pipe_slot *sl)
{
	const struct conf_source *c = s->conf;
	struct page page;
	int first;

	/* The first page of an incremental pass (an idle poll, mostly) is
	 * kept parsed for the next one; see struct src. */
	first = sl->offset == 0 && s->pass.walk.mode == WALK_INCREMENTAL &&
	    s->state != SRC_RECHECK && sl->len <= FIRST_KEEP_MAX;
	if (first && s->first.set && s->first.len == sl->len &&
	    s->first.limit == sl->limit &&
	    memcmp(s->first.page.text, sl->body, sl->len) == 0) {
		log_debug(
		    "source '%s': the first page is the bytes of the last pass's; not parsed again",
		    c->name);
		(void)slot_settle(sl, VERDICT_PAGE_OK); /* the same parse */
		page = s->first.page; /* taken; kept again below */
		s->first.set = 0;
	} else if (src_parse(s, sl, &page) == -1)
		return;
	src_handle_page(s, &page, sl->offset);
	if (first && !page.oom && page.text != NULL) {
		src_first_drop(s);
		s->first.page = page;
		s->first.len = sl->len;
		s->first.limit = sl->limit;
		s->first.set = 1;
	} else
		page_free(&page);
}

/* Handle the answer to the request for the page at the cursor. */
static void
src_process(struct src *s, struct pipe_slot *sl)
{
	const struct verdict v = slot_verdict(sl, VERDICT_UNREAD);
	char reason[4096], head[600];

	switch (v.action) {
	case VERDICT_PARSE:
		src_read(s, sl);
		break;
	case VERDICT_NO_ANSWER:
		snprintf(reason, sizeof(reason), "request to %s failed: %s",
		    sl->url, sl->error != NULL ? sl->error : "no response");
		src_retry(s, reason);
		break;
	case VERDICT_AUTH:
		src_auth_refused(s, sl);
		break;
	case VERDICT_UPSTREAM:
	case VERDICT_FAIL:
		log_excerpt(sl->body, sl->len, 120, head, sizeof(head));
		snprintf(reason, sizeof(reason), "HTTP %ld from %s: %s",
		    sl->status, sl->url, head);
		if (v.action == VERDICT_UPSTREAM) {
			src_retry(s, reason);
			break;
		}
		log_error("source '%s': %s", s->conf->name, reason);
		src_pass_end(s, 0, reason, s->conf->poll_interval);
		break;
	case VERDICT_PAGE:	   /* src_read()'s, after the parse */
	case VERDICT_BAD_PAGE:	   /* ... */
	case VERDICT_RETRY_AFTER:  /* a 429 waits on arrival: no turn */
	case VERDICT_RATE_LIMITED: /* ... */
		break;
	}
}

static char *
dup_or_null(const char *p, int *oom)
{
	char *d;

	if (p == NULL)
		return NULL;
	if ((d = strdup(p)) == NULL)
		*oom = 1;
	return d;
}

/* Keep an answer until its page's turn. */
static int
slot_keep(struct pipe_slot *sl, const struct http_response *resp)
{
	int oom = 0;

	sl->status = resp->status;
	sl->len = resp->len;
	sl->retry_after = resp->retry_after;
	sl->too_large = resp->too_large;
	if ((sl->body = malloc(resp->len + 1)) == NULL)
		return -1;
	if (resp->len > 0)
		memcpy(sl->body, resp->body, resp->len);
	sl->body[resp->len] = '\0';
	sl->content_type = dup_or_null(resp->content_type, &oom);
	sl->error = dup_or_null(resp->error, &oom);
	sl->answered = 1;
	return oom ? -1 : 0;
}

/* http_done_cb of a page request: keep the answer, handle what is due. */
static void
src_answer_cb(void *arg, const struct http_response *resp)
{
	struct pipe_slot *sl = arg;
	struct src *s = sl->pl->owner;
	const struct verdict v = verdict_of(resp->status, resp->too_large,
	    resp->retry_after >= 0, VERDICT_UNREAD);

	sl->req = NULL;
	s->pass.rec.counts.requests++;
	src_note_clock(s, resp);
	if (v.action != VERDICT_PARSE)
		src_count(s, v);
	if (v.action == VERDICT_RETRY_AFTER ||
	    v.action == VERDICT_RATE_LIMITED) {
		src_rate_limited(s, sl,
		    v.action == VERDICT_RETRY_AFTER ? resp->retry_after : -1);
		return;
	}
	sl->unread = v.action == VERDICT_PARSE; /* counted when dropped */
	if (slot_keep(sl, resp) == -1) {
		/* asked for again: at once ahead of the cursor, after a
		 * retry's wait at it */
		pipe_hole(sl);
		if (sl == pipe_slot(&s->pipe, 0))
			src_retry(s, "out of memory keeping a page");
		else
			src_pump(s);
		return;
	}
	src_pump(s); /* takes the time it spends off the idle clocks */
}

/* What the pass's walk lets the pipeline ask for. */
static struct pipe_walk
src_pipe_walk(const struct src *s)
{
	const struct recheck *rc = &s->pass.rc;

	return (struct pipe_walk){
		.walk = &s->pass.walk,
		.recheck = s->state == SRC_RECHECK ? &rc->groups[rc->cur] :
						     NULL,
		.offset = s->st.walk_offset,
		.total = s->st.walk_total,
		.any_offset = s->conf->type->any_offset,
		.in_flight = s->conf->requests_in_flight,
	};
}

/* http sent_cb: the limiter counts the request from when it left. */
static void
slot_sent(void *arg)
{
	struct pipe_slot *sl = arg;
	struct src *s = sl->pl->owner;

	limit_sent(&s->limit, sl->decided, http_mono_now());
}

/* The options of every request of source c. */
static void
src_http_options(const struct conf_source *c, struct http_options *opt)
{
	opt->token = c->token;
	opt->timeout = c->request_timeout;
	opt->deadline = c->request_deadline;
	opt->proxy = c->proxy_mode == PROXY_ENV ? NULL :
	    c->proxy_mode == PROXY_URL		? c->proxy :
						  "";
	opt->max_body = SOURCE_MAX_BODY;
	opt->sent_cb = slot_sent;
}

/* Ask for the pages the window allows (pipe_next()), as soon as the
 * limiter does. */
static void
src_fill(struct src *s)
{
	const struct conf_source *c = s->conf;
	const struct pipe_walk pw = src_pipe_walk(s);
	struct http_options opt;
	struct pipe_slot *sl;
	enum pipe_next next;
	int64_t off;
	int i, limit, window = pipe_window(&pw);
	double delay, now;

	src_http_options(c, &opt);
	for (i = 0; src_may_ask(s) && i < window; i++) {
		if ((next = pipe_next(&s->pipe, &pw, i, &off, &limit, &sl)) ==
		    PIPE_SKIP)
			continue;
		if (next == PIPE_STOP)
			break;
		now = http_mono_now();
		if ((delay = limit_delay(&s->limit, now)) > 0) {
			src_arm(s, delay);
			break;
		}
		if (s->conf->type->page_url(c, off, limit, s->pass.walk.order,
			sl->url, sizeof(sl->url)) == -1) {
			if (i == 0)
				src_pass_end(s, 0, "page URL too long",
				    c->poll_interval);
			break;
		}
		limit_record(&s->limit, now);
		sl->offset = off;
		sl->limit = limit;
		sl->decided = now;
		sl->req = http_get(s->sync->http, sl->url, &opt, src_answer_cb,
		    sl);
		if (sl->req == NULL) {
			if (i == 0)
				src_retry(s, "cannot start a request");
			break;
		}
		pipe_asked(&s->pipe, i);
		log_debug("source '%s': GET %s", c->name, sl->url);
	}
}

/*
 * Handle the answers that are due, in the order of the walk, then ask for
 * what the window allows.  An answer ahead of the cursor that the walk no
 * longer wants (it stepped back, the page size changed) is dropped with
 * everything after it.
 */
static void
src_pump(struct src *s)
{
	struct pipe_slot cur;
	int64_t stored;
	double t0 = http_mono_now();

	while (src_may_ask(s) && s->pipe.n > 0) {
		const struct pipe_walk pw = src_pipe_walk(s);

		if (!pipe_head_wanted(&s->pipe, &pw) ||
		    !pipe_slot(&s->pipe, 0)->answered)
			break;
		/* take its answer; the slot stays, a hole, until the page is
		 * stored (a retry asks for it there again) */
		pipe_take(&s->pipe, &cur);
		stored = s->pass.stored;
		src_process(s, &cur);
		pipe_clear(&cur);
		if (s->pass.stored != stored)
			pipe_advance(&s->pipe);
	}
	/* Parsing and writing pages blocks the loop: the requests in flight
	 * were not silent meanwhile, and the limiter's timer is armed next. */
	sync_was_busy(s->sync, t0);
	src_fill(s);
}

/* --once: this source is done; the loop ends when every source is. */
static void
src_finished(struct src *s, int ok)
{
	struct sync *sync = s->sync;
	struct src *o;

	if (!ok)
		sync->failed = 1;
	for (o = sync->srcs; o != NULL; o = o->next)
		if (o->state != SRC_FINISHED && o->state != SRC_ORPHANED)
			return;
	ev_break(sync->loop, EVBREAK_ALL);
}

/* Record the end of the pass under way as end->outcome; a failure to
 * record it fails a pass that was to succeed. */
static void
src_pass_record(struct src *s, struct stats_pass *end)
{
	struct writer *w = s->sync->writer;

	if (writer_pass_end(w, &s->pass.rec, &s->st, end->outcome, end->error,
		end->now) != WRITE_OK) {
		if (end->outcome == PASS_INTERRUPTED)
			log_warnx(
			    "source '%s': the interrupted pass was not recorded",
			    s->conf->name);
		else
			end->outcome = PASS_FAILED;
	}
	end->seconds = http_mono_now() - s->pass.t0;
	/* A reader that held the WAL open through the pass may have let go:
	 * shrink a grown WAL now rather than at the next tick.  Not after
	 * every idle poll: a checkpoint costs fsyncs. */
	if (end->outcome != PASS_INTERRUPTED)
		writer_checkpoint_over(w, WAL_CHECKPOINT_BYTES);
}

/*
 * Close the pass under way, whatever ends it; the source is then in state
 * to.  Its pages in the writer's batch are committed (a lost batch fails a
 * pass that was to succeed), or left when orphaned (its rows went before
 * the batch began: the batch holds the write lock).  Its requests are
 * dropped and its re-check plan freed; a pass that was under way is
 * recorded as end->outcome, unless orphaned.  end says how it ended.
 */
static void
src_pass_close(struct src *s, struct stats_pass *end, enum src_state to)
{
	end->rec = &s->pass.rec;
	end->mode = s->pass.walk.mode;
	end->was_active = src_in_pass(s);
	if (to == SRC_ORPHANED)
		writer_part_leave(s->sync->writer, &s->wpart);
	else if (s->wpart.in_batch &&
	    sync_batch_commit(s->sync, 1) == WRITE_LOST &&
	    end->outcome != PASS_INTERRUPTED) {
		/* back at the cursor before the batch: that is saved */
		end->outcome = PASS_FAILED;
		end->error = "cannot write the pages to the database";
	}
	pipe_drop(&s->pipe, 0);
	if (end->was_active && to != SRC_ORPHANED)
		src_pass_record(s, end);
	recheck_free(&s->pass.rc);
	s->state = to;
}

/*
 * Another process renamed or forgot this source's rows (agentsyncd
 * --rename-source / --forget-source) while it ran here: writing on would
 * recreate it under the old name, so it stops, writing nothing, until a
 * reload brings the configuration that names it as it is now.
 */
static void
src_orphaned(struct src *s)
{
	struct stats_pass end = { .outcome = PASS_FAILED };

	log_error(
	    "source '%s': no longer in the database (renamed or forgotten by agentsyncd --rename-source / --forget-source): stopped until the configuration is reloaded",
	    s->conf->name);
	src_pass_close(s, &end, SRC_ORPHANED);
	stats_orphaned(&s->m);
	ev_timer_stop(s->sync->loop, &s->timer);
	if (s->sync->once)
		src_finished(s, 0);
}

/* The pass is done (ok) or failed with error; the next in next_delay
 * seconds (--once: none). */
static void
src_pass_end(struct src *s, int ok, const char *error, double next_delay)
{
	const struct conf_source *c = s->conf;
	struct sync *sync = s->sync;
	struct stats_pass end = { .outcome = ok ? PASS_SUCCEEDED :
						  PASS_FAILED };
	char now[TS_LEN], when[TS_LEN], *safe = NULL;

	wall_ts(now, 0);
	/* The error goes to the database and STATUS=: redact it there too,
	 * whatever built it (upstream text enters through log_excerpt). */
	if (error != NULL && (safe = strdup(error)) != NULL) {
		log_redact(safe);
		error = safe;
	} else if (error != NULL)
		error = "out of memory";
	end.error = error;
	end.now = now;
	/* a source whose cursor could not be read stays to read it */
	src_pass_close(s, &end,
	    sync->once		    ? SRC_FINISHED :
		s->state == SRC_NEW ? SRC_NEW :
				      SRC_IDLE);
	/* this pass ends here anyway: the timer gives up nothing more, and
	 * the next loss in a row is past max_retries again */
	if (s->wpart.losses > c->max_retries)
		s->wpart.losses = c->max_retries;
	stats_pass_end(&s->m, c->name, &end);
	free(safe);
	s->m.next_poll = sync->once ? 0 : ev_time() + next_delay;
	sync_write_metrics(sync);
	if (sync->once) {
		src_finished(s, end.outcome == PASS_SUCCEEDED);
		return;
	}
	wall_ts(when, next_delay);
	(void)writer_next_poll(sync->writer, c->name, when);
	src_arm(s, next_delay);
}

/* ev_timer of a source: the next poll, a limiter slot or the end of a
 * wait. */
static void
src_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct src *s = w->data;

	(void)loop;
	(void)revents;
	if (s->state == SRC_ORPHANED || s->state == SRC_FINISHED)
		return;
	if (s->wpart.losses > s->conf->max_retries) {
		s->wpart.losses = 0;
		log_error(
		    "source '%s': giving up on this pass after %d retries: cannot write the pages to the database",
		    s->conf->name, s->conf->max_retries);
		src_pass_end(s, 0, "cannot write the pages to the database",
		    s->conf->poll_interval);
		return;
	}
	if (s->state == SRC_IDLE &&
	    store_source_present(s->sync->store, s->conf->name) == 0) {
		src_orphaned(s);
		return;
	}
	if (!src_in_pass(s) && src_pass_begin(s) == -1) {
		src_pass_end(s, 0, "cannot begin a pass (database)",
		    s->conf->poll_interval);
		return;
	}
	if (s->state == SRC_WAITING) /* over: on with the pass's phase */
		s->state = s->pass.rc.ngroups > 0 ? SRC_RECHECK : SRC_PASS;
	src_pump(s);
}

static struct src *
src_new(struct sync *sync, const struct conf_source *c)
{
	struct src *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		log_error("out of memory");
		return NULL;
	}
	s->sync = sync;
	s->conf = c;
	if (limit_init(&s->limit, c->rate_requests, c->rate_window) == -1) {
		log_error("out of memory");
		free(s);
		return NULL;
	}
	s->backoff.initial = c->backoff_initial;
	s->backoff.max = c->backoff_max;
	ev_init(&s->timer, src_timer_cb);
	s->timer.data = s;
	pipe_init(&s->pipe, slot_release, s);
	writer_part_init(&s->wpart, &s->st, &s->pass.walk, &s->pass.rec.counts,
	    src_batch_lost, s);
	stats_init(&s->m);
	return s;
}

/* Stop a source; its cursor is already in the database.  What the batch
 * holds is saved with its cursor (first: a lost batch arms the timer and
 * asks for its pages again, stopped next). */
static void
src_stop(struct src *s)
{
	struct stats_pass end = { .outcome = PASS_INTERRUPTED };
	char now[TS_LEN];

	wall_ts(now, 0);
	end.now = now;
	src_pass_close(s, &end, src_in_pass(s) ? SRC_IDLE : s->state);
	ev_timer_stop(s->sync->loop, &s->timer);
	stats_pass_end(&s->m, s->conf->name, &end);
}

static void
src_free(struct src *s)
{
	writer_part_leave(s->sync->writer, &s->wpart);
	pipe_drop(&s->pipe, 0);
	src_first_drop(s);
	recheck_free(&s->pass.rc);
	recheck_seen_free(&s->seen);
	limit_release(&s->limit);
	free(s);
}

struct sync *
sync_new(struct ev_loop *loop, struct store *store, struct http *http, int once)
{
	struct sync *sync;

	sync = calloc(1, sizeof(*sync));
	if (sync == NULL) {
		log_error("out of memory");
		return NULL;
	}
	sync->loop = loop;
	sync->store = store;
	sync->http = http;
	sync->once = once;
	writer_init(&sync->writer_mem, store);
	sync->writer = &sync->writer_mem;
	writer_set_timer(sync->writer,
	    &(struct writer_timer){ sync_batch_arm, sync_batch_disarm, sync });
	ev_init(&sync->batch_timer, sync_batch_timer_cb);
	sync->batch_timer.data = sync;
	return sync;
}

/* The running source of section c when c leaves it as it is, or NULL. */
static struct src *
src_unchanged(const struct sync *sync, const struct conf_source *c)
{
	struct src *s;

	for (s = sync->srcs; s != NULL; s = s->next)
		if (strcmp(s->conf->name, c->name) == 0 &&
		    conf_source_same(c, s->conf))
			return s;
	return NULL;
}

/* store_retired_fn: one warning per source the configuration lost. */
static void
warn_retired(const struct store_retired *r, void *arg)
{
	(void)arg;
	if (r->forgetting)
		log_warnx("source '%s' is half forgotten (%lld runs left): an "
			  "agentsyncd --forget-source was interrupted; run "
			  "'agentsyncd --forget-source %s --yes' again to "
			  "finish",
		    r->name, (long long)r->runs, r->name);
	else if (r->same_upstream != NULL)
		log_warnx("source '%s' (%lld runs) is not in the "
			  "configuration, "
			  "and [source %s] reads the same upstream (%s): "
			  "'agentsyncd --rename-source %s %s' would keep its "
			  "history instead of a second backfill (README, "
			  "\"Renaming a source\")",
		    r->name, (long long)r->runs, r->same_upstream,
		    r->identity != NULL ? r->identity : "?", r->name,
		    r->same_upstream);
	else
		log_warnx("source '%s' (%lld runs) is in the database but not "
			  "in the configuration (retired %s): the analysis "
			  "views leave its runs out; 'agentsyncd "
			  "--forget-source %s --yes' deletes them",
		    r->name, (long long)r->runs,
		    r->retired_at != NULL ? r->retired_at : "now", r->name);
}

/* The sources table follows the configuration (start and reload). */
static int
sync_record_sources(struct sync *sync, const struct conf *conf)
{
	struct store_source *ss;
	char(*ident)[SRC_MAX_IDENTITY], now[TS_LEN];
	size_t i, n = conf->nsources;
	int rc;

	ss = malloc((n ? n : 1) * sizeof(*ss));
	ident = malloc((n ? n : 1) * sizeof(*ident));
	if (ss == NULL || ident == NULL) {
		free(ss);
		free(ident);
		log_error("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const struct conf_source *c = &conf->sources[i];

		src_identity(c, ident[i], sizeof(ident[i]));
		ss[i].name = c->name;
		ss[i].kind = c->type->name;
		ss[i].identity = ident[i];
		ss[i].base_url = c->base_url;
		ss[i].org_id = c->type->needs_org_id ? c->org_id : -1;
	}
	wall_ts(now, 0);
	rc = writer_sources_sync(sync->writer, ss, n, now, warn_retired, NULL);
	free(ss);
	free(ident);
	return rc;
}

int
sync_configure(struct sync *sync, const struct conf *conf)
{
	struct src *s, *next, *added = NULL, **tail = &added, *kept = NULL;
	struct src **ktail = &kept;
	const struct conf_source *c;
	size_t i;

	/* All or nothing: first make every source that can fail to be made
	 * (a new or changed section) while nothing running is touched, so
	 * that a failure leaves the running configuration whole. */
	for (i = 0; i < conf->nsources; i++) {
		if (src_unchanged(sync, &conf->sources[i]) != NULL)
			continue;
		s = src_new(sync, &conf->sources[i]);
		if (s == NULL) {
			for (s = added; s != NULL; s = next) {
				next = s->next;
				src_free(s);
			}
			return -1;
		}
		*tail = s;
		tail = &s->next;
	}
	if (sync_record_sources(sync, conf) == -1) {
		for (s = added; s != NULL; s = next) {
			next = s->next;
			src_free(s);
		}
		return -1;
	}
	/* Then what cannot fail: keep and repoint what is unchanged, stop
	 * what changed or went (its progress is in the database). */
	for (s = sync->srcs; s != NULL; s = next) {
		next = s->next;
		c = conf_source_find(conf, s->conf->name);
		if (c != NULL && conf_source_same(c, s->conf)) {
			/* Everything that points into the old file now
			 * points into the new one: the caller frees the old. */
			s->conf = c;
			s->pass.rec.source = c->name;
			s->pass.rec.kind = c->type->name;
			s->next = NULL;
			if (s->state == SRC_ORPHANED) {
				/* still configured under the name whose rows
				 * went: it starts over, as a new source */
				s->state = SRC_NEW;
				src_arm(s, 0);
			}
			*ktail = s;
			ktail = &s->next;
			continue;
		}
		log_info("source '%s': %s", s->conf->name,
		    c != NULL ? "configuration changed, restarting it" :
				"removed");
		src_stop(s);
		src_free(s);
	}
	*ktail = added;
	sync->srcs = kept;
	for (s = added; s != NULL; s = s->next)
		src_arm(s, 0);
	sync->metrics_file = conf->metrics_file;
	sync->metrics_errno = 0;
	sync_write_metrics(sync);
	return 0;
}

/* The metrics file (metrics.h), when one is configured. */
static void
sync_write_metrics(struct sync *sync)
{
	struct metrics_source *m;
	const struct src *s;
	size_t n = 0, i = 0;
	double now = ev_time();

	if (sync->metrics_file == NULL)
		return;
	for (s = sync->srcs; s != NULL; s = s->next)
		n++;
	m = calloc(n ? n : 1, sizeof(*m));
	if (m == NULL) {
		log_error("out of memory for the metrics");
		return;
	}
	for (s = sync->srcs; s != NULL; s = s->next, i++)
		stats_metrics(&s->m, &m[i], s->conf, &s->st,
		    src_in_pass(s) ? &s->pass.rec.counts : NULL,
		    store_live_runs(sync->store, s->conf->name), now);
	if (metrics_write(sync->metrics_file, m, n) == -1) {
		if (errno != sync->metrics_errno)
			log_warn("cannot write metrics_file '%s'",
			    sync->metrics_file);
		sync->metrics_errno = errno;
	} else {
		sync->metrics_errno = 0;
	}
	free(m);
}

void
sync_stop(struct sync *sync)
{
	struct src *s;

	(void)sync_batch_commit(sync, 1);
	for (s = sync->srcs; s != NULL; s = s->next)
		src_stop(s);
}

void
sync_free(struct sync *sync)
{
	struct src *s, *n;

	if (sync == NULL)
		return;
	(void)sync_batch_commit(sync, 1);
	for (s = sync->srcs; s != NULL; s = n) {
		n = s->next;
		src_stop(s);
		src_free(s);
	}
	ev_timer_stop(sync->loop, &sync->batch_timer);
	free(sync);
}

int
sync_failed(const struct sync *sync)
{
	return sync->failed;
}

void
sync_status(const struct sync *sync, char *buf, size_t len)
{
	const struct src *s;
	size_t off = 0;
	int n;

	buf[0] = '\0';
	for (s = sync->srcs; s != NULL && off < len; s = s->next) {
		n = stats_status(&s->m, buf + off, len - off, off ? "; " : "",
		    s->conf->name, src_in_pass(s) ? (int)s->pass.walk.mode : -1,
		    &s->st);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

struct writer *
sync_writer(struct sync *sync)
{
	return sync->writer;
}
