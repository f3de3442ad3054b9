/* SPDX-License-Identifier: ISC */
/*
 * store_pg.h: the PostgreSQL engine's own header, for its files alone.
 *
 * The engine (store_pg_engine) is files by concern, like SQLite's:
 * store_pg.c connects, checks, migrates and closes; store_pg_sql.c holds
 * what every statement goes through (parameters, the pipeline and the
 * pages sent ahead of their answers, failures, a lost connection and its
 * reconnection, the batch's transaction); store_pg_array.c a column of
 * a set of rows as one parameter; store_pg_runs.c builds the statements
 * that name the adapters' columns and store_pg_set.c holds the fixed
 * ones, each writing a set of a page's runs at once; store_pg_plan.c
 * decides what each run of a page needs, store_pg_guess.c keeps the last
 * pages to guess at the next, store_pg_page.c writes a page;
 * store_pg_pass.c a source's state and passes; store_pg_admin.c the
 * sources table, the commands and --status; store_pg_claim.c the claims
 * of sources.  Only these files include libpq-fe.h.
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
	int gate;	 /* a page's gate: 1 + its source's index in last[] */
};

#define PG_PIPE_MAX 2048

/* The statements of store_pg_page.c's pg_stmt_sql[], prepared once per
 * connection as "a0", "a1", ... by index (which checks them against the
 * schema when it connects); a page sends them as text (each planned when
 * it runs: pg_pipe_send_text()). */
enum pg_stmt_id {
	PS_SEL_RUNS,
	PS_GATE_OPEN,
	PS_GATE_FRESH,
	PS_SAVE_STATE,
	PS_SAVE_COUNTS,
	PS_HAS_RUN,
	PS_MARK_GONE,
	PS_NOTIFY,
	NPSTMTS
};

/* The statements that write a set of a page's runs at once
 * (store_pg_set.c), prepared as "s0", "s1", ... by index, sent as text. */
enum pg_set_id {
	PS_TOUCH_RUNS,
	PS_INS_CHANGES,
	PS_DEL_LINKS,
	PS_DEL_PROBLEMS,
	PS_UPSERT_PRS,
	PS_INS_LINKS,
	PS_INS_PROBLEMS,
	PS_INS_REJECTS,
	NPSETS
};

/*
 * Every write of a page holds this condition, the page's gate: opened
 * ('write') with the read of what the mirror holds of the page, or, for
 * a page tried as all new in one round trip, only when the mirror holds
 * none of its runs (store_pg_page.c).  A transaction's setting: gone at
 * its end, undone with a savepoint.
 */
#define PG_GATE "current_setting('agentsyncd.page', true) = 'write'"

/* The types of the parameters store_pg_runs.c declares (pg_type.h). */
#define PG_OID_INT8	   20
#define PG_OID_TEXT	   25
#define PG_OID_TEXT_ARRAY  1009
#define PG_OID_TIMESTAMPTZ 1184

/* A column of a set of rows: one text[] parameter, in binary
 * (store_pg_array.c). */
struct pg_array {
	char *p; /* the header, then the elements */
	size_t len, cap;
	int64_t n; /* elements */
	int has_null;
	int failed; /* out of memory, or past 1 GB */
};

void pa_init(struct pg_array *a);
void pa_free(struct pg_array *a);
void pa_add(struct pg_array *a, const char *s, size_t len); /* s NULL: NULL */
void pa_text(struct pg_array *a, const char *s);
void pa_ts(struct pg_array *a, const char *s); /* "" or NULL: NULL */
void pa_i64(struct pg_array *a, int64_t v);
void pa_opt_int(struct pg_array *a, int set, int64_t v);
void pa_bool(struct pg_array *a, int v);
void pa_num(struct pg_array *a, struct opt_num o);
void pa_value(struct pg_array *a, enum field_type t, const struct value *v);
void pp_array(struct pg_params *p, struct pg_array *a);
void pa_init_n(struct pg_array *a, size_t n);
void pa_free_n(struct pg_array *a, size_t n);
void pp_arrays(struct pg_params *p, struct pg_array *a, size_t n);

/* Runs of a page a statement writes at once, in the page's order, each
 * id once. */
struct pg_set {
	const struct run **runs;
	size_t n;
};

/* What every statement of a page's writes shares. */
struct pg_page_ctx {
	const char *source;
	size_t adapter; /* index in cols.types of the page's kind */
	const char *now;
	int64_t walk; /* the walk_generation of the sightings */
};

#define PG_MAX_CLAIMS 64

/* What the last page written of a source left (store_pg_page.c): a guess
 * at its next page, never trusted (the page's gate checks it). */
