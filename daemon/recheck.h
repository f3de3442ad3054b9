/* SPDX-License-Identifier: ISC */
/*
 * recheck.h: the re-check schedule of a listing that cannot be ordered by
 * update time (Codegen), as pure functions: which unfinished runs are due,
 * which targeted requests fetch them, and what a targeted page means.
 *
 * No libev, curl or SQLite here: sync.c reads the mirror, fetches and
 * stores; see the top of recheck.c for the rules.
 */
#ifndef AGENTSYNCD_RECHECK_H
#define AGENTSYNCD_RECHECK_H

#include <stddef.h>
#include <stdint.h>

#include "source.h"
#include "store.h"

/* A run of age A is re-checked every A / RECHECK_AGE_DIVISOR, at least
 * every poll and at most every refresh_max_interval. */
#define RECHECK_AGE_DIVISOR 10.0
/* Drift steps one targeted request may take before its runs are left to
 * the next poll (and, if gone, to the next full resync). */
#define RECHECK_MAX_STEPS 4
/* Items a targeted request asks for past its last due run: runs created
 * since the head request push every due run that far without a step. */
#define RECHECK_SLACK 4

/* Seconds between two re-checks of an unfinished run of age seconds. */
double recheck_interval(double age, double poll_interval, double max_interval);

/* When each tracked unfinished run was last fetched (monotonic seconds). */
struct recheck_seen {
	struct recheck_seen_entry *v; /* sorted by id */
	size_t n, cap;
};

/* Record that run id was fetched at t; 0, or -1 (out of memory). */
int recheck_seen_note(struct recheck_seen *seen, const char *id, double t);
/* When run id was last fetched, or -1 when not since the daemon started. */
double recheck_seen_get(const struct recheck_seen *seen, const char *id);
/* Forget every run not among keys[0..n). */
void recheck_seen_keep(struct recheck_seen *seen,
    const struct store_run_key *keys, size_t n);
void recheck_seen_free(struct recheck_seen *seen);

struct recheck_run {
	char id[SOURCE_MAX_ID + 1];
	char created_at[TS_LEN];
	int64_t pos;  /* expected offset in the listing */
	int found;    /* on a page of this pass */
	int given_up; /* not where it should be: left */
};

struct recheck_group {
	int64_t start;	    /* the request's offset */
	int limit;	    /* and its items */
	size_t first, last; /* due runs it should hold (inclusive) */
	int steps;	    /* drift steps taken */
	int shifted;	    /* the drift found so far applied to start */
};

/* The targeted requests of one pass. */
struct recheck {
	struct recheck_run *due; /* by position */
	size_t ndue;
	struct recheck_group *groups;
	size_t ngroups, cur;
	size_t not_found; /* due runs given up */
	int64_t steps;	  /* drift steps in all */
	int page_size;	  /* a drift step asks for a whole page */
	int64_t shift;	  /* where the last due run found was, less where
			   * the mirror had it: later requests start there */
};

/*
 * Plan the requests for the due runs: listing[0..n) is the mirror's live
 * runs newest first from the oldest due one on (so a run's index is its
 * expected offset), is_due[i] says which are due.  Due runs closer than a
 * page share one request, which starts one item before the first (the
 * walk's overlap), asks for RECHECK_SLACK items past the last and holds at
 * most page_size items.  Returns the number
 * of requests (0: nothing due), or -1 (out of memory).
 */
int recheck_plan(struct recheck *rc, const struct store_run_key *listing,
    const unsigned char *is_due, size_t n, int page_size);

/* Mark the due runs page p (asked for at offset off) holds as found. */
void recheck_found(struct recheck *rc, const struct page *p, int64_t off);

/*
 * After the page of the current request is stored and recheck_found() ran:
 * 1 when another request follows (*off, *limit), 0 when the re-check is
 * done.  A due run missing from its page moves the request: forward when
 * the page holds only newer runs (runs created since shifted it), back when
 * only older ones (runs deleted); missing inside the page's span, it is
 * gone or moved upstream and is given up (never marked deleted here).  An
 * empty page past the listing's end steps back too.  The next request
 * starts where the drift found so far says.
 */
int recheck_next(struct recheck *rc, const struct page *p, int64_t *off,
    int *limit);

void recheck_free(struct recheck *rc);

#endif
