/* SPDX-License-Identifier: ISC */
/*
 * store_rules.c: what every storage engine decides alike, written once.
 *
 * The schema-version judgement, what an upsert does with a run the mirror
 * holds (the page diff: a run byte for byte the same is not rewritten),
 * the walk mode of a stored name, an idle pass, and the warning about a
 * page stored with fields left out.  Pure (but for that one log line):
 * no database here, so a second engine uses them as they are and
 * tests/unit/test_store_rules.c runs them linked without SQLite, libev or
 * libcurl.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store_engine.h"

int
schema_judge(const char *path, int v, int known, enum schema_moment m,
    char *why, size_t len)
{
	if (len > 0)
		why[0] = '\0';
	if (v == known || (m == SCHEMA_BEFORE_WRITE && v < known))
		return 1;
	if (m == SCHEMA_BEFORE_WRITE)
		snprintf(why, len,
		    "database '%s' has schema version %d, newer than this agentsyncd knows (%d): refusing to touch it",
		    path, v, known);
	else if (m == SCHEMA_MIGRATED)
		snprintf(why, len,
		    "database '%s' is at schema version %d, expected %d", path,
		    v, known);
	else
		snprintf(why, len,
		    "database '%s' is at schema version %d, this agentsyncd knows %d%s",
		    path, v, known,
		    v < known ? " (run agentsyncd --migrate)" : "");
	return 0;
}

enum walk_mode
store_walk_mode_parse(const char *s)
{
	if (s == NULL)
		return WALK_NONE;
	if (strcmp(s, "backfill") == 0)
		return WALK_BACKFILL;
	if (strcmp(s, "incremental") == 0)
		return WALK_INCREMENTAL;
	if (strcmp(s, "full") == 0)
		return WALK_FULL;
	return WALK_NONE;
}

int
store_pass_idle(const struct store_pass *pass)
{
	const struct pass_counts *c = &pass->counts;

	return pass->mode == WALK_INCREMENTAL && c->runs_new == 0 &&
	    c->runs_changed == 0 && c->runs_deleted == 0 &&
	    c->runs_rejected == 0;
}

/* Unchanged: no write, unless a full walk must record the sighting or the
 * run came back after being marked gone. */
enum store_run_write
store_run_decide(int found, int same, int gone, int touch,
    struct pass_counts *c)
{
	c->runs_seen++;
	if (found && same)
		return touch || gone ? STORE_RUN_TOUCH : STORE_RUN_SKIP;
	if (found) {
		c->runs_changed++;
		return STORE_RUN_UPDATE;
	}
	c->runs_new++;
	return STORE_RUN_INSERT;
}

/* One line per page that stored runs with a field left out, naming the
 * first written (a run unchanged since is not written, so not named
 * again). */
void
store_log_page_problems(const char *source, const struct run *first, int64_t n)
{
	log_warnx(
	    "source '%s': %lld run%s stored with fields left out, e.g. run '%s': \"%s\" %s (see run_field_problems)",
	    source, (long long)n, n == 1 ? "" : "s", first->external_id,
	    first->problems[0].field, first->problems[0].problem);
}

void
store_holder_self(char *buf, size_t len)
{
	char host[64];

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, len, "%s pid %ld", host, (long)getpid());
}
