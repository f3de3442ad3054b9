/*
 * sync.c: walk each source's listing newest first and mirror it.
 *
 * One struct src per configured source, one ev_timer each: it fires for
 * the next poll, for the limiter's next slot and for retry waits.  A pass
 * is one walk (or the rest of an interrupted one):
 *
 *   pass_begin -> fetch -> (limiter) -> http GET -> on_response ->
 *   adapter parse -> handle_page -> store_page (rows + cursor, one
 *   transaction) -> fetch the next page, or pass_end and sleep.
 *
 * Offset drift.  Listings are paged by offset, so runs created or deleted
 * upstream during a walk shift what a page holds.  After the first page we
 * know the last run we took (the anchor).  Where the API takes any offset
 * (Codegen's skip) each page starts one item early, so the anchor must be
 * its first item; where it takes page numbers only (Cotool) we watch the
 * reported total.  When the anchor is not where it should be and the page
 * starts older than it, runs may have slid past unseen: step back one page
 * and look again.  Insertions only cause duplicates, which the upsert
 * absorbs.
 *
 * Order.  Backfills and full resyncs walk by creation time, which never
 * changes; incremental polls walk Cotool by update time, so that updated
 * old runs come first.  The high-water mark is the newest update time (for
 * Codegen: creation time) on the first page of the last complete walk:
 * anything that changes after that request gets a newer one.  A walk by
 * creation also counts update times older than its start (less a margin
 * for clock skew): the walk itself saw those changes.
 *
 * Stop rules.  A backfill or full resync walks to the end.  An incremental
 * walk stops after the page that holds a run older than its stop key: the
 * high-water mark of the last complete walk, and for Codegen (which can only
 * be walked by creation) also the oldest unfinished run younger than
 * refresh_window, which must be seen again.
 */
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
#include "source.h"
#include "store.h"
#include "sync.h"

#define MAX_STEP_BACKS	8	/* per pass, then go on and warn */
#define MAX_429_RETRIES	30	/* per page, then the pass fails */
#define MAX_BUSY_WAITS	60	/* database locked by another, per page */
#define MAX_RETRY_AFTER	3600.0	/* seconds we accept from Retry-After */
#define HW_CLOCK_MARGIN	300.0	/* seconds of server clock skew allowed */
#define WAL_CHECKPOINT_BYTES (4LL * 1024 * 1024)

struct sync;

struct src {
	struct sync *sync;
	const struct conf_source *conf;
	const struct source_type *type;
	char	 identity[2200];
	struct limit limit;
	struct backoff backoff;
	ev_timer timer;
	struct http_request *req;

	struct sync_state st;		/* as last committed */
	int	 loaded;
	int	 in_pass;
	enum walk_mode mode;
	enum walk_order order;
	int64_t	 pass_id;
	struct pass_counts counts;
	char	 stop_key[TS_LEN];
	char	 hw_cutoff[TS_LEN];	/* see src_pass_begin */
	int64_t	 req_offset;
	int64_t	 pass_pages;
	int64_t	 max_pages;
	int	 retries;
	int	 retries_429;
	int	 busy_waits;
	int	 step_backs;
	int	 page_limit;		/* items a page really holds */
	int	 finished;		/* once mode: pass done */
	int	 failed;
	char	 url[2400];
	char	 state_text[160];
	struct src *next;
};

struct sync {
	struct ev_loop *loop;
	struct store *store;
	struct http *http;
	int	 once;
	int	 failed;
	struct src *srcs;
};

static void src_fetch(struct src *s);
static void src_pass_end(struct src *s, int ok, const char *error,
    double next_delay);

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
wall_ts(char *out, double offset)
{
	time_format(ev_time() + offset, out);
}

static void
src_arm(struct src *s, double delay)
{
	ev_timer_stop(s->sync->loop, &s->timer);
	ev_timer_set(&s->timer, delay > 0 ? delay : 0, 0.);
	ev_timer_start(s->sync->loop, &s->timer);
}

/* The walk key of a run: what the listing is ordered by. */
static const char *
run_key(const struct src *s, const struct run *r)
{
	return s->order == ORDER_UPDATED ? r->updated_at : r->created_at;
}

