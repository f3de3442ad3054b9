/* SPDX-License-Identifier: ISC */
/*
 * json.c: bounded parsing of a page body and verbatim item spans.
 *
 * Three passes over a body, all linear: a pre-scan that enforces the
 * nesting and string-length limits (and refuses raw NUL bytes), cJSON's
 * parse (which must consume the whole body), and a span scan that walks the
 * already-validated text to the top-level array and records where each
 * element starts and ends.  The span scan may be simple because cJSON has
 * accepted the text; it still checks that it found as many elements as
 * cJSON did, else the body is refused.
 *
 * What follows per item is linear too (n log n in its members where names
 * given twice are sought): a page one source serves holds the event loop,
 * and so every other source, for as long as it takes.  A loop over the
 * members, problems or pull requests of one run for each of them made a
 * 1.2 MB run stop the other sources for 59 s (test_hostile_item.py).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"

#define ARENA_CHUNK (64 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used;
	size_t size;
	/* data follows, max_align_t aligned */
};

#define CHUNK_HDR ((sizeof(struct arena_chunk) + 15) & ~(size_t)15)

/* A block from malloc the page holds (json_own()); the list is in the
 * arena. */
struct owned {
	void *p;
	struct owned *next;
};
/*
 * Allocations are 8-byte granules: nothing a page holds (cJSON nodes,
 * pointers, int64_t, double) needs more, and most of cJSON's allocations
 * are short strings (a member name "id" takes 3 bytes).  With 16-byte
 * granules the densest page's tree was 9.6 times its body; with 8, 8.
 */
#define ARENA_GRAIN 8

/* Bump allocation, not zeroed. */
static void *
arena_alloc(struct page *page, size_t size)
{
	struct arena_chunk *c = page->arena;
	size_t need = (size + ARENA_GRAIN - 1) & ~(size_t)(ARENA_GRAIN - 1),
	       csize;
	void *p;

	if (c == NULL || c->size - c->used < need) {
		csize = need > ARENA_CHUNK ? need : ARENA_CHUNK;
		c = malloc(CHUNK_HDR + csize);
		if (c == NULL)
			return NULL;
		c->used = 0;
		c->size = csize;
		/* the chunk list: newest first; page_free walks ->next */
		c->next = page->arena;
		page->arena = c;
	}
	p = (char *)c + CHUNK_HDR + c->used;
	c->used += need;
	return p;
}

