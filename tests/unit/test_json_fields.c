/* SPDX-License-Identifier: ISC */
/*
 * test_json_fields.c: the typed readers an adapter normalizes an item with
 * (json_fields.c), case by case: a value of the type asked is set, an
 * absent or null one is left unset without a problem, one of another type
 * is left unset and recorded once as a problem of the run, with the value
 * as served.  Linked with the page parser and the adapters alone
 * (Makefile): they need cJSON, and neither libev, libcurl nor SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

#define ITEM                                                         \
	"{\"s\":\"text\",\"i\":42,\"n\":1.5,\"b\":true,\"f\":false," \
	"\"a\":[1],\"z\":null,\"si\":7,\"ii\":1.5,\"ni\":\"1\","     \
	"\"bi\":0,\"ai\":{}}"

struct fixture {
	struct page page;
	struct run run;
	cJSON *item;
};

static int
setup(void **state)
{
	static struct fixture fx;

	memset(&fx, 0, sizeof(fx));
	fx.item = cJSON_Parse(ITEM);
	*state = &fx;
	return fx.item == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	cJSON_Delete(fx->item);
	page_free(&fx->page);
	return 0;
}

/* The problem recorded for field, or NULL. */
static const struct field_problem *
problem_of(const struct run *r, const char *field)
{
	size_t i;

	for (i = 0; i < r->nproblems; i++)
		if (strcmp(r->problems[i].field, field) == 0)
			return &r->problems[i];
	return NULL;
}

static void
test_values_of_their_type(void **state)
{
	struct fixture *fx = *state;
	struct opt_int i = { 9, 9 };
	struct opt_num n = { 9, 9 };
	struct opt_bool b = { 9, 9 }, f = { 9, 9 };
	const char *s = NULL;
	const cJSON *a;

	run_str(&fx->page, &fx->run, fx->item, "", "s", &s);
	run_int(&fx->page, &fx->run, fx->item, "", "i", &i);
	run_num(&fx->page, &fx->run, fx->item, "", "n", &n);
	run_bool(&fx->page, &fx->run, fx->item, "", "b", &b);
	run_bool(&fx->page, &fx->run, fx->item, "", "f", &f);
	a = run_array(&fx->page, &fx->run, fx->item, "a");
	assert_string_equal(s, "text");
	assert_int_equal(i.set, 1);
	assert_int_equal(i.v, 42);
	assert_int_equal(n.set, 1);
	assert_true(n.v == 1.5);
	assert_int_equal(b.set, 1);
	assert_int_equal(b.v, 1);
	assert_int_equal(f.set, 1);
	assert_int_equal(f.v, 0);
	assert_non_null(a);
	assert_true(cJSON_IsArray(a));
	assert_int_equal(fx->run.nproblems, 0);
}

static void
test_absent_or_null_unset(void **state)
{
	struct fixture *fx = *state;
	static const char *const keys[] = { "z", "missing" };
	struct opt_int i;
	struct opt_num n;
	struct opt_bool b;
	const char *s;
	size_t k;

	for (k = 0; k < 2; k++) {
		memset(&i, 9, sizeof(i));
		memset(&n, 9, sizeof(n));
		memset(&b, 9, sizeof(b));
		s = "x";
		run_str(&fx->page, &fx->run, fx->item, "", keys[k], &s);
		run_int(&fx->page, &fx->run, fx->item, "", keys[k], &i);
		run_num(&fx->page, &fx->run, fx->item, "", keys[k], &n);
		run_bool(&fx->page, &fx->run, fx->item, "", keys[k], &b);
		assert_null(s);
		assert_int_equal(i.set, 0);
		assert_int_equal(i.v, 0);
		assert_int_equal(n.set, 0);
		assert_true(n.v == 0);
		assert_int_equal(b.set, 0);
		assert_int_equal(b.v, 0);
		assert_null(run_array(&fx->page, &fx->run, fx->item, keys[k]));
	}
	assert_int_equal(fx->run.nproblems, 0);
}

static void
test_wrong_type_is_one_problem(void **state)
{
	struct fixture *fx = *state;
	struct opt_int i = { 9, 9 };
	struct opt_num n = { 9, 9 };
	struct opt_bool b = { 9, 9 };
	const char *s = "x";
	const struct field_problem *p;

	run_str(&fx->page, &fx->run, fx->item, "x.", "si", &s);
	run_int(&fx->page, &fx->run, fx->item, "x.", "ii", &i);
	run_num(&fx->page, &fx->run, fx->item, "x.", "ni", &n);
	run_bool(&fx->page, &fx->run, fx->item, "x.", "bi", &b);
	assert_null(run_array(&fx->page, &fx->run, fx->item, "ai"));
	/* read again: still one problem a field, the first */
	run_str(&fx->page, &fx->run, fx->item, "x.", "si", &s);
	assert_null(s);
	assert_int_equal(i.set, 0);
	assert_int_equal(i.v, 0);
	assert_int_equal(n.set, 0);
	assert_int_equal(b.set, 0);
	assert_int_equal(fx->run.nproblems, 5);
	p = problem_of(&fx->run, "x.si");
	assert_non_null(p);
	assert_string_equal(p->problem, "is not a string");
	assert_string_equal(p->value, "7");
	p = problem_of(&fx->run, "x.ii");
	assert_non_null(p);
	assert_string_equal(p->problem, "is not an integer (below 2^53)");
	assert_string_equal(p->value, "1.5");
	p = problem_of(&fx->run, "x.ni");
	assert_non_null(p);
	assert_string_equal(p->problem, "is not a number");
	assert_string_equal(p->value, "\"1\"");
	p = problem_of(&fx->run, "x.bi");
	assert_non_null(p);
	assert_string_equal(p->problem, "is not a boolean");
	assert_string_equal(p->value, "0");
	p = problem_of(&fx->run, "ai");
	assert_non_null(p);
	assert_string_equal(p->problem, "is not an array");
	assert_string_equal(p->value, "{}");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_values_of_their_type,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_absent_or_null_unset,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_type_is_one_problem,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
