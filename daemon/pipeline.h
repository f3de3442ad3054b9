/* SPDX-License-Identifier: ISC */
/*
 * pipeline.h: the page requests of one source's pass, in the order of the
 * walk (the ring of slots), and what to ask for next.
 *
 * Pure: no libev, libcurl or SQLite.  A slot holds what was asked for
 * (offset, limit, URL) and the answer kept until its page's turn; the
 * request in flight is the owner's opaque pointer, cancelled through the
 * owner's release function.  Slot 0 is the page at the walk's cursor; the
 * others were asked for ahead of it.  A hole is a slot whose request went
 * (a 429, a retry, an answer that could not be kept): asked for again, at
 * the same offset, when the source may ask.
 */
#ifndef AGENTSYNCD_PIPELINE_H
#define AGENTSYNCD_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "recheck.h"
#include "source.h"
#include "walk.h"

/* Page requests of one source: those in flight, and the answers waiting
 * for the page before them to be written. */
#define PIPE_RING CONF_MAX_IN_FLIGHT

struct pipeline;

struct pipe_slot {
	struct pipeline *pl;
	void *req;	/* the owner's request in flight, or NULL */
	int64_t offset; /* the request's offset */
	int limit;	/* and the items it asked for */
	double decided; /* when the limiter counted it (the owner's clock) */
	char url[SOURCE_MAX_PAGE_URL];
	int answered; /* the answer below is kept */
	int unread;   /* ... a 2xx not parsed yet: its outcome not counted */
	long status;
	char *body; /* NUL-terminated */
	size_t len;
	double retry_after;
	char *content_type;
	int too_large;
	char *error;
};

struct pipeline {
	struct pipe_slot ring[PIPE_RING];
	int head, n; /* ring[head] is slot 0; n slots are used */
	/* Called for a slot let go with a request in flight (cancel it) or
	 * an unread answer (count it): the owner's. */
	void (*release)(struct pipe_slot *sl);
	void *owner;
};

/* What the walk of the pass says the pipeline may ask for. */
struct pipe_walk {
	const struct walk *walk;
	const struct recheck_group *recheck; /* the next, or NULL: none */
	int64_t offset;			     /* the walk's cursor */
	int64_t total;			     /* upstream's last, or -1 */
	int any_offset;			     /* the adapter's */
	int in_flight;			     /* requests_in_flight */
};

/* What pipe_next() says of the i-th slot. */
enum pipe_next {
	PIPE_ASK,  /* ask for *off, *limit into *sl */
	PIPE_SKIP, /* in flight or answered already */
	PIPE_STOP  /* nothing more to ask for now */
};

void pipe_init(struct pipeline *pl, void (*release)(struct pipe_slot *),
    void *owner);
/* The i-th request of the pass, 0 being the page at the cursor. */
struct pipe_slot *pipe_slot(struct pipeline *pl, int i);
/* Requests the pass may have in flight now. */
int pipe_window(const struct pipe_walk *pw);
/* The page the cursor needs. */
void pipe_want(const struct pipe_walk *pw, int64_t *off, int *limit);
/* The page after sl, if the walk may want it: 1, else 0. */
int pipe_ahead(const struct pipeline *pl, const struct pipe_walk *pw,
    const struct pipe_slot *sl, int64_t *off, int *limit);
/* What to do with the i-th slot (i < the window). */
enum pipe_next pipe_next(struct pipeline *pl, const struct pipe_walk *pw, int i,
    int64_t *off, int *limit, struct pipe_slot **sl);
/* The i-th slot was asked for (pipe_next() said PIPE_ASK). */
void pipe_asked(struct pipeline *pl, int i);
/* 1 if slot 0 is the page the cursor needs (or there is none); else the
 * walk moved (a step back, a new page size): every slot is dropped, 0. */
int pipe_head_wanted(struct pipeline *pl, const struct pipe_walk *pw);
/* Take slot 0's answer into *cur; slot 0 stays, a hole, until its page is
 * stored (pipe_advance()) or asked for again. */
void pipe_take(struct pipeline *pl, struct pipe_slot *cur);
/* Slot 0's page is stored: the next slot is the cursor's. */
void pipe_advance(struct pipeline *pl);
/* Let go of a slot's request and answer; it is then empty. */
void pipe_clear(struct pipe_slot *sl);
/* Drop the slots from the i-th on. */
void pipe_drop(struct pipeline *pl, int i);
/* Make sl a hole: asked for again when the source may ask. */
void pipe_hole(struct pipe_slot *sl);
/* A 429: every request in flight becomes a hole; answers kept stay. */
void pipe_holes_in_flight(struct pipeline *pl);

#endif
