/* SPDX-License-Identifier: ISC */
/*
 * sync_conf.c: the sources a configuration sets up, at start and on
 * reload: all or nothing, unchanged sources untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync_int.h"

/* The running source of section c when c leaves it as it is, or NULL. */
static struct src *
src_unchanged(const struct sync *sync, const struct conf_source *c)
{
	struct src *s;

	for (s = sync->srcs; s != NULL; s = s->next)
		if (strcmp(s->conf->name, c->name) == 0 &&
		    conf_source_same(c, s->conf))
			return s;
	return NULL;
}

/* store_retired_fn: one warning per source the configuration lost. */
static void
warn_retired(const struct store_retired *r, void *arg)
{
	(void)arg;
	if (r->forgetting)
		log_warnx(
		    "source '%s' is half forgotten (%lld runs left): an agentsyncd --forget-source was interrupted; run 'agentsyncd --forget-source %s --yes' again to finish",
		    r->name, (long long)r->runs, r->name);
	else if (r->same_upstream != NULL)
		log_warnx(
		    "source '%s' (%lld runs) is not in the configuration, and [source %s] reads the same upstream (%s): 'agentsyncd --rename-source %s %s' would keep its history instead of a second backfill (README, \"Renaming a source\")",
		    r->name, (long long)r->runs, r->same_upstream,
		    r->identity != NULL ? r->identity : "?", r->name,
		    r->same_upstream);
	else
		log_warnx(
		    "source '%s' (%lld runs) is in the database but not in the configuration (retired %s): the analysis views leave its runs out; 'agentsyncd --forget-source %s --yes' deletes them",
		    r->name, (long long)r->runs,
		    r->retired_at != NULL ? r->retired_at : "now", r->name);
}

/* The sources table follows the configuration (start and reload). */
static int
sync_record_sources(struct sync *sync, const struct conf *conf)
{
	struct store_source *ss;
	char(*ident)[SRC_MAX_IDENTITY], now[TS_LEN];
	size_t i, n = conf->nsources;
	int rc;

	ss = malloc((n ? n : 1) * sizeof(*ss));
	ident = malloc((n ? n : 1) * sizeof(*ident));
	if (ss == NULL || ident == NULL) {
		free(ss);
		free(ident);
		log_error("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		const struct conf_source *c = &conf->sources[i];

		src_identity(c, ident[i], sizeof(ident[i]));
		ss[i].name = c->name;
		ss[i].kind = c->type->name;
		ss[i].identity = ident[i];
		ss[i].base_url = c->base_url;
		ss[i].org_id = c->type->needs_org_id ? c->org_id : -1;
	}
	wall_ts(now, 0);
	rc = writer_sources_sync(sync->writer, ss, n, now, warn_retired, NULL);
	free(ss);
	free(ident);
	return rc;
}

static void
src_list_free(struct src *s)
{
	struct src *next;

	for (; s != NULL; s = next) {
		next = s->next;
		src_free(s);
	}
}

/* The new sources of conf (a new or changed section), made while nothing
 * running is touched; -1 when one cannot be (none is kept then). */
static int
sync_make_new(struct sync *sync, const struct conf *conf, struct src **added)
{
	struct src *s, **tail = added;
	size_t i;

	*added = NULL;
	for (i = 0; i < conf->nsources; i++) {
		if (src_unchanged(sync, &conf->sources[i]) != NULL)
			continue;
		if ((s = src_new(sync, &conf->sources[i])) == NULL) {
			src_list_free(*added);
			*added = NULL;
			return -1;
		}
		*tail = s;
		tail = &s->next;
	}
	return 0;
}

/* Keep and repoint the running sources conf leaves as they are, stop what
 * changed or went (its progress is in the database): the sources kept. */
static struct src *
sync_keep(struct sync *sync, const struct conf *conf)
{
	struct src *s, *next, *kept = NULL, **ktail = &kept;
	const struct conf_source *c;

	for (s = sync->srcs; s != NULL; s = next) {
		next = s->next;
		c = conf_source_find(conf, s->conf->name);
		if (c != NULL && conf_source_same(c, s->conf)) {
			/* Everything that points into the old file now
			 * points into the new one: the caller frees the old. */
			s->conf = c;
			s->pass.rec.source = c->name;
			s->pass.rec.kind = c->type->name;
			s->next = NULL;
			if (s->state == SRC_ORPHANED) {
				/* still configured under the name whose rows
				 * went: it starts over, as a new source */
				s->state = SRC_NEW;
				src_arm(s, 0);
			}
			*ktail = s;
			ktail = &s->next;
			continue;
		}
		log_info("source '%s': %s", s->conf->name,
		    c != NULL ? "configuration changed, restarting it" :
				"removed");
		src_stop(s);
		if (c == NULL) /* another daemon may take it */
			writer_release(sync->writer, s->conf->name);
		src_free(s);
	}
	return kept;
}

int
sync_configure(struct sync *sync, const struct conf *conf)
{
	struct src *s, *added, **tail;

	/* All or nothing: first make every source that can fail to be made,
	 * so that a failure leaves the running configuration whole. */
	if (sync_make_new(sync, conf, &added) == -1)
		return -1;
	if (sync_record_sources(sync, conf) == -1) {
		src_list_free(added);
		return -1;
	}
	/* Then what cannot fail. */
	sync->srcs = sync_keep(sync, conf);
	for (tail = &sync->srcs; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = added;
	for (s = added; s != NULL; s = s->next)
		src_arm(s, 0);
	sync->metrics_file = conf->metrics_file;
	sync->metrics_errno = 0;
	sync_write_metrics(sync);
	return 0;
}
