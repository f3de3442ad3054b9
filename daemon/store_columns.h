/* SPDX-License-Identifier: ISC */
/*
 * store_columns.h: the typed columns of runs and the child tables, as
 * every adapter declares them (struct field), for an engine to build its
 * statements from when it opens.  Engine-free: no SQL type, no database.
 *
 * A column two adapters declare is one column of runs (of one type); a
 * run of an adapter that does not declare a column writes NULL there.
 */
#ifndef AGENTSYNCD_STORE_COLUMNS_H
#define AGENTSYNCD_STORE_COLUMNS_H

#include <stddef.h>

#include "buf.h"
#include "source.h"

/* The columns of runs every run writes, before the typed ones. */
#define RUN_COMMON_COLUMNS                                        \
	"status, state, title, web_url, created_at, updated_at, " \
	"raw_json, pull_request_count"
#define RUN_NCOMMON 8

/* What a listing sets of a pull request the mirror holds (both engines'
 * upserts; each adds its own test of what changed). */
#define PR_UPSERT_SET                                             \
	"ON CONFLICT (source, external_id) DO UPDATE SET "        \
	"title = excluded.title, url = excluded.url, "            \
	"head_branch_name = excluded.head_branch_name, "          \
	"created_at = excluded.created_at, changed_at = "         \
	"excluded.changed_at, repository = excluded.repository, " \
	"number = excluded.number "

struct run_column {
	const char *name;
	enum field_type type;
};

struct column_set {
	const struct source_type *const *types; /* the adapters, NULL-ended */
	struct run_column *cols; /* runs' typed columns, each once, in the
				  * order types[] declares them */
	size_t ncols;
	size_t nadapters; /* types[] */
	/* field_of[a * ncols + c]: the index in types[a]->fields of
	 * column c, or -1 when adapter a does not declare it */
	int *field_of;
};

/*
 * Read and check the fields of every adapter of types (source_types in
 * the daemon): names that are SQL identifiers
 * (a letter or '_', then letters, digits and '_', at most 63 bytes; no
 * common column), one type per column, paths at most one object down,
 * arrays with items of a scalar type.  0, or -1 with what and where in
 * err (then nothing to free).
 */
int columns_load(struct column_set *cs, const struct source_type *const *types,
    char *err, size_t errlen) __attribute__((warn_unused_result));
void columns_free(struct column_set *cs);

/* 1 when s is an SQL identifier this daemon writes unquoted (a letter
 * or '_', then lower-case letters, digits and '_', at most 63 bytes): the
 * rule of the adapters' column names and of database_schema. */
int columns_identifier(const char *s);

/* The index in cs->types of the adapter named kind, or -1. */
int columns_adapter(const struct column_set *cs, const char *kind);

/* The field of adapter a behind column c, or NULL. */
const struct field *columns_field(const struct column_set *cs, size_t a,
    size_t c);

/*
 * Append to b, for columns cs->cols[0..]: ", name, name" (names) or
 * ", ?N, ?N+1" / ", $N, $N+1" with N = first (params; mark '?' or '$').
 * -1 when out of memory.
 */
int columns_names(const struct column_set *cs, struct buf *b)
    __attribute__((warn_unused_result));
int columns_params(size_t n, int first, char mark, struct buf *b)
    __attribute__((warn_unused_result));

#endif
