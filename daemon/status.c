/* SPDX-License-Identifier: ISC */
/*
 * status.c: agentsyncd --status [--json]: each source's state from the
 * database, judged as a monitoring plugin would (status.h).
 *
 * Everything printed came from the database, where upstream's text (an
 * error body, a content type) or another program's writes may hold escape
 * sequences: text goes through log_sanitize(), JSON through cJSON's
 * escaping.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "conf.h"
#include "log.h"
#include "source.h"
#include "status.h"
#include "store.h"

static const char *const health_names[] = { "OK", "WARNING", "CRITICAL",
	"UNKNOWN" };

struct status_ctx {
	const struct conf *conf;
	char *seen; /* per configured source: listed by the store */
	double now;
	int json;
	cJSON *sources;
	FILE *text; /* the blocks, printed after the verdict line */
	int worst;
	int judged[4];	  /* sources per health */
	char reason[600]; /* of the first source with the worst health */
};

/* s made safe for a terminal, in buf; NULL stays NULL. */
static const char *
tty_safe(const char *s, char *buf, size_t n)
{
	if (s == NULL)
		return NULL;
	snprintf(buf, n, "%s", s);
	log_sanitize(buf);
	return buf;
}

/* Seconds since a stored time (0 for one in the future: another host's
 * clock), or -1 when there is none. */
static double
age(const char *ts, double now)
{
	double t;

	if (ts == NULL || time_to_unix(ts, &t) == -1)
		return -1;
	return now > t ? now - t : 0;
}

/* The health of a configured source, and why (status.h). */
static int
judge(const struct source_status *ss, const struct conf_source *c, double now,
    char *why, size_t len)
{
	double stale = c->poll_interval * STATUS_STALE_POLLS, ok_age, prog_age,
	       act;
	char a[32];

	if (stale < STATUS_STALE_MIN)
		stale = STATUS_STALE_MIN;
	ok_age = age(ss->last_success_at, now);
	prog_age = age(ss->last_progress_at, now);
	act = ok_age < 0 ? prog_age :
	    prog_age < 0 ? ok_age :
			   fmin(ok_age, prog_age);
	if (!ss->has_state) {
		snprintf(why, len, "has not polled yet");
		return STATUS_WARNING;
	}
	if (ss->last_outcome != NULL &&
	    strcmp(ss->last_outcome, "failed") == 0) {
		if (ok_age >= 0 && ok_age <= stale) {
			log_duration(ok_age, 1, a, sizeof(a));
			snprintf(why, len,
			    "last pass failed (last success %s ago): %.300s", a,
			    ss->last_error != NULL ? ss->last_error : "?");
			return STATUS_WARNING;
		}
		snprintf(why, len, "last pass failed, no success %s: %.300s",
		    ok_age < 0 ? "yet" : "within the stale time",
		    ss->last_error != NULL ? ss->last_error : "?");
		return STATUS_CRITICAL;
	}
	if (act < 0) {
		/* its first pass is under way: nothing failed yet */
		snprintf(why, len, "no page written yet");
		return STATUS_WARNING;
	}
	if (act > stale) {
		log_duration(stale, 1, a, sizeof(a));
		snprintf(why, len,
		    "no success and no page written for more than %s", a);
		return STATUS_CRITICAL;
	}
	snprintf(why, len, "ok");
	return STATUS_OK;
}

