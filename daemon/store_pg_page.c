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
 * In two round trips, whatever the page holds: libpq's pipeline mode
 * sends the transaction's start and the read of what the mirror holds of
 * the page's runs, then every write, the cursor and the commit at once
 * (a third for the marks of a complete full walk, whose count the
 * counters need).  Every statement finds a run by its key (source,
 * external_id), so no write waits for another's id.  A page that changed
 * runs also sends NOTIFY agentsyncd, 'SOURCE' (pg_notify), delivered at
 * the commit, once a transaction (PostgreSQL folds the same payload).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

/* The key of a run in the statements below: $1 source, $2 external id. */
#define RUN_BY_KEY \
	"(SELECT id FROM runs WHERE source = $1 AND external_id = $2)"

static const char *const pg_stmt_sql[NPSTMTS] = {
	[PS_SEL_RUNS] = "SELECT external_id, status, raw_json, "
			"deleted_upstream_at IS NOT NULL FROM runs "
			"WHERE source = $1 AND external_id = ANY ($2::text[])",
	[PS_TOUCH_RUN] = "UPDATE runs SET last_seen_at = $3::timestamptz, "
			 "last_seen_walk = $4::bigint, deleted_upstream_at = "
			 "NULL WHERE source = $1 AND external_id = $2",
	/* Taken before the update, so old_* come from the row itself. */
	[PS_INS_CHANGE] = "INSERT INTO run_status_changes (run_id, "
			  "observed_at, old_status, new_status, old_state, "
			  "new_state, source, external_id, updated_at) "
			  "SELECT id, $3::timestamptz, status, $4::text, "
			  "state, $5::text, source, external_id, "
			  "$6::timestamptz FROM runs WHERE source = $1 AND "
			  "external_id = $2",
	[PS_DEL_LINKS] =
	    "DELETE FROM run_pull_requests WHERE run_id = " RUN_BY_KEY,
	[PS_DEL_PROBLEMS] =
	    "DELETE FROM run_field_problems WHERE run_id = " RUN_BY_KEY,
	[PS_UPSERT_PR] = "INSERT INTO pull_requests (source, external_id, "
			 "title, url, head_branch_name, created_at, "
			 "first_seen_at, changed_at, repository, number) "
			 "VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) "
			 "ON CONFLICT (source, external_id) DO UPDATE SET "
			 "title = excluded.title, url = excluded.url, "
			 "head_branch_name = excluded.head_branch_name, "
			 "created_at = excluded.created_at, changed_at = "
			 "excluded.changed_at, repository = "
			 "excluded.repository, number = excluded.number "
			 "WHERE pull_requests.title IS DISTINCT FROM "
			 "excluded.title OR pull_requests.url IS DISTINCT "
			 "FROM excluded.url OR pull_requests.head_branch_name "
			 "IS DISTINCT FROM excluded.head_branch_name OR "
			 "pull_requests.created_at IS DISTINCT FROM "
			 "excluded.created_at",
	[PS_INS_LINK] = "INSERT INTO run_pull_requests (run_id, "
			"pull_request_id, position) VALUES (" RUN_BY_KEY ", "
			"(SELECT id FROM pull_requests WHERE source = $1 AND "
			"external_id = $3), $4) ON CONFLICT DO NOTHING",
	[PS_INS_PROBLEM] =
	    "INSERT INTO run_field_problems (run_id, "
	    "position, field, problem, value) VALUES (" RUN_BY_KEY
	    ", $3, $4, $5, $6)",
	[PS_INS_REJECT] = "INSERT INTO rejected_records (source, kind, "
			  "external_id, reason, raw_json, first_seen_at) "
			  "VALUES ($1, $2, $3, $4, $5, $6) "
			  "ON CONFLICT (source, reason, md5(raw_json)) "
			  "DO NOTHING",
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
			  "walk_generation = $17 WHERE source = $1 "
			  "RETURNING 1) SELECT 1 / (SELECT count(*) FROM u)",
	[PS_SAVE_COUNTS] = "UPDATE sync_runs SET requests = $2, pages = $3, "
			   "runs_seen = $4, runs_new = $5, runs_changed = $6, "
			   "runs_rejected = $7, runs_deleted = $8, http_429 = "
			   "$9, retries = $10, runs_partial = $11, "
			   "upstream_total = coalesce($12, upstream_total) "
			   "WHERE id = $1",
	[PS_HAS_RUN] = "SELECT 1 FROM runs WHERE source = $1 AND "
		       "external_id = $2 AND deleted_upstream_at IS NULL",
	[PS_MARK_GONE] = "UPDATE runs SET deleted_upstream_at = "
			 "$3::timestamptz WHERE source = $1 AND last_seen_walk "
			 "< $2::bigint AND deleted_upstream_at IS NULL",
	[PS_NOTIFY] = "SELECT pg_notify('agentsyncd', $1::text)",
};

