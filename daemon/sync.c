/* SPDX-License-Identifier: ISC */
/*
 * sync.c: walk each source's listing newest first and mirror it; this
 * file is a source's lifecycle (sync_int.h lists the other parts).
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
 * in walk.c, without libev, curl or SQLite; sync_page.c does what it
 * decides.  The states of a source and their transitions: sync_int.h.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ev.h>

#include "metrics.h"
#include "sync_int.h"

/* Parsing and writing pages, committing a batch: work that blocks the
 * loop since http_mono_now() was t0.  Over half a second, the requests' idle
 * clocks must not count it as upstream's silence (and libev's time is
 * refreshed for the timers armed next).  A slow commit inside a slow pump
 * is taken off twice: a stall is then cut that much later, never a live
 * request early. */
void
sync_was_busy(struct sync *sync, double t0)
{
	double busy = http_mono_now() - t0;

	if (busy > 0.5)
		http_loop_was_busy(sync->http, busy);
}

void
wall_ts(char *out, double offset)
{
	time_format(ev_time() + offset, out);
}

void
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
int
src_in_pass(const struct src *s)
{
	return s->state == SRC_PASS || s->state == SRC_RECHECK ||
	    s->state == SRC_WAITING;
}

/* The pass may ask for pages and handle their answers. */
int
src_may_ask(const struct src *s)
{
	return s->state == SRC_PASS || s->state == SRC_RECHECK;
}

/*
 * Wait delay seconds, asking for nothing meanwhile; then the page at the
 * cursor (a hole: its answer was taken) is asked for again.  Answers kept
 * stay; requests in flight go on unless cancel (a 429: they become holes,
 * asked for again after the wait).  The source's pages in the open batch
 * are committed first: a wait holds nothing uncommitted.
 */
void
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
void
src_identity(const struct conf_source *c, char *buf, size_t len)
{
	if (c->type->needs_org_id)
		snprintf(buf, len, "%s %s org %lld", c->type->name, c->base_url,
		    (long long)c->org_id);
	else
		snprintf(buf, len, "%s %s", c->type->name, c->base_url);
}

void
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

void
src_retry(struct src *s, const char *reason)
{
	double delay;

	if (s->pass.at.retries >= s->conf->max_retries) {
		log_error(
		    "source '%s': giving up on this pass after %d retries: %s",
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
	double delay;

	if (s->wpart.again) {
		/* no fault (STORE_AGAIN): again at once, nothing counted */
		log_info(
		    "source '%s': %lld pages fetched again from offset %lld (their batch was rolled back: not a fault)",
		    s->conf->name, (long long)s->wpart.lost_pages,
		    (long long)s->st.walk_offset);
		pipe_drop(&s->pipe, 0);
		s->state = SRC_WAITING;
		src_arm(s, 0);
		return;
	}
	delay = giving_up ? 0 : backoff_next(&s->backoff);
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
enum write_rc
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
void
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
void
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

/*
 * Hold the source before a pass: of the daemons sharing one database, one
 * walks it.  1 when this one does; else it stands by (another does) or
 * waits out the database's failure, asking again in SRC_CLAIM_INTERVAL
 * seconds (--once: the source is done, failed).
 */
static int
src_claim(struct src *s)
{
	const char *name = s->conf->name;
	char holder[STORE_HOLDER_LEN];
	int rc;

	rc = writer_claim(s->sync->writer, name, holder, sizeof(holder));
	if (rc == 1) {
		if (s->state == SRC_STANDBY) {
			log_info(
			    "source '%s': taking it over (%s let go of it)",
			    name, s->m.holder);
			s->state = SRC_NEW; /* the cursor the other left */
		}
		stats_held(&s->m);
		return 1;
	}
	if (rc == 0 &&
	    (s->state != SRC_STANDBY || s->sync->once ||
		strcmp(holder, s->m.holder) != 0))
		log_info("source '%s': walked by %s; standing by%s", name,
		    holder, s->sync->once ? " (--once does not wait)" : "");
	else if (rc == -1)
		log_warnx(
		    "source '%s': cannot claim it (database): asking again in %.0f s",
		    name, SRC_CLAIM_INTERVAL);
	if (rc == 0) {
		s->state = SRC_STANDBY;
		stats_standby(&s->m, holder);
	}
	if (s->sync->once) {
		s->state = SRC_FINISHED;
		src_finished(s, 0);
	} else {
		src_arm(s, SRC_CLAIM_INTERVAL);
	}
	return 0;
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
	if (!src_in_pass(s) && src_claim(s) != 1)
		return;
	if (!src_in_pass(s) && src_pass_begin(s) == -1) {
		src_pass_end(s, 0, "cannot begin a pass (database)",
		    s->conf->poll_interval);
		return;
	}
	if (s->state == SRC_WAITING) /* over: on with the pass's phase */
		s->state = s->pass.rc.ngroups > 0 ? SRC_RECHECK : SRC_PASS;
	src_pump(s);
}

struct src *
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
void
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

void
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

/* The metrics file (metrics.h), when one is configured. */
void
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
