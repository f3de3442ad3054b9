/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite_page.c: the SQLite engine writes one page: its runs (a run
 * held byte for byte is not rewritten: store_rules.c decides), their pull
 * requests and child rows, the field problems, the rejects, the marks of
 * a complete full walk, the cursor and the pass's counters, in one
 * IMMEDIATE transaction (or one savepoint of an open batch).  An error
 * anywhere rolls all of it back.
 *
 * The statements of the page path (stmt_sql[]) are prepared once per
 * connection and reused.  The raw JSON is the whole truth of a run; every
 * other column is derived from it.
 */
#include <string.h>

#include "log.h"
#include "store_sqlite.h"

static const char *const stmt_sql[NSTMTS] = {
	[ST_SEL_RUN] = "SELECT id, status, raw_json = ?3, "
		       "deleted_upstream_at IS NOT NULL "
		       "FROM runs WHERE source = ?1 AND external_id = ?2",
	[ST_TOUCH_RUN] = "UPDATE runs SET last_seen_at = ?2, "
			 "last_seen_walk = ?3, deleted_upstream_at = NULL "
			 "WHERE id = ?1",
	/* Taken before the update, so old_* come from the row itself;
	 * ?5 is upstream's updated_at served with the new status. */
	[ST_INS_CHANGE] = "INSERT INTO run_status_changes (run_id, "
			  "observed_at, old_status, new_status, old_state, "
			  "new_state, source, external_id, updated_at) "
			  "SELECT id, ?2, status, ?3, state, ?4, source, "
			  "external_id, ?5 FROM runs WHERE id = ?1",
	/* A new run's first sighting: the first row of its history. */
	[ST_INS_SIGHTING] = "INSERT INTO run_status_changes (run_id, "
			    "observed_at, old_status, new_status, old_state, "
			    "new_state, source, external_id, updated_at) "
			    "SELECT id, first_seen_at, NULL, status, NULL, "
			    "state, source, external_id, updated_at "
			    "FROM runs WHERE id = ?1",
	[ST_DEL_LINKS] = "DELETE FROM run_pull_requests WHERE run_id = ?1",
	[ST_DEL_PROBLEMS] = "DELETE FROM run_field_problems WHERE run_id = ?1",
	[ST_UPSERT_PR] = "INSERT INTO pull_requests (source, external_id, "
			 "title, url, head_branch_name, created_at, "
			 "first_seen_at, changed_at, repository, number) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9) "
			 "" PR_UPSERT_SET
			 "WHERE title IS NOT excluded.title OR url IS NOT "
			 "excluded.url "
			 "OR head_branch_name IS NOT excluded.head_branch_name "
			 "OR created_at IS NOT excluded.created_at",
	[ST_SEL_PR] = "SELECT id FROM pull_requests "
		      "WHERE source = ?1 AND external_id = ?2",
	[ST_INS_LINK] = "INSERT OR IGNORE INTO run_pull_requests (run_id, "
			"pull_request_id, position) VALUES (?1, ?2, ?3)",
	[ST_INS_PROBLEM] = "INSERT INTO run_field_problems (run_id, "
			   "position, field, problem, value) "
			   "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_INS_REJECT] = "INSERT INTO rejected_records (source, kind, "
			  "external_id, reason, raw_json, first_seen_at) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
			  "ON CONFLICT (source, reason, raw_json) DO NOTHING",
	[ST_SAVE_STATE] = "UPDATE sync_state SET high_water = ?2, "
			  "backfill_done = ?3, walk_mode = ?4, walk_offset = "
			  "?5, "
			  "walk_anchor_id = ?6, walk_anchor_key = ?7, "
			  "walk_total = ?8, "
			  "walk_high_water = ?9, walk_started_at = ?10, "
			  "walk_pages = ?11, "
			  "last_full_resync_at = ?12, last_success_at = ?13, "
			  "walk_degraded = ?14, clock_skew_seconds = ?15, "
			  "last_progress_at = coalesce(?16, last_progress_at), "
			  "walk_generation = ?17 "
			  "WHERE source = ?1",
	[ST_SAVE_COUNTS] = "UPDATE sync_runs SET requests = ?2, pages = ?3, "
			   "runs_seen = ?4, runs_new = ?5, runs_changed = ?6, "
			   "runs_rejected = ?7, runs_deleted = ?8, http_429 = "
			   "?9, retries = ?10, runs_partial = ?11, "
			   "upstream_total = coalesce(?12, upstream_total) "
			   "WHERE id = ?1",
	[ST_HAS_RUN] = "SELECT 1 FROM runs WHERE source = ?1 AND "
		       "external_id = ?2 AND deleted_upstream_at IS NULL",
};

int
sq_prepare(struct sqlite_store *store)
{
	int i;

	for (i = 0; i < NSTMTS; i++) {
		if (sqlite3_prepare_v3(store->db, stmt_sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &store->stmt[i],
			NULL) != SQLITE_OK)
			return sq_fail(store, "cannot prepare statement");
	}
	return sq_prepare_runs(store);
}

int
sq_save_state(struct sqlite_store *store, const char *source,
    const struct sync_state *s, const char *page_at)
{
	sqlite3_stmt *st = store->stmt[ST_SAVE_STATE];
	int walking = s->walk_mode != WALK_NONE;

	sq_bind_text(store, st, 1, source);
	sq_bind_ts(store, st, 2, s->high_water);
	sq_bind_i64(store, st, 3, s->backfill_done);
	sq_bind_text(store, st, 4,
	    walking ? walk_mode_name(s->walk_mode) : NULL);
	sq_bind_opt_int(store, st, 5, walking, s->walk_offset);
	sq_bind_ts(store, st, 6, walking ? s->walk_anchor_id : NULL);
	sq_bind_ts(store, st, 7, walking ? s->walk_anchor_key : NULL);
	sq_bind_opt_int(store, st, 8, walking, s->walk_total);
	sq_bind_ts(store, st, 9, walking ? s->walk_high_water : NULL);
	sq_bind_ts(store, st, 10, walking ? s->walk_started_at : NULL);
	sq_bind_opt_int(store, st, 11, walking, s->walk_pages);
	sq_bind_ts(store, st, 12, s->last_full_resync_at);
	sq_bind_ts(store, st, 13, s->last_success_at);
	sq_bind_i64(store, st, 14, walking && s->walk_degraded);
	sq_bind_num(store, st, 15, s->clock_skew);
	sq_bind_text(store, st, 16, page_at);
	sq_bind_i64(store, st, 17, s->walk_generation);
	if (sq_step_done(store, st) == -1)
		return -1;
	if (sqlite3_changes(store->db) != 1) {
		/* renamed or forgotten by agentsyncd --rename-source /
		 * --forget-source while this daemon synced it */
		store->gone = 1;
		log_error(
		    "source '%s' is no longer in the database (renamed or forgotten by another process)",
		    source);
		return -1;
	}
	return 0;
}

int
sq_save_counts(struct sqlite_store *store, int64_t pass_id,
    const struct pass_counts *c)
{
	sqlite3_stmt *st = store->stmt[ST_SAVE_COUNTS];

	sq_bind_i64(store, st, 1, pass_id);
	sq_bind_i64(store, st, 2, c->requests);
	sq_bind_i64(store, st, 3, c->pages);
	sq_bind_i64(store, st, 4, c->runs_seen);
	sq_bind_i64(store, st, 5, c->runs_new);
	sq_bind_i64(store, st, 6, c->runs_changed);
	sq_bind_i64(store, st, 7, c->runs_rejected);
	sq_bind_i64(store, st, 8, c->runs_deleted);
	sq_bind_i64(store, st, 9, c->http_429);
	sq_bind_i64(store, st, 10, c->retries);
	sq_bind_i64(store, st, 11, c->runs_partial);
	sq_bind_opt_int(store, st, 12, c->upstream_total >= 0,
	    c->upstream_total);
	return sq_step_done(store, st);
}

/* Link run_id to its pull requests (upserted by source and id). */
static int
write_links(struct sqlite_store *store, const char *source, int64_t run_id,
    const struct run *r, const char *now)
{
	sqlite3_stmt *st;
	size_t i;
	int64_t pr_id, number, position = 0;
	char repo[GITHUB_REPO_LEN];
	int rc, github;

	for (i = 0; i < r->nprs; i++) {
		const struct pull_request *p = &r->prs[i];

		st = store->stmt[ST_UPSERT_PR];
		sq_bind_text(store, st, 1, source);
		sq_bind_text(store, st, 2, p->external_id);
		sq_bind_text(store, st, 3, p->title);
		sq_bind_text(store, st, 4, p->url);
		sq_bind_text(store, st, 5, p->head_branch_name);
		sq_bind_text(store, st, 6, p->created_at);
		sq_bind_text(store, st, 7, now);
		github = github_pr_parse(p->url, repo, &number) == 0;
		sq_bind_text(store, st, 8, github ? repo : NULL);
		sq_bind_opt_int(store, st, 9, github, number);
		if (sq_step_done(store, st) == -1)
			return -1;
		st = store->stmt[ST_SEL_PR];
		sq_bind_text(store, st, 1, source);
		sq_bind_text(store, st, 2, p->external_id);
		rc = sq_step(store, st);
		pr_id = sqlite3_column_int64(st, 0);
		sq_reset(st);
		if (rc != SQLITE_ROW)
			return sq_fail(store, "pull request vanished");
		st = store->stmt[ST_INS_LINK];
		sq_bind_i64(store, st, 1, run_id);
		sq_bind_i64(store, st, 2, pr_id);
		sq_bind_i64(store, st, 3, position);
		if (sq_step_done(store, st) == -1)
			return -1;
		/* a pull request listed twice keeps one link: positions
		 * stay contiguous */
		position += sqlite3_changes(store->db);
	}
	return 0;
}

/* Row i of one of run_id's lists: its statement with ?1 and ?2 bound. */
static sqlite3_stmt *
child_row(struct sqlite_store *store, enum stmt_id id, int64_t run_id, size_t i)
{
	sqlite3_stmt *st = store->stmt[id];

	sq_bind_i64(store, st, 1, run_id);
	sq_bind_i64(store, st, 2, (int64_t)i);
	return st;
}

/* run_id's field problems. */
static int
write_problems(struct sqlite_store *store, int64_t run_id, const struct run *r)
{
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; i < r->nproblems; i++) {
		st = child_row(store, ST_INS_PROBLEM, run_id, i);
		sq_bind_text(store, st, 3, r->problems[i].field);
		sq_bind_text(store, st, 4, r->problems[i].problem);
		sq_bind_text(store, st, 5, r->problems[i].value);
		if (sq_step_done(store, st) == -1)
			return -1;
	}
	return 0;
}

