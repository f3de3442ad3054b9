/*
 * codegen.c: the Codegen adapter (GET /v1/organizations/{org_id}/agent/runs).
 *
 * The listing is ordered by creation, newest first, paged with skip/limit;
 * the body is {"items": [...], "total": N, "page", "size", "pages"}.  Only
 * items and total are used: page/pages are undocumented in meaning.
 */
#include <stdio.h>
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
	    "%s/v1/organizations/%lld/agent/runs?skip=%lld"
	    "&limit=%d",
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

static int
codegen_prs(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
	const cJSON *arr, *e;
	struct pull_request *p;
	struct opt_int id;

	arr = cJSON_GetObjectItemCaseSensitive(item, "github_pull_requests");
	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, errlen,
		    "\"github_pull_requests\" is not an "
		    "array");
		return -1;
	}
	r->nprs = (size_t)cJSON_GetArraySize(arr);
	if (r->nprs == 0)
		return 0;
	r->prs = json_alloc(page, sizeof(*r->prs) * r->nprs);
	if (r->prs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	p = r->prs;
	cJSON_ArrayForEach(e, arr)
	{
		if (!cJSON_IsObject(e)) {
			snprintf(err, errlen,
			    "a pull request is not an "
			    "object");
			return -1;
		}
		if (json_int(e, "id", &id, err, errlen) == -1 || !id.set) {
			snprintf(err, errlen,
			    "pull request \"id\" is not an "
			    "integer");
			return -1;
		}
		snprintf(p->external_id, sizeof(p->external_id), "%lld",
		    (long long)id.v);
		if (json_str(e, "title", &p->title, err, errlen) == -1 ||
		    json_str(e, "url", &p->url, err, errlen) == -1 ||
		    json_str(e, "head_branch_name", &p->head_branch_name, err,
			errlen) == -1 ||
		    json_time(page, e, "created_at", &p->created_at, "codegen",
			r->external_id, err, errlen) == -1) {
			char field[200];

			snprintf(field, sizeof(field), "%s", err);
			snprintf(err, errlen, "pull request %.140s", field);
			return -1;
		}
		p++;
	}
	return 0;
}

/* Normalize one item; -1 with a reason when it must be rejected. */
static int
codegen_run(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
	const cJSON *meta;
	struct opt_int id;
	char *text;

	if (!cJSON_IsObject(item)) {
		snprintf(err, errlen, "item is not an object");
		return -1;
	}
	if (json_int(item, "id", &id, err, errlen) == -1 || !id.set ||
	    id.v < 0) {
		snprintf(err, errlen,
		    "\"id\" is not a non-negative integer "
		    "below 2^53");
		return -1;
	}
	snprintf(r->idbuf, sizeof(r->idbuf), "%lld", (long long)id.v);
	r->external_id = r->idbuf;
	if (json_int(item, "organization_id", &r->organization_id, err,
		errlen) == -1 ||
	    json_str(item, "status", &r->status, err, errlen) == -1 ||
	    json_time(page, item, "created_at", &r->created_at, "codegen",
		r->external_id, err, errlen) == -1 ||
	    json_str(item, "web_url", &r->web_url, err, errlen) == -1 ||
	    json_str(item, "result", &r->result, err, errlen) == -1 ||
	    json_str(item, "summary", &r->summary, err, errlen) == -1 ||
	    json_str(item, "source_type", &r->source_type, err, errlen) == -1)
		return -1;
	r->state = codegen_map_status(r->status);
	meta = cJSON_GetObjectItemCaseSensitive(item, "metadata");
	if (meta != NULL && !cJSON_IsNull(meta)) {
		if (!cJSON_IsObject(meta)) {
			snprintf(err, errlen, "\"metadata\" is not an object");
			return -1;
		}
		text = cJSON_PrintUnformatted(meta);
		if (text == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->metadata_len = strlen(text);
		r->metadata = json_strdup(page, text, r->metadata_len);
		cJSON_free(text);
		if (r->metadata == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return codegen_prs(page, item, r, err, errlen);
}

static int
codegen_parse_page(const char *body, size_t len, size_t max_items,
    struct page *page, char *err, size_t errlen)
{
	struct json_span *spans;
	cJSON *items;

	if (json_parse_page(body, len, "items", max_items, page, &items, &spans,
		err, errlen) == -1)
		return -1;
	return json_fill_page(page, items, spans, "total", codegen_run, err,
	    errlen);
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
};
