/* SPDX-License-Identifier: ISC */
/*
 * store_engine.h: how a storage engine plugs in behind store.h.
 *
 * An engine is one struct store_engine: a name, a test of the `database`
 * string, and one function for each call of store.h.  store.c keeps the
 * table of engines, gives store_open() to the first that claims the
 * string, and sends every other call to the engine of the struct store it
 * is given; sync, the writer, status and metrics never see which engine.
 * An engine's own handle begins with a struct store (below) and its
 * functions get back to it with a cast from that first member.
 *
 * The rules every engine shares (the schema-version judgement, what an
 * upsert does with a run the mirror holds, the problem line of a page,
 * the walk mode's column) are written once, in store_rules.c.
 *
 * Only store.c and the engines' files include this header.
 */
#ifndef AGENTSYNCD_STORE_ENGINE_H
#define AGENTSYNCD_STORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The first member of every engine's handle. */
struct store {
	const struct store_engine *engine;
};

/* Each function does what its store_* namesake in store.h says. */
struct store_engine {
	const char *name;
	/* 1 when database (the `database` setting) names one of this
	 * engine's databases */
	int (*claims)(const char *database);
	/* the newest schema version this engine's migrations reach */
	int (*known_version)(void);
	struct store *(*open)(const char *database, int flags);
	void (*close)(struct store *store);
	int (*migrate)(struct store *store);
	int (*version)(struct store *store);
	int (*schema_current)(struct store *store, char *why, size_t len);
	int (*state_load)(struct store *store, const char *source,
	    const char *kind, const char *identity, struct sync_state *state);
	int (*pass_begin)(struct store *store, struct store_pass *pass,
	    enum walk_mode mode, const char *now);
	int (*page)(struct store *store, struct store_pass *pass,
	    const struct page *page, const struct sync_state *next,
	    unsigned flags, const char *now);
	int (*batch_begin)(struct store *store);
	int (*batch_commit)(struct store *store);
	int (*pass_end)(struct store *store, const struct store_pass *pass,
	    const struct sync_state *state, enum pass_outcome outcome,
	    const char *error, const char *now);
	int (*set_next_poll)(struct store *store, const char *source,
	    const char *when);
	int64_t (*runs_since)(struct store *store, const char *source,
	    const char *since, int unfinished, struct store_run_key **out);
	int (*has_run)(struct store *store, const char *source,
	    const char *external_id);
	int64_t (*live_runs)(struct store *store, const char *source);
	int64_t (*prune_history)(struct store *store, const char *cutoff,
	    int batch, int max_batches);
	void (*checkpoint)(struct store *store, int truncate);
	void (*checkpoint_over)(struct store *store, long long bytes);
	int (*sources_sync)(struct store *store,
	    const struct store_source *srcs, size_t n, const char *now,
	    store_retired_fn *fn, void *arg);
	int (*source_present)(struct store *store, const char *source);
	/* NULL: the engine holds every source (store_claim() is 1) */
	int (*claim)(struct store *store, const char *source, char *holder,
	    size_t len);
	void (*release)(struct store *store, const char *source);
	int (*rename_source)(struct store *store, const char *old,
	    const char *new_name, char *why, size_t whylen);
	int (*forget_source)(struct store *store, const char *source, int batch,
	    const char *now, int64_t *deleted, char *why, size_t whylen);
	int (*status_each)(struct store *store, store_status_fn *fn, void *arg);
};

/* The engines (store_sqlite.c, store_pg.c), each one file's. */
extern const struct store_engine store_sqlite_engine;
extern const struct store_engine store_pg_engine;

/* What store_options() set (store.c). */
const char *store_option_schema(void);
const char *store_option_password(void);

/* store_rules.c: what every engine decides alike */

/* When a schema version is judged: what passes and how a refusal reads. */
enum schema_moment {
	SCHEMA_BEFORE_WRITE, /* an older file passes: it will be migrated */
	SCHEMA_MIGRATED,     /* after the migrations ran */
	SCHEMA_IN_USE,	     /* a command that uses the file as it is */
};

/*
 * The one judgement of database path's schema version v against known,
 * the version this binary's migrations reach: 1 when it passes at moment
 * m, else 0 with the refusal in why (at most len bytes).
 */
int schema_judge(const char *path, int v, int known, enum schema_moment m,
    char *why, size_t len);

/* The walk mode a stored name (walk_mode_name()) stands for; NULL or an
 * unknown name: WALK_NONE. */
enum walk_mode store_walk_mode_parse(const char *s);

/* What an upsert does with one run of a page. */
enum store_run_write {
	STORE_RUN_SKIP,	  /* held byte for byte: nothing to write */
	STORE_RUN_TOUCH,  /* held byte for byte: only the sighting */
	STORE_RUN_UPDATE, /* held, changed: rewrite it and its children */
	STORE_RUN_INSERT, /* new to the mirror */
};

/*
 * found: the mirror holds the run; same: its raw JSON is byte for byte
 * the page's; gone: it is marked deleted upstream; touch: the walk records
 * every sighting (STORE_SEEN).  Counts in *c what the write will be.
 */
enum store_run_write store_run_decide(int found, int same, int gone, int touch,
    struct pass_counts *c);

/* After a page is written: one warning naming first, the first run the
 * page stored with a field left out, and how many (n) it stored so. */
void store_log_page_problems(const char *source, const struct run *first,
    int64_t n);

#endif
