/* SPDX-License-Identifier: ISC */
/*
 * store_pg_page.c: the PostgreSQL engine writes one page, with the same
 * rules as SQLite's (store_rules.c decides what a run needs): its runs
 * (a run held byte for byte is not rewritten, so an idle poll writes no
 * row of runs, pull_requests or run_pull_requests), their pull requests
 * and child rows, the field problems, the rejects, the marks of a
 * complete full walk, the cursor and the pass's counters, in one
 * transaction (or one savepoint of an open batch).
 *
 * In a few statements and round trips, whatever the page holds: each
 * statement writes a set of the page's runs at once (store_pg_set.c,
 * store_pg_runs.c), and libpq's pipeline mode sends them together.
 * Round trip one opens the transaction and reads what the mirror holds
 * of the page's runs; round trip two sends every write, the cursor and
 * the commit (a third comes between them for the marks of a complete
 * full walk, whose count the counters need).  A run a page lists twice
 * is written as SQLite writes it, the second after the first: the page's
 * runs go in generations, the n-th time an id is listed in the n-th.
 *
 * One round trip for a page that is all new, as a backfill's are: when
 * every run the pass has seen so far was new, the page is sent at once
 * as new runs, its writes behind a gate (PG_GATE) that opens only when
 * the mirror holds none of its runs.  When it holds one, nothing was
 * written (the cursor neither) and the page is written the usual way.
 *
 * A page that changed runs also sends NOTIFY agentsyncd, 'SOURCE'
 * (pg_notify), delivered at the commit, once a transaction (PostgreSQL
 * folds the same payload).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

static const char *const pg_stmt_sql[NPSTMTS] = {
	/* Each run by its key, through runs' unique index whatever the
	 * planner thinks of the tables' sizes (OFFSET 0: not a join). */
	[PS_SEL_RUNS] = "SELECT r.external_id, r.status, r.raw_json, "
			"r.deleted_upstream_at IS NOT NULL FROM "
			"unnest($2::text[]) x(k) CROSS JOIN LATERAL (SELECT "
			"external_id, status, raw_json, deleted_upstream_at "
			"FROM runs WHERE source = $1 AND external_id = x.k "
			"OFFSET 0) r",
	[PS_GATE_OPEN] = "SELECT set_config('agentsyncd.page', 'write', true)",
	/* Open when the mirror holds of the page's runs ($2) just the $5
	 * guessed ($3), each byte for byte as the page lists it ($4) and
	 * not marked gone: then the page's writes are what the usual way
	 * would write. */
	[PS_GATE_FRESH] = "SELECT set_config('agentsyncd.page', CASE WHEN "
			  "(SELECT count(*) FROM unnest($2::text[]) x(k) WHERE "
			  "(SELECT id FROM runs WHERE source = $1 AND "
			  "external_id = x.k) IS NOT NULL) = $5::bigint AND "
			  "(SELECT count(*) FROM unnest($3::text[], "
			  "$4::text[]) y(k, raw) WHERE (SELECT id FROM runs "
			  "WHERE source = $1 AND external_id = y.k AND "
			  "raw_json = y.raw AND deleted_upstream_at IS NULL) "
			  "IS NOT NULL) = $5::bigint THEN 'write' ELSE 'held' "
			  "END, true)",
	/* A sync state gone (renamed or forgotten by another process)
	 * fails the statement (division by zero, SQLSTATE 22012), so that
	 * the page is not committed without its cursor. */
	[PS_SAVE_STATE] = "WITH u AS (UPDATE sync_state SET high_water = $2, "
			  "backfill_done = $3, walk_mode = $4, walk_offset = "
			  "$5, walk_anchor_id = $6, walk_anchor_key = $7, "
			  "walk_total = $8, walk_high_water = $9, "
			  "walk_started_at = $10, walk_pages = $11, "
			  "last_full_resync_at = $12, last_success_at = $13, "
			  "walk_degraded = $14, clock_skew_seconds = $15, "
			  "last_progress_at = coalesce($16, last_progress_at), "
			  "walk_generation = $17 WHERE source = $1 AND "
			  "" PG_GATE " RETURNING 1) SELECT CASE WHEN " PG_GATE
			  " THEN 1 / (SELECT count(*) FROM u) END",
	[PS_SAVE_COUNTS] = "UPDATE sync_runs SET requests = $2, pages = $3, "
			   "runs_seen = $4, runs_new = $5, runs_changed = $6, "
			   "runs_rejected = $7, runs_deleted = $8, http_429 = "
			   "$9, retries = $10, runs_partial = $11, "
			   "upstream_total = coalesce($12, upstream_total) "
			   "WHERE id = $1 AND " PG_GATE,
	[PS_HAS_RUN] = "SELECT 1 FROM runs WHERE source = $1 AND "
		       "external_id = $2 AND deleted_upstream_at IS NULL",
	[PS_MARK_GONE] = "UPDATE runs SET deleted_upstream_at = "
			 "$3::timestamptz WHERE source = $1 AND last_seen_walk "
			 "< $2::bigint AND deleted_upstream_at IS NULL AND "
			 "" PG_GATE,
	[PS_NOTIFY] = "SELECT pg_notify('agentsyncd', $1::text) WHERE " PG_GATE,
};