static enum walk_order
incremental_order(const struct src *s)
{
	return s->type->can_order_updated ? ORDER_UPDATED : ORDER_CREATED;
}

/* The key the high-water mark is kept in: the incremental walk's. */
static const char *
hw_key(const struct src *s, const struct run *r)
{
	return s->type->can_order_updated ? r->updated_at : r->created_at;
}

static void
src_identity(const struct conf_source *c, char *buf, size_t len)
{
	if (c->kind == SOURCE_CODEGEN)
		snprintf(buf, len, "%s %s org %lld", conf_kind_name(c->kind),
		    c->base_url, (long long)c->org_id);
	else
		snprintf(buf, len, "%s %s", conf_kind_name(c->kind),
		    c->base_url);
}

/* Begin a pass: resume the walk under way or start the one that is due. */
static int
src_pass_begin(struct src *s)
{
	const struct conf_source *c = s->conf;
	char now[TS_LEN], since[TS_LEN], floor[TS_LEN];
	enum walk_mode mode;
	double started;

	wall_ts(now, 0);
	if (!s->loaded) {
		if (store_state_load(s->sync->store, c->name,
		    conf_kind_name(c->kind), s->identity, &s->st) == -1)
			return -1;
		s->loaded = 1;
	}
	if (s->st.walk_mode != WALK_NONE) {
		mode = s->st.walk_mode;
		log_info("source '%s': resuming %s walk at offset %lld",
		    c->name, walk_mode_name(mode),
		    (long long)s->st.walk_offset);
	} else {
		if (!s->st.backfill_done)
			mode = WALK_BACKFILL;
		else {
			mode = WALK_INCREMENTAL;
			if (c->full_resync_interval > 0) {
				wall_ts(since, -c->full_resync_interval);
				if (s->st.last_full_resync_at[0] == '\0' ||
				    strcmp(s->st.last_full_resync_at,
				    since) <= 0)
					mode = WALK_FULL;
			}
		}
		s->st.walk_mode = mode;
		s->st.walk_offset = 0;
		s->st.walk_anchor_id[0] = '\0';
		s->st.walk_anchor_key[0] = '\0';
		s->st.walk_total = -1;
		s->st.walk_high_water[0] = '\0';
		snprintf(s->st.walk_started_at, sizeof(s->st.walk_started_at),
		    "%s", now);
		s->st.walk_pages = 0;
		s->st.walk_degraded = 0;
	}
	s->mode = mode;
	/* Long walks go by creation time, which never changes: in update
	 * order a run updated during the walk jumps to the head, and the run
	 * behind the page boundary slides past us unseen. */
	s->order = mode == WALK_INCREMENTAL ? incremental_order(s) :
	    ORDER_CREATED;
	s->stop_key[0] = '\0';
	if (mode == WALK_INCREMENTAL) {
		snprintf(s->stop_key, sizeof(s->stop_key), "%s",
		    s->st.high_water);
		if (c->kind == SOURCE_CODEGEN) {
			wall_ts(since, -c->refresh_window);
			if (store_refresh_floor(s->sync->store, c->name, since,
			    floor) == -1)
				return -1;
			if (floor[0] != '\0' && (s->stop_key[0] == '\0' ||
			    strcmp(floor, s->stop_key) < 0))
				memcpy(s->stop_key, floor, TS_LEN);
		}
	}
	/* In a walk by creation, every change older than the walk's start
	 * is seen by the walk itself, so update times before then (less a
	 * margin for the server's clock) may raise the high-water mark too:
	 * the first poll after a backfill then stays one page. */
	s->hw_cutoff[0] = '\0';
	if (s->order == ORDER_CREATED && s->type->can_order_updated &&
	    time_to_unix(s->st.walk_started_at, &started) == 0)
		time_format(started - HW_CLOCK_MARGIN, s->hw_cutoff);
	memset(&s->counts, 0, sizeof(s->counts));
	if (store_pass_begin(s->sync->store, c->name, mode, now,
	    &s->pass_id) == -1)
		return -1;
	s->in_pass = 1;
	s->pass_pages = 0;
	s->max_pages = INT64_MAX;
	s->retries = 0;
	s->retries_429 = 0;
	s->busy_waits = 0;
	s->step_backs = 0;
	s->page_limit = c->page_size;
	log_debug("source '%s': %s pass begins (stop key %s)", c->name,
	    walk_mode_name(mode), s->stop_key[0] ? s->stop_key : "none");
	return 0;
}

