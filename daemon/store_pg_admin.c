/* SPDX-License-Identifier: ISC */
/*
 * store_pg_admin.c: the PostgreSQL engine's sources and commands, as
 * SQLite's (store_sqlite_admin.c): keep the sources table in step with
 * the configuration, --rename-source, --forget-source, the pruning of the
 * pass history, the counts of the metrics and each source's --status
 * (with the daemon that holds it: store_pg_claim.c).
 *
 * Long deletions go in transactions of a bounded size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

/* Times as the daemon writes them: "YYYY-MM-DDTHH:MM:SS.sssZ" (object
 * macros: the SQL stays literal text, tests/reliability/rel_security.py) */
#define TS_FORMAT   "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
#define RETIRED_AT  "to_char(retired_at AT TIME ZONE 'UTC', " TS_FORMAT ")"
#define SRC_RETIRED "to_char(src.retired_at AT TIME ZONE 'UTC', " TS_FORMAT ")"
#define SRC_FORGET \
	"to_char(src.forgetting_since AT TIME ZONE 'UTC', " TS_FORMAT ")"

/* --rename-source: every table that names a source, in one transaction. */
static const char *const pg_rename_sql[] = {
	"UPDATE run_status_changes SET source = $2 WHERE run_id IN "
	"(SELECT id FROM runs WHERE source = $1)",
	"UPDATE runs SET source = $2 WHERE source = $1",
	"UPDATE pull_requests SET source = $2 WHERE source = $1",
	"UPDATE sync_runs SET source = $2 WHERE source = $1",
	"UPDATE rejected_records SET source = $2 WHERE source = $1",
	"UPDATE sync_state SET source = $2 WHERE source = $1",
	"UPDATE sources SET name = $2 WHERE name = $1",
	"DELETE FROM source_holders "
	"WHERE source = $1 OR source = $2",
};

/* --forget-source: runs first (their child rows and links go with them),
 * then what only names the source.  Each deletes at most $2 rows. */
static const char *const pg_forget_sql[] = {
	"DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE "
	"source = $1 LIMIT $2)",
	"DELETE FROM pull_requests WHERE id IN (SELECT id FROM "
	"pull_requests WHERE source = $1 LIMIT $2)",
	"DELETE FROM sync_runs WHERE id IN (SELECT id FROM sync_runs "
	"WHERE source = $1 LIMIT $2)",
	"DELETE FROM rejected_records WHERE id IN (SELECT id FROM "
	"rejected_records WHERE source = $1 LIMIT $2)",
};

static int
source_configure(struct pg_store *store, const struct store_source *src,
    const char *now)
{
	struct pg_params p;

	pp_reset(&p);
	pp_text(&p, src->name);
	pp_text(&p, src->kind);
	pp_text(&p, src->identity);
	pp_text(&p, src->base_url);
	pp_opt_int(&p, src->org_id >= 0, src->org_id);
	pp_text(&p, now);
	return pg_run(store, "cannot record the sources",
	    "INSERT INTO sources (name, kind, identity, base_url, org_id, "
	    "configured, configured_since) VALUES ($1, $2, $3, $4, $5, true, "
	    "$6) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
	    "base_url = excluded.base_url, org_id = excluded.org_id, "
	    "configured_since = CASE WHEN NOT sources.configured THEN "
	    "excluded.configured_since ELSE sources.configured_since END, "
	    "configured = true, retired_at = NULL",
	    &p, NULL);
}

/* Retire every configured row that srcs does not name. */
static int
sources_retire_others(struct pg_store *store, const struct store_source *srcs,
    size_t n, const char *now)
{
	struct pg_params p;
	PGresult *res;
	const char *name;
	size_t i;
	int row, rc = 0;

	res = pg_query(store, "cannot read the sources",
	    "SELECT name FROM sources WHERE configured", NULL);
	if (res == NULL)
		return -1;
	for (row = 0; row < PQntuples(res) && rc == 0; row++) {
		name = PQgetvalue(res, row, 0);
		for (i = 0; i < n && strcmp(srcs[i].name, name) != 0; i++)
			;
		if (i < n)
			continue;
		pp_reset(&p);
		pp_text(&p, name);
		pp_text(&p, now);
		rc = pg_run(store, "cannot retire a source",
		    "UPDATE sources SET configured = false, retired_at = $2 "
		    "WHERE name = $1",
		    &p, NULL);
	}
	PQclear(res);
	return rc;
}