/* Replace the pull request links and child rows of run_id with r's. */
static int
write_children(struct sqlite_store *store, const char *source, size_t a,
    int64_t run_id, const struct run *r, const char *now, int replace)
{
	static const enum stmt_id dels[] = { ST_DEL_LINKS, ST_DEL_PROBLEMS };
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; replace && i < sizeof(dels) / sizeof(dels[0]); i++) {
		st = store->stmt[dels[i]];
		sq_bind_i64(store, st, 1, run_id);
		if (sq_step_done(store, st) == -1)
			return -1;
	}
	if (write_links(store, source, run_id, r, now) == -1 ||
	    write_problems(store, run_id, r) == -1)
		return -1;
	return sq_write_arrays(store, run_id, r, a, replace);
}

static int
same_text(const unsigned char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL && b == NULL;
	return strcmp((const char *)a, b) == 0;
}

/* What the mirror holds of a run (ST_SEL_RUN). */
struct held_run {
	int found, same, gone, status_changed;
	int64_t id;
};

static int
read_run(struct sqlite_store *store, const char *source, const struct run *r,
    struct held_run *h)
{
	sqlite3_stmt *st = store->stmt[ST_SEL_RUN];
	int rc;

	memset(h, 0, sizeof(*h));
	sq_bind_text(store, st, 1, source);
	sq_bind_text(store, st, 2, r->external_id);
	sq_bind_span(store, st, 3, r->raw, r->raw_len);
	rc = sq_step(store, st);
	h->found = rc == SQLITE_ROW;
	if (h->found) {
		h->id = sqlite3_column_int64(st, 0);
		h->status_changed = !same_text(sqlite3_column_text(st, 1),
		    r->status);
		h->same = sqlite3_column_int(st, 2);
		h->gone = sqlite3_column_int(st, 3);
	}
	sq_reset(st);
	if (!h->found && rc != SQLITE_DONE)
		return sq_fail(store, "cannot read run");
	return 0;
}

