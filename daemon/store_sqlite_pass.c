/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite_pass.c: the SQLite engine's side of a source's passes: load
 * (or start over) its sync state, begin a pass (closing one a crash left
 * running), end it (folding an idle one into the stretch before it),
 * record the next poll, and list the runs a re-check walks.
 *
 * The pass outcome names come from verdict_pass_name(), bound, so that
 * sync_runs.outcome and the metrics say the same words.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_sqlite.h"

/* The sync_state row's columns past identity (state_read()) into *state. */
static void
state_from_row(sqlite3_stmt *st, struct sync_state *state)
{
	sq_copy_col(st, 1, state->high_water, sizeof(state->high_water));
	state->backfill_done = sqlite3_column_int(st, 2);
	state->walk_mode = store_walk_mode_parse(sq_col_text(st, 3));
	state->walk_offset = sqlite3_column_int64(st, 4);
	sq_copy_col(st, 5, state->walk_anchor_id,
	    sizeof(state->walk_anchor_id));
	sq_copy_col(st, 6, state->walk_anchor_key,
	    sizeof(state->walk_anchor_key));
	state->walk_total = sqlite3_column_int64(st, 7);
	sq_copy_col(st, 8, state->walk_high_water,
	    sizeof(state->walk_high_water));
	sq_copy_col(st, 9, state->walk_started_at,
	    sizeof(state->walk_started_at));
	state->walk_pages = sqlite3_column_int64(st, 10);
	sq_copy_col(st, 11, state->last_full_resync_at,
	    sizeof(state->last_full_resync_at));
	sq_copy_col(st, 12, state->last_success_at,
	    sizeof(state->last_success_at));
	state->walk_degraded = sqlite3_column_int(st, 13);
	state->clock_skew.set = sqlite3_column_type(st, 14) != SQLITE_NULL;
	state->clock_skew.v = sqlite3_column_double(st, 14);
	state->walk_generation = sqlite3_column_int64(st, 15);
}

/* Same name, different upstream: what we hold says nothing about the new
 * one, so walk it completely (the state stays zeroed). */
static int
state_restart(struct sqlite_store *store, const char *source, const char *kind,
    const char *identity)
{
	if (exec_bound(store, "cannot reset sync state",
		"UPDATE "
		"sync_state SET identity = ?2, kind = ?3, high_water = "
		"NULL, backfill_done = 0, walk_mode = NULL WHERE "
		"source = ?1",
		"ttt", source, identity, kind) == -1 ||
	    exec_bound(store, "cannot update sources",
		"UPDATE sources SET identity = ?2, kind = ?3 "
		"WHERE name = ?1",
		"ttt", source, identity, kind) == -1)
		return -1;
	return 0;
}

/* Read source's sync_state row into *state, or start it over when it
 * points at another upstream than identity.  0 or -1. */
