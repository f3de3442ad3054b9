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
 * What follows per item (json_item.c, and the typed readers of
 * json_fields.c) is linear too (n log n in its members where names given
 * twice are sought): a page one source serves holds the event loop,
 * and so every other source, for as long as it takes.  A loop over the
 * members, problems or pull requests of one run for each of them made a
 * 1.2 MB run stop the other sources for 59 s (test_hostile_item.py).
 *
 * It is not the reading of an item: this file ends where the items and
 * their bytes are found.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_int.h"
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
				    "string longer than %d bytes at byte %zu",
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
				    "nesting deeper than %d at byte %zu",
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
		    "too dense: up to %zu JSON values in %zu bytes, more than one per %d bytes (pages of runs hold one per 20 or so)",
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
const char *
json_ambiguous_member(const cJSON *obj, int recurse, int *oom)
{
	const cJSON *c;
	const char **names, *bad = NULL;
	size_t n = 0, i;

	if (!cJSON_IsObject(obj) && !cJSON_IsArray(obj))
		return NULL;
	for (c = obj->child; c != NULL && bad == NULL; c = c->next) {
		if (recurse)
			bad = json_ambiguous_member(c, 1, oom);
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

const char *
json_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Past the string starting at p (on its opening quote). */
const char *
json_skip_string(const char *p, const char *end)
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
const char *
json_skip_value(const char *p, const char *end)
{
	int depth = 0;

	if (p < end && *p == '"')
		return json_skip_string(p, end);
	if (p < end && (*p == '[' || *p == '{')) {
		for (; p < end; p++) {
			if (*p == '"') {
				p = json_skip_string(p, end) - 1;
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
	const char *q = json_skip_string(p, end);

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

	p = json_skip_ws(p, end);
	if (p == end || *p != '{')
		return -1;
	p++;
	for (;;) {
		p = json_skip_ws(p, end);
		if (p == end || *p != '"')
			return -1;
		if (name_has_escape(p, end))
			return -2;
		k = p + 1;
		p = json_skip_string(p, end);
		if (p == end)
			return -1;
		v = json_skip_ws(p, end);
		if (v == end || *v != ':')
			return -1;
		v = json_skip_ws(v + 1, end);
		if ((size_t)(p - 1 - k) == klen && memcmp(k, key, klen) == 0)
			break;
		p = json_skip_ws(json_skip_value(v, end), end);
		if (p == end || *p != ',')
			return -1;
		p++;
	}
	if (*v != '[')
		return -1;
	p = json_skip_ws(v + 1, end);
	if (p < end && *p == ']')
		return 0;
	for (;;) {
		v = json_skip_value(p, end);
		if (i >= n)
			return -1;
		spans[i].p = p;
		spans[i].len = (size_t)(v - p);
		i++;
		p = json_skip_ws(v, end);
		if (p == end)
			return -1;
		if (*p == ']')
			return i;
		if (*p != ',')
			return -1;
		p = json_skip_ws(p + 1, end);
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
enum bad_escape
json_next_bad_escape(const char *p, size_t len, size_t *i)
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

const char *
json_bad_escape(const char *p, size_t len)
{
	size_t i = 0;

	switch (json_next_bad_escape(p, len, &i)) {
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

	while ((e = json_next_bad_escape(t, len, &i)) != ESC_NONE) {
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

/* body into page->text and page->tree: 0, or -1 with err set (what page
 * holds by then is freed with page_free()). */
static int
parse_body(const char *body, size_t len, struct page *page, char *err,
    size_t errlen)
{
	const char *parse_end = NULL;
	char *orig;
	int open = 0;
	size_t at;

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
	if (page->tree != NULL)
		return 0;
	at = parse_end != NULL && parse_end >= page->text ?
	    (size_t)(parse_end - page->text) :
	    0;
	snprintf(err, errlen, "not JSON at byte %zu%s", at,
	    open || at >= len ? " (truncated)" : "");
	return -1;
}

/* The array key of the parsed page's envelope into *items, and where each
 * of its len-byte text's items is into *spans: 0, or -1 with err set. */
static int
envelope_items(struct page *page, size_t len, const char *key, size_t max_items,
    cJSON **items, struct json_span **spans, char *err, size_t errlen)
{
	const char *dup;
	int n, rc, oom = 0;

	if (!cJSON_IsObject((cJSON *)page->tree)) {
		snprintf(err, errlen, "top level is not an object");
		return -1;
	}
	/* One envelope, read one way: the members cJSON finds by name must
	 * be the ones whose bytes become raw_json. */
	dup = json_ambiguous_member(page->tree, 0, &oom);
	if (oom) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (dup != NULL) {
		snprintf(err, errlen,
		    "ambiguous page: member \"%.40s\" given twice", dup);
		return -1;
	}
	*items = cJSON_GetObjectItemCaseSensitive(page->tree, key);
	if (!cJSON_IsArray(*items)) {
		snprintf(err, errlen, "missing \"%s\" array", key);
		return -1;
	}
	n = cJSON_GetArraySize(*items);
	/* Out of both specs, and a page that outgrows the request would
	 * also shift the walk's offsets. */
	if ((size_t)n > max_items) {
		snprintf(err, errlen, "%d items, more than the %zu asked for",
		    n, max_items);
		return -1;
	}
	*spans = json_alloc(page, sizeof(**spans) * (size_t)(n > 0 ? n : 1));
	if (*spans == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = find_spans(page->text, len, key, *spans, n);
	if (rc == -2) {
		snprintf(err, errlen,
		    "ambiguous page: a top-level member name holds an escape");
		return -1;
	}
	if (rc != n) {
		snprintf(err, errlen, "cannot locate the items of \"%s\"", key);
		return -1;
	}
	return 0;
}

int
json_parse_page(const char *body, size_t len, const char *key, size_t max_items,
    struct page *page, cJSON **items, struct json_span **spans, char *err,
    size_t errlen)
{
	memset(page, 0, sizeof(*page));
	*items = NULL;
	*spans = NULL;
	if (parse_body(body, len, page, err, errlen) == 0 &&
	    envelope_items(page, len, key, max_items, items, spans, err,
		errlen) == 0)
		return 0;
	page_free(page);
	*items = NULL;
	*spans = NULL;
	return -1;
}