/* Prepare every statement, which checks them against the schema, in one
 * round trip. */
int
pg_prepare(struct pg_store *store)
{
	char name[32];
	size_t i;

	if (pg_pipe_begin(store) == -1)
		return -1;
	store->pipe_what = "cannot prepare statement";
	for (i = 0; i < NPSTMTS; i++) {
		pg_stmt_name(name, sizeof(name), 'a', i);
		if (pg_pipe_send_prepare(store, name, pg_stmt_sql[i], 0,
			NULL) == -1)
			break;
	}
	if (i < NPSTMTS || pg_prepare_sets(store) == -1 ||
	    pg_prepare_runs(store) == -1) {
		(void)pg_pipe_finish(store);
		return -1;
	}
	return pg_pipe_finish(store);
}

/* The name of fixed statement id. */
static const char *
stmt(enum pg_stmt_id id)
{
	static char names[NPSTMTS][8];

	if (names[id][0] == '\0')
		pg_stmt_name(names[id], sizeof(names[id]), 'a', (size_t)id);
	return names[id];
}

void
pg_params_state(struct pg_params *p, const char *source,
    const struct sync_state *s, const char *page_at)
{
	int walking = s->walk_mode != WALK_NONE;

	pp_reset(p);
	pp_text(p, source);
	pp_ts(p, s->high_water);
	pp_bool(p, 1, s->backfill_done);
	pp_text(p, walking ? walk_mode_name(s->walk_mode) : NULL);
	pp_opt_int(p, walking, s->walk_offset);
	pp_ts(p, walking ? s->walk_anchor_id : NULL);
	pp_ts(p, walking ? s->walk_anchor_key : NULL);
	pp_opt_int(p, walking, s->walk_total);
	pp_ts(p, walking ? s->walk_high_water : NULL);
	pp_ts(p, walking ? s->walk_started_at : NULL);
	pp_opt_int(p, walking, s->walk_pages);
	pp_ts(p, s->last_full_resync_at);
	pp_ts(p, s->last_success_at);
	pp_bool(p, 1, walking && s->walk_degraded);
	pp_num(p, s->clock_skew);
	pp_text(p, page_at);
	pp_i64(p, s->walk_generation);
}

void
pg_params_counts(struct pg_params *p, int64_t pass_id,
    const struct pass_counts *c)
{
	pp_reset(p);
	pp_i64(p, pass_id);
	pp_i64(p, c->requests);
	pp_i64(p, c->pages);
	pp_i64(p, c->runs_seen);
	pp_i64(p, c->runs_new);
	pp_i64(p, c->runs_changed);
	pp_i64(p, c->runs_rejected);
	pp_i64(p, c->runs_deleted);
	pp_i64(p, c->http_429);
	pp_i64(p, c->retries);
	pp_i64(p, c->runs_partial);
	pp_opt_int(p, c->upstream_total >= 0, c->upstream_total);
}

/* Queue every write of generation gen: the touches, the status changes
 * (before the updates, which they read), the updates, the inserts, the
 * replaced child rows' deletes, then the written runs' pull requests,
 * links, field problems and child rows. */
static int
send_gen(struct pg_store *store, const struct pg_page_ctx *ctx,
    struct plan *plan, int gen)
{
	struct pg_set s;

