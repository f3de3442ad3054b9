/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite.h: the SQLite engine's own header, for its files alone.
 *
 * The engine (store_sqlite_engine) is four files by concern:
 * store_sqlite.c opens, checks, migrates, checkpoints and closes the file;
 * store_sqlite_sql.c holds what every statement goes through (binds,
 * steps, failures, the batch's transaction); store_sqlite_page.c writes a
 * page (runs, child rows, problems, rejects, marks, cursor and counters);
 * store_sqlite_pass.c a source's state and a pass's start and end;
 * store_sqlite_admin.c the sources table, --rename-source,
 * --forget-source, pruning and --status.  Nothing outside them sees a
 * SQLite type.
 */
#ifndef AGENTSYNCD_STORE_SQLITE_H
#define AGENTSYNCD_STORE_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store_columns.h"
#include "store_engine.h"

/* The statements of the page path, prepared once per connection
 * (stmt_sql[] in store_sqlite_page.c). */
enum stmt_id {
	ST_SEL_RUN,
	ST_TOUCH_RUN,
	ST_INS_CHANGE,
	ST_INS_SIGHTING,
	ST_DEL_LINKS,
	ST_DEL_PROBLEMS,
	ST_UPSERT_PR,
	ST_SEL_PR,
	ST_INS_LINK,
	ST_INS_PROBLEM,
	ST_INS_REJECT,
	ST_SAVE_STATE,
	ST_SAVE_COUNTS,
	ST_HAS_RUN,
	NSTMTS
};

#define EXEC_CACHE 32

struct sqlite_store {
	struct store base; /* the engine: first */
	sqlite3 *db;
	char *path;
	int busy;    /* the last failure was another's lock */
	int gone;    /* ... or found the source's sync state gone */
	int bind_rc; /* the first failed bind since the last step */
	int bind_at; /* ... and its parameter */
	sqlite3_stmt *stmt[NSTMTS];
	/* exec_bound()'s statements, kept prepared by the address of
	 * their text (a literal: the same text at each call). */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} exec[EXEC_CACHE];
	/* The statements built from the adapters' fields when it opens
	 * (store_sqlite_runs.c): the run's insert and update, and a delete
	 * and an insert of each array field's child table, by field (all
	 * adapters' fields in turn: child[child_base[a] + k]). */
	struct column_set cols;
	sqlite3_stmt *ins_run, *upd_run;
	struct child_stmts {
		sqlite3_stmt *del, *ins;
	} * child;
	size_t *child_base; /* adapter a's first in child[] */
	int batch;	/* a batch transaction is open (store_batch_begin) */
	int batch_lost; /* the last failed store_page() lost the batch */
};

/* The engine's handle of a struct store that store_sqlite.c opened. */
static inline struct sqlite_store *
sqlite_of(struct store *base)
{
	return (struct sqlite_store *)base;
}

/* store_sqlite.c */
int sqlite_version(struct store *base);
int sqlite_schema_current(struct store *base, char *why, size_t len);
int sqlite_migrate(struct store *base);
void sqlite_close(struct store *base);
void sqlite_checkpoint(struct store *base, int truncate);
void sqlite_checkpoint_over(struct store *base, long long bytes);

/* store_sqlite_sql.c */
int sq_fail(struct sqlite_store *store, const char *what);
int sq_exec(struct sqlite_store *store, const char *sql);
void sq_rollback(struct sqlite_store *store);
void sq_end_batch(struct sqlite_store *store);
int sq_rc(const struct sqlite_store *store);
void sq_clear_rc(struct sqlite_store *store);
int sqlite_batch_begin(struct store *base);
int sqlite_batch_commit(struct store *base);
int sq_query_int(struct sqlite_store *store, const char *sql, int64_t *out);
int sq_user_version(struct sqlite_store *store);
void sq_bind_text(struct sqlite_store *store, sqlite3_stmt *st, int i,
    const char *s);
void sq_bind_ts(struct sqlite_store *store, sqlite3_stmt *st, int i,
    const char *s);
void sq_bind_span(struct sqlite_store *store, sqlite3_stmt *st, int i,
    const char *p, size_t len);
void sq_bind_i64(struct sqlite_store *store, sqlite3_stmt *st, int i,
    int64_t v);
void sq_bind_opt_int(struct sqlite_store *store, sqlite3_stmt *st, int i,
    int set, int64_t v);
void sq_bind_int(struct sqlite_store *store, sqlite3_stmt *st, int i,
    struct opt_int o);
void sq_bind_num(struct sqlite_store *store, sqlite3_stmt *st, int i,
    struct opt_num o);
void sq_bind_bool(struct sqlite_store *store, sqlite3_stmt *st, int i,
    struct opt_bool o);
int sq_step(struct sqlite_store *store, sqlite3_stmt *st);
void sq_reset(sqlite3_stmt *st);
int exec_bound(struct sqlite_store *store, const char *what, const char *sql,
    const char *types, ...);
void sq_copy_col(sqlite3_stmt *st, int i, char *out, size_t len);
int sq_step_done(struct sqlite_store *store, sqlite3_stmt *st);
const char *sq_col_text(sqlite3_stmt *st, int i);

/* store_sqlite_runs.c */
/* Parameters of ins_run / upd_run before the columns of runs. */
enum {
	RP_SOURCE = 1,
	RP_EXTERNAL_ID,
	RP_KIND,
	RP_NOW,
	RP_ROWID,    /* update only */
	RP_WALK,     /* the walk_generation of the sighting */
	RP_TERMINAL, /* run_state_terminal() of its state */
	RP_COLUMNS   /* RUN_COMMON_COLUMNS, then cols.cols[] */
};
int sq_prepare_runs(struct sqlite_store *store);
void sq_unprepare_runs(struct sqlite_store *store);
/* Bind r's columns of runs (RP_COLUMNS on) as adapter a declares them. */
void sq_bind_run(struct sqlite_store *store, sqlite3_stmt *st,
    const struct run *r, size_t a);
/* Delete (replace) and insert run_id's rows of adapter a's arrays. */
int sq_write_arrays(struct sqlite_store *store, int64_t run_id,
    const struct run *r, size_t a, int replace);

/* store_sqlite_page.c */
int sq_prepare(struct sqlite_store *store);
int sq_save_state(struct sqlite_store *store, const char *source,
    const struct sync_state *s, const char *page_at);
int sq_save_counts(struct sqlite_store *store, int64_t pass_id,
    const struct pass_counts *c);
int sqlite_page(struct store *base, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now);
int sqlite_has_run(struct store *base, const char *source,
    const char *external_id);

/* store_sqlite_pass.c */
int sqlite_state_load(struct store *base, const char *source, const char *kind,
    const char *identity, struct sync_state *state);
int sqlite_pass_begin(struct store *base, struct store_pass *pass,
    enum walk_mode mode, const char *now);
int sqlite_pass_end(struct store *base, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now);
int sqlite_set_next_poll(struct store *base, const char *source,
    const char *when);
int64_t sqlite_runs_since(struct store *base, const char *source,
    const char *since, int unfinished, struct store_run_key **out);

/* store_sqlite_admin.c */
int sqlite_sources_sync(struct store *base, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg);
int sqlite_source_present(struct store *base, const char *source);
int64_t sqlite_live_runs(struct store *base, const char *source);
int sqlite_rename_source(struct store *base, const char *old,
    const char *new_name, char *why, size_t whylen);
int64_t sqlite_prune_history(struct store *base, const char *cutoff, int batch,
    int max_batches);
int sqlite_forget_source(struct store *base, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen);
int sqlite_status_each(struct store *base, store_status_fn *fn, void *arg);

#endif
