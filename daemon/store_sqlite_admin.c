/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite_admin.c: the SQLite engine's sources and commands: keep
 * the sources table in step with the configuration, --rename-source,
 * --forget-source, the pruning of the pass history, the counts of the
 * metrics and each source's --status.
 *
 * Long deletions go in transactions of a bounded size, so that the
 * daemon's writes between them never wait long.
 */
#include <stdio.h>
#include <string.h>

#include "store_sqlite.h"

/* --rename-source: every table that names a source, in one transaction. */
static const char *const rename_sql[] = {
	/* before runs: their source finds the history's rows by run_id */
	"UPDATE run_status_changes SET source = ?2 WHERE run_id IN "
	"(SELECT id FROM runs WHERE source = ?1)",
	"UPDATE runs SET source = ?2 WHERE source = ?1",
	"UPDATE pull_requests SET source = ?2 WHERE source = ?1",
	"UPDATE sync_runs SET source = ?2 WHERE source = ?1",
	"UPDATE rejected_records SET source = ?2 WHERE source = ?1",
	"UPDATE sync_state SET source = ?2 WHERE source = ?1",
	"UPDATE sources SET name = ?2 "
	"WHERE name = ?1",
};

/* --forget-source: runs first (their child rows and links go with them),
 * then what only names the source.  Each deletes at most ?2 rows. */
static const char *const forget_sql[] = {
	"DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE "
	"source = ?1 LIMIT ?2)",
	"DELETE FROM pull_requests WHERE id IN (SELECT id FROM "
	"pull_requests WHERE source = ?1 LIMIT ?2)",
	"DELETE FROM sync_runs WHERE id IN (SELECT id FROM sync_runs "
	"WHERE source = ?1 LIMIT ?2)",
	"DELETE FROM rejected_records WHERE id IN (SELECT id FROM "
	"rejected_records WHERE source = ?1 LIMIT ?2)",
};

/* Mark configured source src (added, or back after a retirement). */
static int
source_configure(struct sqlite_store *store, const struct store_source *src,
    const char *now)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"INSERT INTO sources (name, kind, identity, base_url, org_id, "
		"configured, configured_since) VALUES (?1, ?2, ?3, ?4, ?5, 1, "
		"?6) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
		"base_url = excluded.base_url, org_id = excluded.org_id, "
		"configured_since = CASE WHEN configured = 0 THEN "
		"excluded.configured_since ELSE configured_since END, "
		"configured = 1, retired_at = NULL",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot record the sources");
	sq_bind_text(store, st, 1, src->name);
	sq_bind_text(store, st, 2, src->kind);
	sq_bind_text(store, st, 3, src->identity);
	sq_bind_text(store, st, 4, src->base_url);
	if (src->org_id >= 0)
		sq_bind_i64(store, st, 5, src->org_id);
	sq_bind_text(store, st, 6, now);
	rc = sq_step(store, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 :
				   sq_fail(store, "cannot record the sources");
}