static void
src_retry(struct src *s, const char *reason)
{
	double delay;

	if (s->retries >= s->conf->max_retries) {
		log_error("source '%s': giving up on this pass after %d "
		    "retries: %s", s->conf->name, s->retries, reason);
		src_pass_end(s, 0, reason, s->conf->poll_interval);
		return;
	}
	s->retries++;
	s->counts.retries++;
	delay = backoff_next(&s->backoff);
	log_warnx("source '%s': %s; retry %d of %d in %.1fs", s->conf->name,
	    reason, s->retries, s->conf->max_retries, delay);
	src_arm(s, delay);
}

/* Index of the run whose id is id, or -1. */
static long
find_run(const struct page *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->nruns; i++)
		if (strcmp(p->runs[i].external_id, id) == 0)
			return (long)i;
	return -1;
}

/*
 * Decide whether the page leaves a possible gap behind the anchor (see
 * the top of this file).  Returns 1 to step back.
 */
static int
src_drift(const struct src *s, const struct page *p, int64_t off)
{
	const char *key;

	if (s->st.walk_anchor_id[0] == '\0' || p->nruns == 0)
		return 0;
	if (find_run(p, s->st.walk_anchor_id) >= 0)
		return 0;	/* we see what follows the anchor */
	/* The anchor is gone from where it was.  If the page starts with a
	 * run newer than it, the boundary is inside the page: no gap. */
	key = run_key(s, &p->runs[0]);
	if (key[0] == '\0' || s->st.walk_anchor_key[0] == '\0' ||
	    strcmp(key, s->st.walk_anchor_key) > 0)
		return 0;
	if (s->type->any_offset)
		return off < s->st.walk_offset;
	return p->total != s->st.walk_total;
}

