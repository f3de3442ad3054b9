/* SPDX-License-Identifier: ISC */
/*
 * sync_int.h: what the parts of the sync engine share, and nothing else
 * includes: a source, its lifecycle's states and the calls between the
 * parts.
 *
 *   sync.c        the lifecycle of a source (one state, a pass begun and
 *                 closed in one place), its timer, the writer's batch
 *                 timer, the metrics file and STATUS=
 *   sync_fetch.c  the requests of a pass (pipeline.c decides which) and
 *                 their answers (verdict.c says what each means)
 *   sync_page.c   a page at the cursor: the walk (walk.c), the writer,
 *                 the re-check of unfinished runs (recheck.c)
 *   sync_conf.c   the sources a configuration (or a reload) sets up
 *
 * Calls go from sync_conf.c and sync.c into sync_fetch.c (src_pump), from
 * sync_fetch.c into sync_page.c (src_handle_page), and from both back
 * into the lifecycle (src_retry, src_wait, src_pass_end, src_orphaned).
 */
#ifndef AGENTSYNCD_SYNC_INT_H
#define AGENTSYNCD_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "conf.h"
#include "http.h"
#include "limit.h"
#include "log.h"
#include "pipeline.h"
#include "recheck.h"
#include "source.h"
#include "stats.h"
#include "store.h"
#include "sync.h"
#include "verdict.h"
#include "walk.h"
#include "writer.h"

/* "TYPE BASE_URL org N" */
#define SRC_MAX_IDENTITY (SOURCE_MAX_BASE_URL + 64)
#define MAX_429_RETRIES	 30	/* per page, then the pass fails */
#define MAX_BUSY_WAITS	 60	/* database locked by another, per page */
#define MAX_RETRY_AFTER	 3600.0 /* seconds we accept from Retry-After */
/* Seconds between the host's clock and upstream's worth a warning. */
#define CLOCK_WARN_SKEW	     60.0
#define WAL_CHECKPOINT_BYTES (4LL * 1024 * 1024)
/* The largest first page kept parsed for the next poll (struct src). */
#define FIRST_KEEP_MAX (1024 * 1024)

/*
 * The lifecycle of a source: one state, and every transition.
 *
 *   state          what it does                  leaves for
 *   SRC_NEW        its cursor not read yet       IDLE (read; a pass that
 *                                                could not read it ends
 *                                                in NEW), STANDBY, FINISHED
 *   SRC_IDLE       between passes, timer armed   PASS (begun), ORPHANED,
 *                                                STANDBY, FINISHED (--once)
 *   SRC_STANDBY    another daemon sharing the    NEW (held again: its cursor
 *                  database walks it (store_     as the other left it),
 *                  claim()): asks again every    FINISHED (--once)
 *                  SRC_CLAIM_INTERVAL s
 *   SRC_PASS       walking: asks for pages       WAITING, RECHECK, IDLE,
 *                                                FINISHED, ORPHANED
 *   SRC_RECHECK    fetching the runs due for a   WAITING, IDLE, FINISHED,
 *                  re-check (pass.rc)            ORPHANED
 *   SRC_WAITING    in a pass, a retry's or a     PASS or RECHECK (its timer:
 *                  429's wait: asks for nothing  pass.rc has groups or not),
 *                                                IDLE, FINISHED, ORPHANED
 *   SRC_FINISHED   --once: its pass is over      (none)
 *   SRC_ORPHANED   renamed or forgotten in the   NEW (a reload that still
 *                  database: stopped             configures it)
 *
 * Before a pass the source is claimed (src_claim()); a pass begins in
 * src_pass_begin() (NEW or IDLE to PASS) and is closed in
 * one place, src_pass_close(), whatever ends it: done or failed
 * (src_pass_end()), stopped (src_stop()) or orphaned (src_orphaned()).
 */
/* Seconds between two claims of a source another daemon walks: with the
 * server's keepalives (store_pg), a take-over well within 30 s. */
