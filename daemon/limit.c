/* SPDX-License-Identifier: ISC */
/*
 * limit.c: sliding-window rate limiter and jittered exponential backoff.
 *
 * Why a window log and not a token bucket: the documented limit ("60
 * requests per 30 seconds") is a statement about any 30 s window, and a
 * bucket refilling at 2/s would either burst past it or waste allowance.
 * The log costs n doubles per source.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include "limit.h"

/* Slack for the time a request takes to reach the server: 1% of the
 * window, at least 50 ms, at most 250 ms (and never more than a tenth of
 * the window).  Without it the server can see n + 1 requests in one window
 * when ours leave exactly WINDOW apart; with several in flight, a request
 * on a new connection leaves later after it is counted here than one on a
 * connection kept alive, by tens of milliseconds. */
#define LIMIT_MARGIN_FRACTION 0.01
#define LIMIT_MARGIN_MIN      0.05
#define LIMIT_MARGIN_MAX      0.25

int
limit_init(struct limit *limit, int n, double window)
{
	memset(limit, 0, sizeof(*limit));
	if (n <= 0 || window <= 0)
		return 0;
	limit->sent = calloc((size_t)n, sizeof(double));
	if (limit->sent == NULL)
		return -1;
	limit->n = n;
	limit->window = window;
	limit->margin = fmin(fmax(window * LIMIT_MARGIN_FRACTION,
				 fmin(LIMIT_MARGIN_MIN, window / 10)),
	    LIMIT_MARGIN_MAX);
	return 0;
}

void
limit_release(struct limit *limit)
{
	free(limit->sent);
	memset(limit, 0, sizeof(*limit));
}

double
limit_delay(const struct limit *limit, double now)
{
	double free_at;

	if (limit->n == 0 || limit->count < limit->n)
		return 0;
	free_at = limit->sent[limit->head] + limit->window + limit->margin;
	return free_at > now ? free_at - now : 0;
}

void
limit_record(struct limit *limit, double now)
{
	if (limit->n == 0)
		return;
	if (limit->count < limit->n) {
		limit->sent[(limit->head + limit->count) % limit->n] = now;
		limit->count++;
	} else {
		limit->sent[limit->head] = now;
		limit->head = (limit->head + 1) % limit->n;
	}
}

void
limit_sent(struct limit *limit, double decided, double sent)
{
	int i, j;

	if (limit->n == 0 || sent <= decided)
		return;
	/* newest first: the request was recorded a moment ago */
	for (i = limit->count - 1; i >= 0; i--) {
		j = (limit->head + i) % limit->n;
		if (limit->sent[j] == decided) {
			limit->sent[j] = sent;
			return;
		}
	}
}

static double
random_unit(void)
{
	uint64_t r;

	/* getrandom() on 8 bytes never blocks once the pool is ready. */
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint64_t)random() << 31 ^ (uint64_t)random();
	return (double)(r >> 11) / (double)(1ULL << 53);
}

double
backoff_next(struct backoff *backoff)
{
	double cap = backoff->initial * ldexp(1.0, backoff->attempt);

	if (cap > backoff->max)
		cap = backoff->max;
	else
		backoff->attempt++;
	/* Full jitter, with a floor so a run of unlucky draws cannot turn
	 * into a tight retry loop. */
	return fmax(cap * random_unit(), fmin(cap, backoff->initial) / 10);
}

void
backoff_reset(struct backoff *backoff)
{
	backoff->attempt = 0;
}