int
pg_prepare(struct pg_store *store)
{
	char name[32];
	PGresult *res;
	size_t i;

	for (i = 0; i < NPSTMTS; i++) {
		pg_stmt_name(name, sizeof(name), 'a', i);
		res = PQprepare(store->conn, name, pg_stmt_sql[i], 0, NULL);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
			(void)pg_fail(store, "cannot prepare statement", res);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return pg_prepare_runs(store);
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

/* What the mirror holds of a run, before the page (or as an earlier
 * run of the page with the same id left it). */
struct held_run {
	int found, gone;
	const char *status;
	const char *raw;
	size_t raw_len;
};

/* The page's external ids as a text[] literal ({"a","b"}): a parameter. */
static char *
ids_literal(const struct page *page)
{
	size_t i, n = 3;
	const char *s;
	char *out, *o;

	for (i = 0; i < page->nruns; i++)
		n += 2 * strlen(page->runs[i].external_id) + 3;
	if ((out = malloc(n)) == NULL)
		return NULL;
	o = out;
	*o++ = '{';
	for (i = 0; i < page->nruns; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		for (s = page->runs[i].external_id; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				*o++ = '\\';
			*o++ = *s;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* held[i] for each run of the page, from res (PS_SEL_RUNS) and the
 * page's earlier runs. */
static void
held_of(const PGresult *res, const struct page *page, struct held_run *held)
{
	int row, nrows = res != NULL ? PQntuples(res) : 0;
	size_t i, j;

	for (i = 0; i < page->nruns; i++) {
		const struct run *r = &page->runs[i];

		memset(&held[i], 0, sizeof(held[i]));
		for (j = i; j-- > 0;)
			if (strcmp(page->runs[j].external_id, r->external_id) ==
			    0) {
				held[i].found = 1;
				held[i].status = page->runs[j].status;
				held[i].raw = page->runs[j].raw;
				held[i].raw_len = page->runs[j].raw_len;
				break;
			}
		if (held[i].found)
			continue;
		for (row = 0; row < nrows; row++)
			if (strcmp(PQgetvalue(res, row, 0), r->external_id) ==
			    0) {
				held[i].found = 1;
				held[i].status = pg_text(res, row, 1);
				held[i].raw = PQgetvalue(res, row, 2);
				held[i].raw_len = (size_t)PQgetlength(res, row,
				    2);
				held[i].gone = pg_flag(res, row, 3);
				break;
			}
	}
}

static int
same_text(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL && b == NULL;
	return strcmp(a, b) == 0;
}

/* Queue run_id's pull requests (upserted by source and id) and links. */
static int
send_links(struct pg_store *store, const char *source, const struct run *r,
    const char *now)
{
	struct pg_params p;
	char repo[GITHUB_REPO_LEN];
	int64_t number;
	size_t i;
	int github;

	for (i = 0; i < r->nprs; i++) {
		const struct pull_request *pr = &r->prs[i];

		pp_reset(&p);
		pp_text(&p, source);
		pp_text(&p, pr->external_id);
		pp_text(&p, pr->title);
		pp_text(&p, pr->url);
		pp_text(&p, pr->head_branch_name);
		pp_ts(&p, pr->created_at);
		pp_text(&p, now);
		github = github_pr_parse(pr->url, repo, &number) == 0;
		pp_text(&p, github ? repo : NULL);
		pp_opt_int(&p, github, number);
		if (pg_pipe_send(store, stmt(PS_UPSERT_PR), &p, NULL) == -1)
			return -1;
		pp_reset(&p);
		pp_text(&p, source);
		pp_text(&p, r->external_id);
		pp_text(&p, pr->external_id);
		pp_i64(&p, (int64_t)i); /* distinct by id (source.h) */
		if (pg_pipe_send(store, stmt(PS_INS_LINK), &p, NULL) == -1)
			return -1;
	}
	return 0;
}

/* Queue the run's field problems. */
static int
send_problems(struct pg_store *store, const char *source, const struct run *r)
{
	struct pg_params p;
	size_t i;

	for (i = 0; i < r->nproblems; i++) {
		pp_reset(&p);
		pp_text(&p, source);
		pp_text(&p, r->external_id);
		pp_i64(&p, (int64_t)i);
		pp_text(&p, r->problems[i].field);
		pp_text(&p, r->problems[i].problem);
		pp_text(&p, r->problems[i].value);
		if (pg_pipe_send(store, stmt(PS_INS_PROBLEM), &p, NULL) == -1)
			return -1;
	}
	return 0;
}

/* Queue what replaces (replace) or first writes the run's child rows. */
static int
send_children(struct pg_store *store, const char *source, size_t a,
    const struct run *r, const char *now, int replace)
{
	static const enum pg_stmt_id dels[] = { PS_DEL_LINKS, PS_DEL_PROBLEMS };
	struct pg_params p;
	size_t i;

	for (i = 0; replace && i < sizeof(dels) / sizeof(dels[0]); i++) {
		pp_reset(&p);
		pp_text(&p, source);
		pp_text(&p, r->external_id);
		if (pg_pipe_send(store, stmt(dels[i]), &p, NULL) == -1)
			return -1;
	}
	if (send_links(store, source, r, now) == -1 ||
	    send_problems(store, source, r) == -1)
		return -1;
	return pg_send_arrays(store, source, r, a, replace);
}

/* $1 source, $2 external id, and more by the caller. */
static void
params_key(struct pg_params *p, const char *source, const struct run *r)
{
	pp_reset(p);
	pp_text(p, source);
	pp_text(p, r->external_id);
}

/* Queue the upsert of one run, seen at now by walk number walk. */
static int
send_run(struct pg_store *store, const char *source, size_t a,
    const struct run *r, const struct held_run *h, int touch, const char *now,
    int64_t walk, struct pass_counts *c)
{
	int same = h->found && h->raw_len == r->raw_len &&
	    memcmp(h->raw, r->raw, r->raw_len) == 0;
	enum store_run_write w;
	struct pg_params p;

	w = store_run_decide(h->found, same, h->gone, touch, c);
	if (w == STORE_RUN_SKIP)
		return 0;
	params_key(&p, source, r);
	if (w == STORE_RUN_TOUCH) {
		pp_text(&p, now);
		pp_i64(&p, walk);
		return pg_pipe_send(store, stmt(PS_TOUCH_RUN), &p, NULL);
	}
	if (h->found && !same_text(h->status, r->status)) {
		pp_text(&p, now);
		pp_text(&p, r->status);
		pp_text(&p, run_state_name(r->state));
		pp_ts(&p, r->updated_at);
		if (pg_pipe_send(store, stmt(PS_INS_CHANGE), &p, NULL) == -1)
			return -1;
		params_key(&p, source, r);
	}
	pp_text(&p, store->cols.types[a]->name);
	pp_text(&p, now);
	pp_i64(&p, walk);
	pp_bool(&p, 1, run_state_terminal(r->state));
	pg_params_run(store, &p, r, a);
	/* r0, the insert, writes the first sighting with the run */
	if (pg_pipe_send(store, h->found ? "r1" : "r0", &p, NULL) == -1)
		return -1;
	if (r->nproblems > 0)
		c->runs_partial++;
	return send_children(store, source, a, r, now, h->found);
}

/* Queue the page's rejected items, each kept once. */
static int
send_rejects(struct pg_store *store, const struct store_pass *pass,
    const struct page *page, const char *now, struct pass_counts *c)
{
	struct pg_params p;
	size_t i;

	for (i = 0; i < page->nrejects; i++) {
		const struct reject *rj = &page->rejects[i];

		pp_reset(&p);
		pp_text(&p, pass->source);
		pp_text(&p, pass->kind);
		pp_text(&p, rj->external_id);
		pp_text(&p, rj->reason);
		pp_span(&p, rj->raw, rj->raw_len);
		pp_text(&p, now);
		if (pg_pipe_send(store, stmt(PS_INS_REJECT), &p, NULL) == -1)
			return -1;
		c->runs_rejected++;
	}
	return 0;
}

/* Round trip one: the transaction (or savepoint) opened and what the
 * mirror holds of the page's runs read, into *res. */
static int
read_held(struct pg_store *store, const char *source, const struct page *page,
    PGresult **res)
{
	struct pg_params p;
	char *ids = ids_literal(page);

	*res = NULL;
	if (ids == NULL) {
		log_error("out of memory");
		return -1;
	}
	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, ids);
	if ((store->batch ? pg_pipe_send_sql(store, "SAVEPOINT page") :
			    pg_pipe_send_sql(store, "BEGIN")) == -1 ||
	    pg_pipe_send_keep(store, stmt(PS_SEL_RUNS), &p, res) == -1 ||
	    pg_pipe_sync(store) == -1) {
		free(ids);
		return -1;
	}
	free(ids);
	return 0;
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
	if (pg_pipe_send(store, stmt(PS_MARK_GONE), &p, &n) == -1 ||
	    pg_pipe_sync(store) == -1)
		return -1;
	c->runs_deleted += n;
	return 0;
}

/* Every write of the page after the read, up to its commit. */
static int
send_page(struct pg_store *store, const struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now, struct pass_counts *c, const struct held_run *held,
    const struct run **first_partial)
{
	int touch = (flags & STORE_SEEN) != 0;
	int a = columns_adapter(&store->cols, pass->kind);
	int64_t partial = c->runs_partial;
	int64_t changed = c->runs_new + c->runs_changed + c->runs_deleted;
	struct pg_params p;
	size_t i;

	if (a < 0 && page->nruns > 0) {
		log_error("database '%s': no adapter of kind '%s'", store->uri,
		    pass->kind);
		return -1;
	}
	for (i = 0; i < page->nruns; i++) {
		if (send_run(store, pass->source, (size_t)a, &page->runs[i],
			&held[i], touch, now, next->walk_generation, c) == -1)
			return -1;
		if (*first_partial == NULL && c->runs_partial > partial)
			*first_partial = &page->runs[i];
	}
	if (send_rejects(store, pass, page, now, c) == -1)
		return -1;
	c->pages++;
	c->upstream_total = page->total;
	if ((flags & STORE_MARK_GONE) &&
	    mark_gone(store, pass->source, next, now, c) == -1)
		return -1;
	if (c->runs_new + c->runs_changed + c->runs_deleted > changed) {
		pp_reset(&p);
		pp_text(&p, pass->source);
		if (pg_pipe_send(store, stmt(PS_NOTIFY), &p, NULL) == -1)
			return -1;
	}
	pg_params_state(&p, pass->source, next, now);
	if (pg_pipe_send(store, stmt(PS_SAVE_STATE), &p, NULL) == -1)
		return -1;
	pg_params_counts(&p, pass->id, c);
	if (pg_pipe_send(store, stmt(PS_SAVE_COUNTS), &p, NULL) == -1)
		return -1;
	if (store->batch)
		return pg_pipe_send_sql(store, "RELEASE page");
	return pg_pipe_send_sql(store, "COMMIT");
}

/* Undo a failed page: its transaction, or its savepoint of the batch. */
static int
page_failed(struct pg_store *store, const char *source)
{
	if (store->ready && PQpipelineStatus(store->conn) != PQ_PIPELINE_OFF)
		(void)pg_pipe_finish(store);
	if (strcmp(store->pipe_sqlstate, "22012") == 0) {
		store->gone = 1;
		log_error(
		    "source '%s' is no longer in the database (renamed or forgotten by another process)",
		    source);
	}
	if (store->batch && !store->ready) {
		/* the connection went, and the batch with it */
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

int
pg_page(struct store *base, struct store_pass *pass, const struct page *page,
    const struct sync_state *next, unsigned flags, const char *now)
{
	struct pg_store *store = pg_of(base);
	struct pass_counts c = pass->counts;
	const struct run *first_partial = NULL;
	struct held_run *held;
	PGresult *res = NULL;
	int rc;

	store->gone = 0;
	store->batch_lost = 0;
	if (pg_lost_batch(store) != 0)
		return STORE_LOST;
	if (pg_ready(store) == -1)
		return STORE_FAILED;
	/* a reconnection forgot the claims: another daemon may walk it */
	if (!pg_holds(store, pass->source))
		return STORE_UNHELD;
	held = calloc(page->nruns ? page->nruns : 1, sizeof(*held));
	if (held == NULL) {
		log_error("out of memory");
		return STORE_FAILED;
	}
	if (pg_pipe_begin(store) == -1) {
		free(held);
		return page_failed(store, pass->source);
	}
	rc = read_held(store, pass->source, page, &res);
	if (rc == 0) {
		held_of(res, page, held);
		rc = send_page(store, pass, page, next, flags, now, &c, held,
		    &first_partial);
	}
	if (rc == 0)
		rc = pg_pipe_finish(store);
	PQclear(res);
	free(held);
	if (rc == -1)
		return page_failed(store, pass->source);
	if (first_partial != NULL)
		store_log_page_problems(pass->source, first_partial,
		    c.runs_partial - pass->counts.runs_partial);
	pass->counts = c;
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
