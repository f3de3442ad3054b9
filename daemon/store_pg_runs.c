/* SPDX-License-Identifier: ISC */
/*
 * store_pg_runs.c: the PostgreSQL engine's statements that name the
 * adapters' typed columns and child tables, built when it connects from
 * what every adapter declares (store_columns.h), and their parameters.
 *
 * The SQL is literals and names store_columns.c checked to be identifiers
 * (of const tables compiled in); every value is a bound parameter.  The
 * statements are prepared on the connection ("r0" the insert of a run,
 * "r1" its update, "dN"/"cN" the delete and insert of child table N) and
 * sent in the page's pipeline (store_pg_page.c).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

/* A new run's first sighting, the first row of its status history, from
 * the row the insert returns (one statement, not two). */
#define FIRST_SIGHTING_OF                                                     \
	"id, first_seen_at, status, state, source, external_id, updated_at) " \
	"INSERT INTO run_status_changes (run_id, observed_at, old_status, "   \
	"new_status, old_state, new_state, source, external_id, updated_at) " \
	"SELECT id, first_seen_at, NULL, status, NULL, state, source, "       \
	"external_id, updated_at FROM r"

/* finished_seen_at: the first time the run is seen in a terminal state. */
#define FINISHED_NOW "CASE WHEN $6::boolean THEN $4::timestamptz END"

/* Prepare the text of b (NUL-terminated) as statement name. */
static int
prepare_built(struct pg_store *store, const struct buf *b, const char *name)
{
	const char *sql = b->p;
	PGresult *res = PQprepare(store->conn, name, sql, 0, NULL);
	int rc = 0;

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = pg_fail(store, "cannot prepare statement", res);
	PQclear(res);
	return rc;
}