static void
add_str(cJSON *o, const char *key, const char *v)
{
	if (v != NULL)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static const char *
walk_name(enum walk_mode m)
{
	return m == WALK_NONE ? NULL : walk_mode_name(m);
}

static void
json_source(struct status_ctx *x, const struct source_status *ss,
    const char *health, const char *why, const struct conf_source *c)
{
	cJSON *o = cJSON_CreateObject(), *w;

	if (o == NULL)
		return;
	add_str(o, "name", ss->source);
	add_str(o, "kind", ss->kind);
	cJSON_AddBoolToObject(o, "configured", ss->configured);
	add_str(o, "retired_at", ss->retired_at);
	add_str(o, "forgetting_since", ss->forgetting_since);
	add_str(o, "walked_by", ss->holder);
	add_str(o, "health", health);
	add_str(o, "health_reason", why);
	if (c != NULL)
		cJSON_AddNumberToObject(o, "poll_interval_seconds",
		    c->poll_interval);
	else
		cJSON_AddNullToObject(o, "poll_interval_seconds");
	cJSON_AddNumberToObject(o, "runs", (double)ss->runs);
	cJSON_AddNumberToObject(o, "runs_gone_upstream", (double)ss->runs_gone);
	cJSON_AddNumberToObject(o, "rejected_records", (double)ss->rejected);
	cJSON_AddBoolToObject(o, "backfill_done", ss->backfill_done);
	w = cJSON_AddObjectToObject(o, "walk");
	if (w != NULL) {
		add_str(w, "mode", walk_name(ss->walk_mode));
		if (ss->walk_mode != WALK_NONE) {
			cJSON_AddNumberToObject(w, "offset",
			    (double)ss->walk_offset);
			if (ss->walk_total >= 0)
				cJSON_AddNumberToObject(w, "upstream_total",
				    (double)ss->walk_total);
			else
				cJSON_AddNullToObject(w, "upstream_total");
		} else {
			cJSON_AddNullToObject(w, "offset");
			cJSON_AddNullToObject(w, "upstream_total");
		}
	}
	add_str(o, "high_water", ss->high_water);
	add_str(o, "last_success_at", ss->last_success_at);
	add_str(o, "last_progress_at", ss->last_progress_at);
	add_str(o, "last_pass_outcome", ss->last_outcome);
	add_str(o, "last_error", ss->last_error);
	add_str(o, "last_error_at", ss->last_error_at);
	if (ss->clock_skew.set)
		cJSON_AddNumberToObject(o, "clock_skew_seconds",
		    ss->clock_skew.v);
	else
		cJSON_AddNullToObject(o, "clock_skew_seconds");
	add_str(o, "next_poll_at", ss->next_poll_at);
	cJSON_AddItemToArray(x->sources, o);
}

static void
print_walk(FILE *f, const char *what, const struct source_status *ss)
{
	if (ss->walk_total < 0)
		fprintf(f, "  %s, %lld runs so far\n", what,
		    (long long)ss->walk_offset);
	else
		fprintf(f, "  %s, %lld of %lld\n", what,
		    (long long)ss->walk_offset, (long long)ss->walk_total);
}

/* orig's texts made safe for a terminal into ss, kept in b[0..9). */
static void
safe_status(const struct source_status *orig, struct source_status *ss,
    char (*b)[4096])
{
	ss->source = tty_safe(orig->source, b[0], sizeof(b[0]));
	ss->kind = tty_safe(orig->kind, b[1], sizeof(b[1]));
	ss->high_water = tty_safe(orig->high_water, b[2], sizeof(b[2]));
	ss->last_success_at = tty_safe(orig->last_success_at, b[3],
	    sizeof(b[3]));
	ss->last_error = tty_safe(orig->last_error, b[4], sizeof(b[4]));
	ss->last_error_at = tty_safe(orig->last_error_at, b[5], sizeof(b[5]));
	ss->next_poll_at = tty_safe(orig->next_poll_at, b[6], sizeof(b[6]));
	ss->retired_at = tty_safe(orig->retired_at, b[7], sizeof(b[7]));
	ss->forgetting_since = tty_safe(orig->forgetting_since, b[8],
	    sizeof(b[8]));
	ss->holder = tty_safe(orig->holder, b[10], sizeof(b[10]));
}

static void
text_source(FILE *f, const struct source_status *orig, const char *health,
    const char *why)
{
	struct source_status safe = *orig, *ss = &safe;
	char b[11][4096];

	safe_status(orig, ss, b);
	why = tty_safe(why, b[9], sizeof(b[9]));
	fprintf(f, "source '%s' (%s)\n", ss->source != NULL ? ss->source : "?",
	    ss->kind != NULL ? ss->kind : "?");
	fprintf(f, "  health:          %s%s%s\n", health,
	    strcmp(why, "ok") != 0 ? ": " : "",
	    strcmp(why, "ok") != 0 ? why : "");
	if (ss->forgetting_since != NULL)
		fprintf(f,
		    "  configured:      no; --forget-source interrupted (started %s): run it again to finish\n",
		    ss->forgetting_since);
	else if (!ss->configured)
		fprintf(f,
		    "  configured:      no (retired %s): the analysis views leave its runs out\n",
		    ss->retired_at != NULL ? ss->retired_at : "?");
	fprintf(f,
	    "  runs mirrored:   %lld (%lld gone upstream, %lld rejected items)\n",
	    (long long)ss->runs, (long long)ss->runs_gone,
	    (long long)ss->rejected);
	if (ss->backfill_done)
		fprintf(f, "  backfill:        complete\n");
	else if (ss->walk_mode == WALK_BACKFILL)
		print_walk(f, "backfill:        in progress", ss);
	else
		fprintf(f, "  backfill:        not started\n");
	if (ss->walk_mode == WALK_FULL)
		print_walk(f, "walk:            full", ss);
	else if (ss->walk_mode == WALK_INCREMENTAL)
		print_walk(f, "walk:            incremental", ss);
	fprintf(f, "  high-water mark: %s\n",
	    ss->high_water != NULL ? ss->high_water : "none");
	fprintf(f, "  last success:    %s\n",
	    ss->last_success_at != NULL ? ss->last_success_at : "never");
	if (ss->last_error != NULL)
		fprintf(f, "  last error:      %s: %s\n",
		    ss->last_error_at != NULL ? ss->last_error_at : "?",
		    ss->last_error);
	else
		fprintf(f, "  last error:      none\n");
	if (ss->clock_skew.set)
		fprintf(f,
		    "  clock:           this host is %.0f s %s upstream's (Date header)\n",
		    fabs(ss->clock_skew.v),
		    ss->clock_skew.v >= 0 ? "ahead of" : "behind");
	fprintf(f, "  next poll:       %s\n",
	    ss->next_poll_at != NULL ? ss->next_poll_at : "not scheduled");
	if (ss->holder != NULL)
		fprintf(f, "  walked by:       %s\n", ss->holder);
}

/* Count one judged source; remember the first reason of the worst. */
static void
tally(struct status_ctx *x, const char *name, int health, const char *why)
{
	x->judged[health]++;
	if (health > x->worst ||
	    (health == x->worst && x->reason[0] == '\0' &&
		health != STATUS_OK)) {
		x->worst = health;
		snprintf(x->reason, sizeof(x->reason), "source '%s': %s", name,
		    why);
	}
}

/* store_status_fn */
static void
status_cb(const struct source_status *ss, void *arg)
{
	struct status_ctx *x = arg;
	const struct conf_source *c;
	char why[512];
	const char *health;
	int h = -1;

	c = conf_source_find(x->conf, ss->source);
	if (c != NULL)
		x->seen[c - x->conf->sources] = 1;
	if (ss->forgetting_since != NULL) {
		h = STATUS_WARNING;
		snprintf(why, sizeof(why),
		    "an interrupted --forget-source: run it again");
	} else if (c == NULL || !ss->configured) {
		snprintf(why, sizeof(why), "retired: not in the configuration");
	} else {
		h = judge(ss, c, x->now, why, sizeof(why));
	}
	health = h < 0 ? "RETIRED" : health_names[h];
	if (h >= 0)
		tally(x, ss->source != NULL ? ss->source : "?", h, why);
	if (x->json)
		json_source(x, ss, health, why, c);
	else
		text_source(x->text, ss, health, why);
}

/* A configured source the database has never heard of. */
static void
status_unseen(struct status_ctx *x, const struct conf_source *c)
{
	struct source_status ss;

	memset(&ss, 0, sizeof(ss));
	ss.source = c->name;
	ss.kind = c->type->name;
	ss.configured = 1;
	ss.walk_total = -1;
	status_cb(&ss, x);
}

static void
verdict(struct status_ctx *x, char *buf, size_t len)
{
	int others;

	if (x->conf->nsources == 0 && x->worst <= STATUS_WARNING) {
		x->worst = STATUS_WARNING;
		snprintf(buf, len, "no [source NAME] configured");
		return;
	}
	if (x->worst == STATUS_OK) {
		snprintf(buf, len, "%d source%s ok", x->judged[STATUS_OK],
		    x->judged[STATUS_OK] == 1 ? "" : "s");
		return;
	}
	others = x->judged[STATUS_WARNING] + x->judged[STATUS_CRITICAL] - 1;
	if (others > 0)
		snprintf(buf, len, "%.500s (and %d more not ok)", x->reason,
		    others);
	else
		snprintf(buf, len, "%.500s", x->reason);
}

/* The --status --json document: root, whose "sources" are x's, with
 * the verdict summary.  Returns the exit status. */
static int
print_json(const struct status_ctx *x, cJSON *root, const char *summary,
    const char *database, FILE *out)
{
	char now[TS_LEN], *doc;

	time_format(x->now, now);
	add_str(root, "status", health_names[x->worst]);
	cJSON_AddNumberToObject(root, "exit_code", x->worst);
	add_str(root, "summary", summary);
	add_str(root, "database", database);
	add_str(root, "generated_at", now);
	cJSON_AddNumberToObject(root, "stale_after_poll_intervals",
	    STATUS_STALE_POLLS);
	cJSON_AddNumberToObject(root, "stale_after_at_least_seconds",
	    STATUS_STALE_MIN);
	cJSON_AddItemToObject(root, "sources", x->sources);
	doc = cJSON_Print(root);
	cJSON_Delete(root);
	if (doc == NULL)
		return status_unknown("out of memory", 1, out);
	fprintf(out, "%s\n", doc);
	cJSON_free(doc);
	return x->worst;
}

int
status_print(struct store *store, const struct conf *conf, const char *database,
    int json, FILE *out)
{
	struct status_ctx x;
	char summary[700], *text = NULL;
	size_t textlen = 0, i;
	cJSON *root = NULL;
	struct timespec ts;
	int n;

	memset(&x, 0, sizeof(x));
	x.conf = conf;
	x.json = json;
	clock_gettime(CLOCK_REALTIME, &ts);
	x.now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	x.seen = calloc(conf->nsources + 1, 1);
	if (x.seen == NULL)
		return status_unknown("out of memory", json, out);
	if (json) {
		root = cJSON_CreateObject();
		x.sources = cJSON_CreateArray();
		if (root == NULL || x.sources == NULL) {
			free(x.seen);
			cJSON_Delete(root);
			cJSON_Delete(x.sources);
			return status_unknown("out of memory", json, out);
		}
	} else if ((x.text = open_memstream(&text, &textlen)) == NULL) {
		free(x.seen);
		return status_unknown("out of memory", json, out);
	}
	n = store_status_each(store, status_cb, &x);
	for (i = 0; n >= 0 && i < conf->nsources; i++)
		if (!x.seen[i])
			status_unseen(&x, &conf->sources[i]);
	free(x.seen);
	if (x.text != NULL)
		fclose(x.text);
	if (n < 0) {
		free(text);
		cJSON_Delete(root);
		cJSON_Delete(x.sources);
		return status_unknown("cannot read the database", json, out);
	}
	verdict(&x, summary, sizeof(summary));
	if (!json) {
		log_sanitize(summary);
		fprintf(out, "agentsyncd %s - %s\n", health_names[x.worst],
		    summary);
		fputs(text != NULL ? text : "", out);
		free(text);
		return x.worst;
	}
	return print_json(&x, root, summary, database, out);
}

int
status_unknown(const char *why, int json, FILE *out)
{
	cJSON *root;
	char *doc = NULL;

	if (!json) {
		fprintf(out, "agentsyncd UNKNOWN - %s\n", why);
		return STATUS_UNKNOWN;
	}
	root = cJSON_CreateObject();
	if (root != NULL) {
		add_str(root, "status", "UNKNOWN");
		cJSON_AddNumberToObject(root, "exit_code", STATUS_UNKNOWN);
		add_str(root, "summary", why);
		cJSON_AddArrayToObject(root, "sources");
		doc = cJSON_Print(root);
		cJSON_Delete(root);
	}
	fprintf(out, "%s\n", doc != NULL ? doc : "{\"status\": \"UNKNOWN\"}");
	cJSON_free(doc);
	return STATUS_UNKNOWN;
}