void *
json_alloc(struct page *page, size_t size)
{
	void *p = arena_alloc(page, size);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

/*
 * cJSON's nodes go to the page's arena too: a page's tree is thousands of
 * small allocations that all die together in page_free(), so malloc and
 * free per node, and cJSON_Delete's walk, are work for nothing (callgrind:
 * about a third of an idle poll's instructions; 10% fewer per run in a
 * backfill without them).  The hooks are process-wide, so they are set
 * for the parse alone: everywhere else cJSON has malloc, free and realloc
 * (cJSON_InitHooks(NULL)), and grows a text it prints in place.  With
 * hooks of our own it has no realloc: it copied the text into a buffer
 * twice as large at each doubling and once more at the end, three times
 * the text at once (the printed metadata of a 30 MiB page took the
 * daemon past its memory bound).  During a parse, cJSON frees only nodes
 * of a failed parse, which live in the arena: free is a no-op then.
 */
static struct page *parsing_page;

static void *
cjson_malloc_cb(size_t size)
{
	return arena_alloc(parsing_page, size);
}

static void
cjson_free_cb(void *p)
{
	(void)p; /* in the arena */
}

/* page->text (len bytes and a NUL) parsed into the arena. */
static cJSON *
parse_in_arena(struct page *page, size_t len, const char **parse_end)
{
	cJSON_Hooks hooks = { cjson_malloc_cb, cjson_free_cb };
	cJSON *tree;

	parsing_page = page;
	cJSON_InitHooks(&hooks);
	tree = cJSON_ParseWithLengthOpts(page->text, len + 1, parse_end, 1);
	cJSON_InitHooks(NULL); /* malloc, free and realloc */
	parsing_page = NULL;
	return tree;
}

int
json_own(struct page *page, void *p)
{
	struct owned *o = json_alloc(page, sizeof(*o));

	if (o == NULL) {
		free(p);
		return -1;
	}
	o->p = p;
	o->next = page->owned;
	page->owned = o;
	return 0;
}

const char *
json_strdup(struct page *page, const char *s, size_t len)
{
	char *p = json_alloc(page, len + 1);

	if (p != NULL) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

/* Enforce depth, string and density limits before cJSON recurses or
 * allocates a node. */
static int
prescan(const char *s, size_t len, int *open, char *err, size_t errlen)
{
	size_t i, start = 0, values = 1, max_values;
	int depth = 0, in_str = 0;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '\0') {
			snprintf(err, errlen, "NUL byte at byte %zu", i);
			return -1;
		}
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			if (i - start > SOURCE_MAX_STRING) {
				snprintf(err, errlen,
				    "string longer than %d "
				    "bytes at byte %zu",
				    SOURCE_MAX_STRING, start);
				return -1;
			}
			continue;
		}
		if (c == '"') {
			in_str = 1;
			start = i;
		} else if (c == ',') {
			values++; /* each value after a container's first */
		} else if (c == '[' || c == '{') {
			values += 2; /* the container and its first value */
			if (++depth > SOURCE_MAX_DEPTH) {
				snprintf(err, errlen,
				    "nesting deeper than %d "
				    "at byte %zu",
				    SOURCE_MAX_DEPTH, i);
				return -1;
			}
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	/* ends inside a string or an open [ or {: cut off on the way */
	*open = in_str || depth > 0;
	max_values = len / SOURCE_MIN_VALUE_BYTES + SOURCE_FREE_VALUES;
	if (values > max_values) {
		snprintf(err, errlen,
		    "too dense: up to %zu JSON values in %zu bytes, more than "
		    "one per %d bytes (pages of runs hold one per 20 or so)",
		    values, len, SOURCE_MIN_VALUE_BYTES);
		return -1;
	}
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A member name that makes obj ambiguous, or NULL: two members with one
 * name (cJSON's lookups see the first, other readers of raw_json may see
 * the last), or a name with a NUL in it (cJSON's C string ends there, so
 * "runs\u0000x" reads as "runs").  With recurse, nested objects are
 * checked too (at most SOURCE_MAX_DEPTH deep: the pre-scan's limit).  *oom
 * is set when out of memory.
 */
static const char *
ambiguous_member(const cJSON *obj, int recurse, int *oom)
{
	const cJSON *c;
	const char **names, *bad = NULL;
	size_t n = 0, i;

	if (!cJSON_IsObject(obj) && !cJSON_IsArray(obj))
		return NULL;
	for (c = obj->child; c != NULL && bad == NULL; c = c->next) {
		if (recurse)
			bad = ambiguous_member(c, 1, oom);
		n++;
	}
	if (bad != NULL || *oom || !cJSON_IsObject(obj) || n < 2)
		return bad;
	names = malloc(n * sizeof(*names));
	if (names == NULL) {
		*oom = 1;
		return NULL;
	}
	i = 0;
	for (c = obj->child; c != NULL; c = c->next)
		names[i++] = c->string != NULL ? c->string : "";
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 1; i < n && bad == NULL; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			bad = names[i];
	free(names);
	return bad;
}

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Past the string starting at p (on its opening quote). */
static const char *
skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

/* Past one value starting at p (text already validated by cJSON). */
static const char *
skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p < end && *p == '"')
		return skip_string(p, end);
	if (p < end && (*p == '[' || *p == '{')) {
		for (; p < end; p++) {
			if (*p == '"') {
				p = skip_string(p, end) - 1;
			} else if (*p == '[' || *p == '{') {
				depth++;
			} else if (*p == ']' || *p == '}') {
				if (--depth == 0)
					return p + 1;
			}
		}
		return end;
	}
	while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
	    *p != '\t' && *p != '\n' && *p != '\r')
		p++;
	return p;
}

