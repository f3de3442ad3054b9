/* SPDX-License-Identifier: ISC */
/*
 * store.c: the store's contract (store.h) sent to the engine that holds
 * the database.
 *
 * store_open() gives the `database` string to the first engine of
 * engines[] that claims it; every other call goes to the engine of the
 * struct store it is given (struct store_engine, store_engine.h).  This
 * file holds no SQL and no engine's type: SQLite's engine is
 * store_sqlite*.c, and what every engine decides alike is store_rules.c.
 * A second engine is one more entry here, claiming its own strings
 * (`postgresql://...`) ahead of SQLite, which takes any path.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "store_engine.h"

/* In the order they are asked; the last claims any string. */
static const struct store_engine *const engines[] = {
	&store_pg_engine,
	&store_sqlite_engine,
};

/* store_options()'s copies. */
static char *opt_schema, *opt_password;

static void
forget_password(void)
{
	if (opt_password != NULL) {
		explicit_bzero(opt_password, strlen(opt_password));
		free(opt_password);
		opt_password = NULL;
	}
}

int
store_options(const char *schema, const char *password)
{
	free(opt_schema);
	opt_schema = NULL;
	forget_password();
	if (schema != NULL && (opt_schema = strdup(schema)) == NULL)
		return -1;
	if (password != NULL && (opt_password = strdup(password)) == NULL)
		return -1;
	return 0;
}

const char *
store_option_schema(void)
{
	return opt_schema != NULL ? opt_schema : STORE_DEFAULT_SCHEMA;
}

const char *
store_option_password(void)
{
	return opt_password;
}

int
store_is_server(const char *database)
{
	return database != NULL && store_pg_engine.claims(database);
}

#define NENGINES (sizeof(engines) / sizeof(engines[0]))

struct store *
store_open(const char *path, int flags)
{
	size_t i;

	for (i = 0; i + 1 < NENGINES && !engines[i]->claims(path); i++)
		;
	return engines[i]->open(path, flags);
}

void
store_close(struct store *store)
{
	if (store != NULL)
		store->engine->close(store);
}

int
store_migrate(struct store *store)
{
	return store->engine->migrate(store);
}

int
store_version(struct store *store)
{
	return store->engine->version(store);
}

/* Every engine's migrations are numbered alike (the schema is one):
 * SQLite's, the engine that is always there, say how far they go. */
int
store_known_version(void)
{
	return store_sqlite_engine.known_version();
}

int
store_schema_current(struct store *store, char *why, size_t len)
{
	return store->engine->schema_current(store, why, len);
}

int
store_state_load(struct store *store, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	return store->engine->state_load(store, source, kind, identity, state);
}

int
store_pass_begin(struct store *store, struct store_pass *pass,
    enum walk_mode mode, const char *now)
{
	return store->engine->pass_begin(store, pass, mode, now);
}

int
store_page(struct store *store, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now)
{
	return store->engine->page(store, pass, page, next, flags, now);
}

int
store_batch_begin(struct store *store)
{
	return store->engine->batch_begin(store);
}

int
store_batch_commit(struct store *store)
{
	return store->engine->batch_commit(store);
}

int
store_pass_end(struct store *store, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now)
{
	return store->engine->pass_end(store, pass, state, outcome, error, now);
}

int
store_set_next_poll(struct store *store, const char *source, const char *when)
{
	return store->engine->set_next_poll(store, source, when);
}

int64_t
store_runs_since(struct store *store, const char *source, const char *since,
    int unfinished, struct store_run_key **out)
{
	return store->engine->runs_since(store, source, since, unfinished, out);
}

int
store_has_run(struct store *store, const char *source, const char *external_id)
{
	return store->engine->has_run(store, source, external_id);
}

int64_t
store_live_runs(struct store *store, const char *source)
{
	return store->engine->live_runs(store, source);
}

int64_t
store_prune_history(struct store *store, const char *cutoff, int batch,
    int max_batches)
{
	return store->engine->prune_history(store, cutoff, batch, max_batches);
}

void
store_checkpoint(struct store *store, int truncate)
{
	store->engine->checkpoint(store, truncate);
}

void
store_checkpoint_over(struct store *store, long long bytes)
{
	store->engine->checkpoint_over(store, bytes);
}

int
store_sources_sync(struct store *store, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg)
{
	return store->engine->sources_sync(store, srcs, n, now, fn, arg);
}

int
store_claim(struct store *store, const char *source, char *holder, size_t len)
{
	if (holder != NULL && len > 0)
		holder[0] = '\0';
	if (store->engine->claim == NULL)
		return 1;
	return store->engine->claim(store, source, holder, len);
}

void
store_release(struct store *store, const char *source)
{
	if (store->engine->release != NULL)
		store->engine->release(store, source);
}

int
store_source_present(struct store *store, const char *source)
{
	return store->engine->source_present(store, source);
}

int
store_rename_source(struct store *store, const char *old, const char *new_name,
    char *why, size_t whylen)
{
	return store->engine->rename_source(store, old, new_name, why, whylen);
}

int
store_forget_source(struct store *store, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
{
	return store->engine->forget_source(store, source, batch, now, deleted,
	    why, whylen);
}

int
store_status_each(struct store *store, store_status_fn *fn, void *arg)
{
	return store->engine->status_each(store, fn, arg);
}
