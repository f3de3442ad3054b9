/* SPDX-License-Identifier: ISC */
/*
 * third.c: a test-only third API, "third", to prove that an adapter is
 * one file and one table entry: nothing in daemon/ names it.  Its
 * listing: GET /things?offset=N&count=M (any offset, newest created
 * first, no order by update), body {"things": [{"id", "state", "created",
 * "name", "size", "owner": {"name"}, "labels": [...]}], "count": N}.
 * States: new, busy, ok, bad.
 *
 * Its typed columns are its fields[] below and one migration,
 * tests/unit/third/third.sql (embedded after the daemon's own by this
 * build alone): nothing in daemon/ names them.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "source.h"

static int
third_page_url(const struct conf_source *src, int64_t offset, int limit,
    enum walk_order order, char *buf, size_t len)
{
	int n;

	(void)order; /* by creation only */
	n = snprintf(buf, len, "%s/things?offset=%lld&count=%d", src->base_url,
	    (long long)offset, limit);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static enum run_state
third_map_status(const char *status)
{
	if (status == NULL)
		return RUN_UNKNOWN;
	if (strcmp(status, "new") == 0)
		return RUN_PENDING;
	if (strcmp(status, "busy") == 0)
		return RUN_RUNNING;
	if (strcmp(status, "ok") == 0)
		return RUN_SUCCEEDED;
	if (strcmp(status, "bad") == 0)
		return RUN_FAILED;
	return RUN_UNKNOWN;
}

static const struct field label = { .column = "label" };

static const struct field third_fields[] = {
	{ .path = "state", .type = FIELD_TEXT, .member = MEMBER_STATUS },
	{ .path = "name", .type = FIELD_TEXT, .member = MEMBER_TITLE },
	{ .path = "created", .type = FIELD_TIME, .member = MEMBER_CREATED_AT },
	{ .column = "thing_size", .path = "size", .type = FIELD_INT },
	{ .column = "thing_owner", .path = "owner.name", .type = FIELD_TEXT },
	{ .column = "label_count",
	    .path = "labels",
	    .type = FIELD_STRINGS,
	    .table = "thing_labels",
	    .items = &label,
	    .nitems = 1 },
};

static int
third_run(struct page *page, const cJSON *item, struct run *r, char *err,
    size_t errlen)
{
	if (!cJSON_IsObject(item) ||
	    json_str(item, "id", &r->external_id, err, errlen) == -1 ||
	    r->external_id == NULL || r->external_id[0] == '\0' ||
	    strlen(r->external_id) > SOURCE_MAX_ID) {
		snprintf(err, errlen, "\"id\" is not a non-empty string");
		r->external_id = NULL;
		return -1;
	}
	json_run_fields(page, r, item, third_fields,
	    sizeof(third_fields) / sizeof(third_fields[0]));
	r->state = third_map_status(r->status);
	return 0;
}

static int
third_parse_page(const char *body, size_t len, size_t max_items,
    struct page *page, char *err, size_t errlen)
{
	struct json_span *spans;
	cJSON *items;

	if (json_parse_page(body, len, "things", max_items, page, &items,
		&spans, err, errlen) == -1)
		return -1;
	return json_fill_page(page, items, spans, "count", third_run, err,
	    errlen);
}

const struct source_type source_third = {
	.name = "third",
	.default_base_url = "https://api.third.example",
	.rate_requests = 10,
	.rate_window = 1,
	.needs_org_id = 0,
	.auth_hint = "is allowed to list things",
	.any_offset = 1,
	.can_order_updated = 0,
	.page_url = third_page_url,
	.parse_page = third_parse_page,
	.fields = third_fields,
	.nfields = sizeof(third_fields) / sizeof(third_fields[0]),
};

/* The one table entry: this test build's adapters.c. */
const struct source_type *const source_types[] = { &source_codegen,
	&source_cotool, &source_third, NULL };
