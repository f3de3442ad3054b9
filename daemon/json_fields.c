/* SPDX-License-Identifier: ISC */
/*
 * json_fields.c: the typed readers an adapter normalizes one item with
 * (run_str, run_int, run_time, ...), and the problems they record: one per
 * field, the first, at most SOURCE_MAX_PROBLEMS a run, each with the value
 * as upstream sent it (cut).
 *
 * It is not the parse of a body (json.c) nor the walk over a page's items
 * (json_item.c).  A reader never fails: a value of the wrong type is a
 * problem of the run, and the field is left unset.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_int.h"

static int
wrong_type(const char *key, const char *want, char *err, size_t errlen)
{
	snprintf(err, errlen, "\"%s\" is not %s", key, want);
	return -1;
}

int
json_str(const cJSON *obj, const char *key, const char **out, char *err,
    size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return wrong_type(key, "a string", err, errlen);
	*out = v->valuestring;
	return 0;
}

int
json_integral(double v, int64_t *out)
{
	/* below 2^53 every integer is exact in a double */
	if (!isfinite(v) || floor(v) != v || fabs(v) >= 9007199254740992.0)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Copy of what printed, cut at SOURCE_MAX_PROBLEM_VALUE bytes on a UTF-8
 * character boundary (then "..." follows). */
static const char *
problem_value(struct page *page, const cJSON *value)
{
	const char *out;
	char *text, *o;
	size_t len;
	int cut;

	if (value == NULL)
		return NULL;
	/* not parsing: cJSON's allocations are plain malloc here */
	if ((text = cJSON_PrintUnformatted(value)) == NULL) {
		page->oom = 1;
		return NULL;
	}
	len = strlen(text);
	cut = len > SOURCE_MAX_PROBLEM_VALUE;
	if (cut) {
		len = SOURCE_MAX_PROBLEM_VALUE;
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
	}
	/* cJSON's buffer is exactly its text: "..." goes in the copy */
	if ((o = json_alloc(page, len + 4)) != NULL) {
		memcpy(o, text, len);
		memcpy(o + len, cut ? "..." : "", cut ? 4 : 1);
	}
	out = o;
	cJSON_free(text);
	if (out == NULL)
		page->oom = 1;
	return out;
}

/*
 * A run's problems are found one field at a time, and one field may be
 * found twice (a member taken out by drop_ambiguous() and then read): the
 * first is kept.  A small hash index of the kept fields answers "found
 * already?" in constant time; a scan of every earlier problem made a run
 * with 400,000 bad array elements cost 10^11 string compares.  Slots hold
 * a problem's index + 1 (0: free); at most half of them are ever used.
 */
#define PROBLEM_SLOTS 256
_Static_assert(PROBLEM_SLOTS >= 2 * (SOURCE_MAX_PROBLEMS + 1) &&
	SOURCE_MAX_PROBLEMS < 255 && (PROBLEM_SLOTS & (PROBLEM_SLOTS - 1)) == 0,
    "the problem index must stay at most half full");

static size_t
field_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

/* The slot of field in r's index: the one that holds it, or the free
 * one where it goes. */
static size_t
problem_slot(const struct run *r, const char *field)
{
	size_t i = field_hash(field) & (PROBLEM_SLOTS - 1);

	while (r->problem_ix[i] != 0 &&
	    strcmp(r->problems[r->problem_ix[i] - 1].field, field) != 0)
		i = (i + 1) & (PROBLEM_SLOTS - 1);
	return i;
}

/* Append a problem (value already in the arena, or NULL); -1 when out
 * of memory (page->oom set). */
static int
problem_push(struct page *page, struct run *r, const char *field,
    const char *problem, const char *value)
{
	struct field_problem *fp;
	size_t cap;

	if (r->nproblems == r->problems_cap) {
		cap = r->problems_cap ? 2 * r->problems_cap : 4;
		if (cap > SOURCE_MAX_PROBLEMS + 1)
			cap = SOURCE_MAX_PROBLEMS + 1; /* + the "more" row */
		if ((fp = json_alloc(page, cap * sizeof(*fp))) == NULL) {
			page->oom = 1;
			return -1;
		}
		if (r->nproblems > 0)
			memcpy(fp, r->problems, r->nproblems * sizeof(*fp));
		r->problems = fp;
		r->problems_cap = cap;
	}
	fp = &r->problems[r->nproblems];
	fp->field = json_strdup(page, field, strlen(field));
	fp->problem = json_strdup(page, problem, strlen(problem));
	fp->value = value;
	if (fp->field == NULL || fp->problem == NULL) {
		page->oom = 1;
		return -1;
	}
	r->nproblems++;
	return 0;
}

/* prefix and key into path, cut as snprintf() would: a run past its
 * cap finds 400,000 problems, and snprintf() was half of their cost. */
static void
field_path(char *path, size_t size, const char *prefix, const char *key)
{
	size_t a = strnlen(prefix, size - 1);
	size_t b = strnlen(key, size - 1 - a);

	memcpy(path, prefix, a);
	memcpy(path + a, key, b);
	path[a + b] = '\0';
}

void
run_problem(struct page *page, struct run *r, const char *prefix,
    const char *key, const cJSON *value, const char *problem)
{
	char path[160];
	const char *text;
	size_t slot;

	/* taken out by drop_ambiguous(), which found its problem */
	if (value != NULL && (value->type & 0xff) == cJSON_Invalid)
		return;
	if (r->problem_ix == NULL &&
	    (r->problem_ix = json_alloc(page, PROBLEM_SLOTS)) == NULL) {
		page->oom = 1;
		return;
	}
	field_path(path, sizeof(path), prefix, key);
	slot = problem_slot(r, path);
	if (r->problem_ix[slot] != 0)
		return; /* one problem per field: the first */
	if (r->nproblems >= SOURCE_MAX_PROBLEMS) {
		r->problems_more++; /* counted, not printed nor kept */
		return;
	}
	text = problem_value(page, value);
	if (problem_push(page, r, path, problem, text) == 0)
		r->problem_ix[slot] = (unsigned char)r->nproblems;
}

