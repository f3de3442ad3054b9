/* SPDX-License-Identifier: ISC */
/*
 * writer.c: the daemon's one way into the store's writes, and the owner of
 * the batch (see writer.h).  It decides when a batch opens and commits and
 * what a lost one costs each source; what the rows are is the store's,
 * what a source does next is sync's.
 */
#include <string.h>

#include "writer.h"

void
writer_init(struct writer *w, struct store *store)
{
	memset(w, 0, sizeof(*w));
	w->store = store;
}

void
writer_set_timer(struct writer *w, const struct writer_timer *timer)
{
	if (timer != NULL)
		w->timer = *timer;
	else
		memset(&w->timer, 0, sizeof(w->timer));
}

void
writer_part_init(struct writer_part *part, struct sync_state *st,
    struct walk *walk, struct pass_counts *counts, void (*lost)(void *),
    void *arg)
{
	memset(part, 0, sizeof(*part));
	part->st = st;
	part->walk = walk;
	part->counts = counts;
	part->lost = lost;
	part->arg = arg;
}

void
writer_part_leave(struct writer *w, struct writer_part *part)
{
	struct writer_part **pp;

	for (pp = &w->parts; *pp != NULL; pp = &(*pp)->next)
		if (*pp == part) {
			*pp = part->next;
			break;
		}
	part->next = NULL;
	part->in_batch = 0;
}

/* The batch is over, committed or not: nobody is in it. */
static struct writer_part *
writer_close(struct writer *w)
{
	struct writer_part *parts = w->parts;

	w->open = 0;
	w->parts = NULL;
	if (w->timer.disarm != NULL)
		w->timer.disarm(w->timer.arg);
	return parts;
}

/*
 * Put part back at its snapshot: what its pages in the batch wrote is not
 * in the database.  What was asked of upstream meanwhile stays counted.
 */
static void
part_restore(struct writer_part *part)
{
	struct pass_counts *c = part->counts;
	int64_t requests = c->requests, http_429 = c->http_429,
		retries = c->retries;

	part->lost_pages = part->walk->pages - part->walk0.pages;
	*part->st = part->st0;
	*part->walk = part->walk0;
	*c = part->counts0;
	c->requests = requests;
	c->http_429 = http_429;
	c->retries = retries;
}

/* The open batch is lost (again: for no fault, STORE_AGAIN): every
 * source in it back, then told. */
static void
writer_lost(struct writer *w, int again)
{
	struct writer_part *part, *next;

	for (part = writer_close(w); part != NULL; part = next) {
		next = part->next;
		part->next = NULL;
		part->in_batch = 0;
		part->again = again;
		if (!again)
			part->losses++;
		part_restore(part);
		if (part->lost != NULL)
			part->lost(part->arg);
	}
}

enum write_rc
writer_commit(struct writer *w)
{
	struct writer_part *part, *next;

	int rc;

	if (!w->open)
		return WRITE_OK;
	if ((rc = store_batch_commit(w->store)) != 0) {
		writer_lost(w, rc == STORE_AGAIN);
		return WRITE_LOST;
	}
	for (part = writer_close(w); part != NULL; part = next) {
		next = part->next;
		part->next = NULL;
		part->in_batch = 0;
		part->losses = 0;
	}
	return WRITE_OK;
}

static enum write_rc
write_rc_of(int store_rc)
{
	switch (store_rc) {
	case STORE_OK:
		return WRITE_OK;
	case STORE_BUSY:
		return WRITE_BUSY;
	case STORE_GONE:
		return WRITE_GONE;
	case STORE_LOST:
	case STORE_AGAIN:
		return WRITE_LOST;
	case STORE_UNHELD:
		return WRITE_UNHELD;
	default:
		return WRITE_ERROR;
	}
}

