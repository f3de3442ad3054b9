/* SPDX-License-Identifier: ISC */
/*
 * test_limit.c: the sliding-window limiter never lets n + 1 requests into
 * one window and uses the whole allowance; backoff grows to its cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "limit.h"

static void
test_window_never_exceeded(void **state)
{
	struct limit l;
	double now = 1000.0, sent[400], d;
	int i, j, count;

	(void)state;
	assert_int_equal(limit_init(&l, 60, 30.0), 0);
	/* Send as fast as the limiter allows for 200 requests. */
	for (i = 0; i < 200; i++) {
		d = limit_delay(&l, now);
		now += d;
		assert_true(limit_delay(&l, now) == 0);
		limit_record(&l, now);
		sent[i] = now;
		now += 0.001;
	}
	/* No 30 s window holds more than 60. */
	for (i = 0; i < 200; i++) {
		count = 0;
		for (j = i; j < 200 && sent[j] < sent[i] + 30.0; j++)
			count++;
		assert_true(count <= 60);
	}
	/* The allowance is used: 200 requests in a little over 3 windows. */
	assert_true(sent[199] - sent[0] < 3 * 30.0 + 4 * 0.25 + 0.5);
	limit_release(&l);
}

/* Requests that leave late (the loop was busy, a connection was made)
 * count from when they left: the window is measured from there. */
static void
test_counted_from_when_sent(void **state)
{
	struct limit l;
	double sent[40], d, now = 50.0, margin;
	int i, j, count;

	(void)state;
	assert_int_equal(limit_init(&l, 10, 2.0), 0);
	margin = l.margin;
	assert_true(margin >= 0.05 && margin <= 0.2);
	for (i = 0; i < 40; i++) {
		now += limit_delay(&l, now);
		limit_record(&l, now);
		/* every third request leaves 150 ms after it was counted */
		sent[i] = i % 3 == 0 ? now + 0.15 : now + 0.001;
		limit_sent(&l, now, sent[i]);
		now += 0.001;
	}
	for (i = 0; i < 40; i++) {
		count = 0;
		for (j = 0; j < 40; j++)
			count += sent[j] >= sent[i] && sent[j] < sent[i] + 2.0;
		assert_true(count <= 10);
	}
	/* an entry already replaced is left alone */
	d = limit_delay(&l, now);
	limit_sent(&l, 1.0, 1e9);
	assert_true(limit_delay(&l, now) == d);
	limit_release(&l);
}

static void
test_unlimited(void **state)
{
	struct limit l;
	int i;

	(void)state;
	assert_int_equal(limit_init(&l, 0, 0), 0);
	for (i = 0; i < 1000; i++) {
		assert_true(limit_delay(&l, 5.0) == 0);
		limit_record(&l, 5.0);
	}
	limit_release(&l);
}

static void
test_backoff_grows_to_cap(void **state)
{
	struct backoff b = { 1.0, 300.0, 0 };
	double d;
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		d = backoff_next(&b);
		assert_true(d > 0);
		assert_true(d <= (i < 9 ? (double)(1 << i) : 300.0));
	}
	assert_true(b.attempt <= 9);
	backoff_reset(&b);
	assert_true(backoff_next(&b) <= 1.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_never_exceeded),
		cmocka_unit_test(test_counted_from_when_sent),
		cmocka_unit_test(test_unlimited),
		cmocka_unit_test(test_backoff_grows_to_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
