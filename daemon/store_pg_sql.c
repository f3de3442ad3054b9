/* SPDX-License-Identifier: ISC */
/*
 * store_pg_sql.c: what every statement of the PostgreSQL engine goes
 * through: its parameters (every value bound, never in the SQL text),
 * its execution, alone or in libpq's pipeline mode (a page is a few round
 * trips, not one per row), its failure (logged once with the server's
 * message), a lost connection (noticed, then reconnected with backoff:
 * 1 s doubling to 30 s), and the batch's transaction.
 *
 * This file knows no table: the statements are their callers'.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store_pg.h"

#define PG_BACKOFF_MIN 1.0
#define PG_BACKOFF_MAX 30.0

double
pg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
pp_reset(struct pg_params *p)
{
	p->n = 0;
	p->overflow = 0;
}

/* The next parameter's slot, or NULL (then the statement fails). */
static int
pp_slot(struct pg_params *p)
{
	if (p->n >= PG_MAXP) {
		p->overflow = 1;
		return -1;
	}
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	return p->n++;
}

void
pp_text(struct pg_params *p, const char *s)
{
	int i = pp_slot(p);

	if (i >= 0)
		p->v[i] = s;
}

void
pp_ts(struct pg_params *p, const char *s)
{
	pp_text(p, s != NULL && *s != '\0' ? s : NULL);
}

/* len bytes at s, sent in binary format (a text's bytes as they are). */
void
pp_span(struct pg_params *p, const char *s, size_t len)
{
	int i = pp_slot(p);

	if (i < 0)
		return;
	if (len > INT32_MAX) {
		p->overflow = 1;
		len = 0;
	}
	p->v[i] = s;
	p->len[i] = (int)len;
	p->fmt[i] = s != NULL ? 1 : 0;
}

void
pp_i64(struct pg_params *p, int64_t v)
{
	int i = pp_slot(p);

	if (i < 0)
		return;
	snprintf(p->num[i], sizeof(p->num[i]), "%" PRId64, v);
	p->v[i] = p->num[i];
}

void
pp_opt_int(struct pg_params *p, int set, int64_t v)
{
	if (set)
		pp_i64(p, v);
	else
		pp_text(p, NULL);
}

void
pp_bool(struct pg_params *p, int set, int v)
{
	pp_text(p, !set ? NULL : v ? "t" : "f");
}

void
pp_num(struct pg_params *p, struct opt_num o)
{
	int i;

	if (!o.set) {
		pp_text(p, NULL);
		return;
	}
	if ((i = pp_slot(p)) < 0)
		return;
	snprintf(p->num[i], sizeof(p->num[i]), "%.17g", o.v);
	p->v[i] = p->num[i];
}

void
pg_stmt_name(char *buf, size_t len, char prefix, size_t i)
{
	snprintf(buf, len, "%c%zu", prefix, i);
}

/* The connection is gone: what it held (claims, statements, the batch)
 * went with it; the next call reconnects, not before retry_at. */
void
pg_lost(struct pg_store *store)
{
	if (!store->ready)
		return;
	log_error("database '%s': connection lost: %s", store->uri,
	    PQerrorMessage(store->conn));
	store->ready = 0;
	store->npipe = 0;
	store->nsyncs = 0;
	store->ahead = 0;
	if (store->batch) {
		store->lost_pending = 1;
		store->lost_why = "with the connection";
		pg_last_drop(store);
	}
	store->batch = 0;
	store->failed_conn = 1;
	store->backoff = PG_BACKOFF_MIN;
	store->retry_at = pg_now() + store->backoff;
	pg_forget_claims(store);
}

/* Log what failed with the server's message (its first line), noting a
 * lost connection.  -1. */
int
pg_fail(struct pg_store *store, const char *what, const PGresult *res)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : "";
	size_t n;

	if (msg == NULL || *msg == '\0')
		msg = PQerrorMessage(store->conn);
	n = strcspn(msg, "\n");
	if (PQstatus(store->conn) == CONNECTION_BAD) {
		pg_lost(store);
		return -1;
	}
	log_error("database '%s': %s: %.*s", store->uri, what, (int)n, msg);
	return -1;
}

