/* SPDX-License-Identifier: ISC */
/*
 * limit.h: the client-side rate limiter and the retry backoff of a source.
 *
 * The limiter is a sliding window: it remembers the send times of the last
 * N requests and allows a new one only when the oldest of them is more than
 * WINDOW (plus a small margin for the request's trip) in the past.  So no
 * window of that length ever holds more than N requests, and a backfill can
 * use the whole allowance.  Times are seconds on a monotonic clock.
 */
#ifndef AGENTSYNCD_LIMIT_H
#define AGENTSYNCD_LIMIT_H

struct limit {
	int n;	       /* requests per window; 0 = unlimited */
	double window; /* seconds */
	double margin; /* seconds added to the window */
	double *sent;  /* ring of the last n send times */
	int head;      /* oldest entry once the ring is full */
	int count;
};

/* Returns 0, or -1 when out of memory. */
int limit_init(struct limit *limit, int n, double window)
    __attribute__((warn_unused_result));
void limit_release(struct limit *limit);
/* Seconds to wait before a request may be sent at now; 0 = send now. */
double limit_delay(const struct limit *limit, double now);
/* A request was decided at now (it counts from then on). */
void limit_record(struct limit *limit, double now);
/*
 * The request recorded at decided left at sent (libcurl sends it after
 * connecting, and after whatever else the loop had to do first): it
 * counts from then, so the window is measured from when it left.  A
 * request whose entry was already replaced is not found: nothing changes.
 */
void limit_sent(struct limit *limit, double decided, double sent);

/* Exponential backoff with full jitter: initial doubling to max. */
struct backoff {
	double initial;
	double max;
	int attempt;
};

/* The next wait: uniform in (0, min(max, initial * 2^attempt)]. */
double backoff_next(struct backoff *backoff);
void backoff_reset(struct backoff *backoff);

#endif
