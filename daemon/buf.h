/* SPDX-License-Identifier: ISC */
/*
 * buf.h: growth with a cap, in one place (after curl's dynbuf).
 *
 * struct buf is a byte buffer that doubles as it fills and never holds more
 * than its max: what upstream fills (a response body) is bounded where it
 * grows.  buf_grow() is the same rule for arrays of structs or pointers.
 */
#ifndef AGENTSYNCD_BUF_H
#define AGENTSYNCD_BUF_H

#include <stddef.h>

/* The first allocation of a struct buf, in bytes. */
#define BUF_FIRST (64 * 1024)

struct buf {
	char *p;    /* NUL-terminated; NULL until the first add */
	size_t len; /* bytes held, without the NUL */
	size_t cap; /* bytes allocated */
	size_t max; /* most bytes it may hold */
};

/* An empty buffer that will hold at most max bytes. */
void buf_init(struct buf *b, size_t max);

/*
 * Append len bytes.  Returns 0, or -1 leaving the buffer as it was: errno
 * E2BIG when it would pass max, ENOMEM when memory ran out.
 */
int buf_add(struct buf *b, const void *data, size_t len)
    __attribute__((warn_unused_result));

/* Release the memory; the buffer is empty (and reusable) again. */
void buf_free(struct buf *b);

/*
 * Make *arr (of *cap items of elem bytes) hold at least n items, doubling
 * from 8, never past max items.  Returns 0, or -1 (errno E2BIG or ENOMEM)
 * leaving *arr and *cap as they were.
 */
int buf_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max)
    __attribute__((warn_unused_result));

#endif