/*
 * Connected, with the session set and the statements prepared: 0; else
 * try to reconnect when the backoff allows, -1 when not (logged once a
 * try).
 */
int
pg_ready(struct pg_store *store)
{
	double now;

	if (store->ready && PQstatus(store->conn) == CONNECTION_OK)
		return 0;
	if (store->ready)
		pg_lost(store);
	now = pg_now();
	if (now < store->retry_at)
		return -1;
	PQreset(store->conn);
	/* a connection lost mid-page may have left pipeline mode on */
	if (PQpipelineStatus(store->conn) != PQ_PIPELINE_OFF)
		(void)PQexitPipelineMode(store->conn);
	if (PQstatus(store->conn) == CONNECTION_OK && pg_session(store) == 0) {
		log_info("database '%s': reconnected", store->uri);
		store->backoff = PG_BACKOFF_MIN;
		return 0;
	}
	log_error("database '%s': cannot reconnect (next try in %.0f s): %.*s",
	    store->uri, store->backoff,
	    (int)strcspn(PQerrorMessage(store->conn), "\n"),
	    PQerrorMessage(store->conn));
	store->retry_at = now + store->backoff;
	store->backoff *= 2;
	if (store->backoff > PG_BACKOFF_MAX)
		store->backoff = PG_BACKOFF_MAX;
	return -1;
}

