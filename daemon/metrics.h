/* SPDX-License-Identifier: ISC */
/*
 * metrics.h: Prometheus metrics through node_exporter's textfile collector.
 *
 * No socket in the daemon: with metrics_file set, the file is rewritten
 * whole (a temporary file of its own in the same directory, fsync'ed, then
 * rename(2), so that node_exporter never reads half of it and a crash
 * never leaves it empty) at start, after every pass and with every
 * progress line of a long walk.  Names follow Prometheus'
 * conventions: base units in the name, _total for counters, HELP and TYPE
 * for each; counters count from the daemon's start.
 */
#ifndef AGENTSYNCD_METRICS_H
#define AGENTSYNCD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "verdict.h" /* enum req_outcome, enum pass_outcome */

/* What one source says about itself. */
struct metrics_source {
	const char *name;
	const char *kind;
	double poll_interval;	  /* seconds */
	int64_t runs;		  /* mirrored, not gone upstream */
	double last_success;	  /* unix seconds, or < 0: never */
	double last_progress;	  /* the last page written, or < 0 */
	int last_pass_ok;	  /* 1, 0, or -1: no pass yet */
	double last_pass_seconds; /* or < 0 */
	int64_t passes[NPASS_OUTCOMES];
	int64_t requests[NREQ_OUTCOMES];
	int64_t http_429;
	int64_t retries;
	int64_t rejected;	  /* records set aside, since start */
	double backfill_ratio;	  /* 0..1; 1 when the backfill is done */
	int64_t upstream_total;	  /* the last total upstream said, or
					 * < 0 */
	double next_poll_seconds; /* or < 0: not scheduled */
	int clock_skew_set;
	double clock_skew;  /* seconds the host is ahead */
	int held;	    /* 1: walked here; 0: another walks it; -1:
			     * not claimed yet */
	const char *holder; /* who walks it ("HOST pid PID") */
};

/*
 * Write the metrics of srcs[0..n) to path atomically and durably, mode
 * 0644, through a temporary PATH.tmp.XXXXXX that is removed on any
 * failure.  Returns 0, or -1 with errno set (the caller says so in the
 * log, once per error).
 */
int metrics_write(const char *path, const struct metrics_source *srcs,
    size_t n);

#endif
