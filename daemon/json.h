/* SPDX-License-Identifier: ISC */
/*
 * json.h: bounded JSON parsing for the adapters.
 *
 * json_parse_page() checks a body against the limits of source.h with a
 * cheap scan BEFORE cJSON sees it (so cJSON's recursion never meets deep
 * input), parses it, and finds the verbatim byte span of every element of
 * one top-level array, so that raw_json is what upstream sent, not cJSON's
 * re-serialization.  The field helpers read one member of an object with a
 * type check, writing a reason that names the field when the type is wrong.
 */
#ifndef AGENTSYNCD_JSON_H
#define AGENTSYNCD_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "source.h"

struct json_span {
	const char *p;
	size_t len;
};

/*
 * Parse body into page->text / page->tree and locate the top-level array
 * named key, which may hold at most max_items items.  A body too dense
 * (more than one value per SOURCE_MIN_VALUE_BYTES), with a top-level member
 * name given twice or written with an escape, is refused.  On success return 0 with *items (the cJSON array) and
 * *spans (page-arena memory, one per element).  Else -1 with err set.
 */
int json_parse_page(const char *body, size_t len, const char *key,
    size_t max_items, struct page *page, cJSON **items,
    struct json_span **spans, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Normalize one item into *r (problems recorded with the run_*()
 * readers), or return -1 with a reason in err when it has no usable id. */
typedef int json_item_fn(struct page *page, const cJSON *item, struct run *r,
    char *err, size_t errlen);

/*
 * The rest of an adapter's parse_page: read the integer total_key, then run
 * fn over every item.  Before fn sees an item, a top-level member that
 * cannot be read one way (given twice, holding a member given twice, or
 * holding an escape json_bad_escape() names) is taken out of it and
 * recorded as a problem of the run.  An item fn refuses (no usable id)
 * becomes a reject with its reason, verbatim bytes and position.  A run
 * with problems past SOURCE_MAX_PROBLEMS gets one more, SOURCE_MORE_FIELD,
 * that counts them.  Work per item is linear in its bytes (n log n in its
 * members for names given twice).  On error the page is freed.
 */
int json_fill_page(struct page *page, cJSON *items,
    const struct json_span *spans, const char *total_key, json_item_fn *fn,
    char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * json_parse_page() then json_fill_page(): what an adapter's parse_page
 * does, for a body whose items are the array items_key and whose count is
 * the member total_key, each item through fn.
 */
int json_read_page(const char *body, size_t len, const char *items_key,
    const char *total_key, size_t max_items, json_item_fn *fn,
    struct page *page, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Bump allocation in page->arena, zeroed; NULL when out of memory. */
void *json_alloc(struct page *page, size_t size);
/* Give p (from malloc, e.g. a text cJSON printed) to the page, which
 * frees it in page_free(): it costs no copy into the arena.  -1 when out
 * of memory, p then freed. */
int json_own(struct page *page, void *p) __attribute__((warn_unused_result));
/* Copy len bytes (plus NUL) into the arena. */
const char *json_strdup(struct page *page, const char *s, size_t len);

/* A string member (an id): absent or null -> NULL; wrong type -> -1. */
int json_str(const cJSON *obj, const char *key, const char **out, char *err,
    size_t errlen) __attribute__((warn_unused_result));
/*
 * Field readers for a run.  A member of the wrong type is not an error of
 * the run but a problem of it: the value is left out (NULL, unset, not
 * sent) and the problem recorded in r->problems with the member's path
 * (prefix, e.g. "criticalIssue." or "github_pull_requests[2].", then
 * key), once per path, in constant time.  Past SOURCE_MAX_PROBLEMS a
 * problem is only counted (r->problems_more).  A value json_fill_page()
 * took out (cJSON_Invalid) adds nothing: its problem is recorded.  Absent
 * or null is a value, not a problem.  Out of memory sets page->oom
 * (json_fill_page() then fails the page).
 */
void run_problem(struct page *page, struct run *r, const char *prefix,
    const char *key, const cJSON *value, const char *problem);
void run_str(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const char *key, const char **out);
void run_int(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const char *key, struct opt_int *out);
void run_num(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const char *key, struct opt_num *out);
void run_bool(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const char *key, struct opt_bool *out);
/* A time normalized into the arena; an unparseable one is a problem. */
void run_time(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const char *key, const char **out);
/* An array of strings (null elements kept as NULL, others of a wrong
 * type left out, each a problem); *sent as in struct run. */
void run_str_array(struct page *page, struct run *r, const cJSON *obj,
    const char *key, const char ***out, size_t *n, int *sent);
/* An object member: *out the object or NULL, *has as in struct run. */
void run_object(struct page *page, struct run *r, const cJSON *obj,
    const char *key, const cJSON **out, struct opt_bool *has);
/* An array member: the array, or NULL (null, absent, or a problem). */
const cJSON *run_array(struct page *page, struct run *r, const cJSON *obj,
    const char *key);
/*
 * Read an adapter's declared fields from item into r->values (page arena),
 * in their order, and the shared members they name (json_run.c).
 */
void json_run_fields(struct page *page, struct run *r, const cJSON *item,
    const struct field *fields, size_t nfields);
/* How many elements of arr (an array, or NULL) are objects. */
size_t json_objects(const cJSON *arr);
/* Check integral double: returns 0 and sets *out, or -1. */
int json_integral(double v, int64_t *out);

#endif
