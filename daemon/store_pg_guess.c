/* SPDX-License-Identifier: ISC */
/*
 * store_pg_guess.c: what the PostgreSQL engine keeps of the last pages
 * written of each source on its connection, to guess at the next (its
 * runs new, but for those these pages listed: store_pg_page.c sends such
 * a page in one round trip, behind a gate that checks the guess).  A
 * guess is never trusted; what a rolled back batch wrote is forgotten.
 */
#include <stdlib.h>
#include <string.h>

#include "store_pg.h"

/* The last page written of source, or NULL (then one made, when make). */
struct pg_last *
pg_last_of(struct pg_store *store, const char *source, int make)
{
	struct pg_last *l;
	size_t i;

	for (i = 0; i < store->nlast; i++)
		if (strcmp(store->last[i].source, source) == 0)
			return &store->last[i];
	if (!make)
		return NULL;
	l = realloc(store->last, (store->nlast + 1) * sizeof(*l));
	if (l == NULL)
		return NULL;
	store->last = l;
	l = &store->last[store->nlast];
	memset(l, 0, sizeof(*l));
	if ((l->source = strdup(source)) == NULL)
		return NULL;
	store->nlast++;
	return l;
}

/* What l remembers of its last pages, forgotten: no guess until a page
 * written the usual way is mostly new. */
static void
last_clear(struct pg_last *l)
{
	size_t k;

	for (k = 0; k < PG_LAST_PAGES; k++) {
		free(l->ids[k]);
		l->ids[k] = NULL;
		l->nids[k] = 0;
	}
	l->fresh = 0;
	l->moved = 0;
}

/* No guess at source's next page (NULL: any source's) until one written
 * the usual way is mostly new; a new pass may guess again. */
void
pg_last_forget(struct pg_store *store, const char *source)
{
	size_t i;

	for (i = 0; i < store->nlast; i++) {
		if (source != NULL &&
		    strcmp(store->last[i].source, source) != 0)
			continue;
		last_clear(&store->last[i]);
		store->last[i].spoiled = 0;
		if (source == NULL)
			free(store->last[i].source);
	}
	if (source == NULL) {
		free(store->last);
		store->last = NULL;
		store->nlast = 0;
	}
}

/* What the last pages wrote went with a rolled back batch: every source's
 * memory of them forgotten (its spoiled guesses kept for the pass). */
void
pg_last_drop(struct pg_store *store)
{
	size_t i;

	for (i = 0; i < store->nlast; i++)
		last_clear(&store->last[i]);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * What page leaves for the next of its source: its runs' ids (beside
 * those of the pages before it), and whether at least half of them were
 * new.  An error leaves no guess; nor does a page after which the walk's
 * offset did not move forward (offset: after it): the walk stepped back
 * (runs moved under it), or it is no walk's (a re-check's), and the next
 * page may list runs of any page before.
 */
void
pg_remember(struct pg_store *store, const char *source, const struct page *page,
    int64_t offset, int64_t new_runs, int failed)
{
	struct pg_last *l = pg_last_of(store, source, 1);
	size_t i, bytes = 0;
	char **ids, *o;
	int forward;

	if (l == NULL)
		return; /* out of memory: no guess, the usual way */
	forward = !l->moved || offset > l->offset;
	l->offset = offset;
	l->moved = 1;
	l->fresh = 0;
	if (failed || page->nruns == 0)
		return;
	for (i = 0; i < page->nruns; i++)
		bytes += sizeof(char *) + strlen(page->runs[i].external_id) + 1;
	if ((ids = malloc(bytes)) == NULL)
		return;
	o = (char *)(ids + page->nruns);
	for (i = 0; i < page->nruns; i++) {
		ids[i] = o;
		o = stpcpy(o, page->runs[i].external_id) + 1;
	}
	qsort(ids, page->nruns, sizeof(*ids), str_cmp);
	free(l->ids[PG_LAST_PAGES - 1]);
	for (i = PG_LAST_PAGES - 1; i > 0; i--) {
		l->ids[i] = l->ids[i - 1];
		l->nids[i] = l->nids[i - 1];
	}
	l->ids[0] = ids;
	l->nids[0] = page->nruns;
	l->fresh = forward && new_runs * 2 >= (int64_t)page->nruns;
}

/* 1 when one of the source's last pages listed id. */
int
pg_listed(const struct pg_last *last, const char *id)
{
	size_t k;

	for (k = 0; k < PG_LAST_PAGES; k++)
		if (last->ids[k] != NULL &&
		    bsearch(&id, last->ids[k], last->nids[k],
			sizeof(*last->ids[k]), str_cmp) != NULL)
			return 1;
	return 0;
}
