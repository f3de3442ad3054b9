/* SPDX-License-Identifier: ISC */
/*
 * stats.h: what one source says about itself: the counters of the metrics
 * file, the text of sd_notify's STATUS= and --status, and the log lines of
 * its passes (done, recovered, progress, the clock's skew).
 *
 * sync.c owns one struct stats a source and tells it what happened; it
 * holds no libev, libcurl or SQLite type.
 */
#ifndef AGENTSYNCD_STATS_H
#define AGENTSYNCD_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "metrics.h"
#include "source.h"
#include "store.h"
#include "walk.h"

/* A backfill or full resync says how far it is this often (seconds). */
#define STATS_PROGRESS_INTERVAL 30.0

/* Since the source was started. */
struct stats {
	int64_t passes[NPASS_OUTCOMES];
	int64_t requests[NREQ_OUTCOMES];
	int64_t retries, rejected; /* of the passes ended */
	int last_pass_ok;	   /* -1: none yet */
	double last_pass_seconds;  /* -1: none yet */
	int64_t upstream_total;	   /* -1: none yet */
	double last_page;	   /* wall clock of the last page */
	double next_poll;	   /* wall clock of the next, or 0 */
	int failing;		   /* passes failed in a row */
	double warned_skew;	   /* the clock skew last warned about */
	char state_text[160];	   /* between passes */
	/* Who walks the source (store_claim()): this process, or when
	 * standby is set another; "" before the first claim. */
	char holder[STORE_HOLDER_LEN];
	int standby;
};

/* How a pass ended, for stats_pass_end(). */
struct stats_pass {
	const struct store_pass *rec; /* its counters */
	enum walk_mode mode;
	int was_active; /* it had begun (its counters are its own) */
	enum pass_outcome outcome;
	const char *error; /* when it failed: redacted, or NULL */
	const char *now;   /* TS_LEN: the wall clock */
	double seconds;	   /* it took */
};

void stats_init(struct stats *m);
/* An answer's final outcome (verdict.h). */
void stats_request(struct stats *m, enum req_outcome outcome);
/* A page was written; upstream said total runs. */
void stats_page(struct stats *m, int64_t total, double now);
/* Upstream's Date said this host is skew seconds ahead: warned once, and
 * again when it moves by more than warn. */
void stats_skew(struct stats *m, const char *name, double skew, double warn);
/* Log the end of a pass (done, recovered) and count it; an interrupted
 * pass is counted, if it had begun, and that is all. */
void stats_pass_end(struct stats *m, const char *name,
    const struct stats_pass *p);
void stats_orphaned(struct stats *m);
/* This process holds the source; another (holder) does. */
void stats_held(struct stats *m);
void stats_standby(struct stats *m, const char *holder);
/* The progress line of a backfill or full resync begun at t0 from offset
 * off0 (monotonic clock). */
void stats_progress(const char *name, enum walk_mode mode,
    const struct sync_state *st, int64_t off0, double t0, double now);
/* One source's part of STATUS=, after sep, at buf (len bytes); mode is
 * the pass's, or -1 between passes.  Returns snprintf()'s. */
int stats_status(const struct stats *m, char *buf, size_t len, const char *sep,
    const char *name, int mode, const struct sync_state *st);
/* One source's metrics; open: the counters of the pass under way, or
 * NULL; runs: mirrored; now: the wall clock. */
void stats_metrics(const struct stats *m, struct metrics_source *out,
    const struct conf_source *c, const struct sync_state *st,
    const struct pass_counts *open, int64_t runs, double now);

#endif
