/* SPDX-License-Identifier: ISC */
/*
 * json_int.h: what the parts of the page parser share (json.c,
 * json_fields.c, json_item.c), and nothing else includes.
 */
#ifndef AGENTSYNCD_JSON_INT_H
#define AGENTSYNCD_JSON_INT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "source.h"

/*
 * An escape cJSON cannot turn into the text upstream meant: \u0000 (cJSON
 * cuts the string there) or a UTF-16 surrogate without its other half
 * (cJSON refuses the whole body).
 */
enum bad_escape {
	ESC_NONE,
	ESC_NUL,
	ESC_LONE
};

/* json.c */
/* The next bad escape at or after *i in p[0..len): sets *i to its
 * backslash and returns its kind, or ESC_NONE (*i = len) at the end. */
enum bad_escape json_next_bad_escape(const char *p, size_t len, size_t *i);
/* Why p[0..len) cannot be read one way ("a string holds \u0000"), or
 * NULL when it holds no bad escape. */
const char *json_bad_escape(const char *p, size_t len);
/* A member name that makes obj ambiguous, or NULL (see json.c); *oom is
 * set when out of memory. */
const char *json_ambiguous_member(const cJSON *obj, int recurse, int *oom);
/* Over text that cJSON accepted, from p up to end: the first byte that is
 * not white space, the end of the string or value at p. */
const char *json_skip_ws(const char *p, const char *end);
const char *json_skip_string(const char *p, const char *end);
const char *json_skip_value(const char *p, const char *end);

/* json_fields.c */
/* Add the row that says how many problems past SOURCE_MAX_PROBLEMS r did
 * not keep. */
void json_problems_more_row(struct page *page, struct run *r);

#endif
