/* SPDX-License-Identifier: ISC */
/*
 * store.h: the mirror's contract.  Each call says what it does to the
 * database in terms of the public schema (doc/agentsyncd-schema.7: runs,
 * their child rows, pull_requests, rejected_records, sync_state,
 * sync_runs, sources); an engine implements it (store_engine.h: SQLite's
 * is store_sqlite*.c), and nothing here names an engine's type.
 *
 * The store knows the normalized record (source.h) and nothing of HTTP or
 * of either API's JSON.  Its unit of work is one page: every run of the
 * page, their pull requests and child rows, the rejected items, the
 * source's walk cursor and the pass counters commit in ONE transaction,
 * or nothing does.  A backfill commits several pages a transaction (a
 * batch), each page still whole with its cursor.  The writer (writer.h)
 * is the daemon's only caller of the writes.
 */
#ifndef AGENTSYNCD_STORE_H
#define AGENTSYNCD_STORE_H

#include <stdint.h>

#include "source.h"
#include "verdict.h" /* enum pass_outcome */
#include "walk.h"

struct store;

#define STORE_READONLY	0x1 /* open read-only, never migrate */
#define STORE_NOMIGRATE 0x2 /* open read-write, do not migrate */

/*
 * Open the database that path (the `database` setting) names, with the
 * engine that claims it (SQLite for a file's path: created with mode 0640
 * if missing, in WAL mode with foreign keys on), and apply pending
 * migrations unless flags say otherwise.  A database newer than this
 * binary, or not a mirror of agentsyncd's, is refused untouched.
 * Returns NULL after logging why.  Caller frees with store_close().
 */
struct store *store_open(const char *path, int flags)
    __attribute__((warn_unused_result));

/*
 * What an engine on a database server needs beside the `database`
 * string, for the store_open() calls that follow: schema (the
 * database_schema setting; NULL: STORE_DEFAULT_SCHEMA) and password (read
 * from database_password_file or database_password_credential; NULL:
 * libpq's own, its passfile).  Copied (the password is wiped when
 * replaced).  0, or -1 when out of memory.
 */
#define STORE_DEFAULT_SCHEMA "agentsyncd"
int store_options(const char *schema, const char *password)
    __attribute__((warn_unused_result));

/* 1 when database names a database on a server (postgresql://...,
 * postgres://...), not a file: nothing to find on this disk. */
int store_is_server(const char *database);
void store_close(struct store *store);

/* Apply pending migrations; returns how many were applied, or -1. */
int store_migrate(struct store *store) __attribute__((warn_unused_result));
/* The schema version of the file, and the newest this binary knows. */
int store_version(struct store *store);
int store_known_version(void);
/*
 * Whether the file is at the schema this binary knows: 1 if so; 0 if not,
 * with why (at most len bytes; why may be NULL when len is 0) saying so
 * ("database 'PATH' is at schema version 3, this agentsyncd knows 9 (run
 * agentsyncd --migrate)"); -1 when the version cannot be read (logged).
 */
int store_schema_current(struct store *store, char *why, size_t len);

/* Counters of one pass; what store_page adds is written with the page. */
struct pass_counts {
	int64_t requests;
	int64_t pages;
	int64_t runs_seen;
	int64_t runs_new;
	int64_t runs_changed;
	int64_t runs_rejected;
	int64_t runs_deleted;
	int64_t http_429;
	int64_t retries;
	int64_t runs_partial;	/* stored with a field left out */
	int64_t upstream_total; /* on the pass's last page; -1: none yet */
};

/*
 * Load the state of source, creating its row if missing.  identity names
 * what the source points at (kind, base URL, org); when it differs from
 * the stored one the source starts over with a fresh backfill (rows kept).
 */
