/* SPDX-License-Identifier: ISC */
/*
 * sync_fetch.c: the page requests of a source's pass and their answers.
 *
 * pipeline.c says what to ask for (the window, the holes, what a step back
 * drops); this file asks (the limiter, http_get), keeps each answer in its
 * slot until its page's turn, and does what verdict.c says the answer
 * means: a page to parse and handle (sync_page.c), a retry, a 429's wait,
 * a refused token, a failed pass.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_int.h"

static struct verdict
slot_verdict(const struct pipe_slot *sl, enum verdict_body body)
{
	return verdict_of(sl->status, sl->too_large, sl->retry_after >= 0,
	    body);
}

/* Count an answer's outcome once, when its verdict is final: on arrival,
 * or for a 2xx when its body is parsed or dropped unread (verdict.h). */
static void
src_count(struct src *s, struct verdict v)
{
	stats_request(&s->m, v.outcome);
}

/* The final verdict on sl's 2xx, now that body says what it is. */
static struct verdict
slot_settle(struct pipe_slot *sl, enum verdict_body body)
{
	struct verdict v = slot_verdict(sl, body);

	src_count(sl->pl->owner, v);
	sl->unread = 0;
	return v;
}

/* pipe_release: a slot let go (pipeline.h). */
void
slot_release(struct pipe_slot *sl)
{
	if (sl->unread)
		(void)slot_settle(sl, VERDICT_UNREAD);
	http_cancel(sl->req);
}

/* A 429 pauses the whole source: nothing in flight, nothing asked for
 * until the wait is over, then the page at the cursor again. */
static void
src_rate_limited(struct src *s, struct pipe_slot *sl, double retry_after)
{
	const struct conf_source *c = s->conf;
	double delay;

	s->pass.rec.counts.http_429++;
	if (++s->pass.at.retries_429 > MAX_429_RETRIES) {
		src_pass_end(s, 0, "HTTP 429: rate limited too long",
		    c->poll_interval);
		return;
	}
	if (retry_after >= 0)
		delay = fmin(retry_after, MAX_RETRY_AFTER);
	else
		delay = backoff_next(&s->backoff);
	log_warnx("source '%s': HTTP 429 from %s; waiting %.1fs%s", c->name,
	    sl->url, delay, retry_after >= 0 ? " as Retry-After asks" : "");
	pipe_hole(sl);
	src_wait(s, delay, 1);
}

/* Parse a 2xx answer; a bad page is said and retried (-1). */
static int
src_parse(struct src *s, struct pipe_slot *sl, struct page *page)
{
	char reason[4096], err[200], head[600], ctype[400];
	struct verdict v;
	int rc;

	memset(page, 0, sizeof(*page));
	rc = s->conf->type->parse_page(sl->body, sl->len, (size_t)sl->limit,
	    page, err, sizeof(err));
	v = slot_settle(sl, rc == 0 ? VERDICT_PAGE_OK : VERDICT_NOT_A_PAGE);
	if (v.action == VERDICT_PAGE)
		return 0;
	log_excerpt(sl->body, sl->len, 120, head, sizeof(head));
	/* upstream's bytes, like the body's: escaped */
	if (sl->content_type != NULL)
		log_excerpt(sl->content_type, strlen(sl->content_type), 80,
		    ctype, sizeof(ctype));
	snprintf(reason, sizeof(reason),
	    "bad page from %s (HTTP %ld, %zu bytes, %s): %s; body starts: %s",
	    sl->url, sl->status, sl->len,
	    sl->content_type != NULL ? ctype : "no content type", err, head);
	page_free(page);
	src_retry(s, reason);
	return -1;
}

/* A 401 or 403: the pass fails and the source waits auth_backoff. */
static void
src_auth_refused(struct src *s, const struct pipe_slot *sl)
{
	const struct conf_source *c = s->conf;
	char reason[4096], wait[64];

	snprintf(reason, sizeof(reason),
	    "HTTP %ld: the %s refused the token from %s", sl->status,
	    c->type->name, c->token_origin);
	snprintf(wait, sizeof(wait), "retrying in %.0fs", c->auth_backoff);
	log_error(
	    "source '%s': HTTP %ld from %s: %s; check that the token is valid and %s; %s",
	    c->name, sl->status, sl->url,
	    sl->status == 401 ? "authentication failed" : "access denied",
	    c->type->auth_hint, s->sync->once ? "this pass fails" : wait);
	src_pass_end(s, 0, reason, c->auth_backoff);
}

