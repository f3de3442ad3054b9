/* SPDX-License-Identifier: ISC */
/*
 * store_pg.h: the PostgreSQL engine's own header, for its files alone.
 *
 * The engine (store_pg_engine) is files by concern, like SQLite's:
 * store_pg.c connects, checks, migrates and closes; store_pg_sql.c holds
 * what every statement goes through (parameters, the pipeline, failures,
 * a lost connection and its reconnection, the batch's transaction);
 * store_pg_runs.c builds the statements that name the adapters' columns;
 * store_pg_page.c writes a page; store_pg_pass.c a source's state and
 * passes; store_pg_admin.c the sources table, the commands, --status and
 * the claims of sources.  Only these files include libpq-fe.h.
 */
#ifndef AGENTSYNCD_STORE_PG_H
#define AGENTSYNCD_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "store_columns.h"
#include "store_engine.h"

/* Parameters of one statement, every value a bound parameter: text
 * (NUL-terminated), or bytes (binary format: a text column's bytes). */
#define PG_MAXP 96
struct pg_params {
	int n;
	int overflow;
	const char *v[PG_MAXP];
	int len[PG_MAXP];
	int fmt[PG_MAXP];
	char num[PG_MAXP][32];
};

void pp_reset(struct pg_params *p);
void pp_text(struct pg_params *p, const char *s); /* NULL: NULL */
void pp_ts(struct pg_params *p, const char *s);	  /* "" or NULL: NULL */
void pp_span(struct pg_params *p, const char *s, size_t len);
void pp_i64(struct pg_params *p, int64_t v);
void pp_opt_int(struct pg_params *p, int set, int64_t v);
void pp_bool(struct pg_params *p, int set, int v);
void pp_num(struct pg_params *p, struct opt_num o);

/* What a pipelined statement's result is kept for. */
struct pg_expect {
	int64_t *rows;	 /* its row count goes here, or NULL */
	PGresult **keep; /* its result goes here (the caller clears it) */
};

#define PG_PIPE_MAX 2048

/* The statements prepared once per connection (store_pg_page.c's
 * pg_stmt_sql[]), named "a0", "a1", ... by index. */
enum pg_stmt_id {
	PS_SEL_RUNS,
	PS_TOUCH_RUN,
	PS_INS_CHANGE,
	PS_DEL_LINKS,
	PS_DEL_PROBLEMS,
	PS_UPSERT_PR,
	PS_INS_LINK,
	PS_INS_PROBLEM,
	PS_INS_REJECT,
	PS_SAVE_STATE,
	PS_SAVE_COUNTS,
	PS_HAS_RUN,
	PS_MARK_GONE,
	PS_NOTIFY,
	NPSTMTS
};

#define PG_MAX_CLAIMS 64

struct pg_store {
	struct store base; /* the engine: first */
	PGconn *conn;
	char *uri;	  /* the `database` setting: no secret (conf refuses) */
	char *schema;	  /* database_schema, an identifier */
	char *password;	  /* database_password_file's, or NULL */
	int flags;	  /* STORE_READONLY, ... */
	int ready;	  /* connected, session set, statements prepared */
	double retry_at;  /* monotonic: the next reconnection attempt */
	double backoff;	  /* seconds until the one after */
	int batch;	  /* a batch transaction is open */
	int batch_lost;	  /* the last failed page lost the batch */
	int lost_pending; /* a batch went with a lost connection: the next
			   * page, batch or pass call says so (STORE_LOST) */
	int gone;	  /* the last write found the sync state gone */
	int failed_conn;  /* the last failure lost the connection */
	/* the runs' statements built when it opens (store_pg_runs.c) */
	struct column_set cols;
	size_t *child_base; /* adapter a's first child statement pair */
	size_t nchild;
	/* the pipeline of the page being written */
	struct pg_expect pipe[PG_PIPE_MAX];
	int npipe;
	int pipe_error;	       /* a statement of the pipeline failed (logged) */
	char pipe_sqlstate[6]; /* ... with this SQLSTATE */
	/* sources this connection holds (store_claim) */
	char *claims[PG_MAX_CLAIMS];
	int nclaims;
	/* the holder this process writes: "HOST pid PID" */
	char holder[320];
};

static inline struct pg_store *
pg_of(struct store *base)
{
	return (struct pg_store *)base;
}

