/* SPDX-License-Identifier: ISC */
/*
 * test_hostile_pages.c: one run of tens of thousands of odd members costs
 * time linear in its bytes, and keeps at most SOURCE_MAX_PROBLEMS problems
 * plus one row that counts the rest (issue 25, part 4).
 *
 * Each shape was quadratic in 83eca89 (seconds to minutes at these sizes);
 * here each parse must end within SECONDS_MAX, forty times what it takes
 * (under AddressSanitizer too), and an alarm ends the binary if a parse
 * takes a minute.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "source.h"
#include "runcols.h"

#define SECONDS_MAX 2.0

/* A growing text. */
struct text {
	char *p;
	size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < t->cap - t->len)
			break;
		t->cap = 2 * t->cap + (size_t)n + 1;
		t->p = realloc(t->p, t->cap);
		assert_non_null(t->p);
	}
	t->len += (size_t)n;
}

static void
text_init(struct text *t)
{
	t->cap = 1 << 16;
	t->len = 0;
	t->p = malloc(t->cap);
	assert_non_null(t->p);
	t->p[0] = '\0';
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Parse t with t's adapter within SECONDS_MAX; one run, no reject. */
static const struct run *
parse_one(const struct source_type *type, const struct text *t, struct page *p)
{
	char err[200];
	double t0 = now(), took;
	int rc;

	rc = type->parse_page(t->p, t->len, 100, p, err, sizeof(err));
	took = now() - t0;
	if (rc != 0)
		fail_msg("refused: %s", err);
	if (took > SECONDS_MAX)
		fail_msg("%zu bytes took %.2f s (at most %.1f)", t->len, took,
		    SECONDS_MAX);
	assert_int_equal(p->nruns, 1);
	assert_int_equal(p->nrejects, 0);
	return &p->runs[0];
}

/* The last row counts the problems past the first SOURCE_MAX_PROBLEMS. */
static void
assert_more(const struct run *r, size_t more)
{
	char want[24];

	snprintf(want, sizeof(want), "%zu", more);
	assert_int_equal(r->nproblems, SOURCE_MAX_PROBLEMS + 1);
	assert_string_equal(r->problems[SOURCE_MAX_PROBLEMS].field,
	    SOURCE_MORE_FIELD);
	assert_string_equal(r->problems[SOURCE_MAX_PROBLEMS].value, want);
	assert_non_null(strstr(r->problems[SOURCE_MAX_PROBLEMS].problem,
	    "more problems not recorded"));
	assert_non_null(strstr(r->problems[SOURCE_MAX_PROBLEMS].problem, want));
}

/* 8,000 names each given twice (a sort per name: 11 s in 83eca89),
 * "status" among them: every name recorded once, in strcmp order, and
 * the status read by no one (its problem is the one recorded). */
static void
test_names_given_twice(void **state)
{
	struct text t;
	struct page p;
	const struct run *r;
	int i, round;

	(void)state;
	text_init(&t);
	add(&t, "{\"total\": 1, \"items\": [{\"id\": 7, ");
	for (round = 0; round < 2; round++) {
		for (i = 0; i < 7999; i++)
			add(&t, "\"n%05d\": %d, ", i, round);
		add(&t, "\"status\": \"%s\"%s", round ? "COMPLETE" : "ACTIVE",
		    round ? "" : ", ");
	}
	add(&t, "}]}");
	r = parse_one(&source_codegen, &t, &p);
	assert_string_equal(r->external_id, "7");
	assert_null(r->status);
	assert_int_equal(r->state, RUN_UNKNOWN);
	assert_string_equal(r->problems[0].field, "n00000");
	assert_string_equal(r->problems[0].problem, "given twice");
	assert_null(r->problems[0].value);
	assert_string_equal(r->problems[63].field, "n00063");
	/* 8,000 names, 64 kept; "status" counted once, not again when
	 * codegen_run() read it */
	assert_more(r, 8000 - SOURCE_MAX_PROBLEMS);
	page_free(&p);
	free(t.p);
}

/* 40,000 members holding \u0000 or a lone surrogate, alternately (a walk
 * from the run's start per escape: about 15 s in 83eca89), and one with
 * three escapes: a problem per member, the kind of its first escape. */
static void
test_bad_escapes(void **state)
{
	struct text t;
	struct page p;
	const struct run *r;
	int i;

	(void)state;
	text_init(&t);
	add(&t,
	    "{\"totalCount\": 1, \"runs\": [{\"id\": \"e1\", "
	    "\"runTitle\": \"a\\u0000b\\udc00c\\u0000\", ");
	for (i = 0; i < 40000; i++)
		add(&t, "\"k%d\": \"%s\", ", i, i % 2 ? "\\udc00" : "\\u0000");
	add(&t, "\"status\": \"done\"}]}");
	r = parse_one(&source_cotool, &t, &p);
	assert_string_equal(r->external_id, "e1");
	assert_int_equal(r->state, RUN_SUCCEEDED);
	assert_null(r->title);
	assert_string_equal(r->problems[0].field, "runTitle");
	assert_string_equal(r->problems[0].problem, "holds \\u0000");
	assert_string_equal(r->problems[1].field, "k0");
	assert_string_equal(r->problems[1].problem, "holds \\u0000");
	assert_string_equal(r->problems[2].field, "k1");
	assert_string_equal(r->problems[2].problem,
	    "holds a lone UTF-16 surrogate escape");
	assert_string_equal(r->problems[63].field, "k62");
	assert_more(r, 40001 - SOURCE_MAX_PROBLEMS);
	/* raw_json is what upstream sent */
	assert_non_null(
	    memmem(r->raw, r->raw_len, "\"k39999\": \"\\udc00\"", 18));
	page_free(&p);
	free(t.p);
}

/* 100,000 numbers where tool names belong (a scan of the earlier
 * problems per problem: about 13 s in 83eca89): the strings among them
 * kept, in order; one problem per number, in order, after the problem of
 * totalToolCount (read first), and one for the criterion that is not an
 * object (read last, counted). */
static void
test_many_problems(void **state)
{
	struct text t;
	struct page p;
	const struct run *r;
	int i;

	(void)state;
	text_init(&t);
	add(&t,
	    "{\"totalCount\": 1, \"runs\": [{\"id\": \"m1\", "
	    "\"toolNames\": [\"first\", ");
	for (i = 0; i < 100000; i++)
		add(&t, "%d, ", 100000000 + i);
	add(&t,
	    "null, \"last\"], \"totalToolCount\": \"x\", "
	    "\"acceptanceCriteriaResults\": [7, {\"criterion\": \"c\", "
	    "\"met\": true}]}]}");
	r = parse_one(&source_cotool, &t, &p);
	assert_false(COL(r, "total_tool_count")->set);
	assert_true(COL(r, "tool_names_count")->set);
	assert_int_equal(COL(r, "tool_names_count")->len, 3);
	assert_string_equal(COL(r, "tool_names_count")->v.strs[0], "first");
	assert_null(COL(r, "tool_names_count")->v.strs[1]);
	assert_string_equal(COL(r, "tool_names_count")->v.strs[2], "last");
	assert_string_equal(r->problems[0].field, "totalToolCount");
	assert_string_equal(r->problems[1].field, "toolNames[1]");
	assert_string_equal(r->problems[1].problem, "is not a string");
	assert_string_equal(r->problems[1].value, "100000000");
	assert_string_equal(r->problems[63].field, "toolNames[63]");
	assert_int_equal(COL(r, "acceptance_criteria_count")->len, 1);
	assert_string_equal(CELL(r, "acceptance_criteria_count", 0, 0)->v.s,
	    "c");
	assert_more(r, 100002 - SOURCE_MAX_PROBLEMS);
	page_free(&p);
	free(t.p);
}

/* The same where Codegen's pull requests belong. */
static void
test_many_problems_codegen(void **state)
{
	struct text t;
	struct page p;
	const struct run *r;
	int i;

	(void)state;
	text_init(&t);
	add(&t,
	    "{\"total\": 1, \"items\": [{\"id\": 9, "
	    "\"github_pull_requests\": [");
	for (i = 0; i < 100000; i++)
		add(&t, "%d, ", 100000000 + i);
	add(&t, "{\"id\": 5, \"title\": \"kept\"}]}]}");
	r = parse_one(&source_codegen, &t, &p);
	assert_true(r->prs_sent);
	assert_int_equal(r->nprs, 1);
	assert_string_equal(r->prs[0].external_id, "5");
	assert_string_equal(r->prs[0].title, "kept");
	assert_string_equal(r->problems[0].field, "github_pull_requests[0]");
	assert_string_equal(r->problems[0].problem, "is not an object");
	assert_string_equal(r->problems[0].value, "100000000");
	assert_string_equal(r->problems[63].field, "github_pull_requests[63]");
	assert_more(r, 100000 - SOURCE_MAX_PROBLEMS);
	page_free(&p);
	free(t.p);
}

/* 60,000 pull requests, then the same 60,000 again (a scan of the kept
 * ids per request: about 14 s in 83eca89): one link each, at its first
 * place, with the first copy's fields. */
static void
test_pull_requests_twice(void **state)
{
	struct text t;
	struct page p;
	const struct run *r;
	int i, round;

	(void)state;
	text_init(&t);
	add(&t,
	    "{\"total\": 1, \"items\": [{\"id\": 11, "
	    "\"github_pull_requests\": [");
	for (round = 0; round < 2; round++)
		for (i = 0; i < 60000; i++)
			add(&t,
			    "%s{\"id\": %d, \"title\": \"%c%d: a pull "
			    "request\"}",
			    round || i ? ", " : "", i % 2 ? 3 * i : 1000000 - i,
			    round ? 'b' : 'a', i);
	add(&t, "]}]}");
	r = parse_one(&source_codegen, &t, &p);
	assert_int_equal(r->nprs, 60000);
	assert_int_equal(r->nproblems, 0);
	assert_string_equal(r->prs[0].external_id, "1000000");
	assert_string_equal(r->prs[0].title, "a0: a pull request");
	assert_string_equal(r->prs[1].external_id, "3");
	assert_string_equal(r->prs[59999].external_id, "179997");
	assert_string_equal(r->prs[59999].title, "a59999: a pull request");
	page_free(&p);
	free(t.p);
}

/* The cap's edge: 64 problems are 64 rows; 65 are 64 and the row that
 * counts one more. */
static void
test_cap_edge(void **state)
{
	struct text t;
	struct page p;
	const struct run *r;
	int n, i;

	(void)state;
	for (n = SOURCE_MAX_PROBLEMS; n <= SOURCE_MAX_PROBLEMS + 1; n++) {
		text_init(&t);
		add(&t,
		    "{\"totalCount\": 1, \"runs\": [{\"id\": \"c\", "
		    "\"toolNames\": [");
		for (i = 0; i < n; i++)
			add(&t, "%s%d", i ? ", " : "", i);
		add(&t, "]}]}");
		r = parse_one(&source_cotool, &t, &p);
		if (n == SOURCE_MAX_PROBLEMS) {
			assert_int_equal(r->nproblems, SOURCE_MAX_PROBLEMS);
			assert_string_equal(r->problems[SOURCE_MAX_PROBLEMS - 1]
						.field,
			    "toolNames[63]");
		} else {
			assert_more(r, 1);
		}
		page_free(&p);
		free(t.p);
	}
}

static void
alarm_cb(int sig)
{
	static const char msg[] = "test_hostile_pages: a parse took over a "
				  "minute (quadratic?)\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_given_twice),
		cmocka_unit_test(test_bad_escapes),
		cmocka_unit_test(test_many_problems),
		cmocka_unit_test(test_many_problems_codegen),
		cmocka_unit_test(test_pull_requests_twice),
		cmocka_unit_test(test_cap_edge),
	};

	log_set_level(LOG_LEVEL_ERROR);
	signal(SIGALRM, alarm_cb);
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