#define PG_LAST_PAGES 3
struct pg_last {
	char *source;
	/* the runs' ids of its last pages, each sorted (one allocation),
	 * [0] the last */
	char **ids[PG_LAST_PAGES];
	size_t nids[PG_LAST_PAGES];
	int fresh; /* at least half its runs were new: a walk's new pages */
	int64_t offset; /* the walk's offset after it (when moved) */
	int moved;	/* offset is set: a page was written this pass */
	int spoiled;	/* a guess failed this pass: no more guesses */
	int sent;	/* a page of it is in the pipeline being read */
};

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
	const char *lost_why; /* ... "with the connection", or another */
	int lost_again;	      /* ... not for a fault (STORE_AGAIN) */
	int gone;	      /* the last write found the sync state gone */
	int failed_conn;      /* the last failure lost the connection */
	/* the runs' statements built when it opens (store_pg_runs.c) */
	struct column_set cols;
	size_t *child_base; /* adapter a's first child statement pair */
	size_t nchild;
	/* their text: [0] the insert of runs, [1] the update, then the
	 * delete and the insert of child table N at [2 + 2N], [3 + 2N] */
	char **built;
	size_t nbuilt;
	/* the pipeline of the page being written */
	struct pg_expect pipe[PG_PIPE_MAX];
	int npipe;
	int nsyncs;	 /* syncs sent whose results are not read yet */
	int ahead;	 /* ... of pages sent ahead (a batch's, as guessed) */
	int gate_failed; /* a page's gate did not open (nothing of it
			  * written): 1 + its source's index in last[] */
	int pipe_error;	 /* a statement of the pipeline failed (logged) */
	char pipe_sqlstate[6]; /* ... with this SQLSTATE */
	const char *pipe_what; /* what a failure says it could not do */
	/* sources this connection holds (store_claim) */
	char *claims[PG_MAX_CLAIMS];
	int nclaims;
	/* the last page of each source written on this connection */
	struct pg_last *last;
	size_t nlast;
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
int pg_pipe_send_sql(struct pg_store *store, const char *sql);
int pg_pipe_send_text(struct pg_store *store, const char *sql, const Oid *types,
    const struct pg_params *p, int64_t *rows);
void pg_pipe_keep_last(struct pg_store *store, PGresult **keep);
int pg_pipe_send_prepare(struct pg_store *store, const char *name,
    const char *sql, int n, const Oid *types);
int pg_pipe_sync(struct pg_store *store);
int pg_pipe_send_ahead(struct pg_store *store);
void pg_settle(struct pg_store *store);
void pg_gates_clear(struct pg_store *store, int failed);
int pg_pipe_finish(struct pg_store *store);
int pg_rc(const struct pg_store *store);
void pg_copy(const PGresult *res, int row, int col, char *out, size_t len);
const char *pg_text(const PGresult *res, int row, int col);
int64_t pg_i64(const PGresult *res, int row, int col);
int pg_flag(const PGresult *res, int row, int col);
void pg_stmt_name(char *buf, size_t len, char prefix, size_t i);
double pg_now(void);

/* store_pg_runs.c */
int pg_prepare_runs(struct pg_store *store);
void pg_unprepare_runs(struct pg_store *store);
int pg_send_run_rows(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set, int insert);
int pg_send_child_deletes(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set, const struct pg_params *keys);
int pg_send_child_rows(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set);

/* store_pg_set.c */
int pg_prepare_sets(struct pg_store *store);
void pg_set_keys(struct pg_params *p, struct pg_array *keys,
    const struct pg_page_ctx *ctx, const struct pg_set *set);
int pg_send_touch(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set);
int pg_send_changes(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set);
int pg_send_deletes(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set);
int pg_send_prs(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set);
int pg_send_problems(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set);
int pg_send_rejects(struct pg_store *store, const struct pg_page_ctx *ctx,
    const char *kind, const struct page *page);

/* store_pg_plan.c: a page's runs and what each needs */
/* What the mirror holds of a run, before the page (or as an earlier
 * run of the page with the same id left it). */
struct held_run {
	int found, gone;
	const char *status;
	const char *raw;
	size_t raw_len;
};

/* A run of the page, and what the page does with it. */
struct plan_run {
	const struct run *r;
	struct held_run held;
	enum store_run_write w;
	int gen;    /* how many earlier runs of the page have its id */
	int change; /* its status changed: a row of run_status_changes */
};

/* An id and where it is (a run of the page, a row of a result). */
struct id_ref {
	const char *id;
	size_t i;
};

struct plan {
	struct plan_run *runs; /* the page's, in its order */
	struct id_ref *ids;    /* them by id, then by place */
	const struct run **set;
	size_t n;
	int ngen;
};

/* Which runs of a generation a set is. */
enum pg_plan_which {
	W_TOUCH,
	W_CHANGE,
	W_UPDATE,
	W_INSERT,
	W_WRITTEN
};

void pg_plan_free(struct plan *plan);
int pg_plan_init(struct plan *plan, const struct page *page);
int pg_plan_held(struct plan *plan, const PGresult *res);
void pg_plan_decide(struct plan *plan, int touch, struct pass_counts *c,
    const struct run **first);
const struct pg_set *pg_plan_set(struct plan *plan, int gen,
    enum pg_plan_which which, struct pg_set *set);
void pg_plan_guess(struct plan *plan, const struct pg_last *last,
    struct pg_array *held, struct pg_array *raws);

/* store_pg_guess.c */
struct pg_last *pg_last_of(struct pg_store *store, const char *source,
    int make);
void pg_remember(struct pg_store *store, const char *source,
    const struct page *page, int64_t offset, int64_t new_runs, int failed);
int pg_listed(const struct pg_last *last, const char *id);

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
/* Forget the last page of source (NULL: of every source). */
void pg_last_forget(struct pg_store *store, const char *source);
/* Forget what every source's last pages listed (rolled back). */
void pg_last_drop(struct pg_store *store);

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