/* store_pg.c */
int pg_session(struct pg_store *store);

/* store_pg_sql.c */
int pg_ready(struct pg_store *store);
int pg_fail(struct pg_store *store, const char *what, const PGresult *res);
void pg_lost(struct pg_store *store);
int pg_exec(struct pg_store *store, const char *what, const char *sql);
PGresult *pg_query(struct pg_store *store, const char *what, const char *sql,
    const struct pg_params *p);
int pg_run(struct pg_store *store, const char *what, const char *sql,
    const struct pg_params *p, int64_t *rows);
PGresult *pg_query_prepared(struct pg_store *store, const char *what,
    const char *name, const struct pg_params *p);
int pg_query_i64(struct pg_store *store, const char *sql,
    const struct pg_params *p, int64_t *out);
void pg_rollback(struct pg_store *store);
void pg_end_batch(struct pg_store *store);
int pg_lost_batch(struct pg_store *store);
int pg_batch_begin(struct store *base);
int pg_batch_commit(struct store *base);
int pg_pipe_begin(struct pg_store *store);
int pg_pipe_send(struct pg_store *store, const char *name,
    const struct pg_params *p, int64_t *rows);
int pg_pipe_send_keep(struct pg_store *store, const char *name,
    const struct pg_params *p, PGresult **keep);
int pg_pipe_send_sql(struct pg_store *store, const char *sql);
int pg_pipe_sync(struct pg_store *store);
int pg_pipe_finish(struct pg_store *store);
int pg_rc(const struct pg_store *store);
void pg_copy(const PGresult *res, int row, int col, char *out, size_t len);
const char *pg_text(const PGresult *res, int row, int col);
int64_t pg_i64(const PGresult *res, int row, int col);
int pg_flag(const PGresult *res, int row, int col);
void pg_stmt_name(char *buf, size_t len, char prefix, size_t i);
double pg_now(void);

/* store_pg_runs.c: parameters of the run's insert and update */
enum {
	PP_SOURCE = 1,
	PP_EXTERNAL_ID,
	PP_KIND,
	PP_NOW,
	PP_WALK,     /* the walk_generation of the sighting */
	PP_TERMINAL, /* run_state_terminal() of its state */
	PP_COLUMNS   /* RUN_COMMON_COLUMNS, then cols.cols[] */
};
int pg_prepare_runs(struct pg_store *store);
void pg_unprepare_runs(struct pg_store *store);
void pg_params_run(struct pg_store *store, struct pg_params *p,
    const struct run *r, size_t a);
int pg_send_arrays(struct pg_store *store, const char *source,
    const struct run *r, size_t a, int replace);

/* store_pg_page.c */
int pg_prepare(struct pg_store *store);
void pg_params_state(struct pg_params *p, const char *source,
    const struct sync_state *s, const char *page_at);
void pg_params_counts(struct pg_params *p, int64_t pass_id,
    const struct pass_counts *c);
int pg_page(struct store *base, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now);
int pg_has_run(struct store *base, const char *source, const char *external_id);

/* store_pg_pass.c */
int pg_state_load(struct store *base, const char *source, const char *kind,
    const char *identity, struct sync_state *state);
int pg_pass_begin(struct store *base, struct store_pass *pass,
    enum walk_mode mode, const char *now);
int pg_pass_end(struct store *base, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now);
int pg_set_next_poll(struct store *base, const char *source, const char *when);
int64_t pg_runs_since(struct store *base, const char *source, const char *since,
    int unfinished, struct store_run_key **out);

/* store_pg_admin.c */
int pg_sources_sync(struct store *base, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg);
int pg_source_present(struct store *base, const char *source);
int64_t pg_live_runs(struct store *base, const char *source);
int pg_rename_source(struct store *base, const char *old, const char *new_name,
    char *why, size_t whylen);
int64_t pg_prune_history(struct store *base, const char *cutoff, int batch,
    int max_batches);
int pg_forget_source(struct store *base, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen);
int pg_status_each(struct store *base, store_status_fn *fn, void *arg);

/* store_pg_claim.c */
int pg_claim(struct store *base, const char *source, char *holder, size_t len);
void pg_release(struct store *base, const char *source);
void pg_forget_claims(struct pg_store *store);
/* 1 when this process holds source (pg_claim()), 0 when not. */
int pg_holds(const struct pg_store *store, const char *source);

#endif
