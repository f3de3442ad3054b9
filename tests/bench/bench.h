/* SPDX-License-Identifier: ISC */
/*
 * bench.h: what the bench drivers (floor.c, hostile.c) share: a monotonic
 * clock in seconds and a whole file read into memory.
 */
#ifndef AGENTSYNCD_BENCH_H
#define AGENTSYNCD_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double
bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The file at path, NUL-terminated, its length in *len; on any failure
 * "WHO: cannot read PATH" and exit 1. */
static inline char *
bench_slurp(const char *who, const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "%s: cannot read %s\n", who, path);
		exit(1);
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: cannot read %s\n", who, path);
		exit(1);
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

#endif
