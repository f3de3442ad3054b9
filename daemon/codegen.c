/* SPDX-License-Identifier: ISC */
/*
 * codegen.c: the Codegen adapter (GET /v1/organizations/{org_id}/agent/runs).
 *
 * The listing is ordered by creation, newest first, paged with skip/limit;
 * the body is {"items": [...], "total": N, "page", "size", "pages"}.  Only
 * items and total are used: page/pages are undocumented in meaning.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "source.h"

static int
codegen_page_url(const struct conf_source *src, int64_t offset, int limit,
    enum walk_order order, char *buf, size_t len)
{
	int n;

	(void)order; /* creation order is all Codegen offers */
	n = snprintf(buf, len,
	    "%s/v1/organizations/%lld/agent/runs?skip=%lld&limit=%d",
	    src->base_url, (long long)src->org_id, (long long)offset, limit);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static enum run_state
codegen_map_status(const char *status)
{
	static const struct {
		const char *name;
		enum run_state state;
	} map[] = {
		{ "PENDING", RUN_PENDING },
		{ "ACTIVE", RUN_RUNNING },
		{ "RUNNING", RUN_RUNNING },
		{ "EVALUATION", RUN_RUNNING },
		{ "PAUSED", RUN_WAITING },
		{ "COMPLETE", RUN_SUCCEEDED },
		{ "COMPLETED", RUN_SUCCEEDED },
		{ "FAILED", RUN_FAILED },
		{ "ERROR", RUN_FAILED },
		{ "TIMEOUT", RUN_FAILED },
		{ "MAX_ITERATIONS_REACHED", RUN_FAILED },
		{ "OUT_OF_TOKENS", RUN_FAILED },
		{ "CANCELLED", RUN_CANCELLED },
		{ "CANCELED", RUN_CANCELLED },
		{ "STOPPED", RUN_CANCELLED },
	};
	size_t i;

	if (status == NULL)
		return RUN_UNKNOWN;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(status, map[i].name) == 0)
			return map[i].state;
	return RUN_UNKNOWN;
}

/*
 * An integer id, or one sent as a string of decimal digits (then a problem
 * of r, but the id is kept: an API that starts quoting its ids must not
 * make every run vanish).  Returns 0 with the decimal text in buf, or -1.
 */
static int
codegen_id(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, char *buf, size_t len, uint64_t *idp)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "id");
	int64_t id;
	size_t n;

	if (cJSON_IsNumber(v) && json_integral(v->valuedouble, &id) == 0 &&
	    id >= 0) {
		snprintf(buf, len, "%lld", (long long)id);
		*idp = (uint64_t)id;
		return 0;
	}
	if (!cJSON_IsString(v))
		return -1;
	n = strspn(v->valuestring, "0123456789");
	if (n == 0 || n > 15 || v->valuestring[n] != '\0' ||
	    (v->valuestring[0] == '0' && n > 1))
		return -1;
	snprintf(buf, len, "%s", v->valuestring);
	/* no sign, no leading zero: one text per number */
	*idp = strtoull(v->valuestring, NULL, 10);
	run_problem(page, r, prefix, "id", v,
	    "is a string, not an integer (kept as the id)");
	return 0;
}

/*
 * The pull request ids of one run seen so far, to keep one link per id:
 * open addressing over id + 1 (0 marks a free slot), at most half full.
 * A scan of the ids kept so far made 120,000 pull requests in one run
 * (60,000 listed twice) cost 11 s.
 */
struct id_set {
	uint64_t *slot;
	size_t mask;
};

static int
id_set_init(struct id_set *s, size_t n)
{
	size_t size = 8;

	while (size < 2 * n)
		size *= 2;
	s->slot = calloc(size, sizeof(*s->slot));
	s->mask = size - 1;
	return s->slot == NULL ? -1 : 0;
}

/* 1 when id was not in s (now it is), 0 when it was. */
static int
id_set_add(struct id_set *s, uint64_t id)
{
	uint64_t key = id + 1;
	size_t i = (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) & s->mask;

	for (; s->slot[i] != 0; i = (i + 1) & s->mask)
		if (s->slot[i] == key)
			return 0;
	s->slot[i] = key;
	return 1;
}