static void
src_handle_page(struct src *s, struct page *p, int64_t off)
{
	const struct conf_source *c = s->conf;
	struct sync_state next = s->st;
	char now[TS_LEN];
	const char *key;
	int64_t size = s->page_limit, npos, pages_for_total, deleted;
	const char *deleted_before;
	double delay;
	size_t i;
	int step_back = 0, complete = 0, reached = 0, over = 0;

	wall_ts(now, 0);
	s->pass_pages++;
	if (s->max_pages == INT64_MAX) {
		/* A server that never stops paging cannot hold us: twice the
		 * pages the first total asks for, and some. */
		pages_for_total = (p->total > 0 ? p->total : 0) / size + 1;
		s->max_pages = 2 * pages_for_total + 10;
	}
	if (src_drift(s, p, off)) {
		if (s->step_backs < MAX_STEP_BACKS) {
			step_back = 1;
			s->step_backs++;
		} else if (!next.walk_degraded) {
			/* Kept with the cursor: a resumed walk must still
			 * know it cannot tell what is gone upstream. */
			next.walk_degraded = 1;
			log_warnx("source '%s': upstream keeps changing under "
			    "the walk; going on without verifying the page "
			    "boundary (the next full resync fills any gap)",
			    c->name);
		}
	}
	if (step_back) {
		npos = next.walk_offset - size;
		if (npos < 0)
			npos = 0;
		log_info("source '%s': runs moved upstream during the walk "
		    "(total %lld -> %lld); stepping back to offset %lld",
		    c->name, (long long)next.walk_total, (long long)p->total,
		    (long long)npos);
		next.walk_offset = npos;
		/* the anchor stays: we are still looking for it */
	} else {
		npos = off + (int64_t)p->nitems;
		if (next.walk_anchor_id[0] == '\0' && next.walk_offset == 0) {
			/* First page of the walk: every change after this
			 * request gets a newer key than any seen here, so
			 * the newest one is the walk's high-water mark. */
			for (i = 0; i < p->nruns; i++) {
				key = hw_key(s, &p->runs[i]);
				if (strcmp(key, next.walk_high_water) > 0)
					memcpy(next.walk_high_water, key,
					    TS_LEN);
			}
		}
		for (i = 0; s->hw_cutoff[0] != '\0' && i < p->nruns; i++) {
			key = hw_key(s, &p->runs[i]);
			if (strcmp(key, s->hw_cutoff) <= 0 &&
			    strcmp(key, next.walk_high_water) > 0)
				memcpy(next.walk_high_water, key, TS_LEN);
		}
		if (p->nruns > 0) {
			const struct run *last = &p->runs[p->nruns - 1];

			snprintf(next.walk_anchor_id,
			    sizeof(next.walk_anchor_id), "%s",
			    last->external_id);
			memcpy(next.walk_anchor_key, run_key(s, last), TS_LEN);
		}
		next.walk_offset = npos;
		/* The end: an empty page or the reported total reached. */
		complete = p->nitems == 0 || npos >= p->total;
		if (!complete && !s->type->any_offset &&
		    (int64_t)p->nitems < size) {
			/* A short page that is not the last: the server caps
			 * the page size.  Page numbers must follow its size,
			 * or the next one would round back onto this page. */
			log_info("source '%s': the server returns at most %zu "
			    "runs a page; following it", c->name, p->nitems);
			s->page_limit = (int)p->nitems;
			s->max_pages = s->pass_pages + 2 * ((p->total - npos) /
			    s->page_limit + 1) + 10;
		}
		if (s->mode == WALK_INCREMENTAL && s->stop_key[0] != '\0') {
			for (i = 0; i < p->nruns && !reached; i++) {
				key = run_key(s, &p->runs[i]);
				reached = key[0] != '\0' &&
				    strcmp(key, s->stop_key) < 0;
			}
		}
	}
	next.walk_total = p->total;
	next.walk_pages++;
	if (!complete && !reached && s->pass_pages >= s->max_pages)
		over = 1;
	if (complete || reached) {
		if (strcmp(next.walk_high_water, next.high_water) > 0)
			memcpy(next.high_water, next.walk_high_water, TS_LEN);
		if (s->mode == WALK_BACKFILL)
			next.backfill_done = 1;
		if (s->mode != WALK_INCREMENTAL)
			memcpy(next.last_full_resync_at, next.walk_started_at,
			    TS_LEN);
		memcpy(next.last_success_at, now, TS_LEN);
		next.walk_mode = WALK_NONE;
	}
	/* A complete full walk that verified every boundary has seen every
	 * run upstream holds: the rest is gone. */
	deleted_before = s->mode == WALK_FULL && complete &&
	    !next.walk_degraded ? next.walk_started_at : NULL;
	deleted = s->counts.runs_deleted;
	if (store_page(s->sync->store, c->name, s->type->name, p,
	    s->mode == WALK_FULL, now, deleted_before, &next, s->pass_id,
	    &s->counts) == -1) {
		/* Nothing of the page was written: fetch it again.  Another
		 * process's lock is waited out (off the event loop) without
		 * spending the retries meant for upstream failures. */
		if (store_last_busy(s->sync->store) &&
		    s->busy_waits < MAX_BUSY_WAITS) {
			s->busy_waits++;
			s->counts.retries++;	/* the page is fetched again */
			delay = backoff_next(&s->backoff);
			log_warnx("source '%s': the database is locked by "
			    "another process; fetching and writing the page "
			    "again in %.1fs", c->name, delay);
			src_arm(s, delay);
			return;
		}
		src_retry(s, "cannot write the page to the database");
		return;
	}
	s->busy_waits = 0;
	s->st = next;
	s->retries = 0;
	s->retries_429 = 0;
	backoff_reset(&s->backoff);
	log_debug("source '%s': page at offset %lld: %zu items, total %lld",
	    c->name, (long long)off, p->nitems, (long long)p->total);
	if (complete || reached) {
		if (s->counts.runs_deleted > deleted)
			log_info("source '%s': %lld runs no longer upstream",
			    c->name, (long long)(s->counts.runs_deleted -
			    deleted));
		src_pass_end(s, 1, NULL, c->poll_interval);
		return;
	}
	if (over) {
		char msg[160];

		snprintf(msg, sizeof(msg), "upstream is still paging after "
		    "%lld pages (total %lld): stopping this pass",
		    (long long)s->pass_pages, (long long)p->total);
		log_error("source '%s': %s", c->name, msg);
		src_pass_end(s, 0, msg, c->poll_interval);
		return;
	}
	src_fetch(s);
}