/* A run held byte for byte: only its sighting. */
static int
touch_run(struct sqlite_store *store, int64_t run_id, const char *now,
    int64_t walk)
{
	sqlite3_stmt *st = store->stmt[ST_TOUCH_RUN];

	sq_bind_i64(store, st, 1, run_id);
	sq_bind_text(store, st, 2, now);
	sq_bind_i64(store, st, 3, walk);
	return sq_step_done(store, st);
}

/* Its status changed: one history row, taken before the update. */
static int
note_status_change(struct sqlite_store *store, int64_t run_id,
    const struct run *r, const char *now)
{
	sqlite3_stmt *st = store->stmt[ST_INS_CHANGE];

	sq_bind_i64(store, st, 1, run_id);
	sq_bind_text(store, st, 2, now);
	sq_bind_text(store, st, 3, r->status);
	sq_bind_text(store, st, 4, run_state_name(r->state));
	sq_bind_text(store, st, 5, r->updated_at);
	return sq_step_done(store, st);
}

/* A new run: the first row of its status history, from the row itself. */
static int
note_first_sighting(struct sqlite_store *store, int64_t run_id)
{
	sqlite3_stmt *st = store->stmt[ST_INS_SIGHTING];

	sq_bind_i64(store, st, 1, run_id);
	return sq_step_done(store, st);
}

