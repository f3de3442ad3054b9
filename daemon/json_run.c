/* SPDX-License-Identifier: ISC */
/*
 * json_run.c: read the fields an adapter declares (struct field) from one
 * item into its run: a value each, in the table's order, with the typed
 * readers of json_fields.c, so that a field of the wrong type is a problem
 * of the run with the same words whichever API declares it.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"

/* The member key of obj, or NULL when absent or null. */
static const cJSON *
present(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return v == NULL || cJSON_IsNull(v) ? NULL : v;
}

/* An object member as its compact JSON text: the page holds cJSON's
 * printed text, no copy of what can be as large as the body. */
static void
read_json(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const char *key, struct value *out)
{
	const cJSON *v = present(obj, key);
	char *text;

	if (v == NULL)
		return;
	if (!cJSON_IsObject(v)) {
		run_problem(page, r, prefix, key, v, "is not an object");
	} else if ((text = cJSON_PrintUnformatted(v)) == NULL ||
	    json_own(page, text) == -1) {
		page->oom = 1;
	} else {
		out->v.s = text;
		out->len = (uint32_t)strlen(text);
		out->set = 1;
	}
}

static void read_value(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const struct field *f, struct value *out);

/* An array of objects, each element's fields read into a row of cells. */
static void
read_objects(struct page *page, struct run *r, const cJSON *obj,
    const struct field *f, struct value *out)
{
	const cJSON *arr = run_array(page, r, obj, f->path), *e;
	char at[160], dot[164];
	size_t i = 0, k, n;
	struct value *row;

	out->set = arr != NULL;
	if (arr == NULL || arr->child == NULL)
		return;
	/* room for the objects only: 400,000 numbers are no rows */
	n = json_objects(arr);
	out->v.cells = json_alloc(page,
	    sizeof(struct value) * (n ? n : 1) * (f->nitems ? f->nitems : 1));
	if (out->v.cells == NULL) {
		page->oom = 1;
		return;
	}
	cJSON_ArrayForEach(e, arr)
	{
		snprintf(at, sizeof(at), "%s[%zu]", f->path, i++);
		if (!cJSON_IsObject(e)) {
			run_problem(page, r, at, "", e, "is not an object");
			continue;
		}
		row = &out->v.cells[out->len++ * f->nitems];
		snprintf(dot, sizeof(dot), "%s.", at);
		for (k = 0; k < f->nitems; k++)
			read_value(page, r, e, dot, &f->items[k], &row[k]);
	}
}

/* The member f->path of obj (prefix before it in problems) into out. */
static void
read_value(struct page *page, struct run *r, const cJSON *obj,
    const char *prefix, const struct field *f, struct value *out)
{
	struct opt_int i;
	struct opt_num d;
	struct opt_bool b;
	const cJSON *o;
	const char **strs;
	size_t n;
	int sent;

	switch (f->type) {
	case FIELD_TEXT:
		run_str(page, r, obj, prefix, f->path, &out->v.s);
		out->set = out->v.s != NULL;
		break;
	case FIELD_TIME:
		run_time(page, r, obj, prefix, f->path, &out->v.s);
		out->set = out->v.s != NULL;
		break;
	case FIELD_INT:
		run_int(page, r, obj, prefix, f->path, &i);
		out->v.i = i.v;
		out->set = (uint8_t)i.set;
		break;
	case FIELD_REAL:
		run_num(page, r, obj, prefix, f->path, &d);
		out->v.d = d.v;
		out->set = (uint8_t)d.set;
		break;
	case FIELD_BOOL:
		run_bool(page, r, obj, prefix, f->path, &b);
		out->v.i = b.v;
		out->set = (uint8_t)b.set;
		break;
	case FIELD_JSON:
		read_json(page, r, obj, prefix, f->path, out);
		break;
	case FIELD_PRESENT:
		run_object(page, r, obj, f->path, &o, &b);
		out->v.i = b.v;
		out->set = (uint8_t)b.set;
		break;
	case FIELD_STRINGS:
		run_str_array(page, r, obj, f->path, &strs, &n, &sent);
		out->v.strs = strs;
		out->len = (uint32_t)n;
		out->set = (uint8_t)sent;
		break;
	case FIELD_OBJECTS:
		read_objects(page, r, obj, f, out);
		break;
	}
}

/* Where a field's value goes when it fills a shared member of r. */
static const char **
member_of(struct run *r, enum run_member m)
{
	switch (m) {
	case MEMBER_STATUS:
		return &r->status;
	case MEMBER_TITLE:
		return &r->title;
	case MEMBER_WEB_URL:
		return &r->web_url;
	case MEMBER_CREATED_AT:
		return &r->created_at;
	case MEMBER_UPDATED_AT:
		return &r->updated_at;
	case MEMBER_NONE:
		break;
	}
	return NULL;
}

/*
 * One field, top level or one object down ("criticalIssue.category"):
 * under a member that is not an object the field is NULL and the member
 * is the problem ("is not an object"), recorded once.
 */
static void
read_field(struct page *page, struct run *r, const cJSON *item,
    const struct field *f, struct value *out)
{
	const char *dot = strchr(f->path, '.');
	char prefix[64];
	struct field leaf;
	const cJSON *parent;
	size_t n;

	if (dot == NULL) {
		read_value(page, r, item, "", f, out);
		return;
	}
	n = (size_t)(dot - f->path);
	if (n + 2 > sizeof(prefix))
		return; /* store_columns_check() refuses such a path */
	memcpy(prefix, f->path, n);
	prefix[n] = '\0';
	if ((parent = present(item, prefix)) == NULL)
		return;
	if (!cJSON_IsObject(parent)) {
		run_problem(page, r, "", prefix, parent, "is not an object");
		return;
	}
	prefix[n] = '.';
	prefix[n + 1] = '\0';
	leaf = *f;
	leaf.path = dot + 1;
	read_value(page, r, parent, prefix, &leaf, out);
}

void
json_run_fields(struct page *page, struct run *r, const cJSON *item,
    const struct field *fields, size_t nfields)
{
	const char **member;
	size_t k;

	if (nfields == 0)
		return;
	r->values = json_alloc(page, sizeof(*r->values) * nfields);
	if (r->values == NULL) {
		page->oom = 1;
		return;
	}
	for (k = 0; k < nfields; k++) {
		read_field(page, r, item, &fields[k], &r->values[k]);
		member = member_of(r, fields[k].member);
		if (member != NULL)
			*member = r->values[k].set ? r->values[k].v.s : NULL;
	}
}