/* A 2xx at the cursor: parse it and handle the page. */
static void
src_read(struct src *s, struct pipe_slot *sl)
{
	const struct conf_source *c = s->conf;
	struct page page;
	int first;

	/* The first page of an incremental pass (an idle poll, mostly) is
	 * kept parsed for the next one; see struct src. */
	first = sl->offset == 0 && s->pass.walk.mode == WALK_INCREMENTAL &&
	    s->state != SRC_RECHECK && sl->len <= FIRST_KEEP_MAX;
	if (first && s->first.set && s->first.len == sl->len &&
	    s->first.limit == sl->limit &&
	    memcmp(s->first.page.text, sl->body, sl->len) == 0) {
		log_debug(
		    "source '%s': the first page is the bytes of the last pass's; not parsed again",
		    c->name);
		(void)slot_settle(sl, VERDICT_PAGE_OK); /* the same parse */
		page = s->first.page; /* taken; kept again below */
		s->first.set = 0;
	} else if (src_parse(s, sl, &page) == -1)
		return;
	src_handle_page(s, &page, sl->offset);
	if (first && !page.oom && page.text != NULL) {
		src_first_drop(s);
		s->first.page = page;
		s->first.len = sl->len;
		s->first.limit = sl->limit;
		s->first.set = 1;
	} else
		page_free(&page);
}

/* Handle the answer to the request for the page at the cursor. */
static void
src_process(struct src *s, struct pipe_slot *sl)
{
	const struct verdict v = slot_verdict(sl, VERDICT_UNREAD);
	char reason[4096], head[600];

	switch (v.action) {
	case VERDICT_PARSE:
		src_read(s, sl);
		break;
	case VERDICT_NO_ANSWER:
		snprintf(reason, sizeof(reason), "request to %s failed: %s",
		    sl->url, sl->error != NULL ? sl->error : "no response");
		src_retry(s, reason);
		break;
	case VERDICT_AUTH:
		src_auth_refused(s, sl);
		break;
	case VERDICT_UPSTREAM:
	case VERDICT_FAIL:
		log_excerpt(sl->body, sl->len, 120, head, sizeof(head));
		snprintf(reason, sizeof(reason), "HTTP %ld from %s: %s",
		    sl->status, sl->url, head);
		if (v.action == VERDICT_UPSTREAM) {
			src_retry(s, reason);
			break;
		}
		log_error("source '%s': %s", s->conf->name, reason);
		src_pass_end(s, 0, reason, s->conf->poll_interval);
		break;
	case VERDICT_PAGE:	   /* src_read()'s, after the parse */
	case VERDICT_BAD_PAGE:	   /* ... */
	case VERDICT_RETRY_AFTER:  /* a 429 waits on arrival: no turn */
	case VERDICT_RATE_LIMITED: /* ... */
		break;
	}
}

static char *
dup_or_null(const char *p, int *oom)
{
	char *d;

	if (p == NULL)
		return NULL;
	if ((d = strdup(p)) == NULL)
		*oom = 1;
	return d;
}

/* Keep an answer until its page's turn. */
static int
slot_keep(struct pipe_slot *sl, const struct http_response *resp)
{
	int oom = 0;

	sl->status = resp->status;
	sl->len = resp->len;
	sl->retry_after = resp->retry_after;
	sl->too_large = resp->too_large;
	if ((sl->body = malloc(resp->len + 1)) == NULL)
		return -1;
	if (resp->len > 0)
		memcpy(sl->body, resp->body, resp->len);
	sl->body[resp->len] = '\0';
	sl->content_type = dup_or_null(resp->content_type, &oom);
	sl->error = dup_or_null(resp->error, &oom);
	sl->answered = 1;
	return oom ? -1 : 0;
}

/* http_done_cb of a page request: keep the answer, handle what is due. */
static void
src_answer_cb(void *arg, const struct http_response *resp)
{
	struct pipe_slot *sl = arg;
	struct src *s = sl->pl->owner;
	const struct verdict v = verdict_of(resp->status, resp->too_large,
	    resp->retry_after >= 0, VERDICT_UNREAD);

	sl->req = NULL;
	s->pass.rec.counts.requests++;
	src_note_clock(s, resp);
	if (v.action != VERDICT_PARSE)
		src_count(s, v);
	if (v.action == VERDICT_RETRY_AFTER ||
	    v.action == VERDICT_RATE_LIMITED) {
		src_rate_limited(s, sl,
		    v.action == VERDICT_RETRY_AFTER ? resp->retry_after : -1);
		return;
	}
	sl->unread = v.action == VERDICT_PARSE; /* counted when dropped */
	if (slot_keep(sl, resp) == -1) {
		/* asked for again: at once ahead of the cursor, after a
		 * retry's wait at it */
		pipe_hole(sl);
		if (sl == pipe_slot(&s->pipe, 0))
			src_retry(s, "out of memory keeping a page");
		else
			src_pump(s);
		return;
	}
	src_pump(s); /* takes the time it spends off the idle clocks */
}

