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

#include <stddef.h>
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
	char *database_schema;	  /* PostgreSQL: the schema it owns */
	char *database_password;  /* database_password_file's or
				   * _credential's, or NULL (libpq's
				   * passfile); wiped when freed */
	int log_level;		  /* enum log_level */
	double history_retention; /* seconds of sync_runs kept; 0 = all */
	char *metrics_file;	  /* Prometheus textfile, or NULL */
	struct conf_source *sources;
	size_t nsources;
};

/*
 * The configuration keys: one row each in conf_keys[] (conf.c), which
 * drives parsing, the messages of `--check-config`, the defaults and what a
 * reload compares.  agentsyncd.conf(5) and README's Configuration table
 * list the same keys with the same defaults (tests/unit/test_conf_doc.c).
 */
enum conf_section {
	CONF_SECTION_DAEMON, /* [agentsyncd]: the value is in struct conf */
	CONF_SECTION_SOURCE  /* [source NAME]: in struct conf_source */
};

/* What a key's text is and where it goes (offset: its first field). */
enum conf_kind {
	CONF_KIND_DURATION,   /* double seconds, at least min */
	CONF_KIND_INT,	      /* int, min to max */
	CONF_KIND_PAGE_SIZE,  /* int, min to max; at least 2 where the
			      * adapter takes any offset */
	CONF_KIND_TYPE,	      /* const struct source_type *: an adapter */
	CONF_KIND_URL,	      /* base_url: char *; default by adapter */
	CONF_KIND_PROXY,      /* proxy_mode, and proxy in PROXY_URL mode */
	CONF_KIND_ORG_ID,     /* int64_t; required or refused by adapter */
	CONF_KIND_TOKEN_ENV,  /* the token_* keys: exactly one, read */
	CONF_KIND_TOKEN_FILE, /* into char *token */
	CONF_KIND_TOKEN_CREDENTIAL,
	CONF_KIND_TOKEN,
	CONF_KIND_RATE,	    /* rate_requests and rate_window; default by
			      * adapter */
	CONF_KIND_DATABASE, /* char *, not empty; a URI without secrets */
	CONF_KIND_SCHEMA,   /* char *: an identifier (database_schema) */
	CONF_KIND_DB_PASSWORD_FILE, /* into char *database_password */
	CONF_KIND_DB_PASSWORD_CREDENTIAL,
	CONF_KIND_LOG_LEVEL, /* int: enum log_level */
	CONF_KIND_METRICS    /* char * or NULL: a *.prom file */
};

/* What a reload does when the key's value changes. */
enum conf_reload {
	CONF_RELOAD_APPLY,   /* takes the new value */
	CONF_RELOAD_RESTART, /* restarts the source (conf_source_same: 0) */
	CONF_RELOAD_REFUSED  /* refuses the reload: restart the daemon */
};

struct conf_key {
	const char *name;
	enum conf_section section;
	enum conf_kind kind;
	size_t offset;	  /* offsetof the value in its struct */
	const char *dflt; /* as written in the file; NULL: none, or the
			   * adapter's (conf_key_default) */
	double min, max;  /* bounds of durations (min) and integers */
	enum conf_reload reload;
	const char *hint; /* durations: the "(...)" of "is not a
			   * duration"; NULL: examples of durations */
};

extern const struct conf_key conf_keys[];
extern const size_t conf_nkeys;

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

/*
 * 1 when a running source of configuration b may stay as it is under
 * configuration a: every key with CONF_RELOAD_RESTART has the same value
 * (the token compared, the proxy URL only in PROXY_URL mode); else 0.
 */
int conf_source_same(const struct conf_source *a, const struct conf_source *b);

/* The name of a key that differs between old and next and that a reload
 * may not change (CONF_RELOAD_REFUSED), or NULL. */
const char *conf_reload_refused(const struct conf *old,
    const struct conf *next);

/*
 * The default of key k for a source of adapter t (t may be NULL for keys
 * whose default does not depend on it), as written in the file ("60s",
 * "60/30s"), into buf.  Returns 1, or 0 when the key has no default
 * (required, off, or one of the token_* keys).
 */
int conf_key_default(const struct conf_key *k, const struct source_type *t,
    char *buf, size_t len);

/* 1 when name is a valid source name: 1-64 of A-Z a-z 0-9 _ . - */
int conf_source_name_ok(const char *name);

/* The adapter's name: "codegen", "cotool", ... */
const char *conf_type_name(const struct conf_source *src);

/* The section of conf named name, or NULL (also for a NULL name). */
const struct conf_source *conf_source_find(const struct conf *conf,
    const char *name);

#endif
