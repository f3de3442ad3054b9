/* SPDX-License-Identifier: ISC */
/*
 * pipeline.c: the ring of page requests of a pass (pipeline.h).  Pure:
 * linked alone in tests/unit/test_pipeline.c.
 */
#include <stdlib.h>
#include <string.h>

#include "pipeline.h"

void
pipe_init(struct pipeline *pl, void (*release)(struct pipe_slot *), void *owner)
{
	int i;

	memset(pl, 0, sizeof(*pl));
	pl->release = release;
	pl->owner = owner;
	for (i = 0; i < PIPE_RING; i++)
		pl->ring[i].pl = pl;
}

struct pipe_slot *
pipe_slot(struct pipeline *pl, int i)
{
	return &pl->ring[(pl->head + i) % PIPE_RING];
}

/* One request for the first page of a pass (an idle poll costs one
 * request) and for re-checks (each request depends on the last), then
 * requests_in_flight; an incremental walk opens up one more a page, since
 * it may stop at any page. */
int
pipe_window(const struct pipe_walk *pw)
{
	int64_t n = pw->in_flight;

	if (pw->recheck != NULL || pw->walk->pages == 0)
		return 1;
	if (pw->walk->mode == WALK_INCREMENTAL && pw->walk->pages < n)
		n = pw->walk->pages + 1;
	return (int)n;
}

void
pipe_want(const struct pipe_walk *pw, int64_t *off, int *limit)
{
	int64_t pos = pw->offset;

	*limit = pw->walk->page_limit;
	if (pw->recheck != NULL) {
		*off = pw->recheck->start;
		*limit = pw->recheck->limit;
	} else if (pw->any_offset) {
		*off = pos > 0 ? pos - 1 : 0; /* one early: the anchor */
	} else {
		*off = pos - pos % *limit;
	}
}

/* The page after sl if its page is full and the walk goes on, as far as
 * upstream's last total and max_pass_pages say. */
int
pipe_ahead(const struct pipeline *pl, const struct pipe_walk *pw,
    const struct pipe_slot *sl, int64_t *off, int *limit)
{
	const struct walk *w = pw->walk;
	int64_t end = sl->offset + sl->limit;

	if (pw->recheck != NULL || sl->limit != w->page_limit ||
	    (pw->total >= 0 && end >= pw->total) ||
	    w->pages + pl->n >= w->pass_cap || w->pages + pl->n >= w->max_pages)
		return 0;
	*off = end - (pw->any_offset ? 1 : 0);
	*limit = w->page_limit;
	return 1;
}

/* Holes first (pages to ask for again, the cursor's first), then new
 * pages: in flight or answered, at most the window's bodies are held. */
enum pipe_next
pipe_next(struct pipeline *pl, const struct pipe_walk *pw, int i, int64_t *off,
    int *limit, struct pipe_slot **sl)
{
	if (i < pl->n) {
		*sl = pipe_slot(pl, i);
		if ((*sl)->req != NULL || (*sl)->answered)
			return PIPE_SKIP;
		*off = (*sl)->offset;
		*limit = (*sl)->limit;
		return PIPE_ASK;
	}
	if (i == 0)
		pipe_want(pw, off, limit);
	else if (!pipe_ahead(pl, pw, pipe_slot(pl, i - 1), off, limit))
		return PIPE_STOP;
	*sl = pipe_slot(pl, i);
	return PIPE_ASK;
}

void
pipe_asked(struct pipeline *pl, int i)
{
	if (i == pl->n)
		pl->n++;
}

int
pipe_head_wanted(struct pipeline *pl, const struct pipe_walk *pw)
{
	const struct pipe_slot *h;
	int64_t off;
	int limit;

	if (pl->n == 0)
		return 1;
	h = pipe_slot(pl, 0);
	pipe_want(pw, &off, &limit);
	if (h->offset == off && h->limit == limit)
		return 1;
	pipe_drop(pl, 0);
	return 0;
}

void
pipe_take(struct pipeline *pl, struct pipe_slot *cur)
{
	struct pipe_slot *h = pipe_slot(pl, 0);

	*cur = *h;
	h->answered = h->unread = 0;
	h->body = h->content_type = h->error = NULL;
}

void
pipe_advance(struct pipeline *pl)
{
	if (pl->n == 0)
		return;
	pipe_clear(pipe_slot(pl, 0));
	pl->head = (pl->head + 1) % PIPE_RING;
	pl->n--;
}

void
pipe_clear(struct pipe_slot *sl)
{
	struct pipeline *pl = sl->pl;

	if (sl->req != NULL || sl->unread)
		pl->release(sl);
	free(sl->body);
	free(sl->content_type);
	free(sl->error);
	memset(sl, 0, sizeof(*sl));
	sl->pl = pl;
}

/* Cancel those in flight, forget the answers kept. */
void
pipe_drop(struct pipeline *pl, int i)
{
	int j;

	for (j = i; j < pl->n; j++)
		pipe_clear(pipe_slot(pl, j));
	if (i < pl->n)
		pl->n = i;
}

void
pipe_hole(struct pipe_slot *sl)
{
	struct pipe_slot keep = *sl;

	keep.req = NULL;
	keep.answered = keep.unread = 0;
	keep.body = keep.content_type = keep.error = NULL;
	pipe_clear(sl);
	*sl = keep;
}

void
pipe_holes_in_flight(struct pipeline *pl)
{
	int i;

	for (i = 0; i < pl->n; i++)
		if (pipe_slot(pl, i)->req != NULL)
			pipe_hole(pipe_slot(pl, i));
}
