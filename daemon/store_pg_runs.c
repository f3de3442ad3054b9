/* SPDX-License-Identifier: ISC */
/*
 * store_pg_runs.c: the PostgreSQL engine's statements that name the
 * adapters' typed columns and child tables, built when it connects from
 * what every adapter declares (store_columns.h), and their parameters.
 *
 * Each writes a set of a page's runs at once: a column of the set is one
 * text[] parameter (store_pg_array.c), unnest()ed into rows and cast to
 * its column's type.  The SQL is literals and names store_columns.c
 * checked to be identifiers (of const tables compiled in); every value
 * is a bound parameter.  The statements are prepared on the connection
 * ("r0" the insert of runs, "r1" their update, "dN"/"cN" the delete and
 * insert of child table N) and sent in the page's pipeline
 * (store_pg_page.c); each writes only when the page's gate says so.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

/* New runs' first sightings, the first rows of their status history,
 * from the rows the insert returns (one statement, not two). */
#define FIRST_SIGHTINGS_OF                                                    \
	" RETURNING id, first_seen_at, status, state, source, external_id, "  \
	"updated_at) INSERT INTO run_status_changes (run_id, observed_at, "   \
	"old_status, new_status, old_state, new_state, source, external_id, " \
	"updated_at) SELECT id, first_seen_at, NULL, status, NULL, state, "   \
	"source, external_id, updated_at FROM r ORDER BY id"

/* finished_seen_at: the first time the run is seen in a terminal state. */
#define FINISHED_NOW "CASE WHEN x.fin::boolean THEN $3 END"

/* The arrays' names in unnest(...) AS x(...): the key, whether the run
 * is finished, then RUN_COMMON_COLUMNS and the typed columns. */
#define RUN_ARRAYS "(k, fin, " RUN_COMMON_COLUMNS

/*
 * Queue the preparation of the text of b (NUL-terminated) as statement
 * name, its parameters' types those of types[0 .. n - 1] (0: inferred),
 * which checks it against the schema when the daemon connects; and keep
 * the text as built[slot], which a page sends (planned when it runs).
 */