static int
ok_status(ExecStatusType st)
{
	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A statement without parameters or result rows. */
int
pg_exec(struct pg_store *store, const char *what, const char *sql)
{
	PGresult *res;
	int rc = 0;

	pg_settle(store);
	res = PQexec(store->conn, sql);
	if (res == NULL || !ok_status(PQresultStatus(res)))
		rc = pg_fail(store, what, res);
	PQclear(res);
	return rc;
}

/* sql with p's parameters; its result (the caller PQclear()s), or NULL
 * after logging. */
PGresult *
pg_query(struct pg_store *store, const char *what, const char *sql,
    const struct pg_params *p)
{
	PGresult *res;

	pg_settle(store);
	if (p != NULL && p->overflow) {
		log_error("database '%s': %s: too many parameters", store->uri,
		    what);
		return NULL;
	}
	res = PQexecParams(store->conn, sql, p ? p->n : 0, NULL,
	    p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL, 0);
	if (res == NULL || !ok_status(PQresultStatus(res))) {
		pg_fail(store, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

PGresult *
pg_query_prepared(struct pg_store *store, const char *what, const char *name,
    const struct pg_params *p)
{
	PGresult *res;

	pg_settle(store);
	if (p->overflow) {
		log_error("database '%s': %s: too many parameters", store->uri,
		    what);
		return NULL;
	}
	res = PQexecPrepared(store->conn, name, p->n, p->v, p->len, p->fmt, 0);
	if (res == NULL || !ok_status(PQresultStatus(res))) {
		pg_fail(store, what, res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* sql without result rows; *rows (when not NULL) the rows it changed. */
int
pg_run(struct pg_store *store, const char *what, const char *sql,
    const struct pg_params *p, int64_t *rows)
{
	PGresult *res = pg_query(store, what, sql, p);

	if (res == NULL)
		return -1;
	if (rows != NULL)
		*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

/* The one integer sql answers. */
int
pg_query_i64(struct pg_store *store, const char *sql, const struct pg_params *p,
    int64_t *out)
{
	PGresult *res = pg_query(store, "cannot read", sql, p);

	if (res == NULL)
		return -1;
	*out = PQntuples(res) > 0 ? pg_i64(res, 0, 0) : 0;
	PQclear(res);
	return 0;
}

void
pg_rollback(struct pg_store *store)
{
	if (store->ready && PQtransactionStatus(store->conn) != PQTRANS_IDLE)
		(void)pg_exec(store, "cannot roll back", "ROLLBACK");
	store->batch = 0;
}

/* Commit an open batch before another write (store.h). */
void
pg_end_batch(struct pg_store *store)
{
	if (store->batch)
		(void)pg_batch_commit(&store->base);
}

/* A batch lost, not yet said (once): STORE_LOST, or STORE_AGAIN when a
 * page sent ahead was not written as guessed (no fault). */
int
pg_lost_batch(struct pg_store *store)
{
	int again;

	pg_settle(store);
	if (!store->lost_pending)
		return 0;
	again = store->lost_again;
	store->lost_pending = 0;
	store->lost_again = 0;
	store->batch_lost = 1;
	if (again)
		return STORE_AGAIN; /* pg_settle() said why */
	log_error("database '%s': the open batch was lost %s", store->uri,
	    store->lost_why != NULL ? store->lost_why : "with the connection");
	store->lost_why = NULL;
	return STORE_LOST;
}

int
pg_batch_begin(struct store *base)
{
	struct pg_store *store = pg_of(base);

	int rc;

	pg_end_batch(store);
	store->batch_lost = 0;
	if ((rc = pg_lost_batch(store)) != 0)
		return rc;
	if (pg_ready(store) == -1)
		return STORE_FAILED;
	if (pg_exec(store, "cannot begin a batch", "BEGIN") == -1)
		return STORE_FAILED;
	store->batch = 1;
	return STORE_OK;
}

int
pg_batch_commit(struct store *base)
{
	struct pg_store *store = pg_of(base);
	int rc;

	if ((rc = pg_lost_batch(store)) != 0)
		return rc == STORE_AGAIN ? STORE_AGAIN : -1;
	if (!store->batch)
		return 0;
	store->batch = 0;
	if (pg_exec(store, "cannot commit a batch", "COMMIT") == -1) {
		pg_rollback(store);
		return -1;
	}
	return 0;
}

/* Enter pipeline mode for the statements of a page. */
int
pg_pipe_begin(struct pg_store *store)
{
	pg_settle(store);
	store->npipe = 0;
	store->nsyncs = 0;
	store->gate_failed = 0;
	store->pipe_error = 0;
	store->pipe_sqlstate[0] = '\0';
	store->pipe_what = "cannot write the page";
	if (PQenterPipelineMode(store->conn) != 1)
		return pg_fail(store, "cannot enter pipeline mode", NULL);
	return 0;
}

/* The first failure of a pipeline: its SQLSTATE kept, logged unless it
 * is the one a missing sync state raises (the caller says that). */
static void
pipe_failed(struct pg_store *store, const PGresult *res)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	snprintf(store->pipe_sqlstate, sizeof(store->pipe_sqlstate), "%s",
	    code != NULL ? code : "");
	if (strcmp(store->pipe_sqlstate, "22012") != 0)
		(void)pg_fail(store, store->pipe_what, res);
}

/* A page's gate (entry e) said it wrote, or not (then its source is not
 * guessed at again this pass, and gate_failed names it). */
static void
gate_read(struct pg_store *store, const struct pg_expect *e,
    const PGresult *res)
{
	size_t i = (size_t)e->gate - 1;
	int open = PQntuples(res) == 1 &&
	    strcmp(PQgetvalue(res, 0, 0), "write") == 0;

	if (i >= store->nlast)
		return;
	store->last[i].sent = 1;
	if (!open) {
		store->last[i].spoiled = 1;
		store->gate_failed = e->gate;
	}
}

/* What the gates read said is forgotten; pages of whom the pipeline
 * failed (failed) are not guessed at again this pass. */
void
pg_gates_clear(struct pg_store *store, int failed)
{
	size_t i;

	for (i = 0; i < store->nlast; i++) {
		if (failed && store->last[i].sent)
			store->last[i].spoiled = 1;
		store->last[i].sent = 0;
	}
	store->gate_failed = 0;
}

/* Read the results of what was sent, up to and with every sync sent:
 * 0, or -1 when a statement failed (the first failure logged). */
static int
pipe_drain(struct pg_store *store)
{
	PGresult *res;
	ExecStatusType st;
	int k = 0, synced = 0, guard = 0;

	while (synced < store->nsyncs && guard++ < 4 * PG_PIPE_MAX + 16) {
		res = PQgetResult(store->conn);
		if (res == NULL) {
			if (PQstatus(store->conn) == CONNECTION_BAD) {
				store->pipe_error = 1;
				pg_lost(store);
				return -1;
			}
			continue; /* the end of one statement's results */
		}
		st = PQresultStatus(res);
		if (st == PGRES_PIPELINE_SYNC) {
			synced++;
		} else if (ok_status(st)) {
			if (k < store->npipe && store->pipe[k].rows != NULL)
				*store->pipe[k].rows = strtoll(PQcmdTuples(res),
				    NULL, 10);
			if (k < store->npipe && store->pipe[k].gate > 0)
				gate_read(store, &store->pipe[k], res);
			if (k < store->npipe && store->pipe[k].keep != NULL) {
				*store->pipe[k].keep = res;
				res = NULL;
			}
			k++;
		} else {
			if (!store->pipe_error && st != PGRES_PIPELINE_ABORTED)
				pipe_failed(store, res);
			store->pipe_error = 1;
			k++;
		}
		PQclear(res);
	}
	store->npipe = 0;
	synced = synced == store->nsyncs;
	store->nsyncs = 0;
	return store->pipe_error || !synced ? -1 : 0;
}

/* Pipeline mode could not be left (results not all read): no call could
 * use the connection, so it is dropped, and made again.  -1. */
static int
pipe_stuck(struct pg_store *store)
{
	log_error("database '%s': cannot leave pipeline mode: %.*s", store->uri,
	    (int)strcspn(PQerrorMessage(store->conn), "\n"),
	    PQerrorMessage(store->conn));
	pg_lost(store);
	return -1;
}

/* Sync and read every result sent so far, staying in pipeline mode. */
int
pg_pipe_sync(struct pg_store *store)
{
	if (!store->ready || PQpipelineSync(store->conn) != 1)
		return pg_fail(store, "cannot send the page", NULL);
	store->nsyncs++;
	return pipe_drain(store);
}

/* Sync and send what was queued (a page of a batch, as guessed), and go
 * on without reading its results: pg_settle() reads them. */
int
pg_pipe_send_ahead(struct pg_store *store)
{
	if (!store->ready || PQpipelineSync(store->conn) != 1)
		return pg_fail(store, "cannot send the page", NULL);
	store->nsyncs++;
	store->ahead++;
	return 0;
}

/*
 * Read what the pages sent ahead wrote, and leave pipeline mode.  When
 * one failed (logged), or its guess did not hold (nothing of it written),
 * the open batch is lost: rolled back whole, its sources not guessed at
 * again this pass, and the next page, batch or pass call says so
 * (STORE_LOST), so that each source is put back where the batch began.
 */
void
pg_settle(struct pg_store *store)
{
	int rc, failed;

	if (store->ahead == 0)
		return;
	store->ahead = 0;
	rc = store->ready ? pipe_drain(store) : -1;
	if (store->ready && PQexitPipelineMode(store->conn) != 1)
		rc = pipe_stuck(store);
	failed = store->gate_failed;
	if (rc == 0 && failed > 0 && (size_t)failed <= store->nlast)
		log_info(
		    "source '%s': a page sent ahead held runs the mirror had otherwise: its batch is rolled back and written again, page by page",
		    store->last[failed - 1].source);
	pg_gates_clear(store, rc == -1);
	if (rc == 0 && failed == 0)
		return;
	store->pipe_error = 0;
	if (store->batch) {
		store->batch = 0;
		store->lost_pending = 1;
		store->lost_again = rc == 0;
		store->lost_why = "with a page sent ahead of its answer";
		if (store->ready)
			(void)pg_exec(store, "cannot roll back", "ROLLBACK");
	}
	/* what the last pages wrote went with the batch */
	pg_last_drop(store);
}

/* Sync and read every result; then leave pipeline mode. */
int
pg_pipe_finish(struct pg_store *store)
{
	int rc = -1;

	if (store->ready && PQpipelineSync(store->conn) == 1) {
		store->nsyncs++;
		rc = pipe_drain(store);
	} else
		(void)pg_fail(store, "cannot send the page", NULL);
	if (store->ready && PQexitPipelineMode(store->conn) != 1)
		rc = pipe_stuck(store);
	return rc;
}

/* Room for one more result: a full pipeline is synced and read first. */
static int
pipe_room(struct pg_store *store)
{
	if (store->npipe < PG_PIPE_MAX)
		return 0;
	if (PQpipelineSync(store->conn) != 1)
		return pg_fail(store, "cannot send the page", NULL);
	store->nsyncs++;
	return pipe_drain(store);
}

/* The statement just sent is the pipeline's next entry: its row count
 * into *rows (NULL: not kept). */
static void
pipe_push(struct pg_store *store, int64_t *rows)
{
	store->pipe[store->npipe].keep = NULL;
	store->pipe[store->npipe].gate = 0;
	store->pipe[store->npipe++].rows = rows;
}

/*
 * Queue sql with p, its parameters' types types[0 .. p->n - 1] (NULL or
 * 0: inferred); its row count into *rows.  Unnamed: planned when it runs,
 * with the tables as they are (a prepared statement's generic plan is
 * made once, and one made while a backfill's tables were near empty
 * scans them whole ever after).
 */
int
pg_pipe_send_text(struct pg_store *store, const char *sql, const Oid *types,
    const struct pg_params *p, int64_t *rows)
{
	if (p->overflow) {
		log_error("database '%s': too many parameters", store->uri);
		return -1;
	}
	if (pipe_room(store) == -1)
		return -1;
	if (PQsendQueryParams(store->conn, sql, p->n, types, p->v, p->len,
		p->fmt, 0) != 1)
		return pg_fail(store, "cannot send the page", NULL);
	pipe_push(store, rows);
	return 0;
}

/* Queue the preparation of sql as statement name, its parameters'
 * types types[0 .. n - 1] (0: inferred). */
int
pg_pipe_send_prepare(struct pg_store *store, const char *name, const char *sql,
    int n, const Oid *types)
{
	if (pipe_room(store) == -1)
		return -1;
	if (PQsendPrepare(store->conn, name, sql, n, types) != 1)
		return pg_fail(store, "cannot prepare statement", NULL);
	pipe_push(store, NULL);
	return 0;
}

/* The result of the statement queued last goes into *keep. */
void
pg_pipe_keep_last(struct pg_store *store, PGresult **keep)
{
	if (store->npipe > 0)
		store->pipe[store->npipe - 1].keep = keep;
}

/* Queue sql, a literal without parameters (BEGIN, SAVEPOINT ...). */
int
pg_pipe_send_sql(struct pg_store *store, const char *sql)
{
	struct pg_params p;

	pp_reset(&p);
	return pg_pipe_send_text(store, sql, NULL, &p, NULL);
}

/* The enum store_rc of the last failure. */
int
pg_rc(const struct pg_store *store)
{
	if (store->batch_lost)
		return STORE_LOST;
	if (store->gone)
		return STORE_GONE;
	return STORE_FAILED;
}

void
pg_copy(const PGresult *res, int row, int col, char *out, size_t len)
{
	const char *s = pg_text(res, row, col);

	if (len == 0)
		return;
	snprintf(out, len, "%s", s != NULL ? s : "");
}

/* A column's text, NULL for NULL. */
const char *
pg_text(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	return PQgetvalue(res, row, col);
}

int64_t
pg_i64(const PGresult *res, int row, int col)
{
	const char *s = pg_text(res, row, col);

	return s != NULL ? strtoll(s, NULL, 10) : 0;
}

/* A boolean column: 1 for true, 0 for false or NULL. */
int
pg_flag(const PGresult *res, int row, int col)
{
	const char *s = pg_text(res, row, col);

	return s != NULL && (s[0] == 't' || s[0] == '1');
}
