/*
 * hostile.c: what one page costs the adapter that parses it, for `make
 * bench` (scripts/bench_hostile.py).
 *
 *   hostile KIND FILE
 *
 * Parses FILE (a whole response body) with KIND's parse_page, as the daemon
 * does after a fetch, and prints one line: "seconds=S peak_bytes=B
 * runs=N rejects=N problems=N prs=N result=ok|refused".  seconds is the
 * parse alone; peak_bytes is the most heap the parse held at once (the
 * body, read before the clock starts, not counted), from malloc, calloc,
 * realloc and free wrapped at link time (-Wl,--wrap): cJSON's nodes reach
 * malloc through json.c's hooks, so they are counted too.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "source.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
void __wrap_free(void *p);

static long long live, peak;

static void
count(long long delta)
{
	live += delta;
	if (live > peak)
		peak = live;
}

void *
__wrap_malloc(size_t size)
{
	void *p = __real_malloc(size);

	if (p != NULL)
		count((long long)malloc_usable_size(p));
	return p;
}

void *
__wrap_calloc(size_t n, size_t size)
{
	void *p = __real_calloc(n, size);

	if (p != NULL)
		count((long long)malloc_usable_size(p));
	return p;
}

void *
__wrap_realloc(void *p, size_t size)
{
	long long before = p != NULL ? (long long)malloc_usable_size(p) : 0;
	void *q = __real_realloc(p, size);

	if (q != NULL)
		count((long long)malloc_usable_size(q) - before);
	return q;
}

void
__wrap_free(void *p)
{
	if (p != NULL)
		count(-(long long)malloc_usable_size(p));
	__real_free(p);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "hostile: cannot read %s\n", path);
		exit(1);
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "hostile: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int
main(int argc, char *argv[])
{
	const struct source_type *t;
	struct page page;
	size_t len, i, problems = 0, prs = 0;
	long long base;
	double t0, secs;
	char err[200], *body;
	int rc;

	if (argc != 3 || (t = source_type_find(argv[1])) == NULL) {
		fprintf(stderr, "usage: hostile codegen|cotool FILE\n");
		return 64;
	}
	log_set_level(LOG_LEVEL_ERROR);
	body = slurp(argv[2], &len);
	base = live;
	peak = live;
	t0 = now();
	rc = t->parse_page(body, len, 100, &page, err, sizeof(err));
	secs = now() - t0;
	for (i = 0; rc == 0 && i < page.nruns; i++) {
		problems += page.runs[i].nproblems;
		prs += page.runs[i].nprs;
	}
	printf("seconds=%.6f peak_bytes=%lld body_bytes=%zu runs=%zu "
	       "rejects=%zu problems=%zu prs=%zu result=%s\n",
	    secs, peak - base, len, rc == 0 ? page.nruns : 0,
	    rc == 0 ? page.nrejects : 0, problems, prs,
	    rc == 0 ? "ok" : "refused");
	if (rc != 0)
		fprintf(stderr, "hostile: %s: %s\n", argv[2], err);
	page_free(&page);
	free(body);
	return 0;
}
