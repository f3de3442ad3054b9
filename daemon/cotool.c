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

/* A criterion of acceptanceCriteriaResults: run_acceptance_criteria. */
static const struct field criterion_fields[] = {
	{ .column = "criterion", .path = "criterion", .type = FIELD_TEXT },
	{ .column = "met", .path = "met", .type = FIELD_BOOL },
	{ .column = "explanation", .path = "explanation", .type = FIELD_TEXT },
};

/* A tool name (run_tools), a bullet (run_eval_bullets). */
static const struct field tool_name = { .column = "name" };
static const struct field bullet = { .column = "bullet" };

#define TEXT(col, member_name)                                             \
	{                                                                  \
		.column = (col), .path = (member_name), .type = FIELD_TEXT \
	}
#define SHARED(member_name, t, m)                                 \
	{                                                         \
		.path = (member_name), .type = (t), .member = (m) \
	}

/* In the order they are read, which is the order of a run's problems. */
static const struct field cotool_fields[] = {
	SHARED("status", FIELD_TEXT, MEMBER_STATUS),
	SHARED("runTitle", FIELD_TEXT, MEMBER_TITLE),
	SHARED("createdAt", FIELD_TIME, MEMBER_CREATED_AT),
	SHARED("updatedAt", FIELD_TIME, MEMBER_UPDATED_AT),
	TEXT("agent_id", "agentId"),
	TEXT("agent_name", "agentName"),
	TEXT("agent_type", "agentType"),
	TEXT("model_alias", "modelAlias"),
	TEXT("model_name", "modelName"),
	{ .column = "total_tool_count",
	    .path = "totalToolCount",
	    .type = FIELD_INT },
	TEXT("trigger_source", "triggerSource"),
	TEXT("trigger_name", "triggerName"),
	{ .column = "has_error", .path = "hasError", .type = FIELD_BOOL },
	{ .column = "is_streaming", .path = "isStreaming", .type = FIELD_BOOL },
	{ .column = "eval_score", .path = "evalScore", .type = FIELD_REAL },
	TEXT("eval_explanation", "evalExplanation"),
	{ .column = "tool_names_count",
	    .path = "toolNames",
	    .type = FIELD_STRINGS,
	    .table = "run_tools",
	    .items = &tool_name,
	    .nitems = 1 },
	{ .column = "eval_bullet_count",
	    .path = "evalBulletSummary",
	    .type = FIELD_STRINGS,
	    .table = "run_eval_bullets",
	    .items = &bullet,
	    .nitems = 1 },
	{ .column = "has_critical_issue",
	    .path = "criticalIssue",
	    .type = FIELD_PRESENT },
	{ .column = "has_linked_alert",
	    .path = "linkedAlert",
	    .type = FIELD_PRESENT },
	TEXT("critical_issue_category", "criticalIssue.category"),
	TEXT("critical_issue_explanation", "criticalIssue.explanation"),
	TEXT("linked_alert_display_id", "linkedAlert.displayId"),
	TEXT("linked_alert_title", "linkedAlert.title"),
	TEXT("linked_alert_status", "linkedAlert.status"),
	{ .column = "acceptance_criteria_count",
	    .path = "acceptanceCriteriaResults",
	    .type = FIELD_OBJECTS,
	    .table = "run_acceptance_criteria",
	    .items = criterion_fields,
	    .nitems = sizeof(criterion_fields) / sizeof(criterion_fields[0]) },
};

static int
cotool_run(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
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
	json_run_fields(page, r, item, cotool_fields,
	    sizeof(cotool_fields) / sizeof(cotool_fields[0]));
	r->state = cotool_map_status(r->status);
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
	.fields = cotool_fields,
	.nfields = sizeof(cotool_fields) / sizeof(cotool_fields[0]),
};
