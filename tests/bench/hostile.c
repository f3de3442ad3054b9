/* SPDX-License-Identifier: ISC */
/*
 * hostile.c: what one page costs the adapter that parses it, for `make
 * bench` (scripts/bench_hostile.py).
 *
 *   hostile KIND FILE
 *
 * Parses FILE (a whole response body) with KIND's parse_page, as the daemon
 * does after a fetch, and prints one line: "seconds=S peak_bytes=B
 * body_bytes=B runs=N rejects=N problems=N prs=N result=ok|refused".
 * seconds is the parse alone; peak_bytes is how far the parse raised the
 * process's resident memory (VmHWM after it, less VmRSS before it, the
 * high-water mark reset through /proc/self/clear_refs once the body is
 * read): memory touched, which is what RSS, MemoryMax and the README's
 * bound count, whoever allocated it (cJSON prints with libc's malloc).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "log.h"
#include "source.h"

/* VmHWM or VmRSS of this process, in bytes; -1 when unknown. */
static long long
status_bytes(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kib = -1;
	size_t n = strlen(key);

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, n) == 0 && line[n] == ':')
			kib = strtoll(line + n + 1, NULL, 10);
	fclose(f);
	return kib < 0 ? -1 : kib * 1024;
}

/* Start VmHWM again from the current RSS. */
static int
reset_hwm(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs("5", f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

int
main(int argc, char *argv[])
{
	const struct source_type *t;
	struct page page;
	size_t len, i, problems = 0, prs = 0;
	long long base, peak;
	double t0, secs;
	char err[200], *body;
	int rc;

	if (argc != 3 || (t = source_type_find(argv[1])) == NULL) {
		fprintf(stderr, "usage: hostile codegen|cotool FILE\n");
		return 64;
	}
	log_set_level(LOG_LEVEL_ERROR);
	body = bench_slurp("hostile", argv[2], &len);
	if (reset_hwm() == -1 || (base = status_bytes("VmRSS")) < 0) {
		fprintf(stderr, "hostile: cannot read /proc/self memory\n");
		return 1;
	}
	t0 = bench_now();
	rc = t->parse_page(body, len, 100, &page, err, sizeof(err));
	secs = bench_now() - t0;
	peak = status_bytes("VmHWM");
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
