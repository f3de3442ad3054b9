/* SPDX-License-Identifier: ISC */
/*
 * test_adapters.c: time normalization, status mapping, and both adapters
 * against recorded pages written from the spec pages (tests/fixtures/).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "source.h"
#include "runcols.h"

static char *
slurp(const char *name, size_t *len)
{
	char path[512];
	const char *dir = getenv("FIXTURES_DIR");
	FILE *f;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s",
	    dir != NULL ? dir : "tests/fixtures", name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	return buf;
}

static void
check_time(const char *in, const char *want)
{
	char out[TS_LEN];
	int rc = time_normalize(in, out);

	if (want == NULL) {
		if (rc != -1)
			fail_msg("'%s' accepted as '%s'", in, out);
		assert_string_equal(out, "");
	} else {
		if (rc != 0)
			fail_msg("'%s' refused", in);
		assert_string_equal(out, want);
	}
}

static void
test_time_forms(void **state)
{
	(void)state;
	/* Codegen's two forms. */
	check_time("2025-06-21 11:20:04.338398", "2025-06-21T11:20:04.338Z");
	check_time("2025-06-21T10:30:00Z", "2025-06-21T10:30:00.000Z");
	/* Cotool's. */
	check_time("2025-06-17T12:34:56.789Z", "2025-06-17T12:34:56.789Z");
	/* Offsets. */
	check_time("2025-06-21T12:30:00+02:00", "2025-06-21T10:30:00.000Z");
	check_time("2025-06-21T05:00:00-0530", "2025-06-21T10:30:00.000Z");
	check_time("2025-06-21T15:30:00+05", "2025-06-21T10:30:00.000Z");
	check_time("2025-01-01T01:00:00+02:00", "2024-12-31T23:00:00.000Z");
	/* Fractions of 0 to 9 digits, truncated to ms. */
	check_time("2025-06-21T10:30:00", "2025-06-21T10:30:00.000Z");
	check_time("2025-06-21T10:30:00.1", "2025-06-21T10:30:00.100Z");
	check_time("2025-06-21T10:30:00.12", "2025-06-21T10:30:00.120Z");
	check_time("2025-06-21T10:30:00.999999999Z",
	    "2025-06-21T10:30:00.999Z");
	check_time("2025-06-21T10:30:00.1234567890Z", NULL);
	check_time("2025-06-21T10:30", "2025-06-21T10:30:00.000Z");
	/* Calendar. */
	check_time("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z");
	check_time("2025-02-29T00:00:00Z", NULL);
	check_time("2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000Z");
	check_time("1900-02-29T00:00:00Z", NULL);
	/* Garbage. */
	check_time("", NULL);
	check_time("yesterday", NULL);
	check_time("2025-06-21", NULL);
	check_time("2025-13-01T00:00:00Z", NULL);
	check_time("2025-06-31T00:00:00Z", NULL);
	check_time("2025-06-21T24:00:00Z", NULL);
	check_time("2025-06-21T10:60:00Z", NULL);
	check_time("2025-06-21T10:30:60Z", NULL);
	check_time("2025-06-21T10:30:00Zjunk", NULL);
	check_time("2025-06-21T10:30:00.Z", NULL);
	check_time("2025-06-21T10:30:00+25:00", NULL);
	check_time("2025-6-21T10:30:00Z", NULL);
	check_time(NULL, NULL);
}