static void
codegen_prs(struct page *page, const cJSON *item, struct run *r)
{
	const cJSON *arr, *e;
	struct pull_request *p;
	struct id_set seen;
	char at[48], dot[50];
	size_t i = 0, n;
	uint64_t id;

	arr = run_array(page, r, item, "github_pull_requests");
	r->prs_sent = arr != NULL;
	if (arr == NULL || arr->child == NULL)
		return;
	/* room for the objects only: 400,000 numbers are no requests */
	n = json_objects(arr);
	r->prs = json_alloc(page, sizeof(*r->prs) * (n ? n : 1));
	if (r->prs == NULL || id_set_init(&seen, n) == -1) {
		page->oom = 1;
		return;
	}
	cJSON_ArrayForEach(e, arr)
	{
		snprintf(at, sizeof(at), "github_pull_requests[%zu]", i++);
		if (!cJSON_IsObject(e)) {
			run_problem(page, r, at, "", e, "is not an object");
			continue;
		}
		p = &r->prs[r->nprs];
		snprintf(dot, sizeof(dot), "%s.", at);
		if (codegen_id(page, r, e, dot, p->external_id,
			sizeof(p->external_id), &id) == -1) {
			run_problem(page, r, dot, "id",
			    cJSON_GetObjectItemCaseSensitive(e, "id"),
			    "is not a non-negative integer below 2^53 (pull request left out)");
			continue;
		}
		/* listed twice: one link, at its first position */
		if (!id_set_add(&seen, id))
			continue;
		run_str(page, r, e, dot, "title", &p->title);
		run_str(page, r, e, dot, "url", &p->url);
		run_str(page, r, e, dot, "head_branch_name",
		    &p->head_branch_name);
		run_time(page, r, e, dot, "created_at", &p->created_at);
		r->nprs++;
	}
	free(seen.slot);
}

#define TEXT(col, member_name)                                             \
	{                                                                  \
		.column = (col), .path = (member_name), .type = FIELD_TEXT \
	}

/* In the order they are read, which is the order of a run's problems;
 * the id and github_pull_requests are read by codegen_run(). */
static const struct field codegen_fields[] = {
	{ .column = "organization_id",
	    .path = "organization_id",
	    .type = FIELD_INT },
	{ .path = "status", .type = FIELD_TEXT, .member = MEMBER_STATUS },
	{ .path = "created_at",
	    .type = FIELD_TIME,
	    .member = MEMBER_CREATED_AT },
	{ .path = "web_url", .type = FIELD_TEXT, .member = MEMBER_WEB_URL },
	TEXT("result", "result"),
	TEXT("summary", "summary"),
	TEXT("source_type", "source_type"),
	{ .column = "metadata", .path = "metadata", .type = FIELD_JSON },
};

/* Normalize one item; -1 with a reason when it has no usable id. */
static int
codegen_run(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
	uint64_t id;

	if (!cJSON_IsObject(item)) {
		snprintf(err, errlen, "item is not an object");
		return -1;
	}
	if (codegen_id(page, r, item, "", r->idbuf, sizeof(r->idbuf), &id) ==
	    -1) {
		snprintf(err, errlen,
		    "\"id\" is not a non-negative integer below 2^53");
		return -1;
	}
	r->external_id = r->idbuf;
	json_run_fields(page, r, item, codegen_fields,
	    sizeof(codegen_fields) / sizeof(codegen_fields[0]));
	r->state = codegen_map_status(r->status);
	codegen_prs(page, item, r);
	return 0;
}

static int
codegen_parse_page(const char *body, size_t len, size_t max_items,
    struct page *page, char *err, size_t errlen)
{
	return json_read_page(body, len, "items", "total", max_items,
	    codegen_run, page, err, errlen);
}

const struct source_type source_codegen = {
	.name = "codegen",
	.default_base_url = "https://api.codegen.com",
	/* Codegen documents 60 requests per 30 s. */
	.rate_requests = 60,
	.rate_window = 30,
	.needs_org_id = 1,
	.auth_hint = "may read org_id",
	.any_offset = 1,
	.can_order_updated = 0,
	.page_url = codegen_page_url,
	.parse_page = codegen_parse_page,
	.fields = codegen_fields,
	.nfields = sizeof(codegen_fields) / sizeof(codegen_fields[0]),
};
