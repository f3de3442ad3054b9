/* SPDX-License-Identifier: ISC */
/*
 * recheck.c: the re-check schedule of a listing ordered by creation only.
 *
 * Codegen lists runs newest created first and nothing says an older run
 * changed: the only way to see that it finished is to fetch the page that
 * holds it again.  An incremental poll fetches the head (new runs) as
 * every walk does, then only the runs due for a re-check: unfinished runs
 * younger than refresh_window whose last fetch is older than their
 * interval, A / RECHECK_AGE_DIVISOR for a run of age A, at least
 * poll_interval, at most refresh_max_interval.  A run first seen, or not
 * fetched since the daemon started (--once, a restart), is due at once.
 *
 * Targeted requests.  The mirror knows how many live runs are newer than a
 * due run: that is its offset.  Due runs closer than a page share one
 * request that starts one item early (skip = offset - 1) and holds at most
 * page_size items.  Upstream moves while we look: runs created after the
 * head request push a due run to a higher offset, runs deleted pull it to a
 * lower one.  A page proves itself by holding the due runs it was asked
 * for; when one is missing, the created_at order says where it went: a
 * page of only newer runs moves forward, a page of only older runs moves
 * back, each time by a whole page less one (the overlap), a missing run
 * inside the page's span
 * is gone or moved and is given up: it is never marked deleted from a
 * partial view (the next full resync decides), and it is due again at its
 * next interval.  RECHECK_MAX_STEPS bounds the steps of one request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recheck.h"

struct recheck_seen_entry {
	char id[SOURCE_MAX_ID + 1];
	double t;
};

double
recheck_interval(double age, double poll_interval, double max_interval)
{
	double i = age / RECHECK_AGE_DIVISOR;

	if (i > max_interval)
		i = max_interval;
	if (i < poll_interval)
		i = poll_interval;
	return i;
}

/* Index of id, or of where it would go (*found 0). */
static size_t
seen_find(const struct recheck_seen *seen, const char *id, int *found)
{
	size_t lo = 0, hi = seen->n, mid;
	int c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(seen->v[mid].id, id);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
recheck_seen_note(struct recheck_seen *seen, const char *id, double t)
{
	struct recheck_seen_entry *nv;
	size_t i, cap;
	int found;

	if (strlen(id) > SOURCE_MAX_ID)
		return 0;
	i = seen_find(seen, id, &found);
	if (found) {
		seen->v[i].t = t;
		return 0;
	}
	if (seen->n == seen->cap) {
		cap = seen->cap ? 2 * seen->cap : 64;
		if ((nv = realloc(seen->v, cap * sizeof(*nv))) == NULL)
			return -1;
		seen->v = nv;
		seen->cap = cap;
	}
	memmove(&seen->v[i + 1], &seen->v[i], (seen->n - i) * sizeof(*nv));
	snprintf(seen->v[i].id, sizeof(seen->v[i].id), "%s", id);
	seen->v[i].t = t;
	seen->n++;
	return 0;
}

double
recheck_seen_get(const struct recheck_seen *seen, const char *id)
{
	int found;
	size_t i = seen_find(seen, id, &found);

	return found ? seen->v[i].t : -1;
}

static int
cmp_key_id(const void *a, const void *b)
{
	return strcmp(((const struct store_run_key *)a)->external_id,
	    ((const struct store_run_key *)b)->external_id);
}

void
recheck_seen_keep(struct recheck_seen *seen, const struct store_run_key *keys,
    size_t n)
{
	struct store_run_key *sorted, probe;
	size_t i, j = 0;

	if (n == 0) {
		seen->n = 0;
		return;
	}
	sorted = malloc(n * sizeof(*sorted));
	if (sorted == NULL)
		return; /* keeping extra entries is harmless */
	memcpy(sorted, keys, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_key_id);
	for (i = 0; i < seen->n; i++) {
		snprintf(probe.external_id, sizeof(probe.external_id), "%s",
		    seen->v[i].id);
		if (bsearch(&probe, sorted, n, sizeof(*sorted), cmp_key_id))
			seen->v[j++] = seen->v[i];
	}
	seen->n = j;
	free(sorted);
}

void
recheck_seen_free(struct recheck_seen *seen)
{
	free(seen->v);
	memset(seen, 0, sizeof(*seen));
}

int
recheck_plan(struct recheck *rc, const struct store_run_key *listing,
    const unsigned char *is_due, size_t n, int page_size)
{
	struct recheck_group *g;
	size_t i, k = 0;

	memset(rc, 0, sizeof(*rc));
	rc->page_size = page_size;
	for (i = 0; i < n; i++)
		k += is_due[i] != 0;
	if (k == 0)
		return 0;
	rc->due = calloc(k, sizeof(*rc->due));
	rc->groups = calloc(k, sizeof(*rc->groups));
	if (rc->due == NULL || rc->groups == NULL) {
		recheck_free(rc);
		return -1;
	}
	for (i = 0; i < n; i++) {
		struct recheck_run *d;

		if (!is_due[i])
			continue;
		d = &rc->due[rc->ndue];
		snprintf(d->id, sizeof(d->id), "%s", listing[i].external_id);
		snprintf(d->created_at, sizeof(d->created_at), "%s",
		    listing[i].created_at);
		d->pos = (int64_t)i;
		g = rc->ngroups > 0 ? &rc->groups[rc->ngroups - 1] : NULL;
		/* the overlap item and the due run both fit: join */
		if (g != NULL && d->pos - g->start < page_size) {
			g->last = rc->ndue;
		} else {
			g = &rc->groups[rc->ngroups++];
			g->start = d->pos > 0 ? d->pos - 1 : 0;
			g->first = g->last = rc->ndue;
		}
		g->limit = (int)(d->pos - g->start + 1 + RECHECK_SLACK);
		if (g->limit > page_size)
			g->limit = page_size;
		rc->ndue++;
	}
	return (int)rc->ngroups;
}

void
recheck_found(struct recheck *rc, const struct page *p, int64_t off)
{
	size_t i, j;

	for (j = 0; j < p->nruns; j++)
		for (i = 0; i < rc->ndue; i++)
			if (!rc->due[i].found &&
			    strcmp(rc->due[i].id, p->runs[j].external_id) ==
				0) {
				rc->due[i].found = 1;
				/* (a rejected item before it on the page
				 * makes this one short: an estimate) */
				rc->shift = off + (int64_t)j - rc->due[i].pos;
			}
}

/* Compare a run of the page with a due run in listing order: < 0 when the
 * page's run comes first (is newer). */
static int
listing_cmp(const struct run *r, const struct recheck_run *d)
{
	const char *a = r->created_at != NULL ? r->created_at : "";
	int c = strcmp(a, d->created_at);

	if (c != 0)
		return -c; /* newer created first */
	c = strcmp(r->external_id, d->id);
	if (strlen(r->external_id) != strlen(d->id))
		c = strlen(r->external_id) > strlen(d->id) ? 1 : -1;
	return -c; /* ties: the higher id first */
}

/* The first run of group g still sought, or NULL when the group is
 * done. */
static struct recheck_run *
first_due(struct recheck *rc, const struct recheck_group *g)
{
	size_t i;

	for (i = g->first; i <= g->last; i++)
		if (!rc->due[i].found && !rc->due[i].given_up)
			return &rc->due[i];
	return NULL;
}

/* Page p of group g does not hold d: move the group a page forward or
 * back (1), or give d up (0). */
static int
slide(struct recheck *rc, struct recheck_group *g, const struct page *p,
    struct recheck_run *d)
{
	size_t j, newer = 0;

	for (j = 0; j < p->nruns; j++)
		newer += listing_cmp(&p->runs[j], d) < 0;
	if (g->steps < RECHECK_MAX_STEPS && p->nruns > 0 && newer == p->nruns &&
	    p->nitems > 1) {
		/* only newer runs: it slid forward (runs were
		 * created); the next page, overlapping by one */
		g->start += (int64_t)p->nitems - 1;
		g->limit = rc->page_size;
		g->steps++;
		rc->steps++;
		return 1;
	}
	if (g->steps < RECHECK_MAX_STEPS && g->start > 0 &&
	    ((p->nruns > 0 && newer == 0) || p->nitems == 0)) {
		/* only older runs, or past the end: it slid back
		 * (runs were deleted); the page before, overlapping
		 * by one, and not past the end */
		g->start -= rc->page_size > 1 ? rc->page_size - 1 : 1;
		if (p->total > 0 && g->start > p->total - 1)
			g->start = p->total - 1;
		if (g->start < 0)
			g->start = 0;
		g->limit = rc->page_size;
		g->steps++;
		rc->steps++;
		return 1;
	}
	/* inside the page's span and absent, or out of steps: gone
	 * or moved upstream */
	d->given_up = 1;
	rc->not_found++;
	return 0;
}

int
recheck_next(struct recheck *rc, const struct page *p, int64_t *off, int *limit)
{
	struct recheck_group *g;
	struct recheck_run *d;

	while (rc->cur < rc->ngroups) {
		g = &rc->groups[rc->cur];
		d = first_due(rc, g);
		if (d == NULL) {
			/* this group is done */
			rc->cur++;
			p = NULL; /* the next group has not been fetched */
			continue;
		}
		if (p == NULL) {
			/* this group is not fetched yet */
			if (!g->shifted) {
				g->shifted = 1;
				g->start += rc->shift;
				if (g->start < 0)
					g->start = 0;
			}
			break;
		}
		if (slide(rc, g, p, d))
			break;
	}
	if (rc->cur >= rc->ngroups)
		return 0;
	g = &rc->groups[rc->cur];
	*off = g->start;
	*limit = g->limit;
	return 1;
}

void
recheck_free(struct recheck *rc)
{
	free(rc->due);
	free(rc->groups);
	memset(rc, 0, sizeof(*rc));
}
