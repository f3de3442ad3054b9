/* SPDX-License-Identifier: ISC */
/*
 * buf.c: a capped growing buffer and array (see buf.h).  Small on purpose:
 * no formatting, no shrinking.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

int
buf_add(struct buf *b, const void *data, size_t len)
{
	size_t need, ncap;
	char *p;

	if (len > b->max - b->len) {
		errno = E2BIG;
		return -1;
	}
	need = b->len + len + 1;
	if (need > b->cap) {
		ncap = b->cap != 0 ? b->cap : BUF_FIRST;
		while (ncap < need)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		p = realloc(b->p, ncap);
		if (p == NULL) {
			errno = ENOMEM;
			return -1;
		}
		b->p = p;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int
buf_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max)
{
	size_t ncap;
	void *p;

	if (n <= *cap)
		return 0;
	if (n > max || elem == 0 || max > SIZE_MAX / elem) {
		errno = E2BIG;
		return -1;
	}
	ncap = *cap != 0 ? *cap : 8;
	while (ncap < n)
		ncap = ncap > max / 2 ? max : ncap * 2;
	p = realloc(*arr, ncap * elem);
	if (p == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*arr = p;
	*cap = ncap;
	return 0;
}