/* What the pass's walk lets the pipeline ask for. */
static struct pipe_walk
src_pipe_walk(const struct src *s)
{
	const struct recheck *rc = &s->pass.rc;

	return (struct pipe_walk){
		.walk = &s->pass.walk,
		.recheck = s->state == SRC_RECHECK ? &rc->groups[rc->cur] :
						     NULL,
		.offset = s->st.walk_offset,
		.total = s->st.walk_total,
		.any_offset = s->conf->type->any_offset,
		.in_flight = s->conf->requests_in_flight,
	};
}

/* http sent_cb: the limiter counts the request from when it left. */
static void
slot_sent(void *arg)
{
	struct pipe_slot *sl = arg;
	struct src *s = sl->pl->owner;

	limit_sent(&s->limit, sl->decided, http_mono_now());
}

/* The options of every request of source c. */
static void
src_http_options(const struct conf_source *c, struct http_options *opt)
{
	opt->token = c->token;
	opt->timeout = c->request_timeout;
	opt->deadline = c->request_deadline;
	opt->proxy = c->proxy_mode == PROXY_ENV ? NULL :
	    c->proxy_mode == PROXY_URL		? c->proxy :
						  "";
	opt->max_body = SOURCE_MAX_BODY;
	opt->sent_cb = slot_sent;
}

/* Ask for the pages the window allows (pipe_next()), as soon as the
 * limiter does. */
static void
src_fill(struct src *s)
{
	const struct conf_source *c = s->conf;
	const struct pipe_walk pw = src_pipe_walk(s);
	struct http_options opt;
	struct pipe_slot *sl;
	enum pipe_next next;
	int64_t off;
	int i, limit, window = pipe_window(&pw);
	double delay, now;

	src_http_options(c, &opt);
	for (i = 0; src_may_ask(s) && i < window; i++) {
		if ((next = pipe_next(&s->pipe, &pw, i, &off, &limit, &sl)) ==
		    PIPE_SKIP)
			continue;
		if (next == PIPE_STOP)
			break;
		now = http_mono_now();
		if ((delay = limit_delay(&s->limit, now)) > 0) {
			src_arm(s, delay);
			break;
		}
		if (s->conf->type->page_url(c, off, limit, s->pass.walk.order,
			sl->url, sizeof(sl->url)) == -1) {
			if (i == 0)
				src_pass_end(s, 0, "page URL too long",
				    c->poll_interval);
			break;
		}
		limit_record(&s->limit, now);
		sl->offset = off;
		sl->limit = limit;
		sl->decided = now;
		sl->req = http_get(s->sync->http, sl->url, &opt, src_answer_cb,
		    sl);
		if (sl->req == NULL) {
			if (i == 0)
				src_retry(s, "cannot start a request");
			break;
		}
		pipe_asked(&s->pipe, i);
		log_debug("source '%s': GET %s", c->name, sl->url);
	}
}

/*
 * Handle the answers that are due, in the order of the walk, then ask for
 * what the window allows.  An answer ahead of the cursor that the walk no
 * longer wants (it stepped back, the page size changed) is dropped with
 * everything after it.
 */
void
src_pump(struct src *s)
{
	struct pipe_slot cur;
	int64_t stored;
	double t0 = http_mono_now();

	while (src_may_ask(s) && s->pipe.n > 0) {
		const struct pipe_walk pw = src_pipe_walk(s);

		if (!pipe_head_wanted(&s->pipe, &pw) ||
		    !pipe_slot(&s->pipe, 0)->answered)
			break;
		/* take its answer; the slot stays, a hole, until the page is
		 * stored (a retry asks for it there again) */
		pipe_take(&s->pipe, &cur);
		stored = s->pass.stored;
		src_process(s, &cur);
		pipe_clear(&cur);
		if (s->pass.stored != stored)
			pipe_advance(&s->pipe);
	}
	/* Parsing and writing pages blocks the loop: the requests in flight
	 * were not silent meanwhile, and the limiter's timer is armed next. */
	sync_was_busy(s->sync, t0);
	src_fill(s);
}
