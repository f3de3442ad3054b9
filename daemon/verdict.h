/* SPDX-License-Identifier: ISC */
/*
 * verdict.h: what an answer to a page request means, and how a pass ended.
 *
 * One table (verdict.c) maps how a request ended (its HTTP status, a body
 * over the cap, whether Retry-After came, and, for a 2xx, whether its body
 * is a page) to what sync does with it AND to the outcome the metrics
 * count, so the two cannot disagree.  The names of pass outcomes
 * (sync_runs.outcome, the metrics' passes_total) are here too, written
 * once for the store and the metrics.  Pure: no libev, libcurl or SQLite.
 */
#ifndef AGENTSYNCD_VERDICT_H
#define AGENTSYNCD_VERDICT_H

/* How a request ended, for agentsyncd_requests_total{outcome}. */
enum req_outcome {
	REQ_OK,		  /* 2xx and a page */
	REQ_RATE_LIMITED, /* 429 */
	REQ_CLIENT_ERROR, /* other 4xx */
	REQ_SERVER_ERROR, /* 5xx, 408 */
	REQ_BAD_PAGE,	  /* 2xx, but not a page of the spec */
	REQ_TRANSPORT,	  /* no response: connect, TLS, timeout, reset */
	NREQ_OUTCOMES
};

/* What is known of a 2xx answer's body. */
enum verdict_body {
	VERDICT_UNREAD, /* not parsed: not yet, or never (dropped) */
	VERDICT_PAGE_OK,
	VERDICT_NOT_A_PAGE,
};

/* What sync does with an answer. */
enum verdict_action {
	VERDICT_PARSE,	      /* a 2xx not read yet: parse it at its turn */
	VERDICT_PAGE,	      /* a page: handle it */
	VERDICT_NO_ANSWER,    /* no response, or a body over the cap: retry */
	VERDICT_BAD_PAGE,     /* a 2xx that is not a page: retry */
	VERDICT_UPSTREAM,     /* 5xx, 408: retry, quoting the body */
	VERDICT_RETRY_AFTER,  /* 429 with Retry-After: the source waits as
				asked */
	VERDICT_RATE_LIMITED, /* 429 without: the source waits its backoff */
	VERDICT_AUTH,	      /* 401, 403: the pass fails, auth_backoff */
	VERDICT_FAIL,	      /* any other status: the pass fails */
};

struct verdict {
	enum verdict_action action;
	enum req_outcome outcome; /* final unless action is VERDICT_PARSE:
				     then REQ_OK if it is never read */
};

/*
 * The verdict on an answer: status (0: no response), too_large (the body
 * went over the cap), retry_after (the answer had a usable Retry-After),
 * body (for a 2xx: what its parse said).  Count outcome once: when action
 * is not VERDICT_PARSE, or when a VERDICT_PARSE answer is dropped unread.
 */
struct verdict verdict_of(long status, int too_large, int retry_after,
    enum verdict_body body);

/* How a pass ended: sync_runs.outcome and agentsyncd_passes_total. */
enum pass_outcome {
	PASS_SUCCEEDED,
	PASS_FAILED,
	PASS_INTERRUPTED,
	NPASS_OUTCOMES
};

/* "succeeded", "failed", "interrupted": a static string. */
const char *verdict_pass_name(enum pass_outcome outcome);

#endif