static int
prepare_built(struct pg_store *store, const struct buf *b, const char *name,
    size_t slot, int n, const Oid *types)
{
	const char *sql = b->p;

	if (pg_pipe_send_prepare(store, name, sql, n, types) == -1)
		return -1;
	if (slot < store->nbuilt &&
	    (store->built[slot] = strdup(sql)) == NULL) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

/* The types of the insert's and the update's parameters of runs. */
static void
run_types(Oid *types, size_t n)
{
	size_t i;

	types[0] = PG_OID_TEXT;
	types[1] = PG_OID_TEXT;
	types[2] = PG_OID_TIMESTAMPTZ;
	types[3] = PG_OID_INT8;
	for (i = 4; i < n; i++)
		types[i] = PG_OID_TEXT_ARRAY;
}

/* The types of a child table's insert: $1 the source, then arrays. */
static void
child_types(Oid *types, size_t n)
{
	size_t i;

	types[0] = PG_OID_TEXT;
	for (i = 1; i < n; i++)
		types[i] = PG_OID_TEXT_ARRAY;
}

static int
add(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* "::TYPE", the column type of a value of field type t. */
static int
add_cast(struct buf *b, enum field_type t)
{
	switch (t) {
	case FIELD_TIME:
		return add(b, "::timestamptz");
	case FIELD_INT:
	case FIELD_STRINGS:
	case FIELD_OBJECTS:
		return add(b, "::bigint");
	case FIELD_BOOL:
	case FIELD_PRESENT:
		return add(b, "::boolean");
	case FIELD_REAL:
		return add(b, "::double precision");
	case FIELD_TEXT:
	case FIELD_JSON:
		break;
	}
	return 0;
}

/* unnest($first, ... $first + n - 1): text[] each (the types given). */
static int
add_unnest(struct buf *b, int first, size_t n)
{
	int rc;

	if (n == 0)
		return -1;
	switch (first) {
	case 2:
		rc = add(b, "unnest($2");
		break;
	case 5:
		rc = add(b, "unnest($5");
		break;
	default:
		return -1;
	}
	if (rc == -1 || columns_params(n - 1, first + 1, '$', b) == -1)
		return -1;
	return add(b, ")");
}

/* The values of a run's row from unnest's x: the common columns, then
 * the typed ones, each cast to its column's type. */
static int
add_run_values(const struct column_set *cs, struct buf *b)
{
	size_t c;

	if (add(b,
		", x.status, x.state, x.title, x.web_url, "
		"x.created_at::timestamptz, x.updated_at::timestamptz, "
		"x.raw_json, x.pull_request_count::bigint") == -1)
		return -1;
	for (c = 0; c < cs->ncols; c++)
		if (add(b, ", x.") == -1 || add(b, cs->cols[c].name) == -1 ||
		    add_cast(b, cs->cols[c].type) == -1)
			return -1;
	return 0;
}

/* The arrays of a set of runs: x(k, fin, common..., typed..., ord). */
static int
add_run_arrays(const struct column_set *cs, struct buf *b)
{
	if (add(b, " WITH ORDINALITY AS x" RUN_ARRAYS) == -1 ||
	    columns_names(cs, b) == -1)
		return -1;
	return add(b, ", ord)");
}

/*
 * The insert (r0) and the update (r1) of a set of runs, every column of
 * runs named.  The insert writes the runs' first sightings too, and keeps
 * the page's order (ids, history).  Parameters: $1 source, $2 kind, $3
 * now, $4 walk, then the arrays (pg_run_arrays()).  The update finds each
 * run by its key.
 */
static int
prepare_run_rows(struct pg_store *store)
{
	const struct column_set *cs = &store->cols;
	size_t narrays = 2 + RUN_NCOMMON + cs->ncols;
	Oid types[PG_MAXP];
	struct buf b;
	int rc = -1;

	if (4 + narrays > PG_MAXP) {
		log_error("database '%s': runs has too many columns",
		    store->uri);
		return -1;
	}
	run_types(types, 4 + narrays);
	buf_init(&b, 1024 * 1024);
	if (add(&b,
		"WITH r AS (INSERT INTO runs (source, external_id, kind, "
		"first_seen_at, last_seen_at, last_seen_walk, changed_at, "
		"finished_seen_at, " RUN_COMMON_COLUMNS) == -1 ||
	    columns_names(cs, &b) == -1 ||
	    add(&b, ") SELECT $1, x.k, $2, $3, $3, $4, $3, " FINISHED_NOW) ==
		-1 ||
	    add_run_values(cs, &b) == -1 || add(&b, " FROM ") == -1 ||
	    add_unnest(&b, 5, narrays) == -1 || add_run_arrays(cs, &b) == -1 ||
	    add(&b, " WHERE " PG_GATE " ORDER BY x.ord" FIRST_SIGHTINGS_OF) ==
		-1)
		goto oom;
	if (prepare_built(store, &b, "r0", 0, (int)(4 + narrays), types) == -1)
		goto done;
	buf_free(&b);
	/* each run by its id, found by its key (OFFSET 0: not a join) */
	if (add(&b,
		"UPDATE runs SET (kind, last_seen_at, last_seen_walk, "
		"changed_at, deleted_upstream_at, finished_seen_at, "
		"" RUN_COMMON_COLUMNS) == -1 ||
	    columns_names(cs, &b) == -1 ||
	    add(&b,
		") = ($2, $3, $4, $3, NULL, coalesce("
		"runs.finished_seen_at, " FINISHED_NOW ")") == -1 ||
	    add_run_values(cs, &b) == -1 ||
	    add(&b,
		") FROM (SELECT (SELECT id FROM runs WHERE source = $1 "
		"AND external_id = x.k) AS rid, x.* FROM ") == -1 ||
	    add_unnest(&b, 5, narrays) == -1 || add_run_arrays(cs, &b) == -1 ||
	    add(&b, " OFFSET 0) x WHERE runs.id = x.rid AND " PG_GATE) == -1)
		goto oom;
	rc = prepare_built(store, &b, "r1", 1, (int)(4 + narrays), types);
	goto done;
oom:
	log_error("out of memory");
done:
	buf_free(&b);
	return rc;
}

/* ", column, column" of array field f's items. */
static int
add_items(struct buf *b, const struct field *f)
{
	size_t k;

	for (k = 0; k < f->nitems; k++)
		if (add(b, ", ") == -1 || add(b, f->items[k].column) == -1)
			return -1;
	return 0;
}

/* The insert of array field f's child rows, cN: $1 source, then the
 * arrays: the runs' keys, the positions, the items' columns. */
static int
prepare_child_rows(struct pg_store *store, const struct field *f,
    const char *name, size_t slot)
{
	Oid types[PG_MAXP];
	struct buf b;
	size_t k;
	int rc = -1;

	if (3 + f->nitems > PG_MAXP) {
		log_error("database '%s': %s has too many columns", store->uri,
		    f->table);
		return -1;
	}
	child_types(types, 3 + f->nitems);
	buf_init(&b, 64 * 1024);
	if (add(&b, "INSERT INTO ") == -1 || add(&b, f->table) == -1 ||
	    add(&b, " (run_id, position") == -1)
		goto oom;
	if (add_items(&b, f) == -1)
		goto oom;
	if (add(&b,
		") SELECT (SELECT id FROM runs WHERE source = $1 AND "
		"external_id = x.k), x.pos::bigint") == -1)
		goto oom;
	for (k = 0; k < f->nitems; k++)
		if (add(&b, ", x.") == -1 ||
		    add(&b, f->items[k].column) == -1 ||
		    add_cast(&b, f->items[k].type) == -1)
			goto oom;
	if (add(&b, " FROM ") == -1 || add_unnest(&b, 2, 2 + f->nitems) == -1 ||
	    add(&b, " WITH ORDINALITY AS x(k, pos") == -1)
		goto oom;
	if (add_items(&b, f) == -1)
		goto oom;
	if (add(&b, ", ord) WHERE " PG_GATE " ORDER BY x.ord") == -1)
		goto oom;
	rc = prepare_built(store, &b, name, slot, (int)(3 + f->nitems), types);
	goto done;
oom:
	log_error("out of memory");
done:
	buf_free(&b);
	return rc;
}

/* The delete (dN, of a set of runs: $1 source, $2 their keys) and the
 * insert (cN) of array field f's child table. */
static int
prepare_child(struct pg_store *store, const struct field *f, size_t n)
{
	char name[32];
	struct buf b;
	int rc = -1;

	buf_init(&b, 64 * 1024);
	if (add(&b, "DELETE FROM ") == -1 || add(&b, f->table) == -1 ||
	    add(&b,
		" WHERE run_id IN (SELECT (SELECT id FROM runs WHERE source = "
		"$1 AND external_id = x.k) FROM unnest($2::text[]) x(k) "
		"OFFSET 0) AND " PG_GATE) == -1) {
		log_error("out of memory");
		goto done;
	}
	pg_stmt_name(name, sizeof(name), 'd', n);
	if (prepare_built(store, &b, name, 2 + 2 * n, 0, NULL) == -1)
		goto done;
	pg_stmt_name(name, sizeof(name), 'c', n);
	rc = prepare_child_rows(store, f, name, 3 + 2 * n);
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
	for (a = 0; store->cols.types[a] != NULL; a++)
		n += store->cols.types[a]->nfields;
	store->nbuilt = 2 + 2 * n;
	store->built = calloc(store->nbuilt, sizeof(*store->built));
	store->child_base = calloc(store->cols.nadapters + 1, sizeof(size_t));
	if (store->child_base == NULL || store->built == NULL) {
		log_error("out of memory");
		return -1;
	}
	n = 0;
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
	size_t i;

	for (i = 0; i < store->nbuilt; i++)
		free(store->built[i]);
	free(store->built);
	store->built = NULL;
	store->nbuilt = 0;
	free(store->child_base);
	store->child_base = NULL;
	store->nchild = 0;
	if (store->cols.cols != NULL || store->cols.field_of != NULL)
		columns_free(&store->cols);
}

/* Queue the insert (r0) or the update (r1) of set, runs of adapter a. */
int
pg_send_run_rows(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set, int insert)
{
	const struct column_set *cs = &store->cols;
	size_t na = 2 + RUN_NCOMMON + cs->ncols, i, c;
	const char *sql = store->built[insert ? 0 : 1];
	struct pg_array arr[PG_MAXP];
	Oid types[PG_MAXP];
	struct pg_params p;
	int k, rc;

	if (set->n == 0)
		return 0;
	pa_init_n(arr, na < PG_MAXP ? na : PG_MAXP);
	for (i = 0; i < set->n && na <= PG_MAXP - 4; i++) {
		const struct run *r = set->runs[i];

		pa_text(&arr[0], r->external_id);
		pa_bool(&arr[1], run_state_terminal(r->state));
		pa_text(&arr[2], r->status);
		pa_text(&arr[3], run_state_name(r->state));
		pa_text(&arr[4], r->title);
		pa_text(&arr[5], r->web_url);
		pa_ts(&arr[6], r->created_at);
		pa_ts(&arr[7], r->updated_at);
		pa_add(&arr[8], r->raw, r->raw_len);
		pa_opt_int(&arr[9], r->prs_sent, (int64_t)r->nprs);
		for (c = 0; c < cs->ncols; c++) {
			k = cs->field_of[ctx->adapter * cs->ncols + c];
			pa_value(&arr[2 + RUN_NCOMMON + c], cs->cols[c].type,
			    k < 0 || r->values == NULL ? NULL : &r->values[k]);
		}
	}
	pp_reset(&p);
	pp_text(&p, ctx->source);
	pp_text(&p, cs->types[ctx->adapter]->name);
	pp_text(&p, ctx->now);
	pp_i64(&p, ctx->walk);
	if (na <= PG_MAXP - 4)
		pp_arrays(&p, arr, na);
	else
		p.overflow = 1;
	run_types(types, PG_MAXP);
	rc = pg_pipe_send_text(store, sql, types, &p, NULL);
	pa_free_n(arr, na < PG_MAXP ? na : PG_MAXP);
	return rc;
}

/* The rows of array field f (field k of the adapter) of set's runs. */
static int
send_child_rows(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set, const struct field *f, size_t k, size_t n)
{
	const char *sql = store->built[3 + 2 * n];
	struct pg_array arr[PG_MAXP];
	Oid types[PG_MAXP];
	struct pg_params p;
	struct value s;
	size_t na = 2 + f->nitems, i, j, m;
	int rc;

	if (na > PG_MAXP - 1) {
		log_error("database '%s': %s has too many columns", store->uri,
		    f->table);
		return -1;
	}
	pa_init_n(arr, na);
	for (i = 0; i < set->n; i++) {
		const struct run *r = set->runs[i];
		const struct value *v = r->values ? &r->values[k] : NULL;

		for (j = 0; v != NULL && v->set && j < v->len; j++) {
			pa_text(&arr[0], r->external_id);
			pa_i64(&arr[1], (int64_t)j);
			if (f->type == FIELD_STRINGS) {
				s.v.s = v->v.strs[j];
				s.set = s.v.s != NULL;
				pa_value(&arr[2], FIELD_TEXT, &s);
			} else {
				for (m = 0; m < f->nitems; m++)
					pa_value(&arr[2 + m], f->items[m].type,
					    &v->v.cells[j * f->nitems + m]);
			}
		}
	}
	rc = 0;
	if (arr[0].n > 0) {
		pp_reset(&p);
		pp_text(&p, ctx->source);
		pp_arrays(&p, arr, na);
		child_types(types, PG_MAXP);
		rc = pg_pipe_send_text(store, sql, types, &p, NULL);
	}
	pa_free_n(arr, na);
	return rc;
}

/* Queue the delete of the child rows of set's runs (replaced), one
 * statement a child table of adapter a. */
int
pg_send_child_deletes(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set, const struct pg_params *keys)
{
	const struct source_type *t = store->cols.types[ctx->adapter];
	size_t base = store->child_base[ctx->adapter], k;
	const char *sql;

	if (set->n == 0)
		return 0;
	for (k = 0; k < t->nfields; k++) {
		if (!is_array(&t->fields[k]))
			continue;
		sql = store->built[2 + 2 * (base + k)];
		if (pg_pipe_send_text(store, sql, NULL, keys, NULL) == -1)
			return -1;
	}
	return 0;
}

/* Queue the rows of adapter a's arrays of set's runs. */
int
pg_send_child_rows(struct pg_store *store, const struct pg_page_ctx *ctx,
    const struct pg_set *set)
{
	const struct source_type *t = store->cols.types[ctx->adapter];
	size_t base = store->child_base[ctx->adapter], k;

	if (set->n == 0)
		return 0;
	for (k = 0; k < t->nfields; k++)
		if (is_array(&t->fields[k]) &&
		    send_child_rows(store, ctx, set, &t->fields[k], k,
			base + k) == -1)
			return -1;
	return 0;
}
