/*
 * cotool.c: the Cotool adapter (GET /api/agent-runs).
 *
 * Paged by page number (0-based) and pageSize, sortable by createdAt or
 * updatedAt; the body is {"runs": [...], "totalCount": N}.  Every field
 * of the run schema lands in a column of runs or in a child table.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "source.h"

static int
cotool_page_url(const struct conf_source *src, int64_t offset, int limit,
    enum walk_order order, char *buf, size_t len)
{
	int n;

	n = snprintf(buf, len,
	    "%s/api/agent-runs?page=%lld&pageSize=%d"
	    "&sortField=%s&sortDirection=desc",
	    src->base_url, (long long)(offset / limit), limit,
	    order == ORDER_UPDATED ? "updatedAt" : "createdAt");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static enum run_state
cotool_map_status(const char *status)
{
	static const struct {
		const char *name;
		enum run_state state;
	} map[] = {
		{ "queued", RUN_PENDING },
		{ "running", RUN_RUNNING },
		{ "waiting", RUN_WAITING },
		{ "done", RUN_SUCCEEDED },
		{ "error", RUN_FAILED },
		{ "interrupted", RUN_CANCELLED },
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
cotool_object(const cJSON *item, const char *key, const cJSON **out, char *err,
    size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsObject(v)) {
		snprintf(err, errlen, "\"%s\" is not an object", key);
		return -1;
	}
	*out = v;
	return 0;
}

static int
cotool_criteria(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
	const cJSON *arr, *e;
	struct criterion *c;

	arr = cJSON_GetObjectItemCaseSensitive(item,
	    "acceptanceCriteriaResults");
	if (arr == NULL || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, errlen,
		    "\"acceptanceCriteriaResults\" is not "
		    "an array");
		return -1;
	}
	r->ncriteria = (size_t)cJSON_GetArraySize(arr);
	if (r->ncriteria == 0)
		return 0;
	r->criteria = json_alloc(page, sizeof(*r->criteria) * r->ncriteria);
	if (r->criteria == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c = r->criteria;
	cJSON_ArrayForEach(e, arr)
	{
		if (!cJSON_IsObject(e) ||
		    json_str(e, "criterion", &c->criterion, err, errlen) ==
			-1 ||
		    json_bool(e, "met", &c->met, err, errlen) == -1 ||
		    json_str(e, "explanation", &c->explanation, err, errlen) ==
			-1) {
			snprintf(err, errlen,
			    "an acceptance criterion is "
			    "malformed");
			return -1;
		}
		c++;
	}
	return 0;
}

static int
cotool_run(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
	const cJSON *ci, *la;

	if (!cJSON_IsObject(item)) {
		snprintf(err, errlen, "item is not an object");
		return -1;
	}
	if (json_str(item, "id", &r->external_id, err, errlen) == -1 ||
	    r->external_id == NULL || r->external_id[0] == '\0' ||
	    strlen(r->external_id) > SOURCE_MAX_ID) {
		snprintf(err, errlen,
		    "\"id\" is not a non-empty string of at "
		    "most %d bytes",
		    SOURCE_MAX_ID);
		r->external_id = NULL;
		return -1;
	}
	if (json_str(item, "status", &r->status, err, errlen) == -1 ||
	    json_str(item, "runTitle", &r->title, err, errlen) == -1 ||
	    json_time(page, item, "createdAt", &r->created_at, "cotool",
		r->external_id, err, errlen) == -1 ||
	    json_time(page, item, "updatedAt", &r->updated_at, "cotool",
		r->external_id, err, errlen) == -1 ||
	    json_str(item, "agentId", &r->agent_id, err, errlen) == -1 ||
	    json_str(item, "agentName", &r->agent_name, err, errlen) == -1 ||
	    json_str(item, "agentType", &r->agent_type, err, errlen) == -1 ||
	    json_str(item, "modelAlias", &r->model_alias, err, errlen) == -1 ||
	    json_str(item, "modelName", &r->model_name, err, errlen) == -1 ||
	    json_int(item, "totalToolCount", &r->total_tool_count, err,
		errlen) == -1 ||
	    json_str(item, "triggerSource", &r->trigger_source, err, errlen) ==
		-1 ||
	    json_str(item, "triggerName", &r->trigger_name, err, errlen) ==
		-1 ||
	    json_bool(item, "hasError", &r->has_error, err, errlen) == -1 ||
	    json_bool(item, "isStreaming", &r->is_streaming, err, errlen) ==
		-1 ||
	    json_num(item, "evalScore", &r->eval_score, err, errlen) == -1 ||
	    json_str(item, "evalExplanation", &r->eval_explanation, err,
		errlen) == -1 ||
	    json_str_array(page, item, "toolNames", &r->tool_names,
		&r->ntool_names, err, errlen) == -1 ||
	    json_str_array(page, item, "evalBulletSummary", &r->eval_bullets,
		&r->neval_bullets, err, errlen) == -1 ||
	    cotool_object(item, "criticalIssue", &ci, err, errlen) == -1 ||
	    cotool_object(item, "linkedAlert", &la, err, errlen) == -1)
		return -1;
	if (ci != NULL &&
	    (json_str(ci, "category", &r->critical_issue_category, err,
		 errlen) == -1 ||
		json_str(ci, "explanation", &r->critical_issue_explanation, err,
		    errlen) == -1)) {
		snprintf(err, errlen, "\"criticalIssue\" is malformed");
		return -1;
	}
	if (la != NULL &&
	    (json_str(la, "displayId", &r->linked_alert_display_id, err,
		 errlen) == -1 ||
		json_str(la, "title", &r->linked_alert_title, err, errlen) ==
		    -1 ||
		json_str(la, "status", &r->linked_alert_status, err, errlen) ==
		    -1)) {
		snprintf(err, errlen, "\"linkedAlert\" is malformed");
		return -1;
	}
	r->state = cotool_map_status(r->status);
	return cotool_criteria(page, item, r, err, errlen);
}

static int
cotool_parse_page(const char *body, size_t len, size_t max_items,
    struct page *page, char *err, size_t errlen)
{
	struct json_span *spans;
	cJSON *items;

	if (json_parse_page(body, len, "runs", max_items, page, &items, &spans,
		err, errlen) == -1)
		return -1;
	return json_fill_page(page, items, spans, "totalCount", cotool_run, err,
	    errlen);
}

const struct source_type source_cotool = {
	.name = "cotool",
	.default_base_url = "https://app.cotool.ai",
	/* Cotool documents no limit: a conservative one per second. */
	.rate_requests = 60,
	.rate_window = 60,
	.needs_org_id = 0,
	.auth_hint = "has the needed permissions",
	.any_offset = 0,
	.can_order_updated = 1,
	.page_url = cotool_page_url,
	.parse_page = cotool_parse_page,
};
