/*
 * store.h: the SQLite mirror.
 *
 * The store knows SQLite and the normalized record (source.h) and nothing of
 * HTTP or of either API's JSON.  Its unit of work is one page: every run of
 * the page, their pull requests and child rows, the rejected items, the
 * source's walk cursor and the pass counters commit in ONE transaction, or
 * nothing does.
 */
#ifndef AGENTSYNCD_STORE_H
#define AGENTSYNCD_STORE_H

#include <stdint.h>

#include "source.h"
#include "walk.h"

struct store;

#define STORE_READONLY	0x1	/* open read-only, never migrate */
#define STORE_NOMIGRATE	0x2	/* open read-write, do not migrate */

/*
 * Open (creating with mode 0640 if missing) the database at path, in WAL
 * mode with foreign keys on, and apply pending migrations unless flags say
 * otherwise.  A database newer than this binary is refused untouched.
 * Returns NULL after logging why.  Caller frees with store_close().
 */
struct store *store_open(const char *path, int flags)
	__attribute__((warn_unused_result));
void store_close(struct store *store);

/* Apply pending migrations; returns how many were applied, or -1. */
int store_migrate(struct store *store) __attribute__((warn_unused_result));
/* The schema version of the file, and the newest this binary knows. */
int store_version(struct store *store);
int store_known_version(void);

/* Counters of one pass; what store_page adds is written with the page. */
struct pass_counts {
	int64_t	 requests;
	int64_t	 pages;
	int64_t	 runs_seen;
	int64_t	 runs_new;
	int64_t	 runs_changed;
	int64_t	 runs_rejected;
	int64_t	 runs_deleted;
	int64_t	 http_429;
	int64_t	 retries;
};

/*
 * Load the state of source, creating its row if missing.  identity names
 * what the source points at (kind, base URL, org); when it differs from
 * the stored one the source starts over with a fresh backfill (rows kept).
 */
int store_state_load(struct store *store, const char *source,
    const char *kind, const char *identity, struct sync_state *state)
	__attribute__((warn_unused_result));

/* Start a pass: a new sync_runs row.  Sets *pass_id. */
int store_pass_begin(struct store *store, const char *source,
    enum walk_mode mode, const char *now, int64_t *pass_id)
	__attribute__((warn_unused_result));

/*
 * Write one page: upsert its runs (unchanged runs are not rewritten, unless
 * touch is set, then only last_seen_at), their pull requests and child
 * rows, its rejects, then the cursor in *state and the counters in *counts
 * (which the call updates), all in one transaction.  deleted_before, when
 * not NULL, ends a complete full walk that started then: the source's
 * runs not seen since get deleted_upstream_at = now, in the same
 * transaction (counted in runs_deleted).  On failure nothing of the page is
 * written, *counts is unchanged, and -1 is returned.
 */
int store_page(struct store *store, const char *source, const char *kind,
    const struct page *page, int touch, const char *now,
    const char *deleted_before, const struct sync_state *state,
    int64_t pass_id, struct pass_counts *counts)
	__attribute__((warn_unused_result));

/*
 * Save *state and counters without a page (walk end, errors).  When outcome
 * is not NULL the pass ends with it ("succeeded", "failed", "interrupted")
 * and error (NULL when none) is recorded in sync_runs and sync_state.
 */
int store_pass_update(struct store *store, const char *source,
    const struct sync_state *state, int64_t pass_id,
    const struct pass_counts *counts, const char *outcome, const char *error,
    const char *now) __attribute__((warn_unused_result));

/*
 * 1 when the last failed call failed because another process held the
 * database locked past the busy timeout (a reader's BEGIN IMMEDIATE, a
 * sqlite3 shell mid-write): worth waiting for, not an error of the data.
 */
int store_last_busy(const struct store *store);

/* Record when the next poll is due (for --status). */
int store_set_next_poll(struct store *store, const char *source,
    const char *when);

/*
 * The oldest created_at among the source's unfinished runs created at or
 * after since; out is "" when there is none.
 */
int store_refresh_floor(struct store *store, const char *source,
    const char *since, char *out) __attribute__((warn_unused_result));

/* A passive WAL checkpoint; truncating when truncate is set. */
void store_checkpoint(struct store *store, int truncate);
/* A truncating checkpoint only when the WAL file is over bytes. */
void store_checkpoint_over(struct store *store, long long bytes);

/* Print every source's state (agentsyncd --status) to stdout. */
int store_print_status(struct store *store);

#endif
