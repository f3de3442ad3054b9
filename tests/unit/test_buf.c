/* SPDX-License-Identifier: ISC */
/*
 * test_buf.c: the capped buffer and array growth (buf.c): nothing past the
 * cap, nothing changed by a refused add, NUL-terminated text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

static void
test_buf_cap(void **state)
{
	struct buf b;
	char big[BUF_FIRST + 10];

	(void)state;
	buf_init(&b, 10);
	assert_int_equal(buf_add(&b, "hello", 5), 0);
	assert_string_equal(b.p, "hello");
	assert_int_equal(buf_add(&b, "world", 5), 0);
	assert_int_equal(b.len, 10);
	assert_true(b.cap <= 11); /* never more than max + NUL */
	errno = 0;
	assert_int_equal(buf_add(&b, "!", 1), -1);
	assert_int_equal(errno, E2BIG);
	assert_string_equal(b.p, "helloworld"); /* unchanged */
	assert_int_equal(buf_add(&b, "", 0), 0);
	buf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	/* growth past the first allocation, by doubling */
	buf_init(&b, sizeof(big) * 4);
	memset(big, 'x', sizeof(big));
	assert_int_equal(buf_add(&b, big, sizeof(big)), 0);
	assert_int_equal(buf_add(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, 2 * sizeof(big));
	assert_int_equal(b.cap, 4 * BUF_FIRST);
	assert_int_equal(b.p[b.len], '\0');
	buf_free(&b);
}

static void
test_grow(void **state)
{
	int *a = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(buf_grow((void **)&a, &cap, 1, sizeof(*a), 20), 0);
	assert_int_equal(cap, 8);
	assert_int_equal(buf_grow((void **)&a, &cap, 8, sizeof(*a), 20), 0);
	assert_int_equal(cap, 8);
	assert_int_equal(buf_grow((void **)&a, &cap, 9, sizeof(*a), 20), 0);
	assert_int_equal(cap, 16);
	assert_int_equal(buf_grow((void **)&a, &cap, 17, sizeof(*a), 20), 0);
	assert_int_equal(cap, 20); /* the cap, not 32 */
	a[19] = 7;
	errno = 0;
	assert_int_equal(buf_grow((void **)&a, &cap, 21, sizeof(*a), 20), -1);
	assert_int_equal(errno, E2BIG);
	assert_int_equal(cap, 20);
	assert_int_equal(a[19], 7);
	free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
