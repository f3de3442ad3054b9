/* SPDX-License-Identifier: ISC */
/*
 * conf.h: agentsyncd.conf -> struct conf.
 *
 * The file is INI, parsed with inih.  Every problem is reported as
 * "FILE:LINE: message" and parsing goes on, so one run of
 * `agentsyncd --check-config` lists them all.  Tokens are read here (from
 * the environment, a file or a systemd credential) so that a bad token
 * source is a configuration error, not a runtime surprise.
 */
#ifndef AGENTSYNCD_CONF_H
#define AGENTSYNCD_CONF_H

#include <stdint.h>
#include <stdio.h>

#define CONF_DEFAULT_PATH SYSCONFDIR "/agentsyncd/agentsyncd.conf"

struct source_type; /* source.h: the adapter of an API */

/* Most page requests of one source in flight at once. */
#define CONF_MAX_IN_FLIGHT 16

struct conf_source {
	char *name;			/* [source NAME] */
	const struct source_type *type; /* type = NAME of an adapter */
	char *base_url;			/* no trailing slash */
	int64_t org_id;	       /* where the adapter needs it; else -1 */
	char *token;	       /* the secret itself; never logged */
	char *token_origin;    /* "env CODEGEN_API_TOKEN", "file /x", ... */
	double poll_interval;  /* seconds */
	int page_size;	       /* 1..100 */
	int rate_requests;     /* rate_limit = N/WINDOW; 0 = no limit */
	double rate_window;    /* seconds */
	double refresh_window; /* seconds */
	double refresh_max_interval; /* seconds: re-check schedule's cap */
	double full_resync_interval; /* seconds; 0 = never */
	double backoff_initial;	     /* first retry wait, doubling */
	double backoff_max;	     /* cap of the retry wait */
	int max_retries;	 /* retries of one page before a pass fails */
	int max_pass_pages;	 /* pages one pass may fetch, whatever upstream
				 * says its total is */
	int requests_in_flight;	 /* page requests at once, 1..16 */
	double auth_backoff;	 /* wait after 401/403 */
	double request_timeout;	 /* connect and low-speed limit */
	double request_deadline; /* the whole of one request, seconds */
	enum conf_proxy {
		PROXY_NONE, /* proxy = none (default); loopback base_url */
		PROXY_ENV,  /* proxy = env: libcurl's *_proxy variables */
		PROXY_URL   /* proxy = URL */
	} proxy_mode;
	char *proxy; /* PROXY_URL: the URL; else NULL */
	int line;    /* line of the [source] header, for messages */
};

struct conf {
	char *path;		  /* the file read */
	char *database;		  /* relative paths are kept as written */
	int log_level;		  /* enum log_level */
	double history_retention; /* seconds of sync_runs kept; 0 = all */
	char *metrics_file;	  /* Prometheus textfile, or NULL */
	struct conf_source *sources;
	size_t nsources;
};

/* conf_load() flags */
#define CONF_NO_TOKENS \
	0x1 /* check the token_* keys, read no token
				 * (--status, --migrate: no request is made,
				 * and the service's credentials or
				 * environment are not there) */
#define CONF_CHECK_ONLY \
	0x2 /* --check-config: a token this process
				 * cannot reach (token_credential without
				 * $CREDENTIALS_DIRECTORY, an unset token_env)
				 * is a note, not a problem; token is "" */
#define CONF_CHECK_DATABASE \
	0x4 /* the database's directory exists, the
				 * file is a regular file, and both are
				 * writable (checked when not root) */

/*
 * Read and validate path.  On success return a new struct conf (caller frees
 * with conf_free()).  On failure print every problem to errf as
 * "FILE:LINE: message" (LINE is 0 for whole-file problems) and return NULL.
 * Notes ("FILE:LINE: note: ...") may be printed on success too.  Lines
 * printed to stderr carry their journal priority when stderr is the journal.
 * A file without any [source NAME] loads, with nsources 0.
 * With CONF_NO_TOKENS every source's token is "".
 */
struct conf *conf_load(const char *path, FILE *errf, int flags)
    __attribute__((warn_unused_result));
void conf_free(struct conf *conf);

/*
 * Parse a duration: "45", "45s", "5m", "2h", "1d" (also "250ms").  Returns 0
 * and sets *seconds, or -1 when the text is not a non-negative duration.
 */
int conf_parse_duration(const char *text, double *seconds)
    __attribute__((warn_unused_result));

/* 1 when name is a valid source name: 1-64 of A-Z a-z 0-9 _ . - */
int conf_source_name_ok(const char *name);

/* The adapter's name: "codegen", "cotool", ... */
const char *conf_type_name(const struct conf_source *src);

/* The section of conf named name, or NULL (also for a NULL name). */
const struct conf_source *conf_source_find(const struct conf *conf,
    const char *name);

#endif