#define SRC_CLAIM_INTERVAL 5.0

enum src_state {
	SRC_NEW,
	SRC_IDLE,
	SRC_STANDBY,
	SRC_PASS,
	SRC_RECHECK,
	SRC_WAITING,
	SRC_FINISHED,
	SRC_ORPHANED
};

/* The page at the cursor: what its failures have cost so far (reset when
 * a page is stored). */
struct attempt {
	int retries; /* failures of this page */
	int retries_429;
	int busy_waits; /* database locked by another */
};

/* The pass under way: begun by src_pass_begin() with one assignment. */
struct pass {
	struct recheck rc;  /* the requests of the re-check, if any */
	double t0;	    /* http_mono_now() at its start */
	int64_t off0;	    /* the walk's offset then (a resumed walk) */
	double last_report; /* http_mono_now() of the last progress line */
	struct walk walk;
	struct store_pass rec; /* its sync_runs row and counters */
	struct attempt at;
	int64_t stored; /* pages stored: src_pump() sees one was */
};

/* The first page of the last incremental pass, parsed.  A parse is a
 * function of the body's bytes and the limit asked for alone, so the next
 * poll that gets the same bytes for the same limit handles this page
 * instead of parsing them again: an idle poll's parse is three quarters of
 * its instructions.  Everything after the parse (the walk, the comparison
 * with the mirror, the re-checks) is done as for any page. */
struct first_page {
	int set;
	struct page page; /* page.text: the body's bytes, verbatim */
	size_t len;
	int limit;
};

/* One configured source (src_new()). */
struct src {
	struct sync *sync;
	const struct conf_source *conf;
	struct src *next;
	enum src_state state;
	/* Its pace: the limiter, the backoff and its one timer (the next
	 * poll, the limiter's next slot, a wait). */
	struct limit limit;
	struct backoff backoff;
	ev_timer timer;
	struct sync_state st;	  /* as last committed (and the clock skew) */
	struct recheck_seen seen; /* unfinished runs: when last fetched */
	struct pass pass;
	struct pipeline pipe; /* the pass's requests */
	/* Its part of the writer's open batch; past max_retries batches
	 * lost in a row (wpart.losses) the timer ends the pass. */
	struct writer_part wpart;
	struct first_page first;
	struct stats m; /* counters, status text */
};

struct sync {
	struct ev_loop *loop;
	struct store *store;   /* reads; every write goes through writer */
	struct writer *writer; /* &writer_mem */
	struct writer writer_mem;
	struct http *http;
	int once;
	int failed;
	struct src *srcs;
	const char *metrics_file; /* the configuration's, or NULL */
	int metrics_errno;	  /* the last write error said, or 0 */
	ev_timer batch_timer;	  /* the writer's: commits its batch */
};

/* sync.c: the lifecycle */
int src_in_pass(const struct src *s);
int src_may_ask(const struct src *s);
void src_arm(struct src *s, double delay);
void src_wait(struct src *s, double delay, int cancel);
void src_retry(struct src *s, const char *reason);
void src_pass_end(struct src *s, int ok, const char *error, double next_delay);
void src_orphaned(struct src *s);
void src_first_drop(struct src *s);
void src_identity(const struct conf_source *c, char *buf, size_t len);
struct src *src_new(struct sync *sync, const struct conf_source *c);
void src_stop(struct src *s);
void src_free(struct src *s);
void wall_ts(char *out, double offset);
void sync_was_busy(struct sync *sync, double t0);
enum write_rc sync_batch_commit(struct sync *sync, int last);
void sync_write_metrics(struct sync *sync);

/* sync_fetch.c: requests and answers */
void src_pump(struct src *s);
void slot_release(struct pipe_slot *sl);

/* sync_page.c: a page at the cursor */
void src_handle_page(struct src *s, const struct page *p, int64_t off);
void src_note_clock(struct src *s, const struct http_response *resp);

#endif
