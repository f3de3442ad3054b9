/* SPDX-License-Identifier: ISC */
/*
 * verdict.c: the table of what an answer means; see verdict.h.
 *
 * Not here: the waits themselves (limit.c's backoff, the configuration's
 * auth_backoff and Retry-After's cap) and the log lines (sync.c).
 */
#include <limits.h>
#include <stddef.h>

#include "verdict.h"

#define ANY (-1) /* a row's too_large, retry_after or body: either */

/* The first row that matches decides; the last matches every answer. */
static const struct verdict_row {
	long lo, hi; /* statuses, inclusive */
	int too_large, retry_after, body;
	struct verdict v;
} rows[] = {
	/* a body over the cap is no answer, whatever its status */
	{ LONG_MIN, LONG_MAX, 1, ANY, ANY,
	    { VERDICT_NO_ANSWER, REQ_BAD_PAGE } },
	{ 0, 0, ANY, ANY, ANY, { VERDICT_NO_ANSWER, REQ_TRANSPORT } },
	{ 200, 299, ANY, ANY, VERDICT_UNREAD, { VERDICT_PARSE, REQ_OK } },
	{ 200, 299, ANY, ANY, VERDICT_PAGE_OK, { VERDICT_PAGE, REQ_OK } },
	{ 200, 299, ANY, ANY, VERDICT_NOT_A_PAGE,
	    { VERDICT_BAD_PAGE, REQ_BAD_PAGE } },
	{ 401, 401, ANY, ANY, ANY, { VERDICT_AUTH, REQ_CLIENT_ERROR } },
	{ 403, 403, ANY, ANY, ANY, { VERDICT_AUTH, REQ_CLIENT_ERROR } },
	{ 408, 408, ANY, ANY, ANY, { VERDICT_UPSTREAM, REQ_SERVER_ERROR } },
	{ 429, 429, ANY, 1, ANY, { VERDICT_RETRY_AFTER, REQ_RATE_LIMITED } },
	{ 429, 429, ANY, ANY, ANY, { VERDICT_RATE_LIMITED, REQ_RATE_LIMITED } },
	/* Retry-After on any other status is not followed: the backoff's */
	{ 500, LONG_MAX, ANY, ANY, ANY,
	    { VERDICT_UPSTREAM, REQ_SERVER_ERROR } },
	/* 1xx, 3xx (redirects are not followed), other 4xx */
	{ LONG_MIN, LONG_MAX, ANY, ANY, ANY,
	    { VERDICT_FAIL, REQ_CLIENT_ERROR } },
};

static int
either(int want, int have)
{
	return want == ANY || want == have;
}

struct verdict
verdict_of(long status, int too_large, int retry_after, enum verdict_body body)
{
	size_t i, last = sizeof(rows) / sizeof(rows[0]) - 1;
	const struct verdict_row *r;

	for (i = 0; i < last; i++) {
		r = &rows[i];
		if (status >= r->lo && status <= r->hi &&
		    either(r->too_large, too_large != 0) &&
		    either(r->retry_after, retry_after != 0) &&
		    either(r->body, (int)body))
			return r->v;
	}
	return rows[last].v;
}

const char *
verdict_pass_name(enum pass_outcome outcome)
{
	static const char *const names[NPASS_OUTCOMES] = {
		[PASS_SUCCEEDED] = "succeeded",
		[PASS_FAILED] = "failed",
		[PASS_INTERRUPTED] = "interrupted",
	};

	return names[outcome];
}
