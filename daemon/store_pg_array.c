/* SPDX-License-Identifier: ISC */
/*
 * store_pg_array.c: a column of a page's rows as one parameter, a text[]
 * in PostgreSQL's binary array format, so that a statement writes every
 * row of a page at once (unnest($n::text[], ...)) and a page is a few
 * statements, not one per row.
 *
 * Binary, not text: an element is its bytes as they are (no quoting or
 * escaping to get right, nothing for the server to parse), NULL is a
 * length of -1.  Every element is text; the statement casts it to its
 * column's type (u.v::bigint), as a text parameter was before.
 *
 * The format (PostgreSQL's array_recv): int32 dimensions (1, or 0 for
 * an empty array), int32 flags (1 when an element is NULL), uint32 the
 * element type (25, text), then per dimension int32 its length and int32
 * its lower bound (1); then each element, int32 its length (-1: NULL) and
 * its bytes.  Big-endian throughout.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_pg.h"

#define PA_HEADER   20
#define PA_TEXT_OID 25
/* PostgreSQL refuses a value of more than 1 GB. */
#define PA_MAX ((size_t)1 << 30)

void
pa_init(struct pg_array *a)
{
	memset(a, 0, sizeof(*a));
}

void
pa_free(struct pg_array *a)
{
	free(a->p);
	pa_init(a);
}

static void
put32(unsigned char *o, uint32_t v)
{
	o[0] = (unsigned char)(v >> 24);
	o[1] = (unsigned char)(v >> 16);
	o[2] = (unsigned char)(v >> 8);
	o[3] = (unsigned char)v;
}

/* Room for n more bytes (the header's too on the first call). */
static int
pa_room(struct pg_array *a, size_t n)
{
	if (a->failed)
		return -1;
	if (a->len == 0)
		a->len = PA_HEADER;
	/* buf.h's growth rule, with PostgreSQL's cap on a value */
	if (n > PA_MAX || a->n >= INT32_MAX ||
	    buf_grow((void **)&a->p, &a->cap, a->len + n, 1, PA_MAX) == -1) {
		a->failed = 1;
		return -1;
	}
	return 0;
}

/* len bytes at s as the next element; NULL for s NULL. */
void
pa_add(struct pg_array *a, const char *s, size_t len)
{
	if (s == NULL)
		len = 0;
	if (pa_room(a, 4 + len) == -1)
		return;
	if (s == NULL) {
		put32((unsigned char *)a->p + a->len, UINT32_MAX); /* -1 */
		a->has_null = 1;
	} else {
		put32((unsigned char *)a->p + a->len, (uint32_t)len);
		memcpy(a->p + a->len + 4, s, len);
	}
	a->len += 4 + len;
	a->n++;
}

void
pa_text(struct pg_array *a, const char *s)
{
	pa_add(a, s, s != NULL ? strlen(s) : 0);
}

void
pa_ts(struct pg_array *a, const char *s)
{
	pa_text(a, s != NULL && *s != '\0' ? s : NULL);
}

void
pa_i64(struct pg_array *a, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	pa_text(a, num);
}

void
pa_opt_int(struct pg_array *a, int set, int64_t v)
{
	if (set)
		pa_i64(a, v);
	else
		pa_add(a, NULL, 0);
}

void
pa_bool(struct pg_array *a, int v)
{
	pa_text(a, v ? "t" : "f");
}

void
pa_num(struct pg_array *a, struct opt_num o)
{
	char num[32];

	if (!o.set) {
		pa_add(a, NULL, 0);
		return;
	}
	snprintf(num, sizeof(num), "%.17g", o.v);
	pa_text(a, num);
}

/* A declared value of field type t (an array's is its row count). */
void
pa_value(struct pg_array *a, enum field_type t, const struct value *v)
{
	struct opt_num d;

	if (v == NULL || !v->set) {
		pa_add(a, NULL, 0);
		return;
	}
	switch (t) {
	case FIELD_TEXT:
	case FIELD_TIME:
		pa_text(a, v->v.s);
		break;
	case FIELD_JSON:
		pa_add(a, v->v.s, v->len);
		break;
	case FIELD_INT:
		pa_i64(a, v->v.i);
		break;
	case FIELD_BOOL:
	case FIELD_PRESENT:
		pa_bool(a, v->v.i != 0);
		break;
	case FIELD_REAL:
		d.set = 1;
		d.v = v->v.d;
		pa_num(a, d);
		break;
	case FIELD_STRINGS:
	case FIELD_OBJECTS:
		pa_i64(a, (int64_t)v->len);
		break;
	}
}

void
pa_init_n(struct pg_array *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pa_init(&a[i]);
}

void
pa_free_n(struct pg_array *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pa_free(&a[i]);
}

/* a[0 .. n - 1] as p's next parameters. */
void
pp_arrays(struct pg_params *p, struct pg_array *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pp_array(p, &a[i]);
}

/*
 * The array, its header written, as p's next parameter (binary).  An
 * array that could not be built (out of memory, past 1 GB) makes the
 * statement fail before it is sent (p->overflow), logged here.
 */
void
pp_array(struct pg_params *p, struct pg_array *a)
{
	unsigned char *h;

	if (a->failed || (a->n == 0 && pa_room(a, 0) == -1)) {
		log_error("a page's column does not fit in one parameter");
		p->overflow = 1;
		return;
	}
	h = (unsigned char *)a->p;
	put32(h, a->n > 0 ? 1 : 0);
	put32(h + 4, (uint32_t)a->has_null);
	put32(h + 8, PA_TEXT_OID);
	put32(h + 12, (uint32_t)a->n);
	put32(h + 16, 1);
	/* an empty array is its first 12 bytes: no dimension */
	pp_span(p, a->p, a->n > 0 ? a->len : 12);
}
