/* SPDX-License-Identifier: ISC */
/*
 * sync.h: the per-source walk state machine.
 *
 * sync drives, for every configured source, an adapter (source.h), the
 * HTTP client (http.h), the limiter (limit.h) and the store (store.h) on
 * libev timers: poll, walk pages newest first, store each page with its
 * cursor, stop by the sync rules of DESIGN.md, schedule the next poll.
 */
#ifndef AGENTSYNCD_SYNC_H
#define AGENTSYNCD_SYNC_H

#include <stddef.h>

struct ev_loop;
struct conf;
struct http;
struct store;
struct sync;

/*
 * once: do one complete pass per source (finishing any backfill), then
 * break the loop.  Returns NULL after logging why.  Free with sync_free().
 */
struct sync *sync_new(struct ev_loop *loop, struct store *store,
    struct http *http, int once) __attribute__((warn_unused_result));

/*
 * Start syncing the sources of conf, or, on a reload, switch to them:
 * unchanged sources go on untouched, changed or removed ones stop (their
 * progress is in the database), new ones start.  conf must outlive the
 * sync or the next successful sync_configure() call.  Returns 0, or -1
 * (out of memory) having changed nothing: the sources go on with the
 * configuration they had, which the caller keeps.
 */
int sync_configure(struct sync *sync, const struct conf *conf)
    __attribute__((warn_unused_result));

/* Stop every source: abort requests in flight, record passes as
 * interrupted.  Walk cursors stay, so the next start resumes. */
void sync_stop(struct sync *sync);
void sync_free(struct sync *sync);

/* In once mode: 1 when some source's pass failed. */
int sync_failed(const struct sync *sync);

/* A one-line summary per source, for sd_notify STATUS=. */
void sync_status(const struct sync *sync, char *buf, size_t len);

/* The daemon's writer (writer.h): every write of the store goes through
 * it, so that the batch it owns is committed first. */
struct writer *sync_writer(struct sync *sync);

#endif