	if (pg_send_touch(store, ctx, pg_plan_set(plan, gen, W_TOUCH, &s)) ==
		-1 ||
	    pg_send_changes(store, ctx, pg_plan_set(plan, gen, W_CHANGE, &s)) ==
		-1 ||
	    pg_send_run_rows(store, ctx, pg_plan_set(plan, gen, W_UPDATE, &s),
		0) == -1 ||
	    pg_send_run_rows(store, ctx, pg_plan_set(plan, gen, W_INSERT, &s),
		1) == -1 ||
	    pg_send_deletes(store, ctx, pg_plan_set(plan, gen, W_UPDATE, &s)) ==
		-1)
		return -1;
	pg_plan_set(plan, gen, W_WRITTEN, &s);
	if (pg_send_prs(store, ctx, &s) == -1 ||
	    pg_send_problems(store, ctx, &s) == -1 ||
	    pg_send_child_rows(store, ctx, &s) == -1)
		return -1;
	return 0;
}

/* BEGIN, or the page's savepoint in an open batch. */
static int
send_begin(struct pg_store *store)
{
	return store->batch ? pg_pipe_send_sql(store, "SAVEPOINT page") :
			      pg_pipe_send_sql(store, "BEGIN");
}

/* Queue fixed statement id with p, as text (planned when it runs). */
static int
send_stmt(struct pg_store *store, enum pg_stmt_id id, const struct pg_params *p,
    int64_t *rows)
{
	return pg_pipe_send_text(store, pg_stmt_sql[id], NULL, p, rows);
}

/* ... with its result into *keep (the caller clears it). */
static int
send_stmt_keep(struct pg_store *store, enum pg_stmt_id id,
    const struct pg_params *p, PGresult **keep)
{
	if (send_stmt(store, id, p, NULL) == -1)
		return -1;
	pg_pipe_keep_last(store, keep);
	return 0;
}

/* $1 source, $2 the page's external ids. */
static void
params_ids(struct pg_params *p, struct pg_array *ids, const char *source,
    const struct plan *plan)
{
	size_t i;

	pa_init(ids);
	for (i = 0; i < plan->n; i++)
		pa_text(ids, plan->runs[i].r->external_id);
	pp_reset(p);
	pp_text(p, source);
	pp_array(p, ids);
}

/* Round trip one: the transaction (or savepoint) opened, what the
 * mirror holds of the page's runs read into *res, the gate opened. */
static int
read_held(struct pg_store *store, const char *source, const struct plan *plan,
    PGresult **res)
{
	struct pg_array ids;
	struct pg_params p;
	int rc = -1;

	*res = NULL;
	params_ids(&p, &ids, source, plan);
	if (send_begin(store) == 0 &&
	    send_stmt_keep(store, PS_SEL_RUNS, &p, res) == 0 &&
	    pg_pipe_send_sql(store, pg_stmt_sql[PS_GATE_OPEN]) == 0 &&
	    pg_pipe_sync(store) == 0)
		rc = 0;
	pa_free(&ids);
	return rc;
}

/* The end of a complete full walk: what it did not see is gone upstream
 * (by the walk's number, not by time: see walk.c), counted before the
 * counters are written: a round trip of its own. */
static int
mark_gone(struct pg_store *store, const char *source,
    const struct sync_state *next, const char *now, struct pass_counts *c)
{
	struct pg_params p;
	int64_t n = 0;

	pp_reset(&p);
	pp_text(&p, source);
	pp_i64(&p, next->walk_generation);
	pp_text(&p, now);
	if (send_stmt(store, PS_MARK_GONE, &p, &n) == -1 ||
	    pg_pipe_sync(store) == -1)
		return -1;
	c->runs_deleted += n;
	return 0;
}

/* What a page's write needs besides its runs. */
struct page_job {
	struct store_pass *pass;
	const struct page *page;
	const struct sync_state *next;
	unsigned flags;
	struct pg_page_ctx ctx;
	struct pass_counts c;	 /* the pass's, with the page's */
	const struct run *first; /* the first written with problems */
};

/* Queue the rest of the page after its runs, up to its commit: the
 * rejects, the marks of a complete full walk, the notification, the
 * cursor and the counters. */
static int
send_tail(struct pg_store *store, struct page_job *job, int64_t changed)
{
	const char *source = job->pass->source;
	struct pass_counts *c = &job->c;
	struct pg_params p;

	if (pg_send_rejects(store, &job->ctx, job->pass->kind, job->page) == -1)
		return -1;
	c->runs_rejected += (int64_t)job->page->nrejects;
	c->pages++;
	c->upstream_total = job->page->total;
	if ((job->flags & STORE_MARK_GONE) &&
	    mark_gone(store, source, job->next, job->ctx.now, c) == -1)
		return -1;
	if (c->runs_new + c->runs_changed + c->runs_deleted > changed) {
		pp_reset(&p);
		pp_text(&p, source);
		if (send_stmt(store, PS_NOTIFY, &p, NULL) == -1)
			return -1;
	}
	pg_params_state(&p, source, job->next, job->ctx.now);
	if (send_stmt(store, PS_SAVE_STATE, &p, NULL) == -1)
		return -1;
	pg_params_counts(&p, job->pass->id, c);
	if (send_stmt(store, PS_SAVE_COUNTS, &p, NULL) == -1)
		return -1;
	if (store->batch)
		return pg_pipe_send_sql(store, "RELEASE page");
	return pg_pipe_send_sql(store, "COMMIT");
}