int store_state_load(struct store *store, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
    __attribute__((warn_unused_result));

/* One pass of one source as the store records it (a sync_runs row). */
struct store_pass {
	const char *source;	   /* the source's name: set by the caller */
	const char *kind;	   /* its adapter's name: set by the caller */
	int64_t id;		   /* the sync_runs row: set by begin */
	enum walk_mode mode;	   /* set by begin */
	struct pass_counts counts; /* zeroed by begin, added to by pages */
};

/* Start a pass: close any left 'running' by a crash, add a sync_runs row
 * in mode at now, zero the counters. */
int store_pass_begin(struct store *store, struct store_pass *pass,
    enum walk_mode mode, const char *now) __attribute__((warn_unused_result));

/* What store_page() also does (flags). */
#define STORE_SEEN \
	0x1 /* a full walk: an unchanged run still gets
				 * last_seen_at = now (one small write) */
#define STORE_MARK_GONE \
	0x2 /* the walk is complete and verified: the
				 * source's runs it did not see (last_seen_walk
				 * below next->walk_generation) get
				 * deleted_upstream_at = now */

/*
 * Write one page in one transaction (or one savepoint of an open batch,
 * below): upsert its runs (unchanged runs are
 * not rewritten; a run written gets last_seen_at = now and last_seen_walk
 * = next->walk_generation), their pull requests and child rows, its
 * rejects, the flags' marks, the cursor *next and the pass's counters.  On failure
 * nothing of the page is written, pass->counts is unchanged, and a
 * negative enum store_rc says why.
 */
int store_page(struct store *store, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now) __attribute__((warn_unused_result));

/*
 * What a write that failed says.  store_page(), store_pass_end() and
 * store_batch_begin() return one of these; every other call 0 or -1
 * (STORE_FAILED).
 */
enum store_rc {
	STORE_OK = 0,
	STORE_FAILED = -1, /* logged */
	STORE_BUSY = -2,   /* another process held the database locked past
			    * the busy timeout (a reader's BEGIN IMMEDIATE,
			    * a sqlite3 shell mid-write): worth waiting for */
	STORE_GONE = -3,   /* the source's sync state is gone: renamed or
			    * forgotten by another process */
	STORE_LOST = -4,   /* the open batch was rolled back whole with the
			    * page (a full disk, an I/O error) */
	STORE_UNHELD = -5, /* this process no longer holds the source
			    * (store_claim()): the claim went with a lost
			    * connection, and another daemon may walk it */
	STORE_AGAIN = -6,  /* the open batch was rolled back whole, not for a
			    * fault: a page sent ahead of its answer was not
			    * what the database held (PostgreSQL's guess at a
			    * walk's page, store_pg_page.c); write it again */
};

/*
 * Batches (backfills and full resyncs): store_batch_begin() opens one write
 * transaction; each store_page() then writes its page in a savepoint (a
 * failed page leaves the earlier ones pending) and the batch commits with
 * store_batch_commit().  The caller commits an open batch before any other
 * write (writer.c does; a write that finds one open commits it itself).  A
 * failed commit loses the batch whole: -1, or STORE_AGAIN.
 */
int store_batch_begin(struct store *store) __attribute__((warn_unused_result));
int store_batch_commit(struct store *store);

/*
 * End a pass with its outcome: save *state and the counters, and error
 * (NULL when none) in sync_runs and as the source's last error.  An idle
 * pass (incremental, succeeded, nothing new, changed, gone or rejected)
 * right after another is folded into that one's row (sync_runs.passes).
 * Returns 0 or a negative enum store_rc.
 */
int store_pass_end(struct store *store, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now) __attribute__((warn_unused_result));

/* Record when the next poll is due (for --status). */
int store_set_next_poll(struct store *store, const char *source,
    const char *when);

/* A run as the listing by creation orders it. */
struct store_run_key {
	char external_id[SOURCE_MAX_ID + 1];
	char created_at[TS_LEN];
};

/*
 * The source's runs not gone upstream created at or after since, in the
 * listing's order (newest created first, ties: the higher id first); with
 * unfinished set, only those not in a terminal state.  Returns how many,
 * with *out a malloc'd array (the caller frees), or -1.
 */
int64_t store_runs_since(struct store *store, const char *source,
    const char *since, int unfinished, struct store_run_key **out)
    __attribute__((warn_unused_result));

/*
 * 1 when source holds the run external_id and it is not marked gone
 * upstream, 0 when not, -1 on error (logged).  One indexed lookup: what
 * an incremental walk's stop rule asks before the page is written.
 */
int store_has_run(struct store *store, const char *source,
    const char *external_id) __attribute__((warn_unused_result));

/* Runs of source not gone upstream (for the metrics), or -1. */
int64_t store_live_runs(struct store *store, const char *source);

/* 1 when the pass is incremental and found nothing new, changed, gone or
 * rejected: an idle poll (logged at debug, folded in sync_runs). */
int store_pass_idle(const struct store_pass *pass);

/*
 * Delete sync_runs rows that finished before cutoff, at most batch a
 * transaction, at most max_batches transactions a call (the caller calls
 * again later: never a long stall).  Returns rows deleted, or -1.
 */
int64_t store_prune_history(struct store *store, const char *cutoff, int batch,
    int max_batches) __attribute__((warn_unused_result));

/* A passive WAL checkpoint; truncating when truncate is set. */
void store_checkpoint(struct store *store, int truncate);
/* A truncating checkpoint only when the WAL file is over bytes. */
void store_checkpoint_over(struct store *store, long long bytes);

/* A configured source, as the sources table records it. */
struct store_source {
	const char *name;
	const char *kind;
	const char *identity; /* kind, base URL and org: the upstream */
	const char *base_url;
	int64_t org_id; /* -1 when the adapter has none */
};

/* A source in the database that the configuration does not hold. */
struct store_retired {
	const char *name;
	const char *kind;
	const char *identity;
	const char *retired_at;
	int64_t runs;
	int forgetting; /* an interrupted --forget-source */
	/* the configured source reading the same upstream, or NULL */
	const char *same_upstream;
};

typedef void store_retired_fn(const struct store_retired *r, void *arg);

/*
 * Keep the sources table in step with the configuration (at start and on
 * every reload), in one transaction: srcs[0..n) are configured (added or
 * brought back, configured_since = now), every other configured row is
 * retired (configured = 0, retired_at = now).  Then fn is called for each
 * source not configured.  Returns 0, or -1 after logging why.
 */
int store_sources_sync(struct store *store, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg)
    __attribute__((warn_unused_result));

/* 1 when source still has its sync state (it was not renamed or forgotten
 * under the running daemon), 0 when not, -1 on error. */
int store_source_present(struct store *store, const char *source)
    __attribute__((warn_unused_result));

/* Bytes of how a process names itself to the others: "HOST pid PID". */
#define STORE_HOLDER_LEN 96

/* This process's name for the others (store_claim()'s holder). */
void store_holder_self(char *buf, size_t len);

/*
 * Hold source for this process, so that of two daemons sharing one
 * database exactly one walks it at a time (upstream's rate limit is per
 * token).  Returns 1 when this process holds it (now or already), 0 when
 * another process does (then holder, when not NULL, gets how it names
 * itself: "HOST pid PID"), -1 on a failure of the database.  A source
 * stays held until store_release() or the end of this process's
 * connection.  An engine whose database one process writes at a time
 * (SQLite: the file's lock) holds every source: 1.
 */
int store_claim(struct store *store, const char *source, char *holder,
    size_t len) __attribute__((warn_unused_result));

/* Let another process take source (a reload that drops it). */
void store_release(struct store *store, const char *source);

/*
 * Rename source old to new in one transaction: runs, pull requests, pass
 * history, rejected records, sync state and the sources row.  Refuses (-1,
 * reason in why) when old is unknown or new already has any row.
 */
int store_rename_source(struct store *store, const char *old,
    const char *new_name, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/*
 * Delete every row of source in transactions of at most batch runs (or
 * batch rows of the other tables): first the source is marked
 * forgetting_since and its sync state deleted, last its sources row.  An
 * interrupted call is finished by calling it again.  Refuses (-1, reason
 * in why) when the source is unknown; the caller has checked that the
 * configuration does not name it (a daemon still syncing it from an older
 * file finds its sync state gone and stops it).  *deleted counts the runs
 * deleted.
 */
int store_forget_source(struct store *store, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/* Each source's state, for agentsyncd --status (printed by main.c). */
struct source_status {
	const char *source;
	const char *kind;
	int backfill_done;
	enum walk_mode walk_mode; /* the walk under way, or WALK_NONE */
	int64_t walk_offset;
	int64_t walk_total;	/* -1 before a page answered */
	const char *high_water; /* NULL: none yet (likewise below) */
	const char *last_success_at;
	const char *last_error;
	const char *last_error_at;
	const char *next_poll_at;
	int64_t runs, runs_gone, rejected;
	struct opt_num clock_skew; /* seconds the host is ahead of upstream */
	int configured;		   /* 0: retired (not in the configuration) */
	int has_state;		   /* a sync_state row: it has polled */
	const char *last_outcome;  /* of the last finished pass, or NULL */
	const char *last_progress_at; /* the last page committed */
	const char *retired_at;
	const char *forgetting_since; /* an interrupted --forget-source */
	const char *holder; /* the process that walks it ("HOST pid PID"),
			     * NULL when the engine does not say (SQLite:
			     * the one daemon on the file) or none does */
};

typedef void store_status_fn(const struct source_status *ss, void *arg);

/*
 * Call fn for each source in the database, by name; the strings are valid
 * during the call only.  Returns how many, or -1 after logging why.
 */
int store_status_each(struct store *store, store_status_fn *fn, void *arg)
    __attribute__((warn_unused_result));

#endif