/* The row that says how many problems past SOURCE_MAX_PROBLEMS were not
 * kept; its value is the count, as JSON. */
void
json_problems_more_row(struct page *page, struct run *r)
{
	char n[24], why[96];
	const char *value;

	snprintf(n, sizeof(n), "%zu", r->problems_more);
	snprintf(why, sizeof(why),
	    "and %zu more problems not recorded (a run keeps its first %d)",
	    r->problems_more, SOURCE_MAX_PROBLEMS);
	if ((value = json_strdup(page, n, strlen(n))) == NULL)
		page->oom = 1;
	else
		(void)problem_push(page, r, SOURCE_MORE_FIELD, why, value);
}

/* The member key of obj, or NULL when absent or null. */
static const cJSON *
member(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return v == NULL || cJSON_IsNull(v) ? NULL : v;
}

/*
 * The member key of obj when it is of the type ok() accepts; NULL when
 * absent or null, and when of another type, then recorded as a problem
 * ("is not a string").  What every typed reader does first.
 */
static const cJSON *
typed(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, int (*ok)(const cJSON *), const char *problem)
{
	const cJSON *v = member(obj, key);

	if (v == NULL || ok(v))
		return v;
	run_problem(page, r, prefix, key, v, problem);
	return NULL;
}

static int
is_string(const cJSON *v)
{
	return cJSON_IsString(v) != 0;
}

static int
is_integer(const cJSON *v)
{
	int64_t i;

	return cJSON_IsNumber(v) && json_integral(v->valuedouble, &i) == 0;
}

static int
is_number(const cJSON *v)
{
	return cJSON_IsNumber(v) && isfinite(v->valuedouble);
}

static int
is_bool(const cJSON *v)
{
	return cJSON_IsBool(v) != 0;
}

void
run_str(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, const char **out)
{
	const cJSON *v = typed(page, r, obj, prefix, key, is_string,
	    "is not a string");

	*out = v != NULL ? v->valuestring : NULL;
}

void
run_int(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, struct opt_int *out)
{
	const cJSON *v = typed(page, r, obj, prefix, key, is_integer,
	    "is not an integer (below 2^53)");

	out->set = v != NULL;
	out->v = v != NULL ? (int64_t)v->valuedouble : 0;
}

void
run_num(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, struct opt_num *out)
{
	const cJSON *v = typed(page, r, obj, prefix, key, is_number,
	    "is not a number");

	out->set = v != NULL;
	out->v = v != NULL ? v->valuedouble : 0;
}

void
run_bool(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, struct opt_bool *out)
{
	const cJSON *v = typed(page, r, obj, prefix, key, is_bool,
	    "is not a boolean");

	out->set = v != NULL;
	out->v = v != NULL && cJSON_IsTrue(v) ? 1 : 0;
}

void
run_time(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, const char **out)
{
	const char *s;
	char *t;

	run_str(page, r, obj, prefix, key, &s);
	*out = NULL;
	if (s == NULL)
		return;
	if ((t = json_alloc(page, TS_LEN)) == NULL) {
		page->oom = 1;
		return;
	}
	if (time_normalize(s, t) == 0)
		*out = t;
	else
		run_problem(page, r, prefix, key, member(obj, key),
		    "is not a time this daemon can read");
}

static int
is_array(const cJSON *v)
{
	return cJSON_IsArray(v) != 0;
}

const cJSON *
run_array(struct page *page, struct run *r, const cJSON *obj, const char *key)
{
	return typed(page, r, obj, "", key, is_array, "is not an array");
}

void
run_str_array(struct page *page, struct run *r, const cJSON *obj,
    const char *key, const char ***out, size_t *n, int *sent)
{
	const cJSON *v = run_array(page, r, obj, key), *e;
	size_t i = 0, keep = 0;
	char at[160];

	*out = NULL;
	*n = 0;
	*sent = v != NULL;
	if (v == NULL || v->child == NULL)
		return;
	cJSON_ArrayForEach(e, v)
	{
		keep += cJSON_IsNull(e) || cJSON_IsString(e);
	}
	/* room for the keepers only: 400,000 numbers are no strings */
	*out = json_alloc(page, sizeof(**out) * (keep ? keep : 1));
	if (*out == NULL) {
		page->oom = 1;
		return;
	}
	cJSON_ArrayForEach(e, v)
	{
		if (cJSON_IsNull(e) || cJSON_IsString(e)) {
			(*out)[(*n)++] = cJSON_IsNull(e) ? NULL :
							   e->valuestring;
		} else {
			snprintf(at, sizeof(at), "[%zu]", i);
			run_problem(page, r, key, at, e, "is not a string");
		}
		i++;
	}
}

size_t
json_objects(const cJSON *arr)
{
	const cJSON *e;
	size_t n = 0;

	cJSON_ArrayForEach(e, arr)
	{
		n += cJSON_IsObject(e) != 0;
	}
	return n;
}

void
run_object(struct page *page, struct run *r, const cJSON *obj, const char *key,
    const cJSON **out, struct opt_bool *has)
{
	const cJSON *v = member(obj, key);

	*out = NULL;
	has->set = 1;
	has->v = 0;
	if (v == NULL)
		return;
	if (cJSON_IsObject(v)) {
		*out = v;
		has->v = 1;
	} else {
		has->set = 0;
		run_problem(page, r, "", key, v, "is not an object");
	}
}
