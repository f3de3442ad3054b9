/* SPDX-License-Identifier: ISC */
/*
 * store_pg_pass.c: the PostgreSQL engine's side of a source's passes, as
 * SQLite's (store_sqlite_pass.c): load (or start over) its sync state,
 * begin a pass (closing one a crash left running), end it (folding an
 * idle one into the stretch before it), record the next poll, and list
 * the runs a re-check walks.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

/* created_at as the daemon writes times: "YYYY-MM-DDTHH:MM:SS.sssZ" */
#define CREATED_AT                                \
	"to_char(created_at AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* A sync_state row's columns past identity into *state. */
static void
state_from_row(const PGresult *res, struct sync_state *state)
{
	pg_copy(res, 0, 1, state->high_water, sizeof(state->high_water));
	state->backfill_done = pg_flag(res, 0, 2);
	state->walk_mode = store_walk_mode_parse(pg_text(res, 0, 3));
	state->walk_offset = pg_i64(res, 0, 4);
	pg_copy(res, 0, 5, state->walk_anchor_id,
	    sizeof(state->walk_anchor_id));
	pg_copy(res, 0, 6, state->walk_anchor_key,
	    sizeof(state->walk_anchor_key));
	state->walk_total = pg_i64(res, 0, 7);
	pg_copy(res, 0, 8, state->walk_high_water,
	    sizeof(state->walk_high_water));
	pg_copy(res, 0, 9, state->walk_started_at,
	    sizeof(state->walk_started_at));
	state->walk_pages = pg_i64(res, 0, 10);
	pg_copy(res, 0, 11, state->last_full_resync_at,
	    sizeof(state->last_full_resync_at));
	pg_copy(res, 0, 12, state->last_success_at,
	    sizeof(state->last_success_at));
	state->walk_degraded = pg_flag(res, 0, 13);
	state->clock_skew.set = pg_text(res, 0, 14) != NULL;
	state->clock_skew.v = state->clock_skew.set ?
	    strtod(pg_text(res, 0, 14), NULL) :
	    0;
	state->walk_generation = pg_i64(res, 0, 15);
}

/* Same name, different upstream: walk it completely. */
static int
state_restart(struct pg_store *store, const char *source, const char *kind,
    const char *identity)
{
	struct pg_params p;

	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, identity);
	pp_text(&p, kind);
	if (pg_run(store, "cannot reset sync state",
		"UPDATE sync_state SET identity = $2, kind = $3, high_water = "
		"NULL, backfill_done = false, walk_mode = NULL WHERE "
		"source = $1",
		&p, NULL) == -1 ||
	    pg_run(store, "cannot update sources",
		"UPDATE sources SET identity = $2, kind = $3 WHERE name = $1",
		&p, NULL) == -1)
		return -1;
	return 0;
}

static int
state_read(struct pg_store *store, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	struct pg_params p;
	PGresult *res;
	const char *stored;

	pp_reset(&p);
	pp_text(&p, source);
	res = pg_query(store, "cannot read sync state",
	    "SELECT identity, high_water, "
	    "backfill_done, walk_mode, walk_offset, walk_anchor_id, "
	    "walk_anchor_key, walk_total, walk_high_water, walk_started_at, "
	    "walk_pages, last_full_resync_at, last_success_at, "
	    "walk_degraded, clock_skew_seconds, walk_generation "
	    "FROM sync_state WHERE source = $1",
	    &p);
	if (res == NULL)
		return -1;
	if (PQntuples(res) != 1) {
		PQclear(res);
		log_error("database '%s': no sync state for '%s'", store->uri,
		    source);
		return -1;
	}
	stored = pg_text(res, 0, 0);
	if (stored != NULL && strcmp(stored, identity) != 0) {
		log_warnx(
		    "source '%s' now points at %s (was %s): starting a fresh backfill; mirrored rows are kept",
		    source, identity, stored);
		PQclear(res);
		return state_restart(store, source, kind, identity);
	}
	state_from_row(res, state);
	PQclear(res);
	return 0;
}

int
pg_state_load(struct store *base, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;

	memset(state, 0, sizeof(*state));
	pg_end_batch(store);
	if (pg_ready(store) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, kind);
	pp_text(&p, identity);
	if (pg_exec(store, "cannot begin", "BEGIN") == -1)
		return -1;
	if (pg_run(store, "cannot create sync state",
		"INSERT INTO sync_state (source, kind, identity, "
		"walk_generation) SELECT $1, $2, $3, (SELECT "
		"coalesce(max(last_seen_walk), 0) FROM runs WHERE source = $1) "
		"ON CONFLICT (source) DO NOTHING",
		&p, NULL) == -1 ||
	    state_read(store, source, kind, identity, state) == -1 ||
	    pg_exec(store, "cannot commit", "COMMIT") == -1) {
		pg_rollback(store);
		memset(state, 0, sizeof(*state));
		return -1;
	}
	return 0;
}