/* http_done_cb of a page request. */
static void
src_response_cb(void *arg, const struct http_response *resp)
{
	struct src *s = arg;
	const struct conf_source *c = s->conf;
	struct page page;
	char reason[4096], err[200], head[600];
	double delay;

	s->req = NULL;
	s->counts.requests++;
	if (resp->status == 0 || resp->too_large) {
		snprintf(reason, sizeof(reason), "request to %s failed: %s",
		    s->url, resp->error != NULL ? resp->error : "no response");
		src_retry(s, reason);
		return;
	}
	if (resp->status == 429) {
		s->counts.http_429++;
		if (++s->retries_429 > MAX_429_RETRIES) {
			src_pass_end(s, 0, "HTTP 429: rate limited too long",
			    c->poll_interval);
			return;
		}
		if (resp->retry_after >= 0)
			delay = fmin(resp->retry_after, MAX_RETRY_AFTER);
		else
			delay = backoff_next(&s->backoff);
		log_warnx("source '%s': HTTP 429 from %s; waiting %.1fs%s",
		    c->name, s->url, delay, resp->retry_after >= 0 ?
		    " as Retry-After asks" : "");
		src_arm(s, delay);
		return;
	}
	if (resp->status == 401 || resp->status == 403) {
		snprintf(reason, sizeof(reason), "HTTP %ld: the %s refused the "
		    "token from %s", resp->status, conf_kind_name(c->kind),
		    c->token_origin);
		snprintf(head, sizeof(head), "retrying in %.0fs",
		    c->auth_backoff);
		log_error("source '%s': HTTP %ld from %s: %s; check that the "
		    "token is valid%s; %s", c->name, resp->status, s->url,
		    resp->status == 401 ? "authentication failed" :
		    "access denied", c->kind == SOURCE_CODEGEN ?
		    " and may read org_id" : " and has the needed permissions",
		    s->sync->once ? "this pass fails" : head);
		src_pass_end(s, 0, reason, c->auth_backoff);
		return;
	}
	if (resp->status >= 500 || resp->status == 408) {
		log_excerpt(resp->body, resp->len, 120, head, sizeof(head));
		snprintf(reason, sizeof(reason), "HTTP %ld from %s: %s",
		    resp->status, s->url, head);
		src_retry(s, reason);
		return;
	}
	if (resp->status < 200 || resp->status > 299) {
		log_excerpt(resp->body, resp->len, 120, head, sizeof(head));
		snprintf(reason, sizeof(reason), "HTTP %ld from %s: %s",
		    resp->status, s->url, head);
		log_error("source '%s': %s", c->name, reason);
		src_pass_end(s, 0, reason, c->poll_interval);
		return;
	}
	memset(&page, 0, sizeof(page));
	if (s->type->parse_page(resp->body, resp->len, &page, err,
	    sizeof(err)) == -1) {
		log_excerpt(resp->body, resp->len, 120, head, sizeof(head));
		snprintf(reason, sizeof(reason), "bad page from %s (HTTP %ld, "
		    "%zu bytes, %s): %s; body starts: %s", s->url,
		    resp->status, resp->len, resp->content_type != NULL ?
		    resp->content_type : "no content type", err, head);
		page_free(&page);
		src_retry(s, reason);
		return;
	}
	src_handle_page(s, &page, s->req_offset);
	page_free(&page);
}