static int
add(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/*
 * The insert and the update of one run, every column of runs named.
 * The insert writes the run's first sighting too.
 * Parameters: $1 source, $2 external id, $3 kind, $4 now, $5 walk, $6
 * terminal, then the common columns and cols[] (every parameter is
 * used: PostgreSQL infers each one's type).  The update finds the run
 * by its key, so that a run a page lists twice is written as SQLite's
 * engine writes it (the second sees the first).
 */
static int
prepare_run_rows(struct pg_store *store)
{
	const struct column_set *cs = &store->cols;
	size_t nparams = RUN_NCOMMON + cs->ncols;
	struct buf b;
	int rc = -1;

	buf_init(&b, 1024 * 1024);
	if (add(&b,
		"WITH r AS (INSERT INTO runs (source, external_id, kind, "
		"first_seen_at, last_seen_at, last_seen_walk, "
		"changed_at, finished_seen_at, " RUN_COMMON_COLUMNS) == -1 ||
	    columns_names(cs, &b) == -1 ||
	    add(&b, ") VALUES ($1, $2, $3, $4, $4, $5, $4, " FINISHED_NOW) ==
		-1 ||
	    columns_params(nparams, PP_COLUMNS, '$', &b) == -1 ||
	    add(&b, ") RETURNING " FIRST_SIGHTING_OF) == -1)
		goto oom;
	if (prepare_built(store, &b, "r0") == -1)
		goto done;
	buf_free(&b);
	if (add(&b,
		"UPDATE runs SET (kind, last_seen_at, last_seen_walk, "
		"changed_at, deleted_upstream_at, finished_seen_at, " RUN_COMMON_COLUMNS) ==
		-1 ||
	    columns_names(cs, &b) == -1 ||
	    add(&b,
		") = ($3, $4, $5, $4, NULL, coalesce(finished_seen_at, " FINISHED_NOW
		")") == -1 ||
	    columns_params(nparams, PP_COLUMNS, '$', &b) == -1 ||
	    add(&b, ") WHERE source = $1 AND external_id = $2") == -1)
		goto oom;
	rc = prepare_built(store, &b, "r1");
	goto done;
oom:
	log_error("out of memory");
done:
	buf_free(&b);
	return rc;
}

/* The delete and insert of array field f's child table, as statements
 * dN and cN; the insert finds its run by source and external id. */
static int
prepare_child(struct pg_store *store, const struct field *f, size_t n)
{
	char name[32];
	struct buf b;
	size_t k;
	int rc = -1;

	buf_init(&b, 64 * 1024);
	if (add(&b, "DELETE FROM ") == -1 || add(&b, f->table) == -1 ||
	    add(&b,
		" WHERE run_id = (SELECT id FROM runs WHERE source = $1 "
		"AND external_id = $2)") == -1)
		goto oom;
	pg_stmt_name(name, sizeof(name), 'd', n);
	if (prepare_built(store, &b, name) == -1)
		goto done;
	buf_free(&b);
	if (add(&b, "INSERT INTO ") == -1 || add(&b, f->table) == -1 ||
	    add(&b, " (run_id, position") == -1)
		goto oom;
	for (k = 0; k < f->nitems; k++)
		if (add(&b, ", ") == -1 || add(&b, f->items[k].column) == -1)
			goto oom;
	if (add(&b,
		") VALUES ((SELECT id FROM runs WHERE source = $1 AND "
		"external_id = $2), $3") == -1 ||
	    columns_params(f->nitems, 4, '$', &b) == -1 || add(&b, ")") == -1)
		goto oom;
	pg_stmt_name(name, sizeof(name), 'c', n);
	rc = prepare_built(store, &b, name);
	goto done;
oom:
	log_error("out of memory");
done:
	buf_free(&b);
	return rc;
}

static int
is_array(const struct field *f)
{
	return f->type == FIELD_STRINGS || f->type == FIELD_OBJECTS;
}

int
pg_prepare_runs(struct pg_store *store)
{
	char err[256];
	size_t a, k, n = 0;

	pg_unprepare_runs(store);
	if (columns_load(&store->cols, source_types, err, sizeof(err)) == -1) {
		log_error("database '%s': %s", store->uri, err);
		return -1;
	}
	store->child_base = calloc(store->cols.nadapters + 1, sizeof(size_t));
	if (store->child_base == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (prepare_run_rows(store) == -1)
		return -1;
	for (a = 0; store->cols.types[a] != NULL; a++) {
		const struct source_type *t = store->cols.types[a];

		store->child_base[a] = n;
		for (k = 0; k < t->nfields; k++, n++)
			if (is_array(&t->fields[k]) &&
			    prepare_child(store, &t->fields[k], n) == -1)
				return -1;
	}
	store->nchild = n;
	return 0;
}

void
pg_unprepare_runs(struct pg_store *store)
{
	free(store->child_base);
	store->child_base = NULL;
	store->nchild = 0;
	if (store->cols.cols != NULL || store->cols.field_of != NULL)
		columns_free(&store->cols);
}

/* One declared value (of field type t), NULL for v. */
static void
param_value(struct pg_params *p, enum field_type t, const struct value *v)
{
	struct opt_num d;

	if (v == NULL || !v->set) {
		pp_text(p, NULL);
		return;
	}
	switch (t) {
	case FIELD_TEXT:
	case FIELD_TIME:
		pp_text(p, v->v.s);
		break;
	case FIELD_JSON:
		pp_span(p, v->v.s, v->len);
		break;
	case FIELD_INT:
		pp_i64(p, v->v.i);
		break;
	case FIELD_BOOL:
	case FIELD_PRESENT:
		pp_bool(p, 1, v->v.i != 0);
		break;
	case FIELD_REAL:
		d.set = 1;
		d.v = v->v.d;
		pp_num(p, d);
		break;
	case FIELD_STRINGS:
	case FIELD_OBJECTS:
		pp_i64(p, (int64_t)v->len);
		break;
	}
}

/* r's columns of runs (PP_COLUMNS on) as adapter a declares them. */
void
pg_params_run(struct pg_store *store, struct pg_params *p, const struct run *r,
    size_t a)
{
	const struct column_set *cs = &store->cols;
	size_t c;
	int k;

	pp_text(p, r->status);
	pp_text(p, run_state_name(r->state));
	pp_text(p, r->title);
	pp_text(p, r->web_url);
	pp_ts(p, r->created_at);
	pp_ts(p, r->updated_at);
	pp_span(p, r->raw, r->raw_len);
	pp_opt_int(p, r->prs_sent, (int64_t)r->nprs);
	for (c = 0; c < cs->ncols; c++) {
		k = cs->field_of[a * cs->ncols + c];
		param_value(p, cs->cols[c].type,
		    k < 0 || r->values == NULL ? NULL : &r->values[k]);
	}
}

/* Queue row j of array field f of r into child statement n. */
static int
send_row(struct pg_store *store, size_t n, const char *source,
    const struct run *r, const struct field *f, const struct value *v, size_t j)
{
	struct pg_params p;
	struct value s;
	char name[32];
	size_t k;

	pp_reset(&p);
	pp_text(&p, source);
	pp_text(&p, r->external_id);
	pp_i64(&p, (int64_t)j);
	if (f->type == FIELD_STRINGS) {
		s.v.s = v->v.strs[j];
		s.set = s.v.s != NULL;
		param_value(&p, FIELD_TEXT, &s);
	} else {
		for (k = 0; k < f->nitems; k++)
			param_value(&p, f->items[k].type,
			    &v->v.cells[j * f->nitems + k]);
	}
	pg_stmt_name(name, sizeof(name), 'c', n);
	return pg_pipe_send(store, name, &p, NULL);
}

/* Queue the delete (replace) and the rows of adapter a's arrays. */
int
pg_send_arrays(struct pg_store *store, const char *source, const struct run *r,
    size_t a, int replace)
{
	const struct source_type *t = store->cols.types[a];
	size_t base = store->child_base[a], k, j;
	struct pg_params p;
	char name[32];

	for (k = 0; k < t->nfields; k++) {
		const struct field *f = &t->fields[k];
		const struct value *v = r->values ? &r->values[k] : NULL;

		if (!is_array(f))
			continue;
		if (replace) {
			pp_reset(&p);
			pp_text(&p, source);
			pp_text(&p, r->external_id);
			pg_stmt_name(name, sizeof(name), 'd', base + k);
			if (pg_pipe_send(store, name, &p, NULL) == -1)
				return -1;
		}
		for (j = 0; v != NULL && v->set && j < v->len; j++)
			if (send_row(store, base + k, source, r, f, v, j) == -1)
				return -1;
	}
	return 0;
}