int
pg_pass_begin(struct store *base, struct store_pass *pass, enum walk_mode mode,
    const char *now)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	PGresult *res;

	pg_end_batch(store);
	/* a new walk: no guess at its pages from the last one's */
	pg_last_forget(store, pass->source);
	if (pg_ready(store) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, pass->source);
	pp_text(&p, now);
	pp_text(&p, verdict_pass_name(PASS_INTERRUPTED));
	if (pg_run(store, "cannot close old passes",
		"UPDATE sync_runs SET outcome = $3, finished_at = "
		"coalesce(finished_at, $2) WHERE source = $1 AND "
		"outcome = 'running'",
		&p, NULL) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, pass->source);
	pp_text(&p, walk_mode_name(mode));
	pp_text(&p, now);
	res = pg_query(store, "cannot start pass",
	    "INSERT INTO sync_runs (source, mode, started_at) VALUES ($1, $2, "
	    "$3) RETURNING id",
	    &p);
	if (res == NULL)
		return -1;
	pass->id = pg_i64(res, 0, 0);
	PQclear(res);
	pass->mode = mode;
	memset(&pass->counts, 0, sizeof(pass->counts));
	pass->counts.upstream_total = -1;
	return 0;
}

/* Fold the idle pass into the source's previous row when that is an idle
 * stretch too: 1 folded, 0 not, -1 on error. */
static int
fold_idle(struct pg_store *store, const struct store_pass *pass,
    const char *now)
{
	const struct pass_counts *c = &pass->counts;
	struct pg_params p;
	int64_t prev = 0, n = 0;

	pp_reset(&p);
	pp_text(&p, pass->source);
	pp_i64(&p, pass->id);
	pp_text(&p, verdict_pass_name(PASS_SUCCEEDED));
	if (pg_query_i64(store,
		"SELECT coalesce((SELECT id FROM sync_runs WHERE source = $1 "
		"AND id < $2 ORDER BY id DESC LIMIT 1), 0) AS prev, "
		"(SELECT count(*) FROM sync_runs WHERE id = (SELECT max(id) "
		"FROM sync_runs WHERE source = $1 AND id < $2) AND mode = "
		"'incremental' AND outcome = $3 AND runs_new = 0 AND "
		"runs_changed = 0 AND runs_deleted = 0 AND runs_rejected = 0)",
		&p, &prev) == -1)
		return -1;
	pp_reset(&p);
	pp_i64(&p, prev);
	pp_text(&p, now);
	pp_i64(&p, c->requests);
	pp_i64(&p, c->pages);
	pp_i64(&p, c->runs_seen);
	pp_i64(&p, c->http_429);
	pp_i64(&p, c->retries);
	pp_opt_int(&p, c->upstream_total >= 0, c->upstream_total);
	pp_text(&p, pass->source);
	pp_text(&p, verdict_pass_name(PASS_SUCCEEDED));
	if (pg_run(store, "cannot fold an idle pass",
		"UPDATE sync_runs SET passes = passes + 1, finished_at = $2, "
		"requests = requests + $3, pages = pages + $4, runs_seen = "
		"runs_seen + $5, http_429 = http_429 + $6, retries = retries "
		"+ $7, upstream_total = coalesce($8, upstream_total) "
		"WHERE id = $1 AND source = $9 AND mode = 'incremental' AND "
		"outcome = $10 AND runs_new = 0 AND runs_changed = 0 AND "
		"runs_deleted = 0 AND runs_rejected = 0",
		&p, &n) == -1)
		return -1;
	if (n == 0)
		return 0;
	pp_reset(&p);
	pp_i64(&p, pass->id);
	if (pg_run(store, "cannot fold an idle pass",
		"DELETE FROM sync_runs WHERE id = $1", &p, NULL) == -1)
		return -1;
	return 1;
}

/* The pass's row and the source's last error. */
static int
record_pass(struct pg_store *store, const struct store_pass *pass,
    enum pass_outcome outcome, const char *error, const char *now)
{
	struct pg_params p;

	pp_reset(&p);
	pp_i64(&p, pass->id);
	pp_text(&p, verdict_pass_name(outcome));
	pp_text(&p, error);
	pp_text(&p, now);
	if (pg_run(store, "cannot record pass",
		"UPDATE sync_runs SET outcome = $2, error = $3, finished_at = "
		"$4 WHERE id = $1",
		&p, NULL) == -1)
		return -1;
	if (error == NULL)
		return 0;
	pp_reset(&p);
	pp_text(&p, pass->source);
	pp_text(&p, error);
	pp_text(&p, now);
	return pg_run(store, "cannot record pass",
	    "UPDATE sync_state SET last_error = $2, last_error_at = $3 "
	    "WHERE source = $1",
	    &p, NULL);
}

