/* SPDX-License-Identifier: ISC */
/*
 * sync_page.c: a page at the cursor of a source's walk.
 *
 * What a page means (drift, order, high-water mark, stop rules) is decided
 * in walk.c; this file asks the mirror what the stop rule needs, writes the
 * page and its cursor through the writer, and says what an operator should
 * know.  After the head of an incremental walk of a listing by creation it
 * plans the re-check of unfinished runs (recheck.c) and handles its pages.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_int.h"

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

/* Which of the unfinished runs unf[0..n) (newest first) are due for a
 * re-check at now (http_mono_now()): unf_due[i], and oldest the oldest due
 * one.  Returns how many are due. */
static int64_t
src_due(struct src *s, double now, const struct store_run_key *unf, int64_t n,
    unsigned char *unf_due, char *oldest)
{
	const struct conf_source *c = s->conf;
	double up_now, last, age, created;
	int64_t i, ndue = 0;

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
			snprintf(oldest, TS_LEN, "%s", unf[i].created_at);
			ndue++;
		}
	}
	return ndue;
}

/* is_due[i] for listing[0..m): unf_due of the same run in unf[0..n)
 * (both lists are in listing order). */
static void
mark_due(const struct store_run_key *listing, int64_t m, unsigned char *is_due,
    const struct store_run_key *unf, const unsigned char *unf_due, int64_t n)
{
	int64_t i, j;

	for (i = 0, j = 0; i < m && j < n; i++) {
		while (j < n &&
		    strcmp(unf[j].created_at, listing[i].created_at) > 0)
			j++;
		if (j < n &&
		    strcmp(unf[j].external_id, listing[i].external_id) == 0)
			is_due[i] = unf_due[j++];
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
	double now = http_mono_now();
	int64_t n, m = 0;
	int rc = -1, oom = 0;

	/* targeted requests need any offset (skip), not page numbers */
	if (c->type->can_order_updated || !c->type->any_offset ||
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
	if (src_due(s, now, unf, n, unf_due, oldest) == 0) {
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
	mark_due(listing, m, is_due, unf, unf_due, n);
	rc = recheck_plan(&s->pass.rc, listing, is_due, (size_t)m,
	    s->pass.walk.page_limit);
	oom = rc < 0;
	if (rc > 0) {
		s->state = SRC_RECHECK;
		log_debug(
		    "source '%s': %zu unfinished runs due for a re-check in %d requests",
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
void
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

/* Say what walk_page() decided that an operator should know. */
static void
src_log_step(const struct src *s, const struct walk_step *step,
    const struct page *p, const struct sync_state *next)
{
	const char *name = s->conf->name;

	if (step->degraded)
		log_warnx(
		    "source '%s': upstream keeps changing under the walk; going on without verifying the page boundary (the next full resync fills any gap)",
		    name);
	if (step->stepped_back)
		log_info(
		    "source '%s': runs moved upstream during the walk (total %lld -> %lld); stepping back to offset %lld",
		    name, (long long)s->st.walk_total, (long long)p->total,
		    (long long)next->walk_offset);
	if (step->page_capped)
		log_info(
		    "source '%s': the server returns at most %zu runs a page; following it",
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
	if (rc == WRITE_UNHELD) {
		/* another daemon may be walking it: claim it again first */
		log_warnx(
		    "source '%s': no longer held by this daemon (its connection to the database was lost): the pass ends, and the source is claimed again",
		    s->conf->name);
		src_pass_end(s, 0,
		    "the claim on the source was lost with the connection to the database",
		    0);
		return;
	}
	if (rc == WRITE_BUSY && s->pass.at.busy_waits < MAX_BUSY_WAITS) {
		s->pass.at.busy_waits++;
		s->pass.rec.counts.retries++; /* the page is fetched again */
		delay = backoff_next(&s->backoff);
		log_warnx(
		    "source '%s': the database is locked by another process; fetching and writing the page again in %.1fs",
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
			log_info(
			    "source '%s': runs moved upstream since the head request; looking for a run due for a re-check at offset %lld",
			    c->name, (long long)noff);
		return;
	}
	if (rc->not_found > 0)
		log_info(
		    "source '%s': %zu of %zu runs due for a re-check are not where the mirror has them (gone or moved upstream): left for the next full resync",
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

/* The walk is done (deleted: the pass's runs_deleted before its last
 * page): the re-check of unfinished runs, if any is due, else the end. */
static void
src_walk_done(struct src *s, int64_t deleted)
{
	const struct conf_source *c = s->conf;

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
		log_info("source '%s': %lld runs no longer upstream", c->name,
		    (long long)(s->pass.rec.counts.runs_deleted - deleted));
	src_pass_end(s, 1, NULL, c->poll_interval);
}

/* Upstream is still paging past the walk's cap: the pass stops. */
static void
src_over_cap(struct src *s, const struct page *p, const struct walk_step *step)
{
	char msg[256];

	if (step->over_pass_cap)
		snprintf(msg, sizeof(msg),
		    "this pass fetched max_pass_pages (%lld) pages and upstream is still paging (total %lld): stopping it; the next pass goes on from here",
		    (long long)s->pass.walk.pages, (long long)p->total);
	else
		snprintf(msg, sizeof(msg),
		    "upstream is still paging after %lld pages (total %lld): stopping this pass",
		    (long long)s->pass.walk.pages, (long long)p->total);
	log_error("source '%s': %s", s->conf->name, msg);
	src_pass_end(s, 0, msg, s->conf->poll_interval);
}

void
src_handle_page(struct src *s, const struct page *p, int64_t off)
{
	const struct conf_source *c = s->conf;
	struct sync_state next;
	struct walk_step step;
	struct walk_ask ask;
	struct walk walk;
	char now[TS_LEN];
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
	if (step.action == WALK_DONE)
		src_walk_done(s, deleted);
	else if (step.action == WALK_OVER_CAP)
		src_over_cap(s, p, &step);
	/* WALK_FETCH: src_pump() goes on */
}