static int
sources_each_retired(struct pg_store *store, const struct store_source *srcs,
    size_t n, store_retired_fn *fn, void *arg)
{
	struct store_retired r;
	PGresult *res;
	size_t i;
	int row;

	res = pg_query(store, "cannot read the sources",
	    "SELECT name, kind, identity, " RETIRED_AT ", "
	    "forgetting_since IS NOT NULL, "
	    "(SELECT count(*) FROM runs WHERE source = name) "
	    "FROM sources WHERE NOT configured ORDER BY name COLLATE \"C\"",
	    NULL);
	if (res == NULL)
		return -1;
	for (row = 0; row < PQntuples(res); row++) {
		memset(&r, 0, sizeof(r));
		r.name = pg_text(res, row, 0);
		r.kind = pg_text(res, row, 1);
		r.identity = pg_text(res, row, 2);
		r.retired_at = pg_text(res, row, 3);
		r.forgetting = pg_flag(res, row, 4);
		r.runs = pg_i64(res, row, 5);
		for (i = 0; i < n && r.identity != NULL; i++)
			if (strcmp(srcs[i].identity, r.identity) == 0) {
				r.same_upstream = srcs[i].name;
				break;
			}
		fn(&r, arg);
	}
	PQclear(res);
	return 0;
}

int
pg_sources_sync(struct store *base, const struct store_source *srcs, size_t n,
    const char *now, store_retired_fn *fn, void *arg)
{
	struct pg_store *store = pg_of(base);
	size_t i;

	pg_end_batch(store);
	if (pg_ready(store) == -1 ||
	    pg_exec(store, "cannot begin", "BEGIN") == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (source_configure(store, &srcs[i], now) == -1)
			goto rollback;
	if (sources_retire_others(store, srcs, n, now) == -1 ||
	    pg_exec(store, "cannot commit", "COMMIT") == -1)
		goto rollback;
	if (fn == NULL)
		return 0;
	return sources_each_retired(store, srcs, n, fn, arg);
rollback:
	pg_rollback(store);
	return -1;
}

/* The number sql ($1 arg) counts, or -1. */
static int64_t
count_of(struct pg_store *store, const char *sql, const char *arg)
{
	struct pg_params p;
	int64_t n;

	if (pg_ready(store) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, arg);
	if (pg_query_i64(store, sql, &p, &n) == -1)
		return -1;
	return n;
}

int
pg_source_present(struct store *base, const char *source)
{
	int64_t n = count_of(pg_of(base),
	    "SELECT count(*) FROM sync_state WHERE source = $1", source);

	return n < 0 ? -1 : n > 0;
}

int64_t
pg_live_runs(struct store *base, const char *source)
{
	return count_of(pg_of(base),
	    "SELECT count(*) FROM runs WHERE source = $1 AND "
	    "deleted_upstream_at IS NULL",
	    source);
}

static int64_t
rows_of(struct pg_store *store, const char *source)
{
	return count_of(store,
	    "SELECT (SELECT count(*) FROM sources WHERE name = $1) + "
	    "(SELECT count(*) FROM sync_state WHERE source = $1) + "
	    "(SELECT count(*) FROM runs WHERE source = $1) + "
	    "(SELECT count(*) FROM pull_requests WHERE source = $1) + "
	    "(SELECT count(*) FROM sync_runs WHERE source = $1) + "
	    "(SELECT count(*) FROM rejected_records WHERE source = $1)",
	    source);
}

static int
begin_on_source(struct pg_store *store, const char *source, char *why,
    size_t whylen)
{
	int64_t n;

	*why = '\0';
	if (pg_ready(store) == -1 ||
	    pg_exec(store, "cannot begin", "BEGIN") == -1)
		return -1;
	if ((n = rows_of(store, source)) == 0)
		snprintf(why, whylen, "no source '%s' in the database", source);
	if (n > 0)
		return 0;
	pg_rollback(store);
	return -1;
}

int
pg_rename_source(struct store *base, const char *old, const char *new_name,
    char *why, size_t whylen)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	int64_t n;
	size_t i;

	pg_end_batch(store);
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
	pp_reset(&p);
	pp_text(&p, old);
	pp_text(&p, new_name);
	for (i = 0; i < sizeof(pg_rename_sql) / sizeof(pg_rename_sql[0]); i++)
		if (pg_run(store, "cannot rename the source", pg_rename_sql[i],
			&p, NULL) == -1)
			goto rollback;
	if (pg_exec(store, "cannot commit", "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	pg_rollback(store);
	return -1;
}

/* sql ($1 arg, $2 batch) in one transaction: rows deleted, or -1. */
static int64_t
delete_batch(struct pg_store *store, const char *sql, const char *arg,
    int batch)
{
	struct pg_params p;
	int64_t n = 0;

	pp_reset(&p);
	pp_text(&p, arg);
	pp_i64(&p, batch);
	if (pg_run(store, "cannot delete rows", sql, &p, &n) == -1)
		return -1;
	return n;
}

int64_t
pg_prune_history(struct store *base, const char *cutoff, int batch,
    int max_batches)
{
	struct pg_store *store = pg_of(base);
	int64_t total = 0, n;
	int i;

	pg_end_batch(store);
	if (pg_ready(store) == -1)
		return -1;
	for (i = 0; i < max_batches; i++) {
		n = delete_batch(store,
		    "DELETE FROM sync_runs WHERE id IN (SELECT id FROM "
		    "sync_runs WHERE finished_at < $1::timestamptz AND "
		    "outcome <> 'running' LIMIT $2)",
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
pg_forget_source(struct store *base, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	int64_t n;
	size_t i;

	*deleted = 0;
	pg_end_batch(store);
	if (begin_on_source(store, source, why, whylen) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, now);
	if (pg_run(store, "cannot mark the source",
		"INSERT INTO sources (name, kind, identity, configured, "
		"retired_at, forgetting_since) VALUES ($1, '?', '', false, $2, "
		"$2) ON CONFLICT (name) DO UPDATE SET configured = false, "
		"forgetting_since = coalesce(sources.forgetting_since, $2)",
		&p, NULL) == -1)
		goto rollback;
	pp_reset(&p);
	pp_text(&p, source);
	if (pg_run(store, "cannot delete the sync state",
		"DELETE FROM sync_state WHERE source = $1", &p, NULL) == -1 ||
	    pg_exec(store, "cannot commit", "COMMIT") == -1)
		goto rollback;
	for (i = 0; i < sizeof(pg_forget_sql) / sizeof(pg_forget_sql[0]); i++) {
		do {
			if ((n = delete_batch(store, pg_forget_sql[i], source,
				 batch)) < 0)
				return -1;
			if (i == 0)
				*deleted += n;
		} while (n == batch);
	}
	return pg_run(store, "cannot delete the source",
	    "DELETE FROM sources WHERE name = $1", &p, NULL);
rollback:
	pg_rollback(store);
	return -1;
}

static void
status_from_row(const PGresult *res, int row, struct source_status *ss)
{
	memset(ss, 0, sizeof(*ss));
	ss->source = pg_text(res, row, 0);
	ss->kind = pg_text(res, row, 1);
	ss->backfill_done = pg_flag(res, row, 2);
	ss->walk_mode = store_walk_mode_parse(pg_text(res, row, 3));
	ss->walk_offset = pg_i64(res, row, 4);
	ss->walk_total = pg_text(res, row, 5) == NULL ? -1 :
							pg_i64(res, row, 5);
	ss->last_success_at = pg_text(res, row, 6);
	ss->last_error = pg_text(res, row, 7);
	ss->last_error_at = pg_text(res, row, 8);
	ss->next_poll_at = pg_text(res, row, 9);
	ss->runs = pg_i64(res, row, 10);
	ss->runs_gone = pg_i64(res, row, 11);
	ss->rejected = pg_i64(res, row, 12);
	ss->high_water = pg_text(res, row, 13);
	ss->clock_skew.set = pg_text(res, row, 14) != NULL;
	ss->clock_skew.v = ss->clock_skew.set ?
	    strtod(pg_text(res, row, 14), NULL) :
	    0;
	ss->configured = pg_flag(res, row, 15);
	ss->retired_at = pg_text(res, row, 16);
	ss->forgetting_since = pg_text(res, row, 17);
	ss->has_state = pg_flag(res, row, 18);
	ss->last_outcome = pg_text(res, row, 19);
	ss->last_progress_at = pg_text(res, row, 20);
	ss->holder = pg_text(res, row, 21);
}

int
pg_status_each(struct store *base, store_status_fn *fn, void *arg)
{
	struct pg_store *store = pg_of(base);
	struct source_status ss;
	PGresult *res;
	int row, n;

	if (pg_ready(store) == -1)
		return -1;
	/* the holder only while its session lives (its lock with it) */
	res = pg_query(store, "cannot read sync state",
	    "SELECT n.name, coalesce(s.kind, src.kind), "
	    "s.backfill_done, s.walk_mode, s.walk_offset, s.walk_total, "
	    "s.last_success_at, s.last_error, s.last_error_at, "
	    "s.next_poll_at, "
	    "(SELECT count(*) FROM runs r WHERE r.source = n.name), "
	    "(SELECT count(*) FROM runs r WHERE r.source = n.name AND "
	    "r.deleted_upstream_at IS NOT NULL), "
	    "(SELECT count(*) FROM rejected_records j WHERE j.source = "
	    "n.name), s.high_water, s.clock_skew_seconds, "
	    "coalesce(src.configured, true), " SRC_RETIRED ", " SRC_FORGET
	    ", s.source IS NOT NULL, "
	    "(SELECT outcome FROM sync_runs x WHERE x.source = n.name AND "
	    "x.outcome <> 'running' ORDER BY x.id DESC LIMIT 1), "
	    "s.last_progress_at, "
	    "(SELECT h.holder FROM source_holders h WHERE h.source = n.name "
	    "AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = "
	    "h.backend_pid)) "
	    "FROM (SELECT source AS name FROM sync_state UNION "
	    "SELECT name FROM sources) n "
	    "LEFT JOIN sync_state s ON s.source = n.name "
	    "LEFT JOIN sources src ON src.name = n.name "
	    "ORDER BY n.name COLLATE \"C\"",
	    NULL);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	for (row = 0; row < n; row++) {
		status_from_row(res, row, &ss);
		fn(&ss, arg);
	}
	PQclear(res);
	return n;
}
