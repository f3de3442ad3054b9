/* SPDX-License-Identifier: ISC */
/*
 * stats.c: a source's counters, status text and pass log lines (stats.h).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "stats.h"

void
stats_init(struct stats *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->state_text, sizeof(m->state_text), "starting");
	m->last_pass_ok = -1;
	m->last_pass_seconds = -1;
	m->upstream_total = -1;
}

void
stats_request(struct stats *m, enum req_outcome outcome)
{
	m->requests[outcome]++;
}

void
stats_page(struct stats *m, int64_t total, double now)
{
	m->upstream_total = total;
	m->last_page = now;
}

void
stats_skew(struct stats *m, const char *name, double skew, double warn)
{
	if (fabs(skew) > warn && fabs(skew - m->warned_skew) > warn) {
		log_warnx(
		    "source '%s': this host's clock is %.0f s %s upstream's (its Date header); upstream's clock is used for its times",
		    name, fabs(skew), skew > 0 ? "ahead of" : "behind");
		m->warned_skew = skew;
	}
}

/* An idle poll that found nothing is debug; what changed, failures and
 * recoveries are info and above. */
static void
stats_pass_done(struct stats *m, const char *name, const struct stats_pass *p)
{
	const struct pass_counts *n = &p->rec->counts;
	char msg[512];

	if (m->failing > 0)
		log_info("source '%s': recovered after %d failed pass%s", name,
		    m->failing, m->failing == 1 ? "" : "es");
	snprintf(msg, sizeof(msg),
	    "source '%s': %s pass done: %lld requests, %lld pages, %lld new, %lld changed, %lld deleted, %lld rejected",
	    name, walk_mode_name(p->mode), (long long)n->requests,
	    (long long)n->pages, (long long)n->runs_new,
	    (long long)n->runs_changed, (long long)n->runs_deleted,
	    (long long)n->runs_rejected);
	if (store_pass_idle(p->rec))
		log_debug("%s", msg);
	else
		log_info("%s", msg);
	m->failing = 0;
	snprintf(m->state_text, sizeof(m->state_text),
	    "idle, %lld runs new, %lld changed, last sync %.8s",
	    (long long)n->runs_new, (long long)n->runs_changed, p->now + 11);
}

void
stats_pass_end(struct stats *m, const char *name, const struct stats_pass *p)
{
	int ok = p->outcome == PASS_SUCCEEDED;

	if (p->outcome == PASS_INTERRUPTED) {
		m->passes[PASS_INTERRUPTED] += p->was_active;
		return;
	}
	if (p->was_active) {
		m->last_pass_seconds = p->seconds;
		m->retries += p->rec->counts.retries;
		m->rejected += p->rec->counts.runs_rejected;
	}
	if (ok) {
		stats_pass_done(m, name, p);
	} else {
		m->failing++;
		snprintf(m->state_text, sizeof(m->state_text),
		    "failed at %.8s: %.100s", p->now + 11,
		    p->error != NULL ? p->error : "?");
	}
	m->passes[ok ? PASS_SUCCEEDED : PASS_FAILED]++;
	m->last_pass_ok = ok;
}

void
stats_orphaned(struct stats *m)
{
	snprintf(m->state_text, sizeof(m->state_text),
	    "stopped: renamed or forgotten in the database, reload");
}

void
stats_held(struct stats *m)
{
	if (m->holder[0] != '\0' && !m->standby)
		return; /* each pass: nothing to say again */
	if (m->standby)
		m->state_text[0] = '\0';
	m->standby = 0;
	store_holder_self(m->holder, sizeof(m->holder));
}

void
stats_standby(struct stats *m, const char *holder)
{
	m->standby = 1;
	snprintf(m->holder, sizeof(m->holder), "%s", holder);
	snprintf(m->state_text, sizeof(m->state_text),
	    "standing by: walked by %.100s", holder);
}

/* Runs so far, upstream's total, the share, the rate and an ETA. */
void
stats_progress(const char *name, enum walk_mode mode,
    const struct sync_state *st, int64_t off0, double t0, double now)
{
	double rate = (double)(st->walk_offset - off0) / (now - t0);
	char eta[32] = "?";

	if (rate > 0 && st->walk_total > st->walk_offset)
		log_duration((double)(st->walk_total - st->walk_offset) / rate,
		    2, eta, sizeof(eta));
	log_info(
	    "source '%s': %s: %lld of %lld runs (%.0f%%), %.0f runs/s, about %s left",
	    name, walk_mode_name(mode), (long long)st->walk_offset,
	    (long long)st->walk_total,
	    st->walk_total > 0 ?
		100.0 * (double)st->walk_offset / (double)st->walk_total :
		0.0,
	    rate, eta);
}

int
stats_status(const struct stats *m, char *buf, size_t len, const char *sep,
    const char *name, int mode, const struct sync_state *st)
{
	if (mode >= 0 && st->walk_total > 0 && mode != WALK_INCREMENTAL)
		return snprintf(buf, len, "%s%s: %s %lld of %lld runs (%.0f%%)",
		    sep, name, walk_mode_name((enum walk_mode)mode),
		    (long long)st->walk_offset, (long long)st->walk_total,
		    100.0 * (double)st->walk_offset / (double)st->walk_total);
	if (mode >= 0)
		return snprintf(buf, len, "%s%s: %s %lld runs", sep, name,
		    walk_mode_name((enum walk_mode)mode),
		    (long long)st->walk_offset);
	return snprintf(buf, len, "%s%s: %s", sep, name, m->state_text);
}

static double
backfill_ratio(const struct sync_state *st)
{
	if (st->backfill_done)
		return 1.0;
	if (st->walk_mode == WALK_BACKFILL && st->walk_total > 0)
		return fmin(1.0,
		    (double)st->walk_offset / (double)st->walk_total);
	return 0.0;
}

void
stats_metrics(const struct stats *m, struct metrics_source *out,
    const struct conf_source *c, const struct sync_state *st,
    const struct pass_counts *open, int64_t runs, double now)
{
	double t;

	out->name = c->name;
	out->kind = c->type->name;
	out->poll_interval = c->poll_interval;
	out->runs = runs;
	out->last_success = st->last_success_at[0] != '\0' &&
		time_to_unix(st->last_success_at, &t) == 0 ?
	    t :
	    -1;
	out->last_progress = m->last_page > 0 ? m->last_page : -1;
	out->last_pass_ok = m->last_pass_ok;
	out->last_pass_seconds = m->last_pass_seconds;
	memcpy(out->passes, m->passes, sizeof(out->passes));
	memcpy(out->requests, m->requests, sizeof(out->requests));
	out->http_429 = m->requests[REQ_RATE_LIMITED];
	out->retries = m->retries + (open != NULL ? open->retries : 0);
	out->rejected = m->rejected + (open != NULL ? open->runs_rejected : 0);
	out->backfill_ratio = backfill_ratio(st);
	out->upstream_total = m->upstream_total;
	out->next_poll_seconds = m->next_poll > 0 ?
	    fmax(0, m->next_poll - now) :
	    -1;
	out->clock_skew_set = st->clock_skew.set;
	out->clock_skew = st->clock_skew.v;
	out->held = m->holder[0] == '\0' ? -1 : !m->standby;
	out->holder = m->holder;
}