/* Ask for the page at the cursor, as soon as the limiter allows. */
static void
src_fetch(struct src *s)
{
	const struct conf_source *c = s->conf;
	struct http_options opt;
	int64_t pos = s->st.walk_offset, off;
	double delay, now = mono_now();

	if (s->type->any_offset)
		off = pos > 0 ? pos - 1 : 0;
	else
		off = pos - pos % s->page_limit;
	delay = limit_delay(&s->limit, now);
	if (delay > 0) {
		src_arm(s, delay);
		return;
	}
	if (s->type->page_url(c, off, s->page_limit, s->order, s->url,
	    sizeof(s->url)) == -1) {
		src_pass_end(s, 0, "page URL too long", c->poll_interval);
		return;
	}
	opt.token = c->token;
	opt.timeout = c->request_timeout;
	opt.max_body = SOURCE_MAX_BODY;
	limit_record(&s->limit, now);
	s->req_offset = off;
	s->req = http_get(s->sync->http, s->url, &opt, src_response_cb, s);
	if (s->req == NULL)
		src_retry(s, "cannot start a request");
	else
		log_debug("source '%s': GET %s", c->name, s->url);
}

static void
src_pass_end(struct src *s, int ok, const char *error, double next_delay)
{
	const struct conf_source *c = s->conf;
	struct sync *sync = s->sync;
	char now[TS_LEN], when[TS_LEN], *safe = NULL;
	struct src *o;

	wall_ts(now, 0);
	/* The error goes to the database and STATUS=: redact it there too,
	 * whatever built it (upstream text enters through log_excerpt). */
	if (error != NULL && (safe = strdup(error)) != NULL) {
		log_redact(safe);
		error = safe;
	} else if (error != NULL)
		error = "out of memory";
	if (s->in_pass) {
		if (store_pass_update(sync->store, c->name, &s->st, s->pass_id,
		    &s->counts, ok ? "succeeded" : "failed", error, now) == -1)
			ok = 0;
		s->in_pass = 0;
		/* A reader that held the WAL open through the pass may have
		 * let go: shrink a grown WAL now rather than at the next tick.
		 * Not after every idle poll: a checkpoint costs fsyncs. */
		store_checkpoint_over(sync->store, WAL_CHECKPOINT_BYTES);
	}
	if (ok) {
		log_info("source '%s': %s pass done: %lld requests, %lld "
		    "pages, %lld new, %lld changed, %lld rejected",
		    c->name, walk_mode_name(s->mode),
		    (long long)s->counts.requests, (long long)s->counts.pages,
		    (long long)s->counts.runs_new,
		    (long long)s->counts.runs_changed,
		    (long long)s->counts.runs_rejected);
		snprintf(s->state_text, sizeof(s->state_text), "idle, %lld "
		    "runs new, %lld changed, last sync %.8s", (long long)
		    s->counts.runs_new, (long long)s->counts.runs_changed,
		    now + 11);
	} else {
		snprintf(s->state_text, sizeof(s->state_text), "failed at "
		    "%.8s: %.100s", now + 11, error != NULL ? error : "?");
	}
	free(safe);
	if (sync->once) {
		s->finished = 1;
		s->failed = !ok;
		if (!ok)
			sync->failed = 1;
		for (o = sync->srcs; o != NULL; o = o->next)
			if (!o->finished)
				return;
		ev_break(sync->loop, EVBREAK_ALL);
		return;
	}
	wall_ts(when, next_delay);
	(void)store_set_next_poll(sync->store, c->name, when);
	src_arm(s, next_delay);
}

/* ev_timer of a source: the next poll, a limiter slot or a retry. */
static void
src_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct src *s = w->data;

	(void)loop;
	(void)revents;
	if (s->req != NULL)
		return;
	if (!s->in_pass && src_pass_begin(s) == -1) {
		s->in_pass = 0;
		src_pass_end(s, 0, "cannot begin a pass (database)",
		    s->conf->poll_interval);
		return;
	}
	src_fetch(s);
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
	s->type = source_type_for(c->kind);
	src_identity(c, s->identity, sizeof(s->identity));
	if (limit_init(&s->limit, c->rate_requests, c->rate_window) == -1) {
		log_error("out of memory");
		free(s);
		return NULL;
	}
	s->backoff.initial = c->backoff_initial;
	s->backoff.max = c->backoff_max;
	ev_init(&s->timer, src_timer_cb);
	s->timer.data = s;
	snprintf(s->state_text, sizeof(s->state_text), "starting");
	return s;
}