/* Upsert one run, seen at now by walk number walk.  Adds to *c what it
 * did. */
static int
write_run(struct sqlite_store *store, const char *source, size_t a,
    const struct run *r, int touch, const char *now, int64_t walk,
    struct pass_counts *c)
{
	struct held_run h;
	sqlite3_stmt *st;
	enum store_run_write w;
	int64_t run_id;

	if (read_run(store, source, r, &h) == -1)
		return -1;
	w = store_run_decide(h.found, h.same, h.gone, touch, c);
	if (w == STORE_RUN_SKIP)
		return 0;
	if (w == STORE_RUN_TOUCH)
		return touch_run(store, h.id, now, walk);
	if (h.status_changed && note_status_change(store, h.id, r, now) == -1)
		return -1;
	st = h.found ? store->upd_run : store->ins_run;
	sq_bind_text(store, st, RP_SOURCE, source);
	sq_bind_text(store, st, RP_EXTERNAL_ID, r->external_id);
	sq_bind_text(store, st, RP_KIND, store->cols.types[a]->name);
	sq_bind_text(store, st, RP_NOW, now);
	sq_bind_i64(store, st, RP_WALK, walk);
	sq_bind_i64(store, st, RP_TERMINAL, run_state_terminal(r->state));
	if (h.found)
		sq_bind_i64(store, st, RP_ROWID, h.id);
	sq_bind_run(store, st, r, a);
	if (sq_step_done(store, st) == -1)
		return -1;
	run_id = h.found ? h.id : sqlite3_last_insert_rowid(store->db);
	if (!h.found && note_first_sighting(store, run_id) == -1)
		return -1;
	if (r->nproblems > 0)
		c->runs_partial++;
	return write_children(store, source, a, run_id, r, now, h.found);
}

/* The page's rejected items, each kept once. */
static int
write_rejects(struct sqlite_store *store, const struct store_pass *pass,
    const struct page *page, const char *now, struct pass_counts *c)
{
	sqlite3_stmt *st;
	size_t i;

	for (i = 0; i < page->nrejects; i++) {
		const struct reject *rj = &page->rejects[i];

		st = store->stmt[ST_INS_REJECT];
		sq_bind_text(store, st, 1, pass->source);
		sq_bind_text(store, st, 2, pass->kind);
		sq_bind_text(store, st, 3, rj->external_id);
		sq_bind_text(store, st, 4, rj->reason);
		sq_bind_span(store, st, 5, rj->raw, rj->raw_len);
		sq_bind_text(store, st, 6, now);
		if (sq_step_done(store, st) == -1)
			return -1;
		c->runs_rejected++;
	}
	return 0;
}

