/* SPDX-License-Identifier: ISC */
/*
 * test_verdict.c: the verdict table (verdict.c), one row a case: what sync
 * does with each kind of answer and the metrics outcome it counts.  Linked
 * with verdict.o alone (Makefile): the module needs neither libev, libcurl
 * nor SQLite.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "verdict.h"

struct vcase {
	const char *name;
	long status;
	int too_large, retry_after;
	enum verdict_body body;
	enum verdict_action action;
	enum req_outcome outcome;
};

#define UNREAD VERDICT_UNREAD
#define GOOD   VERDICT_PAGE_OK
#define BAD    VERDICT_NOT_A_PAGE

static const struct vcase cases[] = {
	/* a 2xx: parsed at its turn, then a page or a bad page */
	{ "200 unread", 200, 0, 0, UNREAD, VERDICT_PARSE, REQ_OK },
	{ "200 good page", 200, 0, 0, GOOD, VERDICT_PAGE, REQ_OK },
	{ "200 bad body", 200, 0, 0, BAD, VERDICT_BAD_PAGE, REQ_BAD_PAGE },
	{ "204 good page", 204, 0, 0, GOOD, VERDICT_PAGE, REQ_OK },
	{ "299 bad body", 299, 0, 0, BAD, VERDICT_BAD_PAGE, REQ_BAD_PAGE },
	{ "200 with Retry-After", 200, 0, 1, GOOD, VERDICT_PAGE, REQ_OK },
	/* over the body cap: no answer, counted as a bad page */
	{ "200 too large", 200, 1, 0, UNREAD, VERDICT_NO_ANSWER, REQ_BAD_PAGE },
	{ "429 too large", 429, 1, 1, UNREAD, VERDICT_NO_ANSWER, REQ_BAD_PAGE },
	{ "500 too large", 500, 1, 0, UNREAD, VERDICT_NO_ANSWER, REQ_BAD_PAGE },
	{ "0 too large", 0, 1, 0, UNREAD, VERDICT_NO_ANSWER, REQ_BAD_PAGE },
	/* no response at all */
	{ "0 transport", 0, 0, 0, UNREAD, VERDICT_NO_ANSWER, REQ_TRANSPORT },
	/* upstream's trouble: retried with the backoff */
	{ "408", 408, 0, 0, UNREAD, VERDICT_UPSTREAM, REQ_SERVER_ERROR },
	{ "500", 500, 0, 0, UNREAD, VERDICT_UPSTREAM, REQ_SERVER_ERROR },
	{ "503", 503, 0, 0, UNREAD, VERDICT_UPSTREAM, REQ_SERVER_ERROR },
	{ "503 with Retry-After", 503, 0, 1, UNREAD, VERDICT_UPSTREAM,
	    REQ_SERVER_ERROR },
	{ "599", 599, 0, 0, UNREAD, VERDICT_UPSTREAM, REQ_SERVER_ERROR },
	{ "600", 600, 0, 0, UNREAD, VERDICT_UPSTREAM, REQ_SERVER_ERROR },
	/* rate limited: as Retry-After asks, else the backoff */
	{ "429 with Retry-After", 429, 0, 1, UNREAD, VERDICT_RETRY_AFTER,
	    REQ_RATE_LIMITED },
	{ "429 without Retry-After", 429, 0, 0, UNREAD, VERDICT_RATE_LIMITED,
	    REQ_RATE_LIMITED },
	/* the token refused */
	{ "401", 401, 0, 0, UNREAD, VERDICT_AUTH, REQ_CLIENT_ERROR },
	{ "403", 403, 0, 0, UNREAD, VERDICT_AUTH, REQ_CLIENT_ERROR },
	{ "401 with Retry-After", 401, 0, 1, UNREAD, VERDICT_AUTH,
	    REQ_CLIENT_ERROR },
	/* anything else: the pass fails */
	{ "400", 400, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "404", 404, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "422", 422, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "499", 499, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "301", 301, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "304", 304, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "302 with Retry-After", 302, 0, 1, UNREAD, VERDICT_FAIL,
	    REQ_CLIENT_ERROR },
	{ "100", 100, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "199", 199, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
	{ "300", 300, 0, 0, UNREAD, VERDICT_FAIL, REQ_CLIENT_ERROR },
};

static void
test_table(void **state)
{
	size_t i;
	struct verdict v;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct vcase *c = &cases[i];

		v = verdict_of(c->status, c->too_large, c->retry_after,
		    c->body);
		if (v.action != c->action || v.outcome != c->outcome)
			fail_msg("%s: action %d outcome %d, want %d %d",
			    c->name, (int)v.action, (int)v.outcome,
			    (int)c->action, (int)c->outcome);
	}
}

/* What the body's parse says matters for a 2xx alone. */
static void
test_body_ignored_but_2xx(void **state)
{
	static const long statuses[] = { 0, 301, 401, 404, 429, 500 };
	struct verdict a, b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		a = verdict_of(statuses[i], 0, 0, VERDICT_UNREAD);
		b = verdict_of(statuses[i], 0, 0, VERDICT_NOT_A_PAGE);
		assert_int_equal(a.action, b.action);
		assert_int_equal(a.outcome, b.outcome);
	}
}

/* The names stored in sync_runs.outcome and the metrics' labels. */
static void
test_pass_names(void **state)
{
	(void)state;
	assert_string_equal(verdict_pass_name(PASS_SUCCEEDED), "succeeded");
	assert_string_equal(verdict_pass_name(PASS_FAILED), "failed");
	assert_string_equal(verdict_pass_name(PASS_INTERRUPTED), "interrupted");
	assert_int_equal(NPASS_OUTCOMES, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_body_ignored_but_2xx),
		cmocka_unit_test(test_pass_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
