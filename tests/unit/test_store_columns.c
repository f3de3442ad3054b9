/* SPDX-License-Identifier: ISC */
/*
 * test_store_columns.c: the typed columns of runs as the adapters declare
 * them (store_columns.c): merged, mapped, and held to identifiers before
 * any engine puts them in SQL.  Linked with the page parser and the
 * adapters alone: neither libev, libcurl nor SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store_columns.h"

static const struct field one_label = { .column = "label" };

static struct source_type
adapter(const char *name, const struct field *fields, size_t n)
{
	struct source_type t;

	memset(&t, 0, sizeof(t));
	t.name = name;
	t.fields = fields;
	t.nfields = n;
	return t;
}

static void
test_the_daemons_adapters(void **state)
{
	struct column_set cs;
	char err[256];
	size_t c, n = 0;

	(void)state;
	assert_int_equal(columns_load(&cs, source_types, err, sizeof(err)), 0);
	/* 5 of codegen's, 22 of cotool's: with the 8 common ones, the 35
	 * columns of runs the schema has for them */
	assert_int_equal(cs.ncols, 27);
	assert_int_equal(columns_adapter(&cs, "cotool"), 1);
	assert_int_equal(columns_adapter(&cs, "fourth"), -1);
	for (c = 0; c < cs.ncols; c++) {
		int cg = columns_field(&cs, 0, c) != NULL;
		int ct = columns_field(&cs, 1, c) != NULL;

		assert_true(cg != ct); /* each column one API's */
		n += cg;
	}
	assert_int_equal(n, 5);
	assert_string_equal(cs.cols[0].name, "organization_id");
	assert_int_equal(cs.cols[0].type, FIELD_INT);
	columns_free(&cs);
}

static void
test_shared_column_is_one(void **state)
{
	static const struct field a[] = {
		{ .column = "score", .path = "score", .type = FIELD_REAL },
		{ .column = "labels_count",
		    .path = "labels",
		    .type = FIELD_STRINGS,
		    .table = "labels",
		    .items = &one_label,
		    .nitems = 1 },
	};
	static const struct field b[] = {
		{ .path = "name", .type = FIELD_TEXT, .member = MEMBER_TITLE },
		{ .column = "score", .path = "points", .type = FIELD_REAL },
	};
	struct source_type ta = adapter("a", a, 2), tb = adapter("b", b, 2);
	const struct source_type *types[] = { &ta, &tb, NULL };
	struct column_set cs;
	struct buf sql;
	char err[256];

	(void)state;
	assert_int_equal(columns_load(&cs, types, err, sizeof(err)), 0);
	assert_int_equal(cs.ncols, 2);
	assert_ptr_equal(columns_field(&cs, 0, 0), &a[0]);
	assert_ptr_equal(columns_field(&cs, 1, 0), &b[1]);
	assert_null(columns_field(&cs, 1, 1));
	buf_init(&sql, 1024);
	assert_int_equal(columns_names(&cs, &sql), 0);
	assert_int_equal(columns_params(cs.ncols, 9, '$', &sql), 0);
	assert_string_equal(sql.p, ", score, labels_count, $9, $10");
	buf_free(&sql);
	columns_free(&cs);
}

/* One adapter of one field f: refused, the message naming where. */
static void
refused(const struct field *f, size_t n, const char *why)
{
	struct source_type t = adapter("bad", f, n);
	const struct source_type *types[] = { &t, NULL };
	struct column_set cs;
	char err[256] = "";

	if (columns_load(&cs, types, err, sizeof(err)) != -1)
		fail_msg("field %s accepted", f[n - 1].path);
	if (strstr(err, "adapter bad: ") == NULL || strstr(err, why) == NULL)
		fail_msg("'%s' does not say '%s'", err, why);
}

static void
test_refused(void **state)
{
	static const struct field quote[] = {
		{ .column = "a'); DROP", .path = "a", .type = FIELD_TEXT }
	};
	static const struct field upper[] = {
		{ .column = "Agent", .path = "a", .type = FIELD_TEXT }
	};
	static const struct field own[] = {
		{ .column = "raw_json", .path = "a", .type = FIELD_TEXT }
	};
	static const struct field twice[] = {
		{ .column = "x", .path = "a", .type = FIELD_TEXT },
		{ .column = "x", .path = "b", .type = FIELD_TEXT },
	};
	static const struct field types2[] = {
		{ .column = "x", .path = "a", .type = FIELD_TEXT },
		{ .column = "x", .path = "b", .type = FIELD_INT },
	};
	static const struct field deep[] = {
		{ .column = "x", .path = "a.b.c", .type = FIELD_TEXT }
	};
	static const struct field deep_array[] = { { .column = "x",
	    .path = "a.b",
	    .type = FIELD_STRINGS,
	    .table = "t",
	    .items = &one_label,
	    .nitems = 1 } };
	static const struct field no_table[] = { { .column = "x",
	    .path = "a",
	    .type = FIELD_STRINGS,
	    .items = &one_label,
	    .nitems = 1 } };
	static const struct field bad_table[] = { { .column = "x",
	    .path = "a",
	    .type = FIELD_STRINGS,
	    .table = "t; DROP",
	    .items = &one_label,
	    .nitems = 1 } };
	static const struct field bad_item[] = { { .column = "x",
	    .path = "a",
	    .type = FIELD_OBJECTS,
	    .table = "t",
	    .items = quote,
	    .nitems = 1 } };
	static const struct field member_col[] = { { .column = "x",
	    .path = "a",
	    .type = FIELD_TEXT,
	    .member = MEMBER_TITLE } };
	static const struct field member_int[] = {
		{ .path = "a", .type = FIELD_INT, .member = MEMBER_TITLE }
	};
	static const struct field no_path[] = { { .column = "x",
	    .type = FIELD_TEXT } };

	(void)state;
	refused(quote, 1, "not an identifier");
	refused(upper, 1, "not an identifier");
	refused(own, 1, "mirror's own");
	refused(twice, 2, "column x is declared twice");
	refused(types2, 2, "column x has another type");
	refused(deep, 1, "one object down");
	refused(deep_array, 1, "one object down");
	refused(no_table, 1, "without a child table");
	refused(bad_table, 1, "without a child table");
	refused(bad_item, 1, "identifier for a column");
	refused(member_col, 1, "shared member");
	refused(member_int, 1, "shared member");
	refused(no_path, 1, "has no path");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_daemons_adapters),
		cmocka_unit_test(test_shared_column_is_one),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