/*
 * The end of a complete full walk: what it did not see is gone upstream.
 * In the page's transaction, so that a kill cannot record the walk as done
 * with the marks never made.  By the walk's number, not by time: see
 * walk.c.  A search of runs_source_created reads the source's runs, as the
 * walk itself did (an index on last_seen_walk would be rewritten by each
 * of its sightings).
 */
static int
mark_gone(struct sqlite_store *store, const char *source,
    const struct sync_state *next, const char *now, struct pass_counts *c)
{
	if (exec_bound(store, "cannot mark deleted runs",
		"UPDATE runs SET deleted_upstream_at = ?3 "
		"WHERE source = ?1 AND last_seen_walk < ?2 AND "
		"deleted_upstream_at IS NULL",
		"tit", source, next->walk_generation, now) == -1)
		return -1;
	c->runs_deleted += sqlite3_changes(store->db);
	return 0;
}

/* Undo a failed page: its transaction, or its savepoint of the batch. */
static int
page_failed(struct sqlite_store *store)
{
	if (!store->batch) {
		sq_rollback(store);
	} else if (sqlite3_get_autocommit(store->db)) {
		/* SQLite rolled the whole transaction back (a full disk, an
		 * I/O error): the batch's earlier pages went with it */
		store->batch = 0;
		store->batch_lost = 1;
	} else {
		int busy = store->busy;

		(void)sq_exec(store, "ROLLBACK TO page");
		(void)sq_exec(store, "RELEASE page");
		store->busy = busy;
	}
	return sq_rc(store);
}

/* Everything of the page but its transaction; the first run stored with
 * a field left out in *first_partial. */
static int
write_page(struct sqlite_store *store, const struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now, struct pass_counts *c, const struct run **first_partial)
{
	int touch = (flags & STORE_SEEN) != 0;
	int64_t partial = c->runs_partial;
	int a = columns_adapter(&store->cols, pass->kind);
	size_t i;

	if (a < 0 && page->nruns > 0)
		return sq_fail(store, "no adapter of the pass's kind");
	for (i = 0; i < page->nruns; i++) {
		if (write_run(store, pass->source, (size_t)a, &page->runs[i],
			touch, now, next->walk_generation, c) == -1)
			return -1;
		if (*first_partial == NULL && c->runs_partial > partial)
			*first_partial = &page->runs[i];
	}
	if (write_rejects(store, pass, page, now, c) == -1)
		return -1;
	c->pages++;
	c->upstream_total = page->total;
	if ((flags & STORE_MARK_GONE) &&
	    mark_gone(store, pass->source, next, now, c) == -1)
		return -1;
	if (sq_save_state(store, pass->source, next, now) == -1 ||
	    sq_save_counts(store, pass->id, c) == -1)
		return -1;
	return 0;
}

int
sqlite_page(struct store *base, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now)
{
	struct sqlite_store *store = sqlite_of(base);
	struct pass_counts c = pass->counts;
	const struct run *first_partial = NULL;

	sq_clear_rc(store);
	if ((store->batch ? sq_exec(store, "SAVEPOINT page") :
			    sq_exec(store, "BEGIN IMMEDIATE")) == -1)
		return page_failed(store);
	if (write_page(store, pass, page, next, flags, now, &c,
		&first_partial) == -1)
		return page_failed(store);
	if ((store->batch ? sq_exec(store, "RELEASE page") :
			    sq_exec(store, "COMMIT")) == -1)
		return page_failed(store);
	if (first_partial != NULL)
		store_log_page_problems(pass->source, first_partial,
		    c.runs_partial - pass->counts.runs_partial);
	pass->counts = c;
	return 0;
}

int
sqlite_has_run(struct store *base, const char *source, const char *external_id)
{
	struct sqlite_store *store = sqlite_of(base);
	sqlite3_stmt *st = store->stmt[ST_HAS_RUN];
	int rc;

	sq_bind_text(store, st, 1, source);
	sq_bind_text(store, st, 2, external_id);
	rc = sq_step(store, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		(void)sq_fail(store, "cannot read run"); /* before the reset */
	sq_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}