static int64_t
changed_of(const struct pass_counts *c)
{
	return c->runs_new + c->runs_changed + c->runs_deleted;
}

/* The usual way: the read, then every write and the commit. */
static int
write_held(struct pg_store *store, struct page_job *job, struct plan *plan)
{
	int64_t changed = changed_of(&job->pass->counts);
	PGresult *res = NULL;
	int gen, rc = -1;

	job->c = job->pass->counts;
	job->first = NULL;
	if (pg_pipe_begin(store) == -1)
		return -1;
	if (read_held(store, job->pass->source, plan, &res) == 0 &&
	    pg_plan_held(plan, res) == 0) {
		pg_plan_decide(plan, (job->flags & STORE_SEEN) != 0, &job->c,
		    &job->first);
		rc = 0;
		for (gen = 0; rc == 0 && gen < plan->ngen; gen++)
			rc = send_gen(store, &job->ctx, plan, gen);
		if (rc == 0)
			rc = send_tail(store, job, changed);
	}
	if (rc == 0)
		rc = pg_pipe_finish(store);
	PQclear(res);
	return rc;
}

/* Worth a try in one round trip: the source's last page was mostly
 * new, no guess of this pass failed, this page lists no id twice, and it
 * does not end a full walk (whose marks need their own round trip). */
static int
fresh_worth(const struct page_job *job, const struct plan *plan,
    const struct pg_last *last)
{
	return last != NULL && last->fresh && !last->spoiled && plan->n > 0 &&
	    plan->ngen == 1 && !(job->flags & STORE_MARK_GONE);
}

/*
 * The page in one round trip, as guessed, behind the gate: 0 with
 * *written 1 when the mirror held what was guessed, 0 with *written 0
 * when not (nothing written), -1 when it failed.  Sent ahead (ahead), it
 * is not waited for: *written is 1, and pg_settle() reads what it did
 * before the batch commits (a failure, or a guess that did not hold,
 * loses the batch).
 */
static int
write_fresh(struct pg_store *store, struct page_job *job, struct plan *plan,
    const struct pg_last *last, int ahead, int *written)
{
	int64_t changed = changed_of(&job->pass->counts);
	struct pg_array ids, held, raws;
	struct pg_params p;
	int rc = -1;

	*written = 0;
	pa_init(&held);
	pa_init(&raws);
	pg_plan_guess(plan, last, &held, &raws);
	job->c = job->pass->counts;
	job->first = NULL;
	pg_plan_decide(plan, (job->flags & STORE_SEEN) != 0, &job->c,
	    &job->first);
	params_ids(&p, &ids, job->pass->source, plan);
	pp_array(&p, &held);
	pp_array(&p, &raws);
	pp_i64(&p, held.n);
	if ((store->ahead > 0 || pg_pipe_begin(store) == 0) &&
	    send_begin(store) == 0 &&
	    send_stmt(store, PS_GATE_FRESH, &p, NULL) == 0) {
		store->pipe[store->npipe - 1].gate = (int)(last - store->last) +
		    1;
		if (send_gen(store, &job->ctx, plan, 0) == 0 &&
		    send_tail(store, job, changed) == 0)
			rc = 0;
	}
	pa_free(&ids);
	pa_free(&held);
	pa_free(&raws);
	if (rc == 0 && ahead) {
		*written = 1;
		return pg_pipe_send_ahead(store);
	}
	if (rc == 0)
		rc = pg_pipe_finish(store);
	*written = rc == 0 && store->gate_failed == 0;
	pg_gates_clear(store, 0);
	return rc;
}

/* Pages sent ahead, not yet read: how many statements at most. */
#define PG_AHEAD_MAX (PG_PIPE_MAX / 4)

/* Undo a failed page: its transaction, or its savepoint of the batch,
 * or the batch when pages went ahead of it (their results read, their
 * sources not guessed at again this pass). */