static int
state_read(struct sqlite_store *store, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	sqlite3_stmt *st = NULL;
	const char *stored;

	if (sqlite3_prepare_v2(store->db,
		"SELECT identity, high_water, "
		"backfill_done, walk_mode, walk_offset, walk_anchor_id, "
		"walk_anchor_key, walk_total, walk_high_water, "
		"walk_started_at, "
		"walk_pages, last_full_resync_at, last_success_at, "
		"walk_degraded, clock_skew_seconds, walk_generation "
		"FROM sync_state WHERE source = ?1",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read sync state");
	sq_bind_text(store, st, 1, source);
	if (sq_step(store, st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return sq_fail(store, "cannot read sync state");
	}
	stored = sq_col_text(st, 0);
	if (stored != NULL && strcmp(stored, identity) != 0) {
		log_warnx(
		    "source '%s' now points at %s (was %s): starting a fresh backfill; mirrored rows are kept",
		    source, identity, stored);
		sqlite3_finalize(st);
		return state_restart(store, source, kind, identity);
	}
	state_from_row(st, state);
	sqlite3_finalize(st);
	return 0;
}

int
sqlite_state_load(struct store *base, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	struct sqlite_store *store = sqlite_of(base);

	memset(state, 0, sizeof(*state));
	sq_end_batch(store);
	/* The cursor and the sources row change together. */
	if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	/* A new source's walks are numbered above any its runs carry (a
	 * source forgotten halfway and added back). */
	if (exec_bound(store, "cannot create sync state",
		"INSERT INTO sync_state (source, kind, identity, "
		"walk_generation) SELECT ?1, ?2, ?3, (SELECT "
		"coalesce(max(last_seen_walk), 0) FROM runs WHERE source = ?1) "
		"WHERE NOT EXISTS (SELECT 1 FROM sync_state WHERE source = ?1)",
		"ttt", source, kind, identity) == -1 ||
	    state_read(store, source, kind, identity, state) == -1 ||
	    sq_exec(store, "COMMIT") == -1) {
		sq_rollback(store);
		memset(state, 0, sizeof(*state));
		return -1;
	}
	return 0;
}

int
sqlite_pass_begin(struct store *base, struct store_pass *pass,
    enum walk_mode mode, const char *now)
{
	struct sqlite_store *store = sqlite_of(base);
	const char *source = pass->source;

	/* A pass left 'running' by a crash or kill ends as interrupted. */
	sq_end_batch(store);
	if (exec_bound(store, "cannot close old passes",
		"UPDATE sync_runs "
		"SET outcome = ?3, finished_at = coalesce(finished_at, ?2) "
		"WHERE source = ?1 AND outcome = 'running'",
		"ttt", source, now,
		verdict_pass_name(PASS_INTERRUPTED)) == -1 ||
	    exec_bound(store, "cannot start pass",
		"INSERT INTO sync_runs "
		"(source, mode, started_at) VALUES (?1, ?2, ?3)",
		"ttt", source, walk_mode_name(mode), now) == -1)
		return -1;
	pass->id = sqlite3_last_insert_rowid(store->db);
	pass->mode = mode;
	memset(&pass->counts, 0, sizeof(pass->counts));
	pass->counts.upstream_total = -1;
	return 0;
}

/*
 * Fold the idle pass into the source's previous row when that is an idle
 * stretch too (migration 0007): 1 folded (this pass's row deleted), 0 not
 * (nothing done), -1 on error.
 */
static int
fold_idle(struct sqlite_store *store, const struct store_pass *pass,
    const char *now)
{
	const struct pass_counts *c = &pass->counts;
	sqlite3_stmt *st;
	int64_t prev;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT id FROM sync_runs WHERE source = ?1 AND id < ?2 AND "
		"id = (SELECT max(id) FROM sync_runs WHERE source = ?1 AND "
		"id < ?2) AND mode = 'incremental' AND outcome = ?3 "
		"AND runs_new = 0 AND runs_changed = 0 AND runs_deleted = 0 "
		"AND runs_rejected = 0",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read the pass history");
	sq_bind_text(store, st, 1, pass->source);
	sq_bind_i64(store, st, 2, pass->id);
	sq_bind_text(store, st, 3, verdict_pass_name(PASS_SUCCEEDED));
	rc = sq_step(store, st);
	prev = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(store, "cannot read the pass history");
	if (rc == SQLITE_DONE)
		return 0;
	if (exec_bound(store, "cannot fold an idle pass",
		"UPDATE sync_runs SET passes = passes + 1, finished_at = ?2, "
		"requests = requests + ?3, pages = pages + ?4, runs_seen = "
		"runs_seen + ?5, http_429 = http_429 + ?6, retries = retries "
		"+ ?7, upstream_total = coalesce(?8, upstream_total) "
		"WHERE id = ?1",
		"itiiiiiI", prev, now, c->requests, c->pages, c->runs_seen,
		c->http_429, c->retries, c->upstream_total) == -1 ||
	    exec_bound(store, "cannot fold an idle pass",
		"DELETE FROM sync_runs WHERE id = ?1", "i", pass->id) == -1)
		return -1;
	return 1;
}

int
sqlite_pass_end(struct store *base, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now)
{
	struct sqlite_store *store = sqlite_of(base);
	const char *source = pass->source;

	sq_end_batch(store);
	sq_clear_rc(store);
	if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
		return sq_rc(store);
	if (sq_save_state(store, source, state, NULL) == -1 ||
	    sq_save_counts(store, pass->id, &pass->counts) == -1)
		goto rollback;
	if (outcome == PASS_SUCCEEDED && store_pass_idle(pass)) {
		switch (fold_idle(store, pass, now)) {
		case -1:
			goto rollback;
		case 1:
			if (sq_exec(store, "COMMIT") == -1)
				goto rollback;
			return 0;
		default:
			break;
		}
	}
	if (exec_bound(store, "cannot record pass",
		"UPDATE sync_runs SET outcome = ?2, error = ?3, finished_at = ?4 "
		"WHERE id = ?1",
		"ittt", pass->id, verdict_pass_name(outcome), error, now) == -1)
		goto rollback;
	if (error != NULL &&
	    exec_bound(store, "cannot record pass",
		"UPDATE sync_state SET last_error = ?2, "
		"last_error_at = ?3 WHERE source = ?1",
		"ttt", source, error, now) == -1)
		goto rollback;
	if (sq_exec(store, "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	sq_rollback(store);
	return sq_rc(store);
}

int
sqlite_set_next_poll(struct store *base, const char *source, const char *when)
{
	struct sqlite_store *store = sqlite_of(base);

	sq_end_batch(store);
	return exec_bound(store, "cannot record next poll",
	    "UPDATE sync_state SET next_poll_at = ?2 WHERE source = ?1", "tt",
	    source, when != NULL && *when != '\0' ? when : NULL);
}

/*
 * Bind the names of the terminal states (run_state_terminal(), the one
 * statement of the set) to the n parameters from first on: -1 (logged)
 * when the set does not have n states, as the SQL that lists n expects.
 */
static int
bind_terminal(struct sqlite_store *store, sqlite3_stmt *st, int first, int n)
{
	int s, k = 0;

	for (s = 0; s <= (int)RUN_UNKNOWN; s++) {
		if (!run_state_terminal((enum run_state)s))
			continue;
		if (k < n)
			sq_bind_text(store, st, first + k,
			    run_state_name((enum run_state)s));
		k++;
	}
	if (k != n) {
		log_error(
		    "database '%s': %d terminal states, the re-check query lists %d",
		    store->path, k, n);
		return -1;
	}
	return 0;
}

int64_t
sqlite_runs_since(struct store *base, const char *source, const char *since,
    int unfinished, struct store_run_key **out)
{
	struct sqlite_store *store = sqlite_of(base);
	sqlite3_stmt *st;
	struct store_run_key *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	if (sqlite3_prepare_v2(store->db,
		"SELECT external_id, created_at FROM runs "
		"WHERE source = ?1 AND created_at >= ?2 AND "
		"deleted_upstream_at IS NULL AND "
		"(?3 = 0 OR state NOT IN (?4, ?5, ?6)) "
		"ORDER BY created_at DESC, CAST(external_id AS INTEGER) DESC, "
		"external_id DESC",
		-1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read runs to re-check");
	sq_bind_text(store, st, 1, source);
	sq_bind_text(store, st, 2, since);
	sq_bind_i64(store, st, 3, unfinished);
	if (bind_terminal(store, st, 4, 3) == -1) {
		sqlite3_finalize(st);
		return -1;
	}
	while ((rc = sq_step(store, st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		sq_copy_col(st, 0, v[n].external_id, sizeof(v[n].external_id));
		sq_copy_col(st, 1, v[n].created_at, sizeof(v[n].created_at));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return sq_fail(store, "cannot read runs to re-check");
	}
	*out = v;
	return (int64_t)n;
}