/* Have part's next page written in the open batch (opened if none is). */
static enum write_rc
writer_join(struct writer *w, struct writer_part *part, double now_mono)
{
	int rc;

	if (!w->open) {
		if ((rc = store_batch_begin(w->store)) != STORE_OK)
			return write_rc_of(rc);
		w->open = 1;
		w->t0 = now_mono;
		w->pages = 0;
		if (w->timer.arm != NULL)
			w->timer.arm(w->timer.arg, WRITER_BATCH_SECONDS);
	}
	if (!part->in_batch) {
		part->in_batch = 1;
		part->st0 = *part->st;
		part->walk0 = *part->walk;
		part->counts0 = *part->counts;
		part->next = w->parts;
		w->parts = part;
	}
	return WRITE_OK;
}

enum write_rc
writer_begin_page(struct writer *w, struct writer_part *part, int batched,
    double now_mono)
{
	if (batched)
		return writer_join(w, part, now_mono);
	(void)writer_commit(w);
	return WRITE_OK;
}

enum write_rc
writer_page(struct writer *w, int batched, struct store_pass *pass,
    const struct page *p, const struct sync_state *next, unsigned flags,
    const char *now)
{
	int src = store_page(w->store, pass, p, next, flags, now);
	enum write_rc rc = write_rc_of(src);

	if (rc == WRITE_LOST)
		writer_lost(w, src == STORE_AGAIN);
	else if (rc == WRITE_OK && batched)
		w->pages++;
	return rc;
}

enum write_rc
writer_settle(struct writer *w, int last, double now_mono)
{
	if (!w->open)
		return WRITE_OK;
	if (last || w->pages >= WRITER_BATCH_MAX_PAGES ||
	    now_mono - w->t0 >= WRITER_BATCH_SECONDS)
		return writer_commit(w);
	return WRITE_OK;
}

int
writer_claim(struct writer *w, const char *source, char *holder, size_t len)
{
	(void)writer_commit(w);
	return store_claim(w->store, source, holder, len);
}

void
writer_release(struct writer *w, const char *source)
{
	(void)writer_commit(w);
	store_release(w->store, source);
}

int
writer_state_load(struct writer *w, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	(void)writer_commit(w);
	return store_state_load(w->store, source, kind, identity, state);
}

int
writer_pass_begin(struct writer *w, struct store_pass *pass,
    enum walk_mode mode, const char *now)
{
	(void)writer_commit(w);
	return store_pass_begin(w->store, pass, mode, now);
}

enum write_rc
writer_pass_end(struct writer *w, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now)
{
	(void)writer_commit(w);
	return write_rc_of(
	    store_pass_end(w->store, pass, state, outcome, error, now));
}

int
writer_next_poll(struct writer *w, const char *source, const char *when)
{
	(void)writer_commit(w);
	return store_set_next_poll(w->store, source, when);
}

int64_t
writer_prune_history(struct writer *w, const char *cutoff, int batch,
    int max_batches)
{
	(void)writer_commit(w);
	return store_prune_history(w->store, cutoff, batch, max_batches);
}

void
writer_checkpoint(struct writer *w, int truncate)
{
	(void)writer_commit(w);
	store_checkpoint(w->store, truncate);
}

void
writer_checkpoint_over(struct writer *w, long long bytes)
{
	(void)writer_commit(w);
	store_checkpoint_over(w->store, bytes);
}

int
writer_sources_sync(struct writer *w, const struct store_source *srcs, size_t n,
    const char *now, store_retired_fn *fn, void *arg)
{
	(void)writer_commit(w);
	return store_sources_sync(w->store, srcs, n, now, fn, arg);
}

int
writer_rename_source(struct writer *w, const char *old, const char *new_name,
    char *why, size_t whylen)
{
	(void)writer_commit(w);
	return store_rename_source(w->store, old, new_name, why, whylen);
}

int
writer_forget_source(struct writer *w, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
{
	(void)writer_commit(w);
	return store_forget_source(w->store, source, batch, now, deleted, why,
	    whylen);
}

int
writer_migrate(struct writer *w)
{
	(void)writer_commit(w);
	return store_migrate(w->store);
}