static void
test_time_format(void **state)
{
	char out[TS_LEN];

	(void)state;
	time_format(0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
	time_format(1750505404.3389, out);
	assert_string_equal(out, "2025-06-21T11:30:04.338Z");
}

/* The state a run of the given upstream status gets, through the adapter's
 * page parser (status NULL: JSON null). */
static enum run_state
state_of(const struct source_type *t, const char *status)
{
	char body[256], q[64], err[200];
	struct page page;
	enum run_state st;

	if (status != NULL)
		snprintf(q, sizeof(q), "\"%s\"", status);
	else
		snprintf(q, sizeof(q), "null");
	if (t == &source_codegen)
		snprintf(body, sizeof(body),
		    "{\"items\": [{\"id\": 1, "
		    "\"status\": %s}], \"total\": 1}",
		    q);
	else
		snprintf(body, sizeof(body),
		    "{\"runs\": [{\"id\": \"a\", "
		    "\"status\": %s}], \"totalCount\": 1}",
		    q);
	memset(&page, 0, sizeof(page));
	if (t->parse_page(body, strlen(body), 100, &page, err, sizeof(err)) !=
	    0)
		fail_msg("%s: %s", body, err);
	assert_int_equal(page.nruns, 1);
	st = page.runs[0].state;
	page_free(&page);
	return st;
}

static void
test_codegen_status(void **state)
{
	static const struct {
		const char *s;
		enum run_state st;
	} t[] = {
		{ "PENDING", RUN_PENDING },
		{ "ACTIVE", RUN_RUNNING },
		{ "RUNNING", RUN_RUNNING },
		{ "EVALUATION", RUN_RUNNING },
		{ "PAUSED", RUN_WAITING },
		{ "COMPLETE", RUN_SUCCEEDED },
		{ "COMPLETED", RUN_SUCCEEDED },
		{ "completed", RUN_SUCCEEDED },
		{ "FAILED", RUN_FAILED },
		{ "failed", RUN_FAILED },
		{ "ERROR", RUN_FAILED },
		{ "TIMEOUT", RUN_FAILED },
		{ "MAX_ITERATIONS_REACHED", RUN_FAILED },
		{ "OUT_OF_TOKENS", RUN_FAILED },
		{ "CANCELLED", RUN_CANCELLED },
		{ "STOPPED", RUN_CANCELLED },
		{ "running", RUN_RUNNING },
		{ "Active", RUN_RUNNING },
		{ "brand_new", RUN_UNKNOWN },
		{ "", RUN_UNKNOWN },
		{ NULL, RUN_UNKNOWN },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(state_of(&source_codegen, t[i].s), t[i].st);
}

static void
test_cotool_status(void **state)
{
	(void)state;
	assert_int_equal(state_of(&source_cotool, "queued"), RUN_PENDING);
	assert_int_equal(state_of(&source_cotool, "running"), RUN_RUNNING);
	assert_int_equal(state_of(&source_cotool, "waiting"), RUN_WAITING);
	assert_int_equal(state_of(&source_cotool, "done"), RUN_SUCCEEDED);
	assert_int_equal(state_of(&source_cotool, "DONE"), RUN_SUCCEEDED);
	assert_int_equal(state_of(&source_cotool, "error"), RUN_FAILED);
	assert_int_equal(state_of(&source_cotool, "interrupted"),
	    RUN_CANCELLED);
	assert_int_equal(state_of(&source_cotool, "paused"), RUN_UNKNOWN);
	assert_int_equal(state_of(&source_cotool, NULL), RUN_UNKNOWN);
}

/* A run has finished in exactly three states; the SQL list says the same. */
static void
test_terminal_states(void **state)
{
	(void)state;
	assert_false(run_state_terminal(RUN_PENDING));
	assert_false(run_state_terminal(RUN_RUNNING));
	assert_false(run_state_terminal(RUN_WAITING));
	assert_true(run_state_terminal(RUN_SUCCEEDED));
	assert_true(run_state_terminal(RUN_FAILED));
	assert_true(run_state_terminal(RUN_CANCELLED));
	assert_false(run_state_terminal(RUN_UNKNOWN));
	assert_false(run_state_terminal((enum run_state)99));
	assert_string_equal(RUN_TERMINAL_SQL,
	    "('succeeded', 'failed', 'cancelled')");
}

static void
test_urls(void **state)
{
	struct conf_source c;
	char buf[256], cg[] = "https://api.codegen.com",
		       ct[] = "https://app.cotool.ai";

	(void)state;
	memset(&c, 0, sizeof(c));
	c.base_url = cg;
	c.org_id = 42;
	assert_int_equal(source_codegen.page_url(&c, 198, 100, ORDER_UPDATED,
			     buf, sizeof(buf)),
	    0);
	assert_string_equal(buf,
	    "https://api.codegen.com/v1/organizations/42"
	    "/agent/runs?skip=198&limit=100");
	c.base_url = ct;
	assert_int_equal(source_cotool.page_url(&c, 300, 100, ORDER_UPDATED,
			     buf, sizeof(buf)),
	    0);
	assert_string_equal(buf,
	    "https://app.cotool.ai/api/agent-runs?page=3"
	    "&pageSize=100&sortField=updatedAt&sortDirection=desc");
	assert_int_equal(source_cotool.page_url(&c, 0, 50, ORDER_CREATED, buf,
			     sizeof(buf)),
	    0);
	assert_non_null(strstr(buf, "sortField=createdAt"));
	assert_int_equal(source_cotool.page_url(&c, 0, 50, ORDER_CREATED, buf,
			     20),
	    -1);
}

static const struct reject *
find_reject(const struct page *p, const char *needle)
{
	size_t i;

	for (i = 0; i < p->nrejects; i++)
		if (memmem(p->rejects[i].raw, p->rejects[i].raw_len, needle,
			strlen(needle)) != NULL)
			return &p->rejects[i];
	fail_msg("no reject holds '%s'", needle);
	return NULL;
}

static void
test_codegen_page(void **state)
{
	struct page p;
	char err[200], *body;
	size_t len;
	const struct run *r;

	(void)state;
	body = slurp("codegen_page.json", &len);
	assert_int_equal(source_codegen.parse_page(body, len, 100, &p, err,
			     sizeof(err)),
	    0);
	assert_int_equal(p.total, 5000);
	assert_int_equal(p.nitems, 7);
	assert_int_equal(p.nruns, 6);
	assert_int_equal(p.nrejects, 1);
	assert_int_equal(p.rejects[0].pos, 2); /* the walk's item order */
	r = &p.runs[0];
	assert_string_equal(r->external_id, "3041");
	assert_string_equal(r->status, "COMPLETE");
	assert_int_equal(r->state, RUN_SUCCEEDED);
	assert_string_equal(r->created_at, "2025-06-21T11:20:04.338Z");
	assert_null(r->updated_at);
	assert_true(COL(r, "organization_id")->set);
	assert_int_equal(COL(r, "organization_id")->v.i, 42);
	/* a Cotool field is no field of a Codegen run */
	assert_int_equal(field_index(&source_codegen, "has_error"), -1);
	assert_string_equal(COL(r, "summary")->v.s,
	    "Fixed the flaky \xc3\xa9 test");
	assert_string_equal(COL(r, "source_type")->v.s, "GITHUB");
	assert_string_equal(COL(r, "metadata")->v.s,
	    "{\"repo\":\"acme/app\",\"cost\":1.25,\"tags\":[\"a\",\"b\"]}");
	assert_int_equal(r->nprs, 2);
	assert_string_equal(r->prs[0].external_id, "901");
	assert_string_equal(r->prs[0].created_at, "2025-06-21T11:30:00.000Z");
	assert_null(r->prs[1].title);
	assert_string_equal(r->prs[1].created_at, "2025-06-21T11:31:00.500Z");
	assert_true(r->prs_sent);
	assert_int_equal(r->nproblems, 0);
	/* raw is the verbatim object: escapes and unknown fields kept */
	assert_true(r->raw[0] == '{' && r->raw[r->raw_len - 1] == '}');
	assert_non_null(memmem(r->raw, r->raw_len, "\\u00e9", 6));
	assert_non_null(memmem(r->raw, r->raw_len, "new_field_2026", 14));
	/* nulls everywhere */
	r = &p.runs[1];
	assert_string_equal(r->external_id, "3040");
	assert_null(r->status);
	assert_int_equal(r->state, RUN_UNKNOWN);
	assert_null(r->created_at);
	assert_null(COL(r, "metadata")->v.s);
	assert_int_equal(r->nprs, 0);
	assert_false(r->prs_sent); /* null: not the same as [] */
	/* absent fields, empty array, lowercase status */
	assert_string_equal(p.runs[2].external_id, "3039");
	assert_false(p.runs[2].prs_sent);
	assert_string_equal(p.runs[3].external_id, "3038");
	assert_int_equal(p.runs[3].state, RUN_RUNNING);
	assert_int_equal(p.runs[3].nprs, 0);
	assert_true(p.runs[3].prs_sent);
	/* a status of the wrong type: the run is kept, the field is a
	 * problem */
	r = &p.runs[4];
	assert_string_equal(r->external_id, "3037");
	assert_null(r->status);
	assert_int_equal(r->state, RUN_UNKNOWN);
	assert_int_equal(r->nproblems, 1);
	assert_string_equal(r->problems[0].field, "status");
	assert_string_equal(r->problems[0].problem, "is not a string");
	assert_string_equal(r->problems[0].value, "7");
	/* an unparseable time leaves NULL, recorded, and the run is kept */
	r = &p.runs[5];
	assert_string_equal(r->external_id, "3036");
	assert_null(r->created_at);
	assert_int_equal(r->state, RUN_UNKNOWN);
	assert_int_equal(r->nproblems, 1);
	assert_string_equal(r->problems[0].field, "created_at");
	assert_string_equal(r->problems[0].value, "\"yesterday\"");
	/* only an item without a usable id is handed back whole */
	assert_non_null(find_reject(&p, "12.5"));
	assert_non_null(strstr(find_reject(&p, "12.5")->reason, "\"id\""));
	page_free(&p);
	page_free(&p); /* twice is harmless */
	free(body);
}

static void
test_cotool_page(void **state)
{
	struct page p;
	char err[200], *body;
	size_t len;
	const struct run *r;

	(void)state;
	body = slurp("cotool_page.json", &len);
	assert_int_equal(source_cotool.parse_page(body, len, 100, &p, err,
			     sizeof(err)),
	    0);
	assert_int_equal(p.total, 1234);
	assert_int_equal(p.nitems, 6);
	assert_int_equal(p.nruns, 5);
	assert_int_equal(p.nrejects, 1);
	assert_int_equal(p.rejects[0].pos, 2);
	r = &p.runs[0];
	assert_string_equal(r->external_id,
	    "6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c00");
	assert_string_equal(COL(r, "agent_name")->v.s, "Alert triage");
	assert_string_equal(COL(r, "agent_type")->v.s, "response");
	assert_string_equal(r->title, "Suspicious login for j.doe");
	assert_string_equal(r->created_at, "2025-06-17T12:34:56.789Z");
	assert_string_equal(r->updated_at, "2025-06-17T12:40:01.002Z");
	assert_string_equal(COL(r, "model_alias")->v.s, "smart");
	assert_string_equal(COL(r, "model_name")->v.s, "claude-sonnet-4");
	assert_int_equal(COL(r, "tool_names_count")->len, 2);
	assert_string_equal(COL(r, "tool_names_count")->v.strs[1],
	    "splunk_search");
	assert_true(COL(r, "total_tool_count")->set);
	assert_int_equal(COL(r, "total_tool_count")->v.i, 9);
	assert_string_equal(COL(r, "trigger_source")->v.s, "slack");
	assert_string_equal(COL(r, "trigger_name")->v.s, "SOC queue");
	assert_true(COL(r, "has_error")->set);
	assert_int_equal(COL(r, "has_error")->v.i, 0);
	assert_true(COL(r, "is_streaming")->set);
	assert_int_equal(COL(r, "is_streaming")->v.i, 1);
	assert_int_equal(r->state, RUN_RUNNING);
	assert_true(COL(r, "eval_score")->set);
	assert_true(COL(r, "eval_score")->v.d == 8.5);
	assert_int_equal(COL(r, "eval_bullet_count")->len, 2);
	assert_string_equal(COL(r, "critical_issue_category")->v.s,
	    "authentication");
	assert_int_equal(COL(r, "acceptance_criteria_count")->len, 2);
	assert_true(CELL(r, "acceptance_criteria_count", 1, 1)->set);
	assert_int_equal(CELL(r, "acceptance_criteria_count", 1, 1)->v.i, 0);
	assert_string_equal(CELL(r, "acceptance_criteria_count", 1, 2)->v.s,
	    "Left open");
	assert_string_equal(COL(r, "linked_alert_display_id")->v.s, "ALR-17");
	assert_string_equal(COL(r, "linked_alert_status")->v.s, "escalated");
	assert_non_null(memmem(r->raw, r->raw_len, "brandNewField", 13));
	assert_true(COL(r, "has_critical_issue")->set &&
	    COL(r, "has_critical_issue")->v.i);
	assert_true(
	    COL(r, "has_linked_alert")->set && COL(r, "has_linked_alert")->v.i);
	assert_true(COL(r, "tool_names_count")->set &&
	    COL(r, "acceptance_criteria_count")->set &&
	    COL(r, "eval_bullet_count")->set);
	assert_int_equal(r->nproblems, 0);
	r = &p.runs[1];
	assert_int_equal(r->state, RUN_SUCCEEDED); /* "DONE" */
	assert_false(COL(r, "eval_score")->set);
	assert_null(COL(r, "trigger_source")->v.s);
	assert_null(COL(r, "critical_issue_category")->v.s);
	assert_int_equal(COL(r, "acceptance_criteria_count")->len, 0);
	assert_int_equal(COL(r, "tool_names_count")->len, 0);
	assert_int_equal(COL(r, "has_error")->v.i, 1);
	/* [] is "sent, nothing in it"; null is "not sent" */
	assert_true(COL(r, "tool_names_count")->set);
	assert_false(COL(r, "eval_bullet_count")->set);
	assert_false(COL(r, "acceptance_criteria_count")->set);
	assert_true(COL(r, "has_critical_issue")->set);
	assert_int_equal(COL(r, "has_critical_issue")->v.i, 0);
	/* toolNames of the wrong type: kept, recorded */
	r = &p.runs[2];
	assert_string_equal(r->external_id, "a1");
	assert_false(COL(r, "tool_names_count")->set);
	assert_int_equal(r->nproblems, 1);
	assert_string_equal(r->problems[0].field, "toolNames");
	assert_string_equal(r->problems[0].problem, "is not an array");
	/* a \u0000 in runTitle: that column is left out, the run kept */
	r = &p.runs[3];
	assert_string_equal(r->external_id, "a2");
	assert_null(r->title);
	assert_string_equal(r->status, "paused-by-alien");
	assert_int_equal(r->nproblems, 1);
	assert_string_equal(r->problems[0].field, "runTitle");
	assert_string_equal(r->problems[0].problem, "holds \\u0000");
	assert_string_equal(p.runs[4].external_id, "a3");
	assert_int_equal(p.runs[4].state, RUN_CANCELLED);
	assert_non_null(strstr(find_reject(&p, "bad id")->reason, "\"id\""));
	page_free(&p);
	free(body);
}

static void
expect_bad(const struct source_type *t, const char *body, size_t len,
    const char *want)
{
	struct page p;
	char err[200];

	memset(&p, 0x5a, sizeof(p));
	if (t->parse_page(body, len, 100, &p, err, sizeof(err)) != -1)
		fail_msg("accepted: %.60s", body);
	assert_null(p.runs);
	assert_int_equal(p.nruns, 0);
	if (strstr(err, want) == NULL)
		fail_msg("error '%s' lacks '%s'", err, want);
}

static void
test_bad_bodies(void **state)
{
	char *body, *deep;
	size_t len, i;

	(void)state;
	body = slurp("truncated.json", &len);
	expect_bad(&source_codegen, body, len, "truncated");
	free(body);
	expect_bad(&source_codegen, "", 0, "empty");
	expect_bad(&source_codegen, "<html>502</html>", 16, "not JSON");
	expect_bad(&source_codegen, "[1,2]", 5, "not an object");
	expect_bad(&source_codegen, "{\"items\": {}, \"total\": 1}", 25,
	    "\"items\"");
	expect_bad(&source_codegen, "{\"items\": [], \"total\": \"9\"}", 27,
	    "\"total\"");
	expect_bad(&source_codegen, "{\"items\": [], \"total\": 1.5}", 27,
	    "\"total\"");
	expect_bad(&source_cotool, "{\"runs\": [], \"totalCount\": 0} x", 31,
	    "not JSON");
	expect_bad(&source_cotool, "{\"items\": [], \"total\": 0}", 25,
	    "\"runs\"");
	expect_bad(&source_cotool, "{\"runs\": [\0], \"totalCount\": 0}", 30,
	    "NUL");
	deep = malloc(20000);
	assert_non_null(deep);
	len = (size_t)snprintf(deep, 20000, "{\"items\": [");
	for (i = 0; i < 10000; i++)
		deep[len++] = '[';
	deep[len] = '\0';
	expect_bad(&source_codegen, deep, len, "nesting");
	free(deep);
}

static void
test_duplicate_keys_and_spans(void **state)
{
	/* Spans are the bytes upstream sent, whatever the spacing. */
	static const char body[] = "{\"total\": 2, \"items\" : [ {\"id\":1,"
				   "\"organization_id\":1} ,\n\t{\"id\": 2, "
				   "\"x\": \"]}\\\"\"} ]}";
	/* Issue 13, item 5: an envelope read two ways is refused.  cJSON
	 * finds a member by its decoded name, the span scan by its bytes:
	 * these gave A's columns with B's raw_json. */
	static const struct {
		const char *body, *want;
	} ambiguous[] = {
		{ "{\"total\": 1, \"items\": [{\"id\": 1}], "
		  "\"items\": [{\"id\": 3}]}",
		    "member \"items\" given twice" },
		{ "{\"item\\u0073\": [{\"id\": 1}], \"items\": [{\"id\": 2}], "
		  "\"total\": 1}",
		    "member \"items\" given twice" },
		{ "{\"items\\u0000x\": [{\"id\": 1}], \"items\": [{\"id\": "
		  "2}], "
		  "\"total\": 1}",
		    "member \"items\" given twice" },
		{ "{\"item\\u0073\": [{\"id\": 1}], \"total\": 1}",
		    "top-level member name holds an escape" },
		{ "{\"items\": [{\"id\": 1}], \"total\": 1, \"total\": 9}",
		    "member \"total\" given twice" },
	};
	struct page p;
	char err[200];
	size_t i;

	(void)state;
	assert_int_equal(source_codegen.parse_page(body, sizeof(body) - 1, 100,
			     &p, err, sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 2);
	assert_int_equal((int)p.runs[0].raw_len, 28);
	assert_memory_equal(p.runs[0].raw, "{\"id\":1,\"organization_id\":1}",
	    28);
	assert_memory_equal(p.runs[1].raw, "{\"id\": 2, \"x\": \"]}\\\"\"}",
	    p.runs[1].raw_len);
	assert_int_equal(p.total, 2);
	page_free(&p);
	for (i = 0; i < sizeof(ambiguous) / sizeof(ambiguous[0]); i++) {
		if (source_codegen.parse_page(ambiguous[i].body,
			strlen(ambiguous[i].body), 100, &p, err,
			sizeof(err)) != -1)
			fail_msg("case %zu accepted", i);
		if (strstr(err, ambiguous[i].want) == NULL)
			fail_msg("case %zu: '%s'", i, err);
	}
}

/* An item read two ways is set aside (its columns and raw_json could
 * disagree); the rest of the page is kept. */
static void
test_ambiguous_item(void **state)
{
	static const char body[] = "{\"total\": 3, \"items\": ["
				   "{\"id\": 1, \"organization_id\": 1, "
				   "\"status\": \"ACTIVE\", "
				   "\"status\": \"COMPLETE\"},"
				   "{\"id\": 2, \"organization_id\": 1, "
				   "\"metadata\": {\"a\": 1, "
				   "\"\\u0061\": 2}},"
				   "{\"id\": 3, \"organization_id\": 1}]}";
	struct page p;
	char err[200];

	(void)state;
	assert_int_equal(source_codegen.parse_page(body, sizeof(body) - 1, 100,
			     &p, err, sizeof(err)),
	    0);
	/* every run kept; the ambiguous member is left out, recorded */
	assert_int_equal(p.nruns, 3);
	assert_int_equal(p.nrejects, 0);
	assert_string_equal(p.runs[0].external_id, "1");
	assert_null(p.runs[0].status);
	assert_int_equal(p.runs[0].state, RUN_UNKNOWN);
	assert_int_equal(p.runs[0].nproblems, 1);
	assert_string_equal(p.runs[0].problems[0].field, "status");
	assert_string_equal(p.runs[0].problems[0].problem, "given twice");
	assert_string_equal(p.runs[1].external_id, "2");
	assert_null(COL(&p.runs[1], "metadata")->v.s);
	assert_int_equal(p.runs[1].nproblems, 1);
	assert_string_equal(p.runs[1].problems[0].field, "metadata");
	assert_string_equal(p.runs[1].problems[0].problem,
	    "holds member \"a\" given twice");
	assert_string_equal(p.runs[2].external_id, "3");
	assert_int_equal(p.runs[2].nproblems, 0);
	page_free(&p);
}

/* Issue 13, item 1: more items than asked for, or a body far denser than
 * any page of runs, is refused before any run is built. */
static void
test_page_bounds(void **state)
{
	static const char three[] = "{\"runs\": [{\"id\": \"a\"}, "
				    "{\"id\": \"b\"}, {\"id\": \"c\"}], "
				    "\"totalCount\": 3}";
	struct page p;
	char err[200], *dense;
	size_t i, len, n = 200000;

	(void)state;
	assert_int_equal(source_cotool.parse_page(three, sizeof(three) - 1, 2,
			     &p, err, sizeof(err)),
	    -1);
	assert_string_equal(err, "3 items, more than the 2 asked for");
	assert_int_equal(source_cotool.parse_page(three, sizeof(three) - 1, 3,
			     &p, err, sizeof(err)),
	    0);
	page_free(&p);
	/* {"runs": [0,0,0,...], "totalCount": 1}: one value per 2 bytes */
	dense = malloc(2 * n + 64);
	assert_non_null(dense);
	len = (size_t)sprintf(dense, "{\"runs\": [");
	for (i = 0; i < n; i++) {
		dense[len++] = '0';
		dense[len++] = ',';
	}
	len--;
	len += (size_t)sprintf(dense + len, "], \"totalCount\": 1}");
	assert_int_equal(source_cotool.parse_page(dense, len, 100, &p, err,
			     sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "too dense"));
	free(dense);
}

static void
test_big_ids(void **state)
{
	static const char body[] = "{\"total\": 3, \"items\": ["
				   "{\"id\": 9007199254740993}, {\"id\": -5}, "
				   "{\"id\": 9007199254740991}]}";
	struct page p;
	char err[200];

	(void)state;
	assert_int_equal(source_codegen.parse_page(body, sizeof(body) - 1, 100,
			     &p, err, sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 1);
	assert_string_equal(p.runs[0].external_id, "9007199254740991");
	assert_int_equal(p.nrejects, 2);
	assert_int_equal(p.rejects[0].pos, 0);
	assert_int_equal(p.rejects[1].pos, 1);
	page_free(&p);
}

/* A lone surrogate escape sets its run aside (verbatim), a pair and an
 * escaped backslash before "u" do not, and the rest of the page is kept. */
static void
test_lone_surrogate(void **state)
{
	static const char body[] = "{\"total\": 4, \"items\": ["
				   "{\"id\": 1, \"organization_id\": 1, "
				   "\"summary\": \"cut \\ud83d\"},"
				   "{\"id\": 2, \"organization_id\": 1, "
				   "\"summary\": "
				   "\"pair \\ud83d\\ude00\"},"
				   "{\"id\": 3, \"organization_id\": 1, "
				   "\"summary\": \"\\udc00 x\"},"
				   "{\"id\": 4, \"organization_id\": 1, "
				   "\"summary\": "
				   "\"text \\\\ud83d\"}]}";
	struct page p;
	char err[200];

	(void)state;
	assert_int_equal(source_codegen.parse_page(body, sizeof(body) - 1, 100,
			     &p, err, sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 4);
	assert_int_equal(p.nrejects, 0);
	/* a lone surrogate: the run is kept, that member left out */
	assert_string_equal(p.runs[0].external_id, "1");
	assert_null(COL(&p.runs[0], "summary")->v.s);
	assert_string_equal(p.runs[0].problems[0].field, "summary");
	assert_non_null(
	    strstr(p.runs[0].problems[0].problem, "lone UTF-16 surrogate"));
	/* raw_json is what upstream sent, not the masked copy */
	assert_non_null(
	    memmem(p.runs[0].raw, p.runs[0].raw_len, "\\ud83d\"", 7));
	assert_string_equal(p.runs[1].external_id, "2");
	assert_string_equal(COL(&p.runs[1], "summary")->v.s,
	    "pair \xf0\x9f\x98\x80");
	assert_int_equal(p.runs[1].nproblems, 0);
	assert_string_equal(p.runs[2].external_id, "3");
	assert_null(COL(&p.runs[2], "summary")->v.s);
	assert_non_null(memmem(p.runs[2].raw, p.runs[2].raw_len, "\\udc00", 6));
	assert_string_equal(p.runs[3].external_id, "4");
	assert_string_equal(COL(&p.runs[3], "summary")->v.s, "text \\ud83d");
	page_free(&p);
}

/* Issue 14: a field whose type changes upstream leaves that field out
 * (recorded), never the run. */
static void
test_type_drift(void **state)
{
	static const char cg[] = "{\"total\": 4, \"items\": ["
				 "{\"id\": 1, \"organization_id\": 1, "
				 "\"github_pull_requests\": [{\"id\": \"77\", "
				 "\"created_at\": 1750000000, \"url\": "
				 "\"https://github.com/acme/app/pull/77\"}, "
				 "{\"id\": 78, \"created_at\": \"2025-06-01 "
				 "00:00\"},"
				 " {\"id\": \"x\"}, 5, {\"id\": 78}], "
				 "\"metadata\": [1, 2]},"
				 "{\"id\": \"2\", \"organization_id\": \"1\"},"
				 "{\"id\": \"02\"},"
				 "{\"id\": 4, \"id\": 5}]}";
	static const char ct[] = "{\"totalCount\": 1, \"runs\": ["
				 "{\"id\": \"u1\", \"totalToolCount\": 2.5, "
				 "\"evalScore\": \"0.8\", "
				 "\"acceptanceCriteriaResults\": "
				 "{\"criterion\":"
				 " \"c\", \"met\": true, \"explanation\": "
				 "\"e\"}, \"toolNames\": [\"a\", 3, null], "
				 "\"criticalIssue\": {}, \"linkedAlert\": 7}]}";
	struct page p;
	char err[200];
	const struct run *r;

	(void)state;
	assert_int_equal(source_codegen.parse_page(cg, sizeof(cg) - 1, 100, &p,
			     err, sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 2);
	r = &p.runs[0];
	assert_string_equal(r->external_id, "1");
	assert_null(COL(r, "metadata")->v.s);
	/* "77" kept as the id; 78 once; "x" and 5 left out */
	assert_true(r->prs_sent);
	assert_int_equal(r->nprs, 2);
	assert_string_equal(r->prs[0].external_id, "77");
	assert_null(r->prs[0].created_at);
	assert_string_equal(r->prs[1].external_id, "78");
	assert_string_equal(r->prs[1].created_at, "2025-06-01T00:00:00.000Z");
	assert_int_equal(r->nproblems, 5);
	assert_string_equal(r->problems[0].field, "metadata");
	assert_string_equal(r->problems[0].value, "[1,2]");
	assert_string_equal(r->problems[1].field, "github_pull_requests[0].id");
	assert_string_equal(r->problems[1].value, "\"77\"");
	assert_string_equal(r->problems[2].field,
	    "github_pull_requests[0].created_at");
	assert_string_equal(r->problems[2].value, "1750000000");
	assert_string_equal(r->problems[3].field, "github_pull_requests[2].id");
	assert_string_equal(r->problems[4].field, "github_pull_requests[3]");
	r = &p.runs[1];
	assert_string_equal(r->external_id, "2");
	assert_false(COL(r, "organization_id")->set);
	assert_int_equal(r->nproblems, 2);
	/* "02" is not a decimal id; an id given twice is no id */
	assert_int_equal(p.nrejects, 2);
	assert_non_null(strstr(p.rejects[1].reason, "given twice"));
	page_free(&p);

	assert_int_equal(source_cotool.parse_page(ct, sizeof(ct) - 1, 100, &p,
			     err, sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 1);
	r = &p.runs[0];
	assert_false(COL(r, "total_tool_count")->set);
	assert_false(COL(r, "eval_score")->set);
	assert_false(COL(r, "acceptance_criteria_count")->set);
	assert_int_equal(COL(r, "acceptance_criteria_count")->len, 0);
	assert_true(COL(r, "tool_names_count")->set);
	assert_int_equal(COL(r, "tool_names_count")->len, 2); /* "a" and null */
	assert_string_equal(COL(r, "tool_names_count")->v.strs[0], "a");
	assert_null(COL(r, "tool_names_count")->v.strs[1]);
	assert_true(COL(r, "has_critical_issue")->set &&
	    COL(r, "has_critical_issue")->v.i);
	assert_false(COL(r, "has_linked_alert")->set);
	assert_int_equal(r->nproblems, 5);
	assert_string_equal(r->problems[0].field, "totalToolCount");
	assert_string_equal(r->problems[0].value, "2.5");
	assert_string_equal(r->problems[1].field, "evalScore");
	assert_string_equal(r->problems[2].field, "toolNames[1]");
	assert_string_equal(r->problems[3].field, "linkedAlert");
	assert_string_equal(r->problems[4].field, "acceptanceCriteriaResults");
	page_free(&p);
}

/* A long bad value is cut on a character boundary. */
static void
test_problem_value_cut(void **state)
{
	char body[1200];
	struct page p;
	char err[200];
	const char *v;
	int n;

	(void)state;
	n = snprintf(body, sizeof(body),
	    "{\"totalCount\": 1, \"runs\": [{\"id\": \"u\", \"evalScore\": "
	    "\"");
	while (n < 900)
		n += snprintf(body + n, sizeof(body) - (size_t)n,
		    "\xc3\xa9"); /* two bytes each */
	n += snprintf(body + n, sizeof(body) - (size_t)n, "\"}]}");
	assert_int_equal(source_cotool.parse_page(body, (size_t)n, 100, &p, err,
			     sizeof(err)),
	    0);
	v = p.runs[0].problems[0].value;
	assert_true(strlen(v) <= SOURCE_MAX_PROBLEM_VALUE + 3);
	assert_string_equal(v + strlen(v) - 3, "...");
	/* '"' then whole two-byte characters */
	assert_int_equal((strlen(v) - 4) % 2, 0);
	page_free(&p);
}

/* Review findings: a printed value of 201..203 bytes (cut right at its
 * end), a long member name given twice (once looped forever), and a bad
 * escape in a member whose name holds a harmless escape. */
static void
test_problem_corners(void **state)
{
	char body[2000], name[300];
	struct page p;
	char err[200];
	int n, len;

	(void)state;
	for (len = 199; len <= 202; len++) {
		n = snprintf(body, sizeof(body),
		    "{\"totalCount\": 1, \"runs\": [{\"id\": \"u\", "
		    "\"totalToolCount\": \"%0*d\"}]}",
		    len, 0);
		assert_int_equal(source_cotool.parse_page(body, (size_t)n, 100,
				     &p, err, sizeof(err)),
		    0);
		assert_int_equal(p.nruns, 1);
		assert_int_equal(strlen(p.runs[0].problems[0].value),
		    len + 2 > SOURCE_MAX_PROBLEM_VALUE ?
			SOURCE_MAX_PROBLEM_VALUE + 3 :
			(size_t)len + 2);
		page_free(&p);
	}
	memset(name, 'k', 250);
	name[250] = '\0';
	n = snprintf(body, sizeof(body),
	    "{\"totalCount\": 1, \"runs\": [{\"id\": \"u\", \"%s\": 1, "
	    "\"%s\": 2, \"runTitle\": \"t\"}]}",
	    name, name);
	assert_int_equal(source_cotool.parse_page(body, (size_t)n, 100, &p, err,
			     sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 1);
	assert_string_equal(p.runs[0].title, "t");
	assert_int_equal(p.runs[0].nproblems, 1);
	assert_string_equal(p.runs[0].problems[0].problem, "given twice");
	page_free(&p);
	n = snprintf(body, sizeof(body),
	    "{\"totalCount\": 1, \"runs\": [{\"id\": \"u\", "
	    "\"caf\\u00e9\": \"x\\u0000\", \"runTitle\": \"t\"}]}");
	assert_int_equal(source_cotool.parse_page(body, (size_t)n, 100, &p, err,
			     sizeof(err)),
	    0);
	assert_int_equal(p.nruns, 1);
	assert_int_equal(p.nrejects, 0);
	assert_string_equal(p.runs[0].problems[0].field, "caf\xc3\xa9");
	assert_string_equal(p.runs[0].problems[0].problem, "holds \\u0000");
	page_free(&p);
}

static void
test_github_pr_parse(void **state)
{
	static const struct {
		const char *url, *repo;
		int64_t number;
	} ok[] = {
		{ "https://github.com/acme/app/pull/77", "acme/app", 77 },
		{ "https://GitHub.com/Acme-1/my.app_x/pull/9/files",
		    "Acme-1/my.app_x", 9 },
		{ "http://www.github.com/a/b/pull/1?x=1", "a/b", 1 },
		{ "https://github.com/a/b/pull/12#discussion", "a/b", 12 },
		{ "https://github.com/a/b/pull/999999999999999/", "a/b",
		    999999999999999 },
	};
	static const char *const bad[] = { "https://github.com/a/b/issues/1",
		"https://github.com/a/b/pull/0", "https://github.com/a/b/pull/",
		"https://github.com/a/b/pull/01", "https://github.com/a/pull/1",
		"https://gitlab.com/a/b/pull/1",
		"http://github.com.x/a/b/pull/1",
		"https://github.com/a/../pull/1",
		"https://github.com/a/b/pull/1x", "github.com/a/b/pull/1",
		"https://github.com/a/b/pull/1234567890123456", "" };
	char repo[GITHUB_REPO_LEN];
	int64_t n;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(github_pr_parse(ok[i].url, repo, &n), 0);
		assert_string_equal(repo, ok[i].repo);
		assert_int_equal(n, ok[i].number);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (github_pr_parse(bad[i], repo, &n) != -1)
			fail_msg("parsed '%s'", bad[i]);
		assert_string_equal(repo, "");
	}
	assert_int_equal(github_pr_parse(NULL, repo, &n), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time_forms),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_codegen_status),
		cmocka_unit_test(test_cotool_status),
		cmocka_unit_test(test_terminal_states),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_codegen_page),
		cmocka_unit_test(test_cotool_page),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_duplicate_keys_and_spans),
		cmocka_unit_test(test_ambiguous_item),
		cmocka_unit_test(test_page_bounds),
		cmocka_unit_test(test_big_ids),
		cmocka_unit_test(test_lone_surrogate),
		cmocka_unit_test(test_type_drift),
		cmocka_unit_test(test_problem_value_cut),
		cmocka_unit_test(test_problem_corners),
		cmocka_unit_test(test_github_pr_parse),
	};

	log_set_level(LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
