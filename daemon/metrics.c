/* SPDX-License-Identifier: ISC */
/*
 * metrics.c: the Prometheus text exposition format (version 0.0.4) into a
 * file for node_exporter's textfile collector.  See metrics.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

static const char *const req_names[NREQ_OUTCOMES] = {
	[REQ_OK] = "ok",
	[REQ_RATE_LIMITED] = "rate_limited",
	[REQ_CLIENT_ERROR] = "client_error",
	[REQ_SERVER_ERROR] = "server_error",
	[REQ_BAD_PAGE] = "bad_page",
	[REQ_TRANSPORT] = "transport_error",
};

/* A label value: source names are [A-Za-z0-9_.-] and kinds adapter
 * names, but escape as the format says all the same. */
static void
label(FILE *f, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void
head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(FILE *f, const char *name, const struct metrics_source *m,
    const char *extra_key, const char *extra_val, double v)
{
	fprintf(f, "%s{source=\"", name);
	label(f, m->name);
	if (extra_key != NULL && extra_val != NULL) {
		fprintf(f, "\",%s=\"", extra_key);
		label(f, extra_val);
	}
	fprintf(f, "\"} %.17g\n", v);
}

static const char *
req_name(int k)
{
	return req_names[k];
}

static const char *
pass_name(int k)
{
	return verdict_pass_name((enum pass_outcome)k);
}

/* Where a metric's value is in struct metrics_source, and its type. */
enum field {
	FIELD_DOUBLE,
	FIELD_INT,
	FIELD_INT64
};

/* When a source has a sample of the metric. */
enum when {
	ALWAYS,
	NOT_NEGATIVE, /* a value below 0 means none yet */
	SKEW_SET,     /* clock_skew_set */
};

/* The label a metric adds to source="...". */
enum label {
	NO_LABEL,
	BY_KIND,  /* kind="the source's adapter" */
	BY_HOLDER /* holder="HOST pid PID" */
};

/*
 * Every metric once, in the order of the file: name, type, help, its
 * value's place in struct metrics_source, when a source has one, and for
 * a counter by outcome how many there are (int64_t from off on) and
 * their names.
 */
struct metric {
	const char *name, *type, *help;
	size_t off;
	enum field field;
	enum when when;
	enum label label;
	int noutcomes;
	const char *(*outcome)(int k);
};

#define OFF(m) offsetof(struct metrics_source, m)
static const struct metric metrics[] = {
	{ "agentsyncd_runs", "gauge", "Runs mirrored (not gone upstream).",
	    OFF(runs), FIELD_INT64, NOT_NEGATIVE, BY_KIND, 0, NULL },
	{ "agentsyncd_last_success_timestamp_seconds", "gauge",
	    "When the last pass succeeded (unix time); absent before one did.",
	    OFF(last_success), FIELD_DOUBLE, NOT_NEGATIVE, 0, 0, NULL },
	{ "agentsyncd_last_progress_timestamp_seconds", "gauge",
	    "When the last page was written (unix time).", OFF(last_progress),
	    FIELD_DOUBLE, NOT_NEGATIVE, 0, 0, NULL },
	{ "agentsyncd_last_pass_success", "gauge",
	    "1 when the last pass succeeded, 0 when it failed.",
	    OFF(last_pass_ok), FIELD_INT, NOT_NEGATIVE, 0, 0, NULL },
	{ "agentsyncd_last_pass_duration_seconds", "gauge",
	    "How long the last pass took.", OFF(last_pass_seconds),
	    FIELD_DOUBLE, NOT_NEGATIVE, 0, 0, NULL },
	{ "agentsyncd_passes_total", "counter",
	    "Passes since the daemon started, by outcome.", OFF(passes),
	    FIELD_INT64, ALWAYS, 0, NPASS_OUTCOMES, pass_name },
	{ "agentsyncd_requests_total", "counter",
	    "Requests since the daemon started, by outcome.", OFF(requests),
	    FIELD_INT64, ALWAYS, 0, NREQ_OUTCOMES, req_name },
	{ "agentsyncd_http_429_total", "counter",
	    "HTTP 429 answers since the daemon started.", OFF(http_429),
	    FIELD_INT64, ALWAYS, 0, 0, NULL },
	{ "agentsyncd_retries_total", "counter",
	    "Pages fetched again since the daemon started.", OFF(retries),
	    FIELD_INT64, ALWAYS, 0, 0, NULL },
	{ "agentsyncd_rejected_records_total", "counter",
	    "Items set aside in rejected_records since the daemon started.",
	    OFF(rejected), FIELD_INT64, ALWAYS, 0, 0, NULL },
	{ "agentsyncd_backfill_progress_ratio", "gauge",
	    "Share of the first backfill done (1 when complete).",
	    OFF(backfill_ratio), FIELD_DOUBLE, ALWAYS, 0, 0, NULL },
	{ "agentsyncd_upstream_runs", "gauge",
	    "The run count upstream reported last.", OFF(upstream_total),
	    FIELD_INT64, NOT_NEGATIVE, 0, 0, NULL },
	{ "agentsyncd_next_poll_seconds", "gauge",
	    "Seconds from this file's writing to the next poll.",
	    OFF(next_poll_seconds), FIELD_DOUBLE, NOT_NEGATIVE, 0, 0, NULL },
	{ "agentsyncd_poll_interval_seconds", "gauge",
	    "The source's poll_interval.", OFF(poll_interval), FIELD_DOUBLE,
	    ALWAYS, 0, 0, NULL },
	{ "agentsyncd_clock_skew_seconds", "gauge",
	    "How far this host's clock is ahead of upstream's (Date header).",
	    OFF(clock_skew), FIELD_DOUBLE, SKEW_SET, 0, 0, NULL },
	{ "agentsyncd_source_held", "gauge",
	    "1 when this daemon walks the source, 0 when another daemon sharing the database does (holder names it).",
	    OFF(held), FIELD_INT, NOT_NEGATIVE, BY_HOLDER, 0, NULL },
};
#undef OFF

/* The value of metric m (its k-th outcome) for source s. */
static double
value(const struct metric *m, const struct metrics_source *s, int k)
{
	const char *p = (const char *)s + m->off;
	double d;
	int64_t i64;
	int i;

	switch (m->field) {
	case FIELD_DOUBLE:
		memcpy(&d, p, sizeof(d));
		return d;
	case FIELD_INT:
		memcpy(&i, p, sizeof(i));
		return i;
	default:
		memcpy(&i64, p + (size_t)k * sizeof(i64), sizeof(i64));
		return (double)i64;
	}
}

static void
write_metric(FILE *f, const struct metric *m, const struct metrics_source *s,
    size_t n)
{
	size_t i;
	int k;

	head(f, m->name, m->type, m->help);
	for (i = 0; i < n; i++) {
		for (k = 0; k < m->noutcomes; k++)
			sample(f, m->name, &s[i], "outcome", m->outcome(k),
			    value(m, &s[i], k));
		if (m->noutcomes > 0 ||
		    (m->when == NOT_NEGATIVE && value(m, &s[i], 0) < 0) ||
		    (m->when == SKEW_SET && !s[i].clock_skew_set))
			continue;
		sample(f, m->name, &s[i],
		    m->label == BY_KIND	      ? "kind" :
			m->label == BY_HOLDER ? "holder" :
						NULL,
		    m->label == BY_KIND ? s[i].kind : s[i].holder,
		    value(m, &s[i], 0));
	}
}

static void
write_all(FILE *f, const struct metrics_source *s, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		write_metric(f, &metrics[i], s, n);
}

/* The metrics into fd, made 0644 and fsync'ed; fd is closed either way.
 * 0, or -1 with errno set. */
static int
write_fd(int fd, const struct metrics_source *srcs, size_t n)
{
	FILE *f;
	int saved;

	/* readable by node_exporter's user whatever the daemon's umask */
	if (fchmod(fd, 0644) == -1 || (f = fdopen(fd, "w")) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	write_all(f, srcs, n);
	if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) == -1) {
		saved = errno;
		fclose(f);
		errno = saved;
		return -1;
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* fsync the directory that holds path: the rename is on disk. */
static int
sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int fd, rc, saved;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/*
 * A temporary of its own (mkostemp: O_EXCL, so nobody's file or symbolic
 * link is truncated or followed) in the target's directory, where rename
 * is atomic; fsync'ed before the rename and the directory after it, so a
 * crash leaves the old file or the new one, never an empty one.  Its name,
 * PATH.tmp.XXXXXX, never ends in .prom: node_exporter reads only those.
 */
int
metrics_write(const char *path, const struct metrics_source *srcs, size_t n)
{
	char tmp[PATH_MAX];
	int fd, saved;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd == -1)
		return -1;
	if (write_fd(fd, srcs, n) == -1 || rename(tmp, path) == -1) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		return -1;
	}
	return sync_dir(path);
}