/* The raw name of the member at p (on its opening quote) holds an escape:
 * then its decoded name may differ from its bytes. */
static int
name_has_escape(const char *p, const char *end)
{
	const char *q = skip_string(p, end);

	return memchr(p, '\\', (size_t)(q - p)) != NULL;
}

/* Spans of the elements of the first top-level member named key. */
static int
find_spans(const char *text, size_t len, const char *key,
    struct json_span *spans, int n)
{
	const char *p = text, *end = text + len, *k, *v;
	size_t klen = strlen(key);
	int i = 0;

	p = skip_ws(p, end);
	if (p == end || *p != '{')
		return -1;
	p++;
	for (;;) {
		p = skip_ws(p, end);
		if (p == end || *p != '"')
			return -1;
		if (name_has_escape(p, end))
			return -2;
		k = p + 1;
		p = skip_string(p, end);
		if (p == end)
			return -1;
		v = skip_ws(p, end);
		if (v == end || *v != ':')
			return -1;
		v = skip_ws(v + 1, end);
		if ((size_t)(p - 1 - k) == klen && memcmp(k, key, klen) == 0)
			break;
		p = skip_ws(skip_value(v, end), end);
		if (p == end || *p != ',')
			return -1;
		p++;
	}
	if (*v != '[')
		return -1;
	p = skip_ws(v + 1, end);
	if (p < end && *p == ']')
		return 0;
	for (;;) {
		v = skip_value(p, end);
		if (i >= n)
			return -1;
		spans[i].p = p;
		spans[i].len = (size_t)(v - p);
		i++;
		p = skip_ws(v, end);
		if (p == end)
			return -1;
		if (*p == ']')
			return i;
		if (*p != ',')
			return -1;
		p = skip_ws(p + 1, end);
	}
}

void
page_free(struct page *page)
{
	struct arena_chunk *c, *n;
	struct owned *o;

	if (page == NULL)
		return;
	/* page->tree lives in the arena (see cjson_malloc_cb) */
	free(page->text);
	for (o = page->owned; o != NULL; o = o->next)
		free(o->p); /* the list itself is in the arena */
	for (c = page->arena; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	memset(page, 0, sizeof(*page));
}

static int
hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/*
 * The next escape at or after *i that cJSON cannot turn into the text
 * upstream meant: \u0000 (cJSON cuts the string there) or a UTF-16
 * surrogate without its other half (cJSON refuses the whole body).  Sets
 * *i to its backslash and returns its kind, or ESC_NONE at the end.
 */
enum bad_escape {
	ESC_NONE,
	ESC_NUL,
	ESC_LONE
};

static enum bad_escape
next_bad_escape(const char *p, size_t len, size_t *i)
{
	unsigned u, lo;
	size_t j;

	for (j = *i; j + 1 < len; j++) {
		if (p[j] != '\\')
			continue;
		if (p[j + 1] != 'u' || j + 5 >= len || hex4(p + j + 2, &u)) {
			j++; /* the escaped character */
			continue;
		}
		*i = j;
		if (u == 0)
			return ESC_NUL;
		if (u >= 0xdc00 && u <= 0xdfff)
			return ESC_LONE;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (j + 11 >= len || p[j + 6] != '\\' ||
			    p[j + 7] != 'u' || hex4(p + j + 8, &lo) ||
			    lo < 0xdc00 || lo > 0xdfff)
				return ESC_LONE;
			j += 6; /* the pair's low half */
		}
		j += 5;
	}
	*i = len;
	return ESC_NONE;
}

static const char *
json_bad_escape(const char *p, size_t len)
{
	size_t i = 0;

	switch (next_bad_escape(p, len, &i)) {
	case ESC_NUL:
		return "a string holds \\u0000";
	case ESC_LONE:
		return "a string holds a lone UTF-16 surrogate escape";
	default:
		return NULL;
	}
}

