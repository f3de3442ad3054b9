/* SPDX-License-Identifier: ISC */
/*
 * metrics.c: the Prometheus text exposition format (version 0.0.4) into a
 * file for node_exporter's textfile collector.  See metrics.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

static void
write_all(FILE *f, const struct metrics_source *s, size_t n)
{
	size_t i;
	int k;

	head(f, "agentsyncd_runs", "gauge",
	    "Runs mirrored (not gone upstream).");
	for (i = 0; i < n; i++)
		if (s[i].runs >= 0)
			sample(f, "agentsyncd_runs", &s[i], "kind", s[i].kind,
			    (double)s[i].runs);
	head(f, "agentsyncd_last_success_timestamp_seconds", "gauge",
	    "When the last pass succeeded (unix time); absent before one did.");
	for (i = 0; i < n; i++)
		if (s[i].last_success >= 0)
			sample(f, "agentsyncd_last_success_timestamp_seconds",
			    &s[i], NULL, NULL, s[i].last_success);
	head(f, "agentsyncd_last_progress_timestamp_seconds", "gauge",
	    "When the last page was written (unix time).");
	for (i = 0; i < n; i++)
		if (s[i].last_progress >= 0)
			sample(f, "agentsyncd_last_progress_timestamp_seconds",
			    &s[i], NULL, NULL, s[i].last_progress);
	head(f, "agentsyncd_last_pass_success", "gauge",
	    "1 when the last pass succeeded, 0 when it failed.");
	for (i = 0; i < n; i++)
		if (s[i].last_pass_ok >= 0)
			sample(f, "agentsyncd_last_pass_success", &s[i], NULL,
			    NULL, s[i].last_pass_ok);
	head(f, "agentsyncd_last_pass_duration_seconds", "gauge",
	    "How long the last pass took.");
	for (i = 0; i < n; i++)
		if (s[i].last_pass_seconds >= 0)
			sample(f, "agentsyncd_last_pass_duration_seconds",
			    &s[i], NULL, NULL, s[i].last_pass_seconds);
	head(f, "agentsyncd_passes_total", "counter",
	    "Passes since the daemon started, by outcome.");
	for (i = 0; i < n; i++)
		for (k = 0; k < NPASS_OUTCOMES; k++)
			sample(f, "agentsyncd_passes_total", &s[i], "outcome",
			    verdict_pass_name(k), (double)s[i].passes[k]);
	head(f, "agentsyncd_requests_total", "counter",
	    "Requests since the daemon started, by outcome.");
	for (i = 0; i < n; i++)
		for (k = 0; k < NREQ_OUTCOMES; k++)
			sample(f, "agentsyncd_requests_total", &s[i], "outcome",
			    req_names[k], (double)s[i].requests[k]);
	head(f, "agentsyncd_http_429_total", "counter",
	    "HTTP 429 answers since the daemon started.");
	for (i = 0; i < n; i++)
		sample(f, "agentsyncd_http_429_total", &s[i], NULL, NULL,
		    (double)s[i].http_429);
	head(f, "agentsyncd_retries_total", "counter",
	    "Pages fetched again since the daemon started.");
	for (i = 0; i < n; i++)
		sample(f, "agentsyncd_retries_total", &s[i], NULL, NULL,
		    (double)s[i].retries);
	head(f, "agentsyncd_rejected_records_total", "counter",
	    "Items set aside in rejected_records since the daemon started.");
	for (i = 0; i < n; i++)
		sample(f, "agentsyncd_rejected_records_total", &s[i], NULL,
		    NULL, (double)s[i].rejected);
	head(f, "agentsyncd_backfill_progress_ratio", "gauge",
	    "Share of the first backfill done (1 when complete).");
	for (i = 0; i < n; i++)
		sample(f, "agentsyncd_backfill_progress_ratio", &s[i], NULL,
		    NULL, s[i].backfill_ratio);
	head(f, "agentsyncd_upstream_runs", "gauge",
	    "The run count upstream reported last.");
	for (i = 0; i < n; i++)
		if (s[i].upstream_total >= 0)
			sample(f, "agentsyncd_upstream_runs", &s[i], NULL, NULL,
			    (double)s[i].upstream_total);
	head(f, "agentsyncd_next_poll_seconds", "gauge",
	    "Seconds from this file's writing to the next poll.");
	for (i = 0; i < n; i++)
		if (s[i].next_poll_seconds >= 0)
			sample(f, "agentsyncd_next_poll_seconds", &s[i], NULL,
			    NULL, s[i].next_poll_seconds);
	head(f, "agentsyncd_poll_interval_seconds", "gauge",
	    "The source's poll_interval.");
	for (i = 0; i < n; i++)
		sample(f, "agentsyncd_poll_interval_seconds", &s[i], NULL, NULL,
		    s[i].poll_interval);
	head(f, "agentsyncd_clock_skew_seconds", "gauge",
	    "How far this host's clock is ahead of upstream's (Date header).");
	for (i = 0; i < n; i++)
		if (s[i].clock_skew_set)
			sample(f, "agentsyncd_clock_skew_seconds", &s[i], NULL,
			    NULL, s[i].clock_skew);
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
