/* SPDX-License-Identifier: ISC */
/*
 * writer.h: the daemon's one way into the store's writes, and the one
 * owner of the batch.
 *
 * A backfill or full resync writes its pages several to a transaction (a
 * batch).  Every other write commits the open batch first, here, so the
 * store never has to call up for it.  A batch that cannot be committed is
 * lost whole: each source that had pages in it is put back at its state
 * before its first page there (its snapshot), and told through its lost
 * callback, which is called only from writer_commit() and the calls that
 * commit first (never from within the store).
 *
 * No libev, curl or SQLite here: the batch's timer is the caller's
 * (struct writer_timer), the clock is passed in, and the store is the
 * contract of store.h (tests link a fake one).
 */
#ifndef AGENTSYNCD_WRITER_H
#define AGENTSYNCD_WRITER_H

#include "store.h"
#include "walk.h"

/* A batch holds at most this long and this many pages: what a kill can
 * cost. */
#define WRITER_BATCH_SECONDS   1.0
#define WRITER_BATCH_MAX_PAGES 64

/* What a write came to. */
enum write_rc {
	WRITE_OK,
	WRITE_ERROR,  /* nothing written; logged */
	WRITE_BUSY,   /* another process held the database locked */
	WRITE_GONE,   /* the source's sync state is gone (renamed,
		      * forgotten by another process) */
	WRITE_LOST,   /* the open batch was lost: every source in it is back
		      * at its snapshot and was told (lost callback) */
	WRITE_UNHELD, /* the source is no longer this daemon's to walk
		       * (STORE_UNHELD): claim it again */
};

/*
 * One source as the writer knows it: where its state lives (what a lost
 * batch puts back) and what it was before its first page in the open
 * batch.  Set up with writer_part_init(); the source owns the memory.
 */
struct writer_part {
	struct writer_part *next; /* in the open batch */
	int in_batch;
	struct sync_state *st;
	struct walk *walk;
	struct pass_counts *counts;
	struct sync_state st0;
	struct walk walk0;
	struct pass_counts counts0;
	int64_t lost_pages; /* pages the last lost batch held */
	int losses;	    /* batches lost in a row (a commit resets) */
	int again;	    /* the last was lost for no fault (STORE_AGAIN):
			     * not counted in losses, written again at once */
	void (*lost)(void *arg);
	void *arg;
};

/* The caller's timer: arm(arg, seconds) makes it call writer_commit()
 * after that long; disarm(arg) stops it. */
struct writer_timer {
	void (*arm)(void *arg, double seconds);
	void (*disarm)(void *arg);
	void *arg;
};

struct writer {
	struct store *store;
	struct writer_timer timer;
	int open;		   /* a batch is open */
	double t0;		   /* the clock at its start */
	int pages;		   /* pages written in it */
	struct writer_part *parts; /* sources with pages in it */
};

/* A writer of store, with no timer until writer_set_timer(). */
void writer_init(struct writer *w, struct store *store);
void writer_set_timer(struct writer *w, const struct writer_timer *timer);

/*
 * Where a source's state lives: *st (its cursor), *walk (the pass's walk)
 * and *counts (the pass's counters) are what its pages in a batch change
 * and what a lost batch puts back (all but the counts of what was asked of
 * upstream: requests, http_429, retries).  lost(arg) is called after that.
 */
void writer_part_init(struct writer_part *part, struct sync_state *st,
    struct walk *walk, struct pass_counts *counts, void (*lost)(void *),
    void *arg);
/* The source leaves the batch without a commit (its pages there were
 * rolled back with its rows, or it is being freed). */
void writer_part_leave(struct writer *w, struct writer_part *part);

/*
 * Before a page of part's pass is decided and written: batched (a
 * backfill or full resync page) joins the open batch (opened at clock
 * now_mono if none is), taking part's snapshot if it has no page there
 * yet; else the open batch is committed, so that a page is never written
 * in a batch it did not join.  WRITE_OK, or why the batch cannot open.
 */
enum write_rc writer_begin_page(struct writer *w, struct writer_part *part,
    int batched, double now_mono) __attribute__((warn_unused_result));
/*
 * Write page p of the pass (store_page()), in the open batch when
 * batched.  WRITE_LOST: the page took the batch with it (every source in
 * it is back at its snapshot and was told).
 */
enum write_rc writer_page(struct writer *w, int batched,
    struct store_pass *pass, const struct page *p,
    const struct sync_state *next, unsigned flags, const char *now)
    __attribute__((warn_unused_result));
/*
 * After a batched page: commit the batch when it is full (pages or
 * seconds) or when last (the walk will ask for no page after it).
 * WRITE_OK, or WRITE_LOST.
 */
enum write_rc writer_settle(struct writer *w, int last, double now_mono);
/* Commit the open batch, if any: WRITE_OK, or WRITE_LOST. */
enum write_rc writer_commit(struct writer *w);

/* The store's other writes (store.h), each after writer_commit(). */
int writer_claim(struct writer *w, const char *source, char *holder, size_t len)
    __attribute__((warn_unused_result));
void writer_release(struct writer *w, const char *source);
int writer_state_load(struct writer *w, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
    __attribute__((warn_unused_result));
int writer_pass_begin(struct writer *w, struct store_pass *pass,
    enum walk_mode mode, const char *now) __attribute__((warn_unused_result));
enum write_rc writer_pass_end(struct writer *w, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now) __attribute__((warn_unused_result));
int writer_next_poll(struct writer *w, const char *source, const char *when);
int64_t writer_prune_history(struct writer *w, const char *cutoff, int batch,
    int max_batches) __attribute__((warn_unused_result));
void writer_checkpoint(struct writer *w, int truncate);
void writer_checkpoint_over(struct writer *w, long long bytes);
int writer_sources_sync(struct writer *w, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg)
    __attribute__((warn_unused_result));
int writer_rename_source(struct writer *w, const char *old,
    const char *new_name, char *why, size_t whylen)
    __attribute__((warn_unused_result));
int writer_forget_source(struct writer *w, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
    __attribute__((warn_unused_result));
int writer_migrate(struct writer *w) __attribute__((warn_unused_result));

#endif