/*
 * cJSON refuses a whole body for one lone surrogate escape, which
 * JavaScript's JSON.stringify writes for a string cut inside an emoji.
 * Mask each as \uFFFD (the same six bytes, so spans hold) for the parse;
 * json_parse_page() puts the original bytes back for raw_json, and
 * json_fill_page() sets such an item aside as a reject.  Returns the
 * original text (arena) when something was masked, else NULL.
 */
static char *
mask_lone_surrogates(struct page *page, size_t len)
{
	char *orig = NULL, *t = page->text;
	size_t i = 0;
	enum bad_escape e;

	while ((e = next_bad_escape(t, len, &i)) != ESC_NONE) {
		if (e == ESC_LONE) {
			if (orig == NULL) {
				if ((orig = arena_alloc(page, len)) == NULL)
					return NULL;
				memcpy(orig, t, len);
			}
			memcpy(t + i + 2, "FFFD", 4);
		}
		i += 6;
	}
	return orig;
}

int
json_parse_page(const char *body, size_t len, const char *key, size_t max_items,
    struct page *page, cJSON **items, struct json_span **spans, char *err,
    size_t errlen)
{
	const char *parse_end = NULL, *dup;
	char *orig;
	int n, rc, open = 0, oom = 0;

	memset(page, 0, sizeof(*page));
	*items = NULL;
	*spans = NULL;
	if (len > SOURCE_MAX_BODY) {
		snprintf(err, errlen, "body larger than %u bytes",
		    SOURCE_MAX_BODY);
		return -1;
	}
	if (len == 0) {
		snprintf(err, errlen, "empty body");
		return -1;
	}
	if (prescan(body, len, &open, err, errlen) == -1)
		return -1;
	/* cJSON 1.7.15 reads one byte past the length: NUL-terminate. */
	page->text = malloc(len + 1);
	if (page->text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(page->text, body, len);
	page->text[len] = '\0';
	orig = mask_lone_surrogates(page, len);
	page->tree = parse_in_arena(page, len, &parse_end);
	if (orig != NULL)
		memcpy(page->text, orig, len); /* raw_json stays verbatim */
	if (page->tree == NULL) {
		size_t at = parse_end != NULL && parse_end >= page->text ?
		    (size_t)(parse_end - page->text) :
		    0;

		snprintf(err, errlen, "not JSON at byte %zu%s", at,
		    open || at >= len ? " (truncated)" : "");
		goto fail;
	}
	if (!cJSON_IsObject((cJSON *)page->tree)) {
		snprintf(err, errlen, "top level is not an object");
		goto fail;
	}
	/* One envelope, read one way: the members cJSON finds by name must
	 * be the ones whose bytes become raw_json. */
	dup = ambiguous_member(page->tree, 0, &oom);
	if (oom) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (dup != NULL) {
		snprintf(err, errlen,
		    "ambiguous page: member \"%.40s\" given twice", dup);
		goto fail;
	}
	*items = cJSON_GetObjectItemCaseSensitive(page->tree, key);
	if (!cJSON_IsArray(*items)) {
		snprintf(err, errlen, "missing \"%s\" array", key);
		goto fail;
	}
	n = cJSON_GetArraySize(*items);
	/* Out of both specs, and a page that outgrows the request would
	 * also shift the walk's offsets. */
	if ((size_t)n > max_items) {
		snprintf(err, errlen, "%d items, more than the %zu asked for",
		    n, max_items);
		goto fail;
	}
	*spans = json_alloc(page, sizeof(**spans) * (size_t)(n > 0 ? n : 1));
	if (*spans == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = find_spans(page->text, len, key, *spans, n);
	if (rc == -2) {
		snprintf(err, errlen,
		    "ambiguous page: a top-level member name holds an escape");
		goto fail;
	}
	if (rc != n) {
		snprintf(err, errlen, "cannot locate the items of \"%s\"", key);
		goto fail;
	}
	return 0;
fail:
	page_free(page);
	*items = NULL;
	*spans = NULL;
	return -1;
}

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
static void
problems_more_row(struct page *page, struct run *r)
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

void
run_str(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, const char **out)
{
	const cJSON *v = member(obj, key);

	*out = NULL;
	if (v == NULL)
		return;
	if (cJSON_IsString(v))
		*out = v->valuestring;
	else
		run_problem(page, r, prefix, key, v, "is not a string");
}

void
run_int(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, struct opt_int *out)
{
	const cJSON *v = member(obj, key);

	out->set = 0;
	out->v = 0;
	if (v == NULL)
		return;
	if (cJSON_IsNumber(v) && json_integral(v->valuedouble, &out->v) == 0)
		out->set = 1;
	else
		run_problem(page, r, prefix, key, v,
		    "is not an integer (below 2^53)");
}

void
run_num(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, struct opt_num *out)
{
	const cJSON *v = member(obj, key);

	out->set = 0;
	out->v = 0;
	if (v == NULL)
		return;
	if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
		out->set = 1;
		out->v = v->valuedouble;
	} else {
		run_problem(page, r, prefix, key, v, "is not a number");
	}
}

void
run_bool(struct page *page, struct run *r, const cJSON *obj, const char *prefix,
    const char *key, struct opt_bool *out)
{
	const cJSON *v = member(obj, key);

	out->set = 0;
	out->v = 0;
	if (v == NULL)
		return;
	if (cJSON_IsBool(v)) {
		out->set = 1;
		out->v = cJSON_IsTrue(v) ? 1 : 0;
	} else {
		run_problem(page, r, prefix, key, v, "is not a boolean");
	}
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

const cJSON *
run_array(struct page *page, struct run *r, const cJSON *obj, const char *key)
{
	const cJSON *v = member(obj, key);

	if (v == NULL || cJSON_IsArray(v))
		return v;
	run_problem(page, r, "", key, v, "is not an array");
	return NULL;
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

/* The problem of a member whose value holds the escape e. */
static const char *
escape_problem(enum bad_escape e)
{
	if (e == ESC_NUL)
		return "holds \\u0000";
	return "holds a lone UTF-16 surrogate escape";
}

/*
 * Poison every top-level member of item whose value holds \u0000 or a lone
 * surrogate escape (cJSON's text of it is not what upstream sent), each
 * recorded with the kind of its first such escape.  One scan for escapes
 * and one walk of the item's bytes beside its members (cJSON keeps them in
 * order, duplicates included); a walk from the item's start for each
 * escape made 40,000 of them cost 10 s.  Returns NULL, or why the item
 * cannot be kept at all: such an escape in a member's name (or bytes and
 * members that disagree, which cJSON's acceptance rules out).
 */
static const char *
drop_bad_escapes(struct page *page, cJSON *item, struct run *r)
{
	const char *raw = r->raw, *end = raw + r->raw_len, *p, *v;
	cJSON *c = item->child;
	size_t i = 0;
	enum bad_escape e, first;

	if ((e = next_bad_escape(raw, r->raw_len, &i)) == ESC_NONE)
		return NULL;
	p = skip_ws(raw, end);
	if (p == end || *p++ != '{')
		return json_bad_escape(raw, r->raw_len);
	for (; e != ESC_NONE; c = c->next) {
		p = skip_ws(p, end);
		if (c == NULL || p == end || *p != '"')
			return json_bad_escape(raw, r->raw_len);
		p = skip_string(p, end);
		v = skip_ws(p, end);
		if (raw + i < p || v == end || *v != ':')
			return json_bad_escape(raw, r->raw_len); /* name */
		p = skip_value(skip_ws(v + 1, end), end);
		if (raw + i < p) { /* in this member's value */
			for (first = e; e != ESC_NONE && raw + i < p;
			     e = next_bad_escape(raw, r->raw_len, &i))
				i += 6;
			run_problem(page, r, "", c->string ? c->string : "",
			    NULL, escape_problem(first));
			c->type = cJSON_Invalid;
		}
		p = skip_ws(p, end);
		if (e != ESC_NONE && (p == end || *p++ != ','))
			return json_bad_escape(raw, r->raw_len);
	}
	return NULL;
}

/* By member name. */
static int
cmp_nodes(const void *a, const void *b)
{
	return strcmp((*(cJSON *const *)a)->string,
	    (*(cJSON *const *)b)->string);
}

/* The first index of m[0..n) (sorted by name) whose name is not below
 * name. */
static size_t
first_named(cJSON *const *m, size_t n, const char *name)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (strcmp(m[mid]->string, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Of each name that m (item's n members, sorted by name) holds more than
 * once, keep the first copy in item's order as cJSON_Invalid, which every
 * reader takes for a value of the wrong type (run_problem() then adds
 * nothing), and take the later copies out (their memory stays in the
 * arena until page_free).  One walk of the members, each finding its
 * name's copies in m by binary search.  -1 when out of memory.
 */
static int
poison_duplicates(cJSON *item, cJSON *const *m, size_t n)
{
	unsigned char *kept = calloc(n, 1); /* by the index of a name's
					     * first copy in m */
	cJSON *c, *next;
	size_t g;

	if (kept == NULL)
		return -1;
	for (c = item->child; c != NULL; c = next) {
		next = c->next;
		if (c->string == NULL)
			continue;
		g = first_named(m, n, c->string);
		if (g + 1 >= n || strcmp(m[g + 1]->string, c->string) != 0)
			continue; /* given once */
		if (!kept[g]) {
			kept[g] = 1;
			c->type = cJSON_Invalid;
		} else {
			cJSON_DetachItemViaPointer(item, c);
		}
	}
	free(kept);
	return 0;
}

/*
 * Record every name given more than once among item's members, in strcmp
 * order, each once (not when drop_bad_escapes() recorded one of its
 * copies), then poison them.  One sort of the members (8 bytes each, and
 * glibc's merge sort as much again while it runs): a sort per name given
 * twice made 13,000 of them cost 29 s.  -1 when out of memory.
 */
static int
drop_duplicates(struct page *page, cJSON *item, struct run *r)
{
	cJSON **m, *c;
	size_t n = 0, i, j, dups = 0;
	int found, rc = 0;

	for (c = item->child; c != NULL; c = c->next)
		n += c->string != NULL;
	if (n < 2)
		return 0;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression): pointers, on purpose */
	if ((m = malloc(n * sizeof(*m))) == NULL)
		return -1;
	n = 0;
	for (c = item->child; c != NULL; c = c->next)
		if (c->string != NULL)
			m[n++] = c;
	/* NOLINTNEXTLINE(bugprone-sizeof-expression) */
	qsort(m, n, sizeof(*m), cmp_nodes);
	for (i = 0; i < n; i = j) {
		found = (m[i]->type & 0xff) == cJSON_Invalid;
		for (j = i + 1;
		     j < n && strcmp(m[j]->string, m[i]->string) == 0; j++)
			found |= (m[j]->type & 0xff) == cJSON_Invalid;
		if (j - i < 2)
			continue;
		dups++;
		if (!found)
			run_problem(page, r, "", m[i]->string, NULL,
			    "given twice");
	}
	if (dups > 0)
		rc = poison_duplicates(item, m, n);
	free(m);
	return rc;
}

/*
 * Poison every top-level member of item that cannot be read one way, each
 * recorded as a problem of r: one whose value holds \u0000 or a lone
 * surrogate escape, one given twice, one holding a member given twice (at
 * any depth).  Each pass is linear in the item (the sort, n log n).
 * Returns NULL, or why the item cannot be kept at all (such an escape in a
 * member's name).
 */
static const char *
drop_ambiguous(struct page *page, cJSON *item, struct run *r)
{
	const char *bad, *dup;
	cJSON *c;
	char why[160];
	int oom = 0;

	if (!cJSON_IsObject(item))
		return NULL;
	if ((bad = drop_bad_escapes(page, item, r)) != NULL)
		return bad;
	if (drop_duplicates(page, item, r) == -1)
		oom = 1;
	for (c = item->child; c != NULL && !oom; c = c->next) {
		if ((dup = ambiguous_member(c, 1, &oom)) == NULL)
			continue;
		snprintf(why, sizeof(why), "holds member \"%.40s\" given twice",
		    dup);
		run_problem(page, r, "", c->string ? c->string : "", NULL, why);
		c->type = cJSON_Invalid;
	}
	if (oom)
		page->oom = 1;
	return NULL;
}

/*
 * fn over one item, then the row that counts the problems past the cap.
 * 0, or -1 when fn refused the item (why says why, and names its first
 * problem: e.g. an "id" given twice) or memory ran out (page->oom).
 */
static int
fill_run(struct page *page, const cJSON *item, struct run *r, json_item_fn *fn,
    char *why, size_t whylen)
{
	size_t used;

	if (fn(page, item, r, why, whylen) == 0) {
		if (r->problems_more > 0 && !page->oom)
			problems_more_row(page, r);
		return page->oom ? -1 : 0;
	}
	if (r->nproblems > 0 && !page->oom) {
		used = strlen(why);
		snprintf(why + used, whylen - used, " (\"%.40s\" %.60s)",
		    r->problems[0].field, r->problems[0].problem);
	}
	return -1;
}

int
json_fill_page(struct page *page, cJSON *items, const struct json_span *spans,
    const char *total_key, json_item_fn *fn, char *err, size_t errlen)
{
	cJSON *e;
	const cJSON *total, *id;
	const char *bad;
	size_t i = 0, n;
	int64_t t;
	char num[24];

	total = cJSON_GetObjectItemCaseSensitive(page->tree, total_key);
	if (!cJSON_IsNumber(total) ||
	    json_integral(total->valuedouble, &t) == -1 || t < 0) {
		snprintf(err, errlen, "\"%s\" is not a non-negative integer",
		    total_key);
		goto fail;
	}
	page->total = t;
	n = (size_t)cJSON_GetArraySize(items);
	page->nitems = n;
	page->runs = json_alloc(page, sizeof(*page->runs) * (n ? n : 1));
	page->rejects = json_alloc(page, sizeof(*page->rejects) * (n ? n : 1));
	if (page->runs == NULL || page->rejects == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	cJSON_ArrayForEach(e, items)
	{
		struct run *r = &page->runs[page->nruns];
		struct reject *rj;
		char why[160];

		r->raw = spans[i].p;
		r->raw_len = spans[i].len;
		if ((bad = drop_ambiguous(page, e, r)) != NULL) {
			snprintf(why, sizeof(why), "%s in a member name", bad);
		} else if (fill_run(page, e, r, fn, why, sizeof(why)) == 0) {
			page->nruns++;
			i++;
			continue;
		}
		if (page->oom) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		rj = &page->rejects[page->nrejects++];
		rj->raw = spans[i].p;
		rj->raw_len = spans[i].len;
		rj->pos = i;
		snprintf(rj->reason, sizeof(rj->reason), "%s", why);
		id = cJSON_GetObjectItemCaseSensitive(e, "id");
		if (cJSON_IsString(id))
			rj->external_id = id->valuestring;
		else if (cJSON_IsNumber(id) &&
		    json_integral(id->valuedouble, &t) == 0)
			rj->external_id = json_strdup(page, num,
			    (size_t)snprintf(num, sizeof(num), "%lld",
				(long long)t));
		memset(r, 0, sizeof(*r));
		i++;
	}
	return 0;
fail:
	page_free(page);
	return -1;
}
