/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite_runs.c: the SQLite engine's statements that name the
 * adapters' typed columns and child tables, built when it opens from
 * what every adapter declares (store_columns.h), and their binding.
 *
 * The SQL is literals and names store_columns.c checked to be identifiers
 * (of const tables compiled in); every value is a bound parameter.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_sqlite.h"

/* finished_seen_at: the first time the run is seen in a terminal state. */
#define FINISHED_NOW "CASE WHEN ?7 THEN ?4 END"

/* Prepare the text of b (NUL-terminated) into *st. */
static int
prepare_built(struct sqlite_store *store, const struct buf *b,
    sqlite3_stmt **st)
{
	const char *sql = b->p;

	if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
		st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot prepare statement");
	return 0;
}

static int
add(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* The insert and the update of one run, every column of runs named. */
static int
prepare_run_rows(struct sqlite_store *store)
{
	const struct column_set *cs = &store->cols;
	size_t nparams = RUN_NCOMMON + cs->ncols;
	struct buf b;
	int rc = -1;

	buf_init(&b, 1024 * 1024);
	if (add(&b,
		"INSERT INTO runs (source, external_id, kind, "
		"first_seen_at, last_seen_at, last_seen_walk, "
		"changed_at, finished_seen_at, " RUN_COMMON_COLUMNS) == -1 ||
	    columns_names(cs, &b) == -1 ||
	    add(&b, ") VALUES (?1, ?2, ?3, ?4, ?4, ?6, ?4, " FINISHED_NOW) ==
		-1 ||
	    columns_params(nparams, RP_COLUMNS, '?', &b) == -1 ||
	    add(&b, ")") == -1)
		goto oom;
	if (prepare_built(store, &b, &store->ins_run) == -1)
		goto done;
	buf_free(&b);
	if (add(&b,
		"UPDATE runs SET (last_seen_at, last_seen_walk, "
		"changed_at, deleted_upstream_at, finished_seen_at, " RUN_COMMON_COLUMNS) ==
		-1 ||
	    columns_names(cs, &b) == -1 ||
	    add(&b,
		") = (?4, ?6, ?4, NULL, coalesce(finished_seen_at, " FINISHED_NOW
		")") == -1 ||
	    columns_params(nparams, RP_COLUMNS, '?', &b) == -1 ||
	    add(&b, ") WHERE id = ?5") == -1)
		goto oom;
	rc = prepare_built(store, &b, &store->upd_run);
	goto done;
oom:
	log_error("out of memory");
done:
	buf_free(&b);
	return rc;
}

/* The delete and insert of array field f's child table. */
static int
prepare_child(struct sqlite_store *store, const struct field *f,
    struct child_stmts *cs)
{
	struct buf b;
	size_t k;
	int rc = -1;

	buf_init(&b, 64 * 1024);
	if (add(&b, "DELETE FROM ") == -1 || add(&b, f->table) == -1 ||
	    add(&b, " WHERE run_id = ?1") == -1)
		goto oom;
	if (prepare_built(store, &b, &cs->del) == -1)
		goto done;
	buf_free(&b);
	if (add(&b, "INSERT INTO ") == -1 || add(&b, f->table) == -1 ||
	    add(&b, " (run_id, position") == -1)
		goto oom;
	for (k = 0; k < f->nitems; k++)
		if (add(&b, ", ") == -1 || add(&b, f->items[k].column) == -1)
			goto oom;
	if (add(&b, ") VALUES (?1, ?2") == -1 ||
	    columns_params(f->nitems, 3, '?', &b) == -1 || add(&b, ")") == -1)
		goto oom;
	rc = prepare_built(store, &b, &cs->ins);
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

/* child[] and child_base[]: a pair of statements per array field. */
static int
prepare_children(struct sqlite_store *store)
{
	size_t a, k, n = 0;

	store->child_base = calloc(store->cols.nadapters + 1, sizeof(size_t));
	for (a = 0; store->cols.types[a] != NULL; a++)
		n += store->cols.types[a]->nfields;
	store->child = calloc(n ? n : 1, sizeof(*store->child));
	if (store->child == NULL || store->child_base == NULL) {
		log_error("out of memory");
		return -1;
	}
	for (a = 0, n = 0; store->cols.types[a] != NULL; a++) {
		const struct source_type *t = store->cols.types[a];

		store->child_base[a] = n;
		for (k = 0; k < t->nfields; k++, n++)
			if (is_array(&t->fields[k]) &&
			    prepare_child(store, &t->fields[k],
				&store->child[n]) == -1)
				return -1;
	}
	return 0;
}

int
sq_prepare_runs(struct sqlite_store *store)
{
	char err[256];

	if (columns_load(&store->cols, source_types, err, sizeof(err)) == -1) {
		log_error("database '%s': %s", store->path, err);
		return -1;
	}
	if (prepare_run_rows(store) == -1 || prepare_children(store) == -1)
		return -1;
	return 0;
}

void
sq_unprepare_runs(struct sqlite_store *store)
{
	size_t a, k, n;

	sqlite3_finalize(store->ins_run);
	sqlite3_finalize(store->upd_run);
	for (a = 0, n = 0; store->child != NULL && store->cols.types[a] != NULL;
	     a++)
		for (k = 0; k < store->cols.types[a]->nfields; k++, n++) {
			sqlite3_finalize(store->child[n].del);
			sqlite3_finalize(store->child[n].ins);
		}
	free(store->child);
	free(store->child_base);
	columns_free(&store->cols);
	store->ins_run = store->upd_run = NULL;
	store->child = NULL;
	store->child_base = NULL;
}

/* One declared value (of field type t) into parameter i; NULL for v. */
static void
bind_value(struct sqlite_store *store, sqlite3_stmt *st, int i,
    enum field_type t, const struct value *v)
{
	struct opt_num d;

	if (v == NULL || !v->set) {
		sq_bind_span(store, st, i, NULL, 0);
		return;
	}
	switch (t) {
	case FIELD_TEXT:
	case FIELD_TIME:
		sq_bind_text(store, st, i, v->v.s);
		break;
	case FIELD_JSON:
		sq_bind_span(store, st, i, v->v.s, v->len);
		break;
	case FIELD_INT:
	case FIELD_BOOL:
	case FIELD_PRESENT:
		sq_bind_i64(store, st, i, v->v.i);
		break;
	case FIELD_REAL:
		d.set = 1;
		d.v = v->v.d;
		sq_bind_num(store, st, i, d);
		break;
	case FIELD_STRINGS:
	case FIELD_OBJECTS:
		sq_bind_i64(store, st, i, (int64_t)v->len);
		break;
	}
}

void
sq_bind_run(struct sqlite_store *store, sqlite3_stmt *st, const struct run *r,
    size_t a)
{
	const struct column_set *cs = &store->cols;
	int i = RP_COLUMNS;
	size_t c;
	int k;

	sq_bind_text(store, st, i++, r->status);
	sq_bind_text(store, st, i++, run_state_name(r->state));
	sq_bind_text(store, st, i++, r->title);
	sq_bind_text(store, st, i++, r->web_url);
	sq_bind_text(store, st, i++, r->created_at);
	sq_bind_text(store, st, i++, r->updated_at);
	sq_bind_span(store, st, i++, r->raw, r->raw_len);
	sq_bind_opt_int(store, st, i++, r->prs_sent, (int64_t)r->nprs);
	for (c = 0; c < cs->ncols; c++, i++) {
		k = cs->field_of[a * cs->ncols + c];
		bind_value(store, st, i, cs->cols[c].type,
		    k < 0 || r->values == NULL ? NULL : &r->values[k]);
	}
}

/* Row j of array field f of r into its child table's insert. */
static int
write_row(struct sqlite_store *store, sqlite3_stmt *st, int64_t run_id,
    const struct field *f, const struct value *v, size_t j)
{
	struct value s;
	size_t k;

	sq_bind_i64(store, st, 1, run_id);
	sq_bind_i64(store, st, 2, (int64_t)j);
	if (f->type == FIELD_STRINGS) {
		s.v.s = v->v.strs[j];
		s.set = s.v.s != NULL;
		bind_value(store, st, 3, FIELD_TEXT, &s);
	} else {
		for (k = 0; k < f->nitems; k++)
			bind_value(store, st, 3 + (int)k, f->items[k].type,
			    &v->v.cells[j * f->nitems + k]);
	}
	return sq_step_done(store, st);
}

int
sq_write_arrays(struct sqlite_store *store, int64_t run_id, const struct run *r,
    size_t a, int replace)
{
	const struct source_type *t = store->cols.types[a];
	const struct child_stmts *cs = &store->child[store->child_base[a]];
	size_t k, j;

	for (k = 0; k < t->nfields; k++) {
		const struct field *f = &t->fields[k];
		const struct value *v = r->values ? &r->values[k] : NULL;

		if (!is_array(f))
			continue;
		if (replace) {
			sq_bind_i64(store, cs[k].del, 1, run_id);
			if (sq_step_done(store, cs[k].del) == -1)
				return -1;
		}
		for (j = 0; v != NULL && v->set && j < v->len; j++)
			if (write_row(store, cs[k].ins, run_id, f, v, j) == -1)
				return -1;
	}
	return 0;
}