/* Retire every configured row that srcs does not name. */
static int
sources_retire_others(struct sqlite_store *store,
    const struct store_source *srcs, size_t n, const char *now)
{
	sqlite3_stmt *st;
	const char *name;
	size_t i;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT name FROM sources WHERE configured = 1", -1, &st,
		NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read the sources");
	while ((rc = sq_step(store, st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		for (i = 0; i < n && strcmp(srcs[i].name, name) != 0; i++)
			;
		if (i < n)
			continue;
		if (exec_bound(store, "cannot retire a source",
			"UPDATE sources SET configured = 0, retired_at = ?2 "
			"WHERE name = ?1",
			"tt", name, now) == -1) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 :
				   sq_fail(store, "cannot read the sources");
}

/* Call fn for each source not configured; r.same_upstream from srcs. */
static int
sources_each_retired(struct sqlite_store *store,
    const struct store_source *srcs, size_t n, store_retired_fn *fn, void *arg)
{
	struct store_retired r;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT name, kind, identity, retired_at, "
		"forgetting_since IS NOT NULL, "
		"(SELECT count(*) FROM runs WHERE source = name) "
		"FROM sources WHERE configured = 0 ORDER BY name",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read the sources");
	while ((rc = sq_step(store, st)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.name = sq_col_text(st, 0);
		r.kind = sq_col_text(st, 1);
		r.identity = sq_col_text(st, 2);
		r.retired_at = sq_col_text(st, 3);
		r.forgetting = sqlite3_column_int(st, 4);
		r.runs = sqlite3_column_int64(st, 5);
		for (i = 0; i < n && r.identity != NULL; i++)
			if (strcmp(srcs[i].identity, r.identity) == 0) {
				r.same_upstream = srcs[i].name;
				break;
			}
		fn(&r, arg);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 :
				   sq_fail(store, "cannot read the sources");
}

int
sqlite_sources_sync(struct store *base, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg)
{
	struct sqlite_store *store = sqlite_of(base);
	size_t i;

	sq_end_batch(store);
	if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (source_configure(store, &srcs[i], now) == -1)
			goto rollback;
	if (sources_retire_others(store, srcs, n, now) == -1 ||
	    sq_exec(store, "COMMIT") == -1)
		goto rollback;
	if (fn == NULL)
		return 0;
	return sources_each_retired(store, srcs, n, fn, arg);
rollback:
	sq_rollback(store);
	return -1;
}

int
sqlite_source_present(struct store *base, const char *source)
{
	struct sqlite_store *store = sqlite_of(base);
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT 1 FROM sync_state WHERE source = ?1", -1, &st,
		NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read sync state");
	sq_bind_text(store, st, 1, source);
	rc = sq_step(store, st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sq_fail(store, "cannot read sync state");
}

/* The number sql (one ?1 parameter) counts, or -1. */
static int64_t
count_of(struct sqlite_store *store, const char *sql, const char *arg)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot count rows");
	sq_bind_text(store, st, 1, arg);
	if (sq_step(store, st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n < 0 ? sq_fail(store, "cannot count rows") : n;
}

int64_t
sqlite_live_runs(struct store *base, const char *source)
{
	struct sqlite_store *store = sqlite_of(base);

	return count_of(store,
	    "SELECT count(*) FROM runs WHERE source = ?1 AND "
	    "deleted_upstream_at IS NULL",
	    source);
}

/* Rows of source in the tables that name sources (0 when none). */
static int64_t
rows_of(struct sqlite_store *store, const char *source)
{
	return count_of(store,
	    "SELECT (SELECT count(*) FROM sources WHERE name = ?1) + "
	    "(SELECT count(*) FROM sync_state WHERE source = ?1) + "
	    "(SELECT count(*) FROM runs WHERE source = ?1) + "
	    "(SELECT count(*) FROM pull_requests WHERE source = ?1) + "
	    "(SELECT count(*) FROM sync_runs WHERE source = ?1) + "
	    "(SELECT count(*) FROM rejected_records WHERE source = ?1)",
	    source);
}

/*
 * Begin the write transaction of --rename-source or --forget-source on a
 * source that has rows: 0 with it open, else -1 with it rolled back (why
 * says so when the source has none).
 */
static int
begin_on_source(struct sqlite_store *store, const char *source, char *why,
    size_t whylen)
{
	int64_t n;

	*why = '\0';
	if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	if ((n = rows_of(store, source)) == 0)
		snprintf(why, whylen, "no source '%s' in the database", source);
	if (n > 0)
		return 0;
	sq_rollback(store);
	return -1;
}

int
sqlite_rename_source(struct store *base, const char *old, const char *new_name,
    char *why, size_t whylen)
{
	struct sqlite_store *store = sqlite_of(base);
	int64_t n;
	size_t i;

	if (begin_on_source(store, old, why, whylen) == -1)
		return -1;
	if ((n = rows_of(store, new_name)) < 0)
		goto rollback;
	if (n > 0) {
		snprintf(why, whylen,
		    "source '%s' already has %lld rows in the database",
		    new_name, (long long)n);
		goto rollback;
	}
	for (i = 0; i < sizeof(rename_sql) / sizeof(rename_sql[0]); i++)
		if (exec_bound(store, "cannot rename the source", rename_sql[i],
			"tt", old, new_name) == -1)
			goto rollback;
	if (sq_exec(store, "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	sq_rollback(store);
	return -1;
}

/* Run sql (?1 arg, ?2 batch: a DELETE of at most batch rows) in one
 * transaction; returns the rows deleted, or -1. */
static int64_t
delete_batch(struct sqlite_store *store, const char *sql, const char *arg,
    int batch)
{
	int64_t n;

	if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	if (exec_bound(store, "cannot delete rows", sql, "ti", arg,
		(int64_t)batch) == -1) {
		sq_rollback(store);
		return -1;
	}
	n = sqlite3_changes(store->db);
	if (sq_exec(store, "COMMIT") == -1) {
		sq_rollback(store);
		return -1;
	}
	return n;
}

int64_t
sqlite_prune_history(struct store *base, const char *cutoff, int batch,
    int max_batches)
{
	struct sqlite_store *store = sqlite_of(base);
	int64_t total = 0, n;
	int i;

	sq_end_batch(store);
	for (i = 0; i < max_batches; i++) {
		n = delete_batch(store,
		    "DELETE FROM sync_runs WHERE id IN (SELECT id FROM "
		    "sync_runs WHERE finished_at < ?1 AND outcome != "
		    "'running' LIMIT ?2)",
		    cutoff, batch);
		if (n < 0)
			return -1;
		total += n;
		if (n < batch)
			break;
	}
	return total;
}

int
sqlite_forget_source(struct store *base, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
{
	struct sqlite_store *store = sqlite_of(base);
	int64_t n;
	size_t i;

	*deleted = 0;
	if (begin_on_source(store, source, why, whylen) == -1)
		return -1;
	/* From here the source is being forgotten: its cursor goes first,
	 * so that a source added again under this name starts afresh. */
	if (exec_bound(store, "cannot mark the source",
		"INSERT INTO sources (name, kind, identity, configured, "
		"retired_at, forgetting_since) VALUES (?1, '?', '', 0, ?2, ?2) "
		"ON CONFLICT (name) DO UPDATE SET configured = 0, "
		"forgetting_since = coalesce(forgetting_since, ?2)",
		"tt", source, now) == -1 ||
	    exec_bound(store, "cannot delete the sync state",
		"DELETE FROM sync_state WHERE source = ?1", "t",
		source) == -1 ||
	    sq_exec(store, "COMMIT") == -1)
		goto rollback;
	for (i = 0; i < sizeof(forget_sql) / sizeof(forget_sql[0]); i++) {
		do {
			if ((n = delete_batch(store, forget_sql[i], source,
				 batch)) < 0)
				return -1;
			if (i == 0)
				*deleted += n;
		} while (n == batch);
	}
	return exec_bound(store, "cannot delete the source",
	    "DELETE FROM sources WHERE name = ?1", "t", source);
rollback:
	sq_rollback(store);
	return -1;
}

/* One row of the --status query (sqlite_status_each()) into *ss. */
static void
status_from_row(sqlite3_stmt *st, struct source_status *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->source = sq_col_text(st, 0);
	ss->kind = sq_col_text(st, 1);
	ss->backfill_done = sqlite3_column_int(st, 2);
	ss->walk_mode = store_walk_mode_parse(sq_col_text(st, 3));
	ss->walk_offset = sqlite3_column_int64(st, 4);
	ss->walk_total = sqlite3_column_type(st, 5) == SQLITE_NULL ?
	    -1 :
	    sqlite3_column_int64(st, 5);
	ss->last_success_at = sq_col_text(st, 6);
	ss->last_error = sq_col_text(st, 7);
	ss->last_error_at = sq_col_text(st, 8);
	ss->next_poll_at = sq_col_text(st, 9);
	ss->runs = sqlite3_column_int64(st, 10);
	ss->runs_gone = sqlite3_column_int64(st, 11);
	ss->rejected = sqlite3_column_int64(st, 12);
	ss->high_water = sq_col_text(st, 13);
	ss->clock_skew.set = sqlite3_column_type(st, 14) != SQLITE_NULL;
	ss->clock_skew.v = sqlite3_column_double(st, 14);
	ss->configured = sqlite3_column_int(st, 15);
	ss->retired_at = sq_col_text(st, 16);
	ss->forgetting_since = sq_col_text(st, 17);
	ss->has_state = sqlite3_column_int(st, 18);
	ss->last_outcome = sq_col_text(st, 19);
	ss->last_progress_at = sq_col_text(st, 20);
}

int
sqlite_status_each(struct store *base, store_status_fn *fn, void *arg)
{
	struct sqlite_store *store = sqlite_of(base);
	struct source_status ss;
	sqlite3_stmt *st;
	int rc, n = 0;

	if (sqlite3_prepare_v2(store->db,
		"SELECT n.name, coalesce(s.kind, src.kind), "
		"s.backfill_done, s.walk_mode, s.walk_offset, s.walk_total, "
		"s.last_success_at, s.last_error, s.last_error_at, "
		"s.next_poll_at, "
		"(SELECT count(*) FROM runs r WHERE r.source = n.name), "
		"(SELECT count(*) FROM runs r WHERE r.source = n.name AND "
		"r.deleted_upstream_at IS NOT NULL), "
		"(SELECT count(*) FROM rejected_records j WHERE j.source = "
		"n.name), s.high_water, s.clock_skew_seconds, "
		"coalesce(src.configured, 1), src.retired_at, "
		"src.forgetting_since, s.source IS NOT NULL, "
		"(SELECT outcome FROM sync_runs x WHERE x.source = n.name AND "
		"x.outcome != 'running' ORDER BY x.id DESC LIMIT 1), "
		"s.last_progress_at "
		"FROM (SELECT source AS name FROM sync_state UNION "
		"SELECT name FROM sources) n "
		"LEFT JOIN sync_state s ON s.source = n.name "
		"LEFT JOIN sources src ON src.name = n.name ORDER BY n.name",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read sync state");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		status_from_row(st, &ss);
		fn(&ss, arg);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sq_fail(store, "cannot read sync state");
	return n;
}
