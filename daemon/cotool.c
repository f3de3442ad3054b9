/* SPDX-License-Identifier: ISC */
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
	    "%s/api/agent-runs?page=%lld&pageSize=%d&sortField=%s&sortDirection=desc",
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

static void
cotool_criteria(struct page *page, const cJSON *item, struct run *r)
{
	const cJSON *arr, *e;
	struct criterion *c;
	char at[48], dot[50];
	size_t i = 0, n;

	arr = run_array(page, r, item, "acceptanceCriteriaResults");
	r->criteria_sent = arr != NULL;
	if (arr == NULL || arr->child == NULL)
		return;
	/* room for the objects only: 400,000 numbers are no criteria */
	n = json_objects(arr);
	r->criteria = json_alloc(page, sizeof(*r->criteria) * (n ? n : 1));
	if (r->criteria == NULL) {
		page->oom = 1;
		return;
	}
	cJSON_ArrayForEach(e, arr)
	{
		snprintf(at, sizeof(at), "acceptanceCriteriaResults[%zu]", i++);
		if (!cJSON_IsObject(e)) {
			run_problem(page, r, at, "", e, "is not an object");
			continue;
		}
		c = &r->criteria[r->ncriteria++];
		snprintf(dot, sizeof(dot), "%s.", at);
		run_str(page, r, e, dot, "criterion", &c->criterion);
		run_bool(page, r, e, dot, "met", &c->met);
		run_str(page, r, e, dot, "explanation", &c->explanation);
	}
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
		    "\"id\" is not a non-empty string of at most %d bytes",
		    SOURCE_MAX_ID);
		r->external_id = NULL;
		return -1;
	}
	run_str(page, r, item, "", "status", &r->status);
	run_str(page, r, item, "", "runTitle", &r->title);
	run_time(page, r, item, "", "createdAt", &r->created_at);
	run_time(page, r, item, "", "updatedAt", &r->updated_at);
	run_str(page, r, item, "", "agentId", &r->agent_id);
	run_str(page, r, item, "", "agentName", &r->agent_name);
	run_str(page, r, item, "", "agentType", &r->agent_type);
	run_str(page, r, item, "", "modelAlias", &r->model_alias);
	run_str(page, r, item, "", "modelName", &r->model_name);
	run_int(page, r, item, "", "totalToolCount", &r->total_tool_count);
	run_str(page, r, item, "", "triggerSource", &r->trigger_source);
	run_str(page, r, item, "", "triggerName", &r->trigger_name);
	run_bool(page, r, item, "", "hasError", &r->has_error);
	run_bool(page, r, item, "", "isStreaming", &r->is_streaming);
	run_num(page, r, item, "", "evalScore", &r->eval_score);
	run_str(page, r, item, "", "evalExplanation", &r->eval_explanation);
	run_str_array(page, r, item, "toolNames", &r->tool_names,
	    &r->ntool_names, &r->tool_names_sent);
	run_str_array(page, r, item, "evalBulletSummary", &r->eval_bullets,
	    &r->neval_bullets, &r->eval_bullets_sent);
	run_object(page, r, item, "criticalIssue", &ci, &r->has_critical_issue);
	run_object(page, r, item, "linkedAlert", &la, &r->has_linked_alert);
	if (ci != NULL) {
		run_str(page, r, ci, "criticalIssue.", "category",
		    &r->critical_issue_category);
		run_str(page, r, ci, "criticalIssue.", "explanation",
		    &r->critical_issue_explanation);
	}
	if (la != NULL) {
		run_str(page, r, la, "linkedAlert.", "displayId",
		    &r->linked_alert_display_id);
		run_str(page, r, la, "linkedAlert.", "title",
		    &r->linked_alert_title);
		run_str(page, r, la, "linkedAlert.", "status",
		    &r->linked_alert_status);
	}
	r->state = cotool_map_status(r->status);
	cotool_criteria(page, item, r);
	return 0;
}

static int
cotool_parse_page(const char *body, size_t len, size_t max_items,
    struct page *page, char *err, size_t errlen)
{
	return json_read_page(body, len, "runs", "totalCount", max_items,
	    cotool_run, page, err, errlen);
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