static int
page_failed(struct pg_store *store, const char *source)
{
	int ahead = store->ahead > 0;

	store->ahead = 0;
	if (store->ready && PQpipelineStatus(store->conn) != PQ_PIPELINE_OFF)
		(void)pg_pipe_finish(store);
	pg_gates_clear(store, ahead);
	/* with pages ahead, the failure may be another source's */
	if (!ahead && strcmp(store->pipe_sqlstate, "22012") == 0) {
		store->gone = 1;
		log_error(
		    "source '%s' is no longer in the database (renamed or forgotten by another process)",
		    source);
	}
	if (store->batch && (ahead || !store->ready)) {
		/* the connection went, or pages ahead: the batch with it */
		pg_rollback(store);
		pg_last_drop(store);
		store->batch = 0;
		store->batch_lost = 1;
	} else if (store->batch) {
		if (pg_exec(store, "cannot undo the page",
			"ROLLBACK TO SAVEPOINT page") == -1 ||
		    pg_exec(store, "cannot undo the page",
			"RELEASE SAVEPOINT page") == -1) {
			pg_rollback(store);
			store->batch_lost = 1;
		}
	} else {
		pg_rollback(store);
	}
	return pg_rc(store);
}

static void
job_init(struct page_job *job, struct store_pass *pass, const struct page *page,
    const struct sync_state *next, unsigned flags, const char *now)
{
	memset(job, 0, sizeof(*job));
	job->pass = pass;
	job->page = page;
	job->next = next;
	job->flags = flags;
	job->ctx.source = pass->source;
	job->ctx.now = now;
	job->ctx.walk = next->walk_generation;
}

int
pg_page(struct store *base, struct store_pass *pass, const struct page *page,
    const struct sync_state *next, unsigned flags, const char *now)
{
	struct pg_store *store = pg_of(base);
	const struct pg_last *last;
	struct page_job job;
	struct plan plan;
	int a, rc, fresh, ahead, written = 0;

	store->gone = 0;
	store->batch_lost = 0;
	/* not pg_lost_batch(), which reads what went ahead: a page as
	 * guessed may go ahead of it too (below) */
	if (store->lost_pending)
		return pg_lost_batch(store);
	if (pg_ready(store) == -1)
		return STORE_FAILED;
	/* a reconnection forgot the claims: another daemon may walk it */
	if (!pg_holds(store, pass->source))
		return STORE_UNHELD;
	if ((a = columns_adapter(&store->cols, pass->kind)) < 0 &&
	    page->nruns > 0) {
		log_error("database '%s': no adapter of kind '%s'", store->uri,
		    pass->kind);
		return STORE_FAILED;
	}
	if (pg_plan_init(&plan, page) == -1)
		return STORE_FAILED;
	job_init(&job, pass, page, next, flags, now);
	job.ctx.adapter = a < 0 ? 0 : (size_t)a;
	last = pg_last_of(store, pass->source, 0);
	fresh = fresh_worth(&job, &plan, last) && !last->spoiled;
	ahead = fresh && store->batch && store->npipe < PG_AHEAD_MAX;
	/* unless this one goes ahead too, what went ahead is read first, and
	 * a batch lost with it said */
	if (!ahead)
		pg_settle(store);
	if (!ahead && store->lost_pending) {
		pg_plan_free(&plan);
		return pg_lost_batch(store);
	}
	rc = 0;
	if (fresh)
		rc = write_fresh(store, &job, &plan, last, ahead, &written);
	if (rc == 0 && !written)
		rc = write_held(store, &job, &plan);
	pg_plan_free(&plan);
	if (rc == -1) {
		pg_remember(store, pass->source, page, next->walk_offset, 0, 1);
		return page_failed(store, pass->source);
	}
	pg_remember(store, pass->source, page, next->walk_offset,
	    job.c.runs_new - pass->counts.runs_new, 0);
	if (job.first != NULL)
		store_log_page_problems(pass->source, job.first,
		    job.c.runs_partial - pass->counts.runs_partial);
	pass->counts = job.c;
	return STORE_OK;
}

int
pg_has_run(struct store *base, const char *source, const char *external_id)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	PGresult *res;
	int n;

	if (pg_ready(store) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, external_id);
	res = pg_query_prepared(store, "cannot read run", stmt(PS_HAS_RUN), &p);
	if (res == NULL)
		return -1;
	n = PQntuples(res) > 0;
	PQclear(res);
	return n;
}