int
pg_pass_end(struct store *base, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;
	int folded = 0, rc;

	pg_end_batch(store);
	store->gone = 0;
	store->batch_lost = 0;
	if ((rc = pg_lost_batch(store)) != 0)
		return rc;
	if (pg_ready(store) == -1)
		return STORE_FAILED;
	if (pg_exec(store, "cannot begin", "BEGIN") == -1)
		return pg_rc(store);
	pg_params_state(&p, pass->source, state, NULL);
	if (pg_run(store, "cannot save sync state",
		"UPDATE sync_state SET high_water = $2, "
		"backfill_done = $3, walk_mode = $4, walk_offset = $5, "
		"walk_anchor_id = $6, walk_anchor_key = $7, walk_total = $8, "
		"walk_high_water = $9, walk_started_at = $10, walk_pages = $11, "
		"last_full_resync_at = $12, last_success_at = $13, "
		"walk_degraded = $14, clock_skew_seconds = $15, "
		"last_progress_at = coalesce($16, last_progress_at), "
		"walk_generation = $17 WHERE source = $1",
		&p, NULL) == -1)
		goto rollback;
	pg_params_counts(&p, pass->id, &pass->counts);
	if (pg_run(store, "cannot save counts",
		"UPDATE sync_runs SET requests = $2, pages = $3, "
		"runs_seen = $4, runs_new = $5, runs_changed = $6, "
		"runs_rejected = $7, runs_deleted = $8, http_429 = $9, "
		"retries = $10, runs_partial = $11, "
		"upstream_total = coalesce($12, upstream_total) WHERE id = $1",
		&p, NULL) == -1)
		goto rollback;
	if (outcome == PASS_SUCCEEDED && store_pass_idle(pass) &&
	    (folded = fold_idle(store, pass, now)) == -1)
		goto rollback;
	if (!folded && record_pass(store, pass, outcome, error, now) == -1)
		goto rollback;
	if (pg_exec(store, "cannot commit", "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	pg_rollback(store);
	return pg_rc(store);
}

int
pg_set_next_poll(struct store *base, const char *source, const char *when)
{
	struct pg_store *store = pg_of(base);
	struct pg_params p;

	pg_end_batch(store);
	if (pg_ready(store) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, source);
	pp_ts(&p, when);
	return pg_run(store, "cannot record next poll",
	    "UPDATE sync_state SET next_poll_at = $2 WHERE source = $1", &p,
	    NULL);
}

/* The names of the terminal states, as $4.. of the re-check query. */
static int
params_terminal(struct pg_store *store, struct pg_params *p, int n)
{
	int s, k = 0;

	for (s = 0; s <= (int)RUN_UNKNOWN; s++) {
		if (!run_state_terminal((enum run_state)s))
			continue;
		if (k < n)
			pp_text(p, run_state_name((enum run_state)s));
		k++;
	}
	if (k != n) {
		log_error(
		    "database '%s': %d terminal states, the re-check query lists %d",
		    store->uri, k, n);
		return -1;
	}
	return 0;
}

int64_t
pg_runs_since(struct store *base, const char *source, const char *since,
    int unfinished, struct store_run_key **out)
{
	struct pg_store *store = pg_of(base);
	struct store_run_key *v;
	struct pg_params p;
	PGresult *res;
	int i, n;

	*out = NULL;
	if (pg_ready(store) == -1)
		return -1;
	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, since);
	pp_bool(&p, 1, unfinished);
	if (params_terminal(store, &p, 3) == -1)
		return -1;
	/* SQLite's CAST(external_id AS INTEGER): its leading digits, 0 */
	res = pg_query(store, "cannot read runs to re-check",
	    "SELECT external_id, " CREATED_AT " FROM runs "
	    "WHERE source = $1 AND created_at >= $2::timestamptz AND "
	    "deleted_upstream_at IS NULL AND "
	    "(NOT $3::boolean OR state NOT IN ($4, $5, $6)) "
	    "ORDER BY created_at DESC, coalesce(substring(external_id FROM "
	    "'^[0-9]+')::numeric, 0) DESC, external_id COLLATE \"C\" DESC",
	    &p);
	if (res == NULL)
		return -1;
	n = PQntuples(res);
	if ((v = calloc(n > 0 ? (size_t)n : 1, sizeof(*v))) == NULL) {
		PQclear(res);
		log_error("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		pg_copy(res, i, 0, v[i].external_id, sizeof(v[i].external_id));
		pg_copy(res, i, 1, v[i].created_at, sizeof(v[i].created_at));
	}
	PQclear(res);
	*out = v;
	return n;
}
