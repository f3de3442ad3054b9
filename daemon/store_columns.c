/* SPDX-License-Identifier: ISC */
/*
 * store_columns.c: runs' typed columns as the adapters declare them
 * (store_columns.h).  The names end up in SQL text, so they are held to
 * what an identifier may be before any engine sees them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_columns.h"

/* The columns of runs no adapter may declare: the common ones and the
 * mirror's own. */
static const char *const reserved[] = { "id", "source", "external_id", "kind",
	"status", "state", "title", "web_url", "created_at", "updated_at",
	"raw_json", "pull_request_count", "first_seen_at", "last_seen_at",
	"last_seen_walk", "changed_at", "finished_seen_at",
	"deleted_upstream_at", "run_id", "position", NULL };

/* 1 when s is an SQL identifier this daemon writes unquoted. */
int
columns_identifier(const char *s)
{
	size_t i;

	if (s == NULL || !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return 0;
	for (i = 1; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return i <= 63;
}

static int
is_reserved(const char *s)
{
	size_t i;

	for (i = 0; reserved[i] != NULL; i++)
		if (strcmp(s, reserved[i]) == 0)
			return 1;
	return 0;
}

static int
scalar(enum field_type t)
{
	return t == FIELD_TEXT || t == FIELD_TIME || t == FIELD_INT ||
	    t == FIELD_REAL || t == FIELD_BOOL;
}

/* What is wrong with field f of an adapter, or NULL. */
static const char *
field_wrong(const struct field *f)
{
	const char *dot = f->path != NULL ? strchr(f->path, '.') : NULL;
	int array = f->type == FIELD_STRINGS || f->type == FIELD_OBJECTS;
	size_t k;

	if (f->path == NULL || f->path[0] == '\0')
		return "has no path";
	if (dot != NULL &&
	    (strchr(dot + 1, '.') != NULL || dot - f->path > 62 ||
		dot == f->path || dot[1] == '\0' || !scalar(f->type)))
		return "has a path that is not a member or a scalar one object down";
	if (f->member != MEMBER_NONE)
		return f->column == NULL &&
			(f->type == FIELD_TEXT || f->type == FIELD_TIME) ?
		    NULL :
		    "fills a shared member but is not text or time, or has a column";
	if (!columns_identifier(f->column) || is_reserved(f->column))
		return "has a column name that is not an identifier, or is one of the mirror's own";
	if (!array)
		return f->items == NULL && f->table == NULL ?
		    NULL :
		    "is not an array but has items";
	if (!columns_identifier(f->table) || f->nitems == 0 ||
	    (f->type == FIELD_STRINGS && f->nitems != 1))
		return "is an array without a child table or items";
	for (k = 0; k < f->nitems; k++)
		if (!columns_identifier(f->items[k].column) ||
		    is_reserved(f->items[k].column) ||
		    (f->type == FIELD_OBJECTS &&
			(!scalar(f->items[k].type) ||
			    f->items[k].path == NULL ||
			    strchr(f->items[k].path, '.') != NULL)))
			return "has an item that is not a scalar member with an identifier for a column";
	return NULL;
}

/* The index of column name in cs, or cs->ncols. */
static size_t
column_of(const struct column_set *cs, const char *name)
{
	size_t c;

	for (c = 0; c < cs->ncols; c++)
		if (cs->cols[c].name != NULL &&
		    strcmp(cs->cols[c].name, name) == 0)
			break;
	return c;
}

/* Check adapter a's fields and add its columns to cs->cols (room for
 * every field of every adapter). */
static int
add_columns(struct column_set *cs, size_t a, char *err, size_t errlen)
{
	const struct source_type *t = cs->types[a];
	const char *why;
	size_t k, c;

	for (k = 0; k < t->nfields; k++) {
		const struct field *f = &t->fields[k];

		if ((why = field_wrong(f)) != NULL) {
			snprintf(err, errlen, "adapter %s: field %zu (%s) %s",
			    t->name, k, f->path ? f->path : "?", why);
			return -1;
		}
		if (f->member != MEMBER_NONE)
			continue;
		c = column_of(cs, f->column);
		if (c < cs->ncols && cs->cols[c].type != f->type) {
			snprintf(err, errlen,
			    "adapter %s: column %s has another type in another adapter",
			    t->name, f->column);
			return -1;
		}
		if (c == cs->ncols) {
			cs->cols[c].name = f->column;
			cs->cols[c].type = f->type;
			cs->ncols++;
		}
	}
	return 0;
}

/* field_of[], once every column is known. */
static int
map_fields(struct column_set *cs, char *err, size_t errlen)
{
	size_t a, k, c;

	for (a = 0; a < cs->nadapters; a++) {
		const struct source_type *t = cs->types[a];

		for (k = 0; k < t->nfields; k++) {
			if (t->fields[k].member != MEMBER_NONE)
				continue;
			c = column_of(cs, t->fields[k].column);
			if (cs->field_of[a * cs->ncols + c] >= 0) {
				snprintf(err, errlen,
				    "adapter %s: column %s is declared twice",
				    t->name, t->fields[k].column);
				return -1;
			}
			cs->field_of[a * cs->ncols + c] = (int)k;
		}
	}
	return 0;
}

int
columns_load(struct column_set *cs, const struct source_type *const *types,
    char *err, size_t errlen)
{
	size_t a, most = 0, i;

	memset(cs, 0, sizeof(*cs));
	cs->types = types;
	for (a = 0; cs->types[a] != NULL; a++)
		most += cs->types[a]->nfields;
	cs->nadapters = a;
	if ((cs->cols = calloc(most ? most : 1, sizeof(*cs->cols))) == NULL)
		goto oom;
	for (a = 0; a < cs->nadapters; a++)
		if (add_columns(cs, a, err, errlen) == -1)
			goto fail;
	cs->field_of = malloc(sizeof(int) *
	    (cs->nadapters ? cs->nadapters : 1) * (cs->ncols ? cs->ncols : 1));
	if (cs->field_of == NULL)
		goto oom;
	for (i = 0; i < cs->nadapters * cs->ncols; i++)
		cs->field_of[i] = -1;
	if (map_fields(cs, err, errlen) == 0)
		return 0;
	goto fail;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	columns_free(cs);
	return -1;
}

void
columns_free(struct column_set *cs)
{
	free(cs->cols);
	free(cs->field_of);
	memset(cs, 0, sizeof(*cs));
}

int
columns_adapter(const struct column_set *cs, const char *kind)
{
	size_t a;

	for (a = 0; kind != NULL && a < cs->nadapters; a++)
		if (strcmp(cs->types[a]->name, kind) == 0)
			return (int)a;
	return -1;
}

const struct field *
columns_field(const struct column_set *cs, size_t a, size_t c)
{
	int k = cs->field_of[a * cs->ncols + c];

	return k < 0 ? NULL : &cs->types[a]->fields[k];
}

int
columns_names(const struct column_set *cs, struct buf *b)
{
	size_t c;

	for (c = 0; c < cs->ncols; c++)
		if (buf_add(b, ", ", 2) == -1 ||
		    buf_add(b, cs->cols[c].name, strlen(cs->cols[c].name)) ==
			-1)
			return -1;
	return 0;
}

int
columns_params(size_t n, int first, char mark, struct buf *b)
{
	char p[24];
	size_t i;
	int len;

	for (i = 0; i < n; i++) {
		len = snprintf(p, sizeof(p), ", %c%d", mark, first + (int)i);
		if (buf_add(b, p, (size_t)len) == -1)
			return -1;
	}
	return 0;
}
