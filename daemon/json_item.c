/* SPDX-License-Identifier: ISC */
/*
 * json_item.c: a parsed page's items into runs and rejects.  Each item is
 * first made unambiguous (members whose value holds \u0000 or a lone
 * surrogate escape, members given twice, members holding a name given
 * twice are poisoned and recorded as problems), then handed to the
 * adapter's item function.
 *
 * It is not the parse of a body (json.c) nor the typed readers
 * (json_fields.c).  Every pass is linear in the item (the sort, n log n).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_int.h"

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

	if ((e = json_next_bad_escape(raw, r->raw_len, &i)) == ESC_NONE)
		return NULL;
	p = json_skip_ws(raw, end);
	if (p == end || *p++ != '{')
		return json_bad_escape(raw, r->raw_len);
	for (; e != ESC_NONE; c = c->next) {
		p = json_skip_ws(p, end);
		if (c == NULL || p == end || *p != '"')
			return json_bad_escape(raw, r->raw_len);
		p = json_skip_string(p, end);
		v = json_skip_ws(p, end);
		if (raw + i < p || v == end || *v != ':')
			return json_bad_escape(raw, r->raw_len); /* name */
		p = json_skip_value(json_skip_ws(v + 1, end), end);
		if (raw + i < p) { /* in this member's value */
			for (first = e; e != ESC_NONE && raw + i < p;
			     e = json_next_bad_escape(raw, r->raw_len, &i))
				i += 6;
			run_problem(page, r, "", c->string ? c->string : "",
			    NULL, escape_problem(first));
			c->type = cJSON_Invalid;
		}
		p = json_skip_ws(p, end);
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
		if ((dup = json_ambiguous_member(c, 1, &oom)) == NULL)
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
			json_problems_more_row(page, r);
		return page->oom ? -1 : 0;
	}
	if (r->nproblems > 0 && !page->oom) {
		used = strlen(why);
		snprintf(why + used, whylen - used, " (\"%.40s\" %.60s)",
		    r->problems[0].field, r->problems[0].problem);
	}
	return -1;
}

/* Item pos of the page (its text at span), refused for why, into
 * page->rejects, with its id when it has one. */
static void
add_reject(struct page *page, const cJSON *item, const struct json_span *span,
    size_t pos, const char *why)
{
	struct reject *rj = &page->rejects[page->nrejects++];
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
	char num[24];
	int64_t t;

	rj->raw = span->p;
	rj->raw_len = span->len;
	rj->pos = pos;
	snprintf(rj->reason, sizeof(rj->reason), "%s", why);
	if (cJSON_IsString(id))
		rj->external_id = id->valuestring;
	else if (cJSON_IsNumber(id) && json_integral(id->valuedouble, &t) == 0)
		rj->external_id = json_strdup(page, num,
		    (size_t)snprintf(num, sizeof(num), "%lld", (long long)t));
}

int
json_fill_page(struct page *page, cJSON *items, const struct json_span *spans,
    const char *total_key, json_item_fn *fn, char *err, size_t errlen)
{
	cJSON *e;
	const cJSON *total;
	const char *bad;
	size_t i = 0, n;
	int64_t t;

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
		add_reject(page, e, &spans[i], i, why);
		memset(r, 0, sizeof(*r));
		i++;
	}
	return 0;
fail:
	page_free(page);
	return -1;
}

int
json_read_page(const char *body, size_t len, const char *items_key,
    const char *total_key, size_t max_items, json_item_fn *fn,
    struct page *page, char *err, size_t errlen)
{
	struct json_span *spans;
	cJSON *items;

	if (json_parse_page(body, len, items_key, max_items, page, &items,
		&spans, err, errlen) == -1)
		return -1;
	return json_fill_page(page, items, spans, total_key, fn, err, errlen);
}