/* Stop a source; its cursor is already in the database. */
static void
src_stop(struct src *s)
{
	char now[TS_LEN];

	ev_timer_stop(s->sync->loop, &s->timer);
	if (s->req != NULL) {
		http_cancel(s->req);
		s->req = NULL;
	}
	if (s->in_pass) {
		wall_ts(now, 0);
		if (store_pass_update(s->sync->store, s->conf->name, &s->st,
		    s->pass_id, &s->counts, "interrupted", NULL, now) == -1)
			log_warnx("source '%s': the interrupted pass was not "
			    "recorded", s->conf->name);
		s->in_pass = 0;
	}
}

static void
src_free(struct src *s)
{
	limit_release(&s->limit);
	free(s);
}

static int
same_conf(const struct conf_source *a, const struct conf_source *b)
{
	return a->kind == b->kind && strcmp(a->base_url, b->base_url) == 0 &&
	    a->org_id == b->org_id && strcmp(a->token, b->token) == 0 &&
	    a->poll_interval == b->poll_interval &&
	    a->page_size == b->page_size &&
	    a->rate_requests == b->rate_requests &&
	    a->rate_window == b->rate_window &&
	    a->refresh_window == b->refresh_window &&
	    a->full_resync_interval == b->full_resync_interval &&
	    a->backoff_initial == b->backoff_initial &&
	    a->backoff_max == b->backoff_max &&
	    a->max_retries == b->max_retries &&
	    a->auth_backoff == b->auth_backoff &&
	    a->request_timeout == b->request_timeout;
}

struct sync *
sync_new(struct ev_loop *loop, struct store *store, struct http *http,
    int once)
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
	return sync;
}

int
sync_configure(struct sync *sync, const struct conf *conf)
{
	struct src **pp, *s, *added = NULL, **tail;
	const struct conf_source *c;
	size_t i;
	int found;

	/* Keep, repoint or drop what runs now. */
	pp = &sync->srcs;
	while ((s = *pp) != NULL) {
		c = NULL;
		for (i = 0; i < conf->nsources; i++)
			if (strcmp(conf->sources[i].name, s->conf->name) == 0)
				c = &conf->sources[i];
		if (c != NULL && same_conf(c, s->conf)) {
			s->conf = c;
			pp = &s->next;
			continue;
		}
		log_info("source '%s': %s", s->conf->name, c != NULL ?
		    "configuration changed, restarting it" : "removed");
		src_stop(s);
		*pp = s->next;
		src_free(s);
	}
	/* Start what is new. */
	tail = &added;
	for (i = 0; i < conf->nsources; i++) {
		c = &conf->sources[i];
		found = 0;
		for (s = sync->srcs; s != NULL; s = s->next)
			if (s->conf == c)
				found = 1;
		if (found)
			continue;
		s = src_new(sync, c);
		if (s == NULL)
			return -1;
		*tail = s;
		tail = &s->next;
	}
	for (s = added; s != NULL; s = s->next)
		src_arm(s, 0);
	if (added != NULL) {
		for (pp = &sync->srcs; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = added;
	}
	return 0;
}

void
sync_stop(struct sync *sync)
{
	struct src *s;

	for (s = sync->srcs; s != NULL; s = s->next)
		src_stop(s);
}

void
sync_free(struct sync *sync)
{
	struct src *s, *n;

	if (sync == NULL)
		return;
	for (s = sync->srcs; s != NULL; s = n) {
		n = s->next;
		src_stop(s);
		src_free(s);
	}
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
		if (s->in_pass)
			n = snprintf(buf + off, len - off, "%s%s: %s %lld "
			    "runs", off ? "; " : "", s->conf->name,
			    walk_mode_name(s->mode),
			    (long long)s->st.walk_offset);
		else
			n = snprintf(buf + off, len - off, "%s%s: %s",
			    off ? "; " : "", s->conf->name, s->state_text);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}
