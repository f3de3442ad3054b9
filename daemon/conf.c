/* SPDX-License-Identifier: ISC */
/*
 * conf.c: agentsyncd.conf -> struct conf, with every problem reported as
 * "FILE:LINE: message".
 *
 * Debian's inih is built without INI_HANDLER_LINENO, so the line reader
 * handed to ini_parse_stream() counts lines itself; it also notes every
 * section header, because inih does not call the handler for a section
 * without keys, and a repeated header would otherwise merge silently.
 * Values are collected first and checked once the whole file is read, when
 * each source's type (and so its defaults) is known.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "buf.h"
#include "conf.h"
#include "log.h"
#include "source.h"

#define MAX_SOURCES  1024		/* [source NAME] sections in one file */
#define MAX_SECTIONS (MAX_SOURCES + 64) /* headers of any kind */
#define MAX_TOKEN    LOG_SECRET_MAX	/* log.c redacts up to this */
/* No API token is this short; a very short one would also turn every log
 * line's matching letters into '*' (log_redact), revealing it. */
#define MIN_TOKEN 16

enum skey {
	K_TYPE,
	K_BASE_URL,
	K_ORG_ID,
	K_TOKEN_ENV,
	K_TOKEN_FILE,
	K_TOKEN_CREDENTIAL,
	K_TOKEN,
	K_POLL_INTERVAL,
	K_PAGE_SIZE,
	K_RATE_LIMIT,
	K_REFRESH_WINDOW,
	K_REFRESH_MAX_INTERVAL,
	K_FULL_RESYNC_INTERVAL,
	K_BACKOFF_INITIAL,
	K_BACKOFF_MAX,
	K_MAX_RETRIES,
	K_AUTH_BACKOFF,
	K_REQUEST_TIMEOUT,
	K_REQUEST_DEADLINE,
	K_PROXY,
	K_MAX_PASS_PAGES,
	K_REQUESTS_IN_FLIGHT,
	NSKEYS
};

static const char *const skey_names[NSKEYS] = {
	"type",
	"base_url",
	"org_id",
	"token_env",
	"token_file",
	"token_credential",
	"token",
	"poll_interval",
	"page_size",
	"rate_limit",
	"refresh_window",
	"refresh_max_interval",
	"full_resync_interval",
	"backoff_initial",
	"backoff_max",
	"max_retries",
	"auth_backoff",
	"request_timeout",
	"request_deadline",
	"proxy",
	"max_pass_pages",
	"requests_in_flight",
};

struct raw_source {
	char *section; /* "source NAME" as written */
	int line;      /* of the header */
	char *val[NSKEYS];
	int vline[NSKEYS];
};

struct section {
	char name[128];
	int line;
};

struct ctx {
	const char *path;
	int flags; /* CONF_* */
	FILE *errf;
	FILE *in;
	char inbuf[4096]; /* in's stdio buffer: ours, to wipe */
	mode_t mode;	  /* of the file read (fstat), 0 when unknown */
	int lineno;
	int errors;
	struct section *sections; /* every header, in file order */
	size_t nsections, sections_cap;
	int too_many_sections;
	char *database;
	int database_line;
	char *log_level;
	int log_level_line;
	char *retention;
	int retention_line;
	char *metrics_file;
	int metrics_file_line;
	struct raw_source *raw;
	size_t nraw, raw_cap;
};

static void __attribute__((format(printf, 4, 0))) report(struct ctx *ctx,
    enum log_level level, int line, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Values from the file are quoted in messages: a control character
	 * in one must not break the one-line FILE:LINE: form, nor reach the
	 * terminal (log_sanitize: C0, C1, bytes that are not UTF-8). */
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = '?';
	log_sanitize(msg);
	/* Under systemd (ExecReload=, a failed start) the journal keeps the
	 * line's priority, so `journalctl -p err` shows why. */
	fprintf(ctx->errf, "%s%s:%d: %s%s\n",
	    ctx->errf == stderr ? log_journal_prefix(level) : "", ctx->path,
	    line, level == LOG_LEVEL_ERROR ? "" : "note: ", msg);
}

/* A problem: the file is refused. */
static void __attribute__((format(printf, 3, 4)))
problem(struct ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(ctx, LOG_LEVEL_ERROR, line, fmt, ap);
	va_end(ap);
	ctx->errors++;
}

/* Something --check-config cannot see from where it runs: said, not
 * counted as a problem. */
static void __attribute__((format(printf, 3, 4)))
note(struct ctx *ctx, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report(ctx, LOG_LEVEL_NOTICE, line, fmt, ap);
	va_end(ap);
}

int
conf_source_name_ok(const char *name)
{
	return *name != '\0' && strlen(name) <= 64 &&
	    strspn(name,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789_.-") == strlen(name);
}

const char *
conf_type_name(const struct conf_source *src)
{
	return src->type->name;
}

const struct conf_source *
conf_source_find(const struct conf *conf, const char *name)
{
	size_t i;

	if (name == NULL)
		return NULL;
	for (i = 0; i < conf->nsources; i++)
		if (strcmp(conf->sources[i].name, name) == 0)
			return &conf->sources[i];
	return NULL;
}

/* Remember a section header (inih does not call the handler for a
 * section without keys, and a repeated header would merge silently). */
static void
note_section(struct ctx *ctx, const char *line)
{
	const char *p = line, *end;
	struct section *sec;
	size_t len;

	while (isspace((unsigned char)*p))
		p++;
	if (*p != '[' || (end = strchr(p, ']')) == NULL)
		return;
	if (buf_grow((void **)&ctx->sections, &ctx->sections_cap,
		ctx->nsections + 1, sizeof(*ctx->sections),
		MAX_SECTIONS) == -1) {
		if (!ctx->too_many_sections)
			problem(ctx, ctx->lineno,
			    errno == E2BIG ? "more than %d sections" :
					     "out of memory (%d sections)",
			    MAX_SECTIONS);
		ctx->too_many_sections = 1;
		return;
	}
	sec = &ctx->sections[ctx->nsections++];
	len = (size_t)(end - p - 1);
	if (len >= sizeof(sec->name))
		len = sizeof(sec->name) - 1;
	memcpy(sec->name, p + 1, len);
	sec->name[len] = '\0';
	sec->line = ctx->lineno;
}

/*
 * ini_reader: one whole line a call, counted.  inih reads into a buffer of
 * num bytes; fgets would split a longer line and inih parse its tail as a
 * line of its own (a long inline token cut short, or its tail echoed in an
 * "unknown key" message).  Such a line is reported by length only, never
 * echoed, and handed to inih as an empty line.
 *
 * str is inih's line buffer (on its stack in Debian's build): it is wiped
 * before every line and at the end, so no inline token stays in it (inih
 * keeps only section and key names elsewhere).
 */
static char *
conf_reader(char *str, int num, void *stream)
{
	struct ctx *ctx = stream;
	char rest[512];
	size_t len, total, n;

	explicit_bzero(str, (size_t)num);
	if (fgets(str, num, ctx->in) == NULL)
		return NULL;
	ctx->lineno++;
	len = strlen(str);
	if ((len > 0 && str[len - 1] == '\n') || feof(ctx->in)) {
		note_section(ctx, str);
		return str;
	}
	total = len;
	while (fgets(rest, sizeof(rest), ctx->in) != NULL) {
		n = strlen(rest);
		total += n;
		if (n > 0 && rest[n - 1] == '\n') {
			total--;
			break;
		}
	}
	explicit_bzero(rest, sizeof(rest));
	if (total <= (size_t)num - 1) {
		/* only the newline was left: the line fits */
		note_section(ctx, str);
		return str;
	}
	explicit_bzero(str, len);
	problem(ctx, ctx->lineno, "line too long (%zu bytes, at most %d)",
	    total, num - 1);
	return str; /* "" */
}

static int
set_value(struct ctx *ctx, char **slot, int *lslot, const char *section,
    const char *name, const char *value)
{
	if (*slot != NULL) {
		problem(ctx, ctx->lineno,
		    "'%s' given twice in [%s] (first at "
		    "line %d)",
		    name, section, *lslot);
		return 1;
	}
	*slot = strdup(value);
	*lslot = ctx->lineno;
	if (*slot == NULL)
		problem(ctx, ctx->lineno, "out of memory");
	return 1;
}

static struct raw_source *
raw_for(struct ctx *ctx, const char *section)
{
	struct raw_source *r;
	size_t i, j;

	for (i = 0; i < ctx->nraw; i++)
		if (strcmp(ctx->raw[i].section, section) == 0)
			return &ctx->raw[i];
	if (buf_grow((void **)&ctx->raw, &ctx->raw_cap, ctx->nraw + 1,
		sizeof(*ctx->raw), MAX_SOURCES) == -1)
		return NULL;
	r = &ctx->raw[ctx->nraw];
	memset(r, 0, sizeof(*r));
	r->section = strdup(section);
	if (r->section == NULL)
		return NULL;
	r->line = ctx->lineno;
	for (j = 0; j < ctx->nsections; j++)
		if (strcmp(ctx->sections[j].name, section) == 0) {
			r->line = ctx->sections[j].line;
			break;
		}
	ctx->nraw++;
	return r;
}

/* metrics_file: an absolute path of a *.prom file (node_exporter's
 * textfile collector reads only those) in a directory that exists. */
static char *
check_metrics_file(struct ctx *ctx)
{
	const char *v = ctx->metrics_file;
	const char *slash = strrchr(v, '/');
	size_t len = strlen(v);
	char dir[PATH_MAX];
	struct stat sb;

	if (v[0] != '/' || len < 6 || strcmp(v + len - 5, ".prom") != 0 ||
	    len >= sizeof(dir) - 16) {
		problem(ctx, ctx->metrics_file_line,
		    "metrics_file '%s' must be an absolute path ending in "
		    ".prom (node_exporter's textfile collector reads only "
		    "those)",
		    v);
		return NULL;
	}
	memcpy(dir, v, (size_t)(slash - v));
	dir[slash == v ? 1 : slash - v] = '\0';
	if (slash == v)
		dir[0] = '/';
	if (stat(dir, &sb) == -1) {
		problem(ctx, ctx->metrics_file_line,
		    "metrics_file '%s': directory '%s': %s", v, dir,
		    strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(sb.st_mode)) {
		problem(ctx, ctx->metrics_file_line,
		    "metrics_file '%s': '%s' is not a directory", v, dir);
		return NULL;
	}
	return strdup(v);
}

/* A file that group or others may write lets them choose the database,
 * the hosts that get the tokens, and which tokens are read.  Its mode is
 * kept for token_inline(): that of the descriptor read, race-free. */
static void
check_conf_mode(struct ctx *ctx)
{
	struct stat sb;

	if (fstat(fileno(ctx->in), &sb) == -1) {
		problem(ctx, 0, "cannot stat: %s", strerror(errno));
		return;
	}
	ctx->mode = sb.st_mode;
	if ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		problem(ctx, 0,
		    "refused: mode %04o lets group or others write it "
		    "(run: chmod go-w %s)",
		    (unsigned)(sb.st_mode & 07777), ctx->path);
}

/* ini_handler */
static int
conf_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct ctx *ctx = user;
	struct raw_source *r;
	int k;

	if (strcmp(section, "agentsyncd") == 0) {
		if (strcmp(name, "database") == 0)
			return set_value(ctx, &ctx->database,
			    &ctx->database_line, section, name, value);
		if (strcmp(name, "log_level") == 0)
			return set_value(ctx, &ctx->log_level,
			    &ctx->log_level_line, section, name, value);
		if (strcmp(name, "history_retention") == 0)
			return set_value(ctx, &ctx->retention,
			    &ctx->retention_line, section, name, value);
		if (strcmp(name, "metrics_file") == 0)
			return set_value(ctx, &ctx->metrics_file,
			    &ctx->metrics_file_line, section, name, value);
		problem(ctx, ctx->lineno, "unknown key '%s' in [agentsyncd]",
		    name);
		return 1;
	}
	if (strncmp(section, "source ", 7) != 0)
		return 1; /* reported once, at its header */
	r = raw_for(ctx, section);
	if (r == NULL && errno == E2BIG) {
		problem(ctx, ctx->lineno,
		    "more than %d [source NAME] "
		    "sections",
		    MAX_SOURCES);
		return 1;
	}
	if (r == NULL) {
		problem(ctx, ctx->lineno, "out of memory");
		return 1;
	}
	for (k = 0; k < NSKEYS; k++)
		if (strcmp(name, skey_names[k]) == 0)
			return set_value(ctx, &r->val[k], &r->vline[k], section,
			    name, value);
	problem(ctx, ctx->lineno, "unknown key '%s' in [%s]", name, section);
	return 1;
}

int
conf_parse_duration(const char *text, double *seconds)
{
	char *end;
	double v, mult;

	if (text == NULL || !isdigit((unsigned char)*text))
		return -1;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || !isfinite(v) || v < 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mult = 1;
	else if (strcmp(end, "ms") == 0)
		mult = 0.001;
	else if (strcmp(end, "m") == 0)
		mult = 60;
	else if (strcmp(end, "h") == 0)
		mult = 3600;
	else if (strcmp(end, "d") == 0)
		mult = 86400;
	else
		return -1;
	v *= mult;
	if (v > 366.0 * 86400 * 100) /* a century is plenty */
		return -1;
	*seconds = v;
	return 0;
}

static int
parse_int(const char *text, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (text == NULL || !(isdigit((unsigned char)*text) || *text == '-'))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
loopback_host(const char *host)
{
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return 0;
}

/* Check base_url; returns a new string without trailing slashes, or NULL.
 * *loopback says whether its host is a loopback one. */
static char *
check_url(struct ctx *ctx, int line, const char *url, int *loopback)
{
	const char *rest, *slash;
	char host[256], *out;
	size_t len, hlen;
	int https;

	if (strlen(url) > SOURCE_MAX_BASE_URL) {
		problem(ctx, line, "base_url is longer than %d bytes",
		    SOURCE_MAX_BASE_URL);
		return NULL;
	}
	if (strncasecmp(url, "https://", 8) == 0) {
		https = 1;
		rest = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		https = 0;
		rest = url + 7;
	} else {
		problem(ctx, line,
		    "base_url '%s' must start with https:// "
		    "(http:// only for loopback hosts)",
		    url);
		return NULL;
	}
	if (strpbrk(url, "?# \t") != NULL) {
		problem(ctx, line,
		    "base_url '%s' must have no query, "
		    "fragment or spaces",
		    url);
		return NULL;
	}
	slash = strchr(rest, '/');
	hlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (hlen == 0 || hlen >= sizeof(host)) {
		problem(ctx, line, "base_url '%s' has no host", url);
		return NULL;
	}
	memcpy(host, rest, hlen);
	host[hlen] = '\0';
	if (strchr(host, '@') != NULL) {
		problem(ctx, line,
		    "base_url must not hold credentials "
		    "(user@host); use a token_* key");
		return NULL;
	}
	/* drop the port */
	if (host[0] == '[') {
		char *rb = strchr(host, ']');

		if (rb == NULL) {
			problem(ctx, line, "base_url '%s' has a bad host", url);
			return NULL;
		}
		rb[1] = '\0';
	} else if (strchr(host, ':') != NULL) {
		char *colon = strchr(host, ':');
		long long port;

		if (parse_int(colon + 1, 1, 65535, &port) == -1) {
			problem(ctx, line, "base_url '%s' has a bad port", url);
			return NULL;
		}
		*colon = '\0';
	}
	*loopback = loopback_host(host);
	if (!https && !*loopback) {
		problem(ctx, line,
		    "base_url '%s': http:// is only allowed "
		    "for loopback hosts; use https://",
		    url);
		return NULL;
	}
	out = strdup(url);
	if (out == NULL)
		return NULL;
	len = strlen(out);
	while (len > 0 && out[len - 1] == '/')
		out[--len] = '\0';
	return out;
}

/*
 * proxy = none | env | URL.  The default is none: libcurl would otherwise
 * take http_proxy, HTTPS_PROXY, ALL_PROXY from whatever environment the
 * daemon was started in, and hand the Authorization header to that host.
 * A loopback base_url is never proxied.  Through any proxy, an https://
 * base_url is tunnelled (CONNECT), so the token only travels inside TLS;
 * http:// base URLs are loopback ones, never proxied: no plain-text hop
 * carries a token.  Sets s->proxy_mode and, for PROXY_URL, s->proxy.
 */
static void
check_proxy(struct ctx *ctx, const struct raw_source *r, int loopback,
    struct conf_source *s)
{
	static const char *const schemes[] = { "http://", "https://",
		"socks5://", "socks5h://" };
	const char *v = r->val[K_PROXY], *host;
	int line = r->vline[K_PROXY];
	size_t i;

	s->proxy_mode = PROXY_NONE;
	if (v == NULL || strcmp(v, "none") == 0 || loopback)
		return;
	if (strcmp(v, "env") == 0) {
		s->proxy_mode = PROXY_ENV;
		return;
	}
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncasecmp(v, schemes[i], strlen(schemes[i])) == 0)
			break;
	if (i == sizeof(schemes) / sizeof(schemes[0])) {
		problem(ctx, line,
		    "proxy '%s' must be none, env, or a URL starting with "
		    "http://, https://, socks5:// or socks5h://",
		    v);
		return;
	}
	host = v + strlen(schemes[i]);
	if (*host == '\0' || *host == '/' || strpbrk(v, " \t?#") != NULL ||
	    strlen(v) > SOURCE_MAX_BASE_URL) {
		problem(ctx, line, "proxy '%s' is not a proxy URL", v);
		return;
	}
	if (strchr(host, '@') != NULL) {
		problem(ctx, line,
		    "proxy URL must not hold credentials (user@host): "
		    "agentsyncd does not support proxy authentication");
		return;
	}
	s->proxy = strdup(v);
	if (s->proxy == NULL)
		problem(ctx, line, "out of memory");
	else
		s->proxy_mode = PROXY_URL;
}

static int
token_ok(struct ctx *ctx, int line, const char *tok, const char *origin)
{
	const unsigned char *p;

	if (tok == NULL || *tok == '\0') {
		problem(ctx, line, "the token from %s is empty", origin);
		return -1;
	}
	if (strlen(tok) < MIN_TOKEN) {
		problem(ctx, line,
		    "the token from %s is shorter than %d bytes: not an API "
		    "token",
		    origin, MIN_TOKEN);
		return -1;
	}
	if (strlen(tok) > MAX_TOKEN) {
		problem(ctx, line,
		    "the token from %s is longer than %d "
		    "bytes",
		    origin, MAX_TOKEN);
		return -1;
	}
	for (p = (const unsigned char *)tok; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f) {
			problem(ctx, line,
			    "the token from %s holds spaces or "
			    "control characters",
			    origin);
			return -1;
		}
	return 0;
}

/*
 * Read the first line of a token file.  A token_file must be private to its
 * owner (a credential's mode is systemd's business): a token that group or
 * others can read is refused like an inline token in a readable file.
 */
static char *
read_token_file(struct ctx *ctx, int line, const char *path, const char *origin,
    int private)
{
	char buf[MAX_TOKEN + 2], iobuf[4096], *tok;
	struct stat sb;
	FILE *f;
	size_t len;

	f = fopen(path, "re");
	if (f == NULL) {
		problem(ctx, line, "cannot read %s: %s", origin,
		    strerror(errno));
		return NULL;
	}
	/* stdio's buffer would be malloc'ed and freed unwiped: ours is
	 * wiped below (nothing has been read into it before a return) */
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	if (fstat(fileno(f), &sb) == -1 || !S_ISREG(sb.st_mode)) {
		problem(ctx, line, "%s is not a regular file", origin);
		fclose(f);
		return NULL;
	}
	if (private && (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		problem(ctx, line,
		    "%s refused: its mode %04o lets group or others at it "
		    "(run: chmod 600 %s)",
		    origin, (unsigned)(sb.st_mode & 07777), path);
		fclose(f);
		return NULL;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	explicit_bzero(iobuf, sizeof(iobuf));
	len = strlen(buf);
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	tok = token_ok(ctx, line, buf, origin) == 0 ? strdup(buf) : NULL;
	explicit_bzero(buf, sizeof(buf)); /* either way */
	return tok;
}

static int
duration_key(struct ctx *ctx, struct raw_source *r, enum skey k, double dflt,
    double min, double *out)
{
	*out = dflt;
	if (r->val[k] == NULL)
		return 0;
	if (conf_parse_duration(r->val[k], out) == -1) {
		problem(ctx, r->vline[k],
		    "%s '%s' is not a duration (like "
		    "45, 45s, 250ms, 5m, 2h, 1d)",
		    skey_names[k], r->val[k]);
		return -1;
	}
	if (*out < min) {
		problem(ctx, r->vline[k], "%s must be at least %gs",
		    skey_names[k], min);
		return -1;
	}
	return 0;
}

/* token_env: the variable's value, or "" (noted) where it is not set
 * here and only --check-config is asked. */
static char *
token_from_env(struct ctx *ctx, const struct raw_source *r, int line,
    const char *v, const char *origin)
{
	const char *t = getenv(v);

	if ((t == NULL || *t == '\0') && (ctx->flags & CONF_CHECK_ONLY)) {
		note(ctx, line,
		    "token of [%s] not checked: environment "
		    "variable '%s' (token_env) is not set here; the service "
		    "must have it",
		    r->section, v);
		return strdup("");
	}
	if (t == NULL || *t == '\0') {
		problem(ctx, line,
		    "environment variable '%s' (token_env) is "
		    "not set or empty",
		    v);
		return NULL;
	}
	return token_ok(ctx, line, t, origin) == 0 ? strdup(t) : NULL;
}

/* token_credential: $CREDENTIALS_DIRECTORY/NAME, or "" (noted) outside
 * the service when only --check-config is asked. */
static char *
token_from_credential(struct ctx *ctx, const struct raw_source *r, int line,
    const char *v, const char *origin)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX];

	if (strchr(v, '/') != NULL || *v == '\0' || strcmp(v, ".") == 0 ||
	    strcmp(v, "..") == 0) {
		problem(ctx, line,
		    "token_credential '%s' must be a plain "
		    "name",
		    v);
		return NULL;
	}
	if ((dir == NULL || *dir == '\0') && (ctx->flags & CONF_CHECK_ONLY)) {
		note(ctx, line,
		    "token of [%s] not checked: token_credential "
		    "'%s' is read from $CREDENTIALS_DIRECTORY, which only the "
		    "service has (LoadCredential=)",
		    r->section, v);
		return strdup("");
	}
	if (dir == NULL || *dir == '\0') {
		problem(ctx, line,
		    "token_credential '%s': "
		    "CREDENTIALS_DIRECTORY is not set (use LoadCredential= in "
		    "the unit)",
		    v);
		return NULL;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, v) >=
	    sizeof(path)) {
		problem(ctx, line,
		    "token_credential '%s': the path in "
		    "$CREDENTIALS_DIRECTORY is too long",
		    v);
		return NULL;
	}
	return read_token_file(ctx, line, path, origin, 0);
}

/* token: the value itself, only from a file nobody else can read.  The
 * mode is the one of the file the token was read from (fstat before the
 * read), not whatever the path names by now. */
static char *
token_inline(struct ctx *ctx, int line, const char *v, const char *origin)
{
	if ((ctx->mode & (S_IRGRP | S_IROTH)) != 0) {
		problem(ctx, line,
		    "inline token refused: '%s' is readable by "
		    "group or others (chmod 600 it, or use token_credential / "
		    "token_file)",
		    ctx->path);
		return NULL;
	}
	return token_ok(ctx, line, v, origin) == 0 ? strdup(v) : NULL;
}

/* Exactly one token_* key, read into s->token (never logged). */
static void
finish_token(struct ctx *ctx, struct raw_source *r, struct conf_source *s)
{
	static const enum skey tk[] = { K_TOKEN_ENV, K_TOKEN_FILE,
		K_TOKEN_CREDENTIAL, K_TOKEN };
	char origin[PATH_MAX + 64];
	const char *v;
	int n = 0, line, errors = ctx->errors;
	size_t i;
	enum skey k = K_TOKEN;

	for (i = 0; i < sizeof(tk) / sizeof(tk[0]); i++)
		if (r->val[tk[i]] != NULL) {
			n++;
			k = tk[i];
		}
	if (n != 1) {
		problem(ctx, n == 0 ? r->line : r->vline[k],
		    n == 0 ? "[%s] needs a token: token_env, token_file, "
			     "token_credential or token" :
			     "[%s] has more than one "
			     "token_* key",
		    r->section);
		return;
	}
	v = r->val[k];
	line = r->vline[k];
	if (ctx->flags & CONF_NO_TOKENS) {
		s->token = strdup("");
		s->token_origin = strdup("(not read)");
		return;
	}
	switch (k) {
	case K_TOKEN_ENV:
		snprintf(origin, sizeof(origin), "environment variable %s", v);
		s->token = token_from_env(ctx, r, line, v, origin);
		break;
	case K_TOKEN_FILE:
		snprintf(origin, sizeof(origin), "token_file '%s'", v);
		s->token = read_token_file(ctx, line, v, origin, 1);
		break;
	case K_TOKEN_CREDENTIAL:
		snprintf(origin, sizeof(origin), "credential '%s'", v);
		s->token = token_from_credential(ctx, r, line, v, origin);
		break;
	default:
		snprintf(origin, sizeof(origin), "the inline token of [%s]",
		    r->section);
		s->token = token_inline(ctx, line, v, origin);
		break;
	}
	if (s->token == NULL && ctx->errors == errors)
		problem(ctx, line, "out of memory");
	if (s->token != NULL)
		s->token_origin = strdup(origin);
}

/* An integer key within [min, max], else dflt and a problem. */
static void
int_key(struct ctx *ctx, const struct raw_source *r, enum skey k, long long min,
    long long max, int dflt, int *out)
{
	long long v;

	*out = dflt;
	if (r->val[k] == NULL)
		return;
	if (parse_int(r->val[k], min, max, &v) == -1)
		problem(ctx, r->vline[k],
		    "%s '%s' must be an integer from %lld "
		    "to %lld",
		    skey_names[k], r->val[k], min, max);
	else
		*out = (int)v;
}

/*
 * page_size: 1..100, but at least 2 where the adapter takes any offset:
 * there each page after the first starts with the previous page's last
 * item (the drift check), so a page of one would hold only that item and
 * the walk would never move.
 */
static void
page_size_key(struct ctx *ctx, const struct raw_source *r,
    struct conf_source *s)
{
	long long v;

	if (s->type->any_offset &&
	    parse_int(r->val[K_PAGE_SIZE], 1, 1, &v) == 0) {
		s->page_size = 100;
		problem(ctx, r->vline[K_PAGE_SIZE],
		    "page_size '%s' must be an integer from 2 to 100 for %s "
		    "sources: each page repeats the last run of the page "
		    "before it, so a page of 1 would never move on",
		    r->val[K_PAGE_SIZE], s->type->name);
		return;
	}
	int_key(ctx, r, K_PAGE_SIZE, s->type->any_offset ? 2 : 1, 100, 100,
	    &s->page_size);
}

/* rate_limit = N/DURATION or off; the adapter's default otherwise. */
static void
rate_key(struct ctx *ctx, const struct raw_source *r, struct conf_source *s)
{
	const char *p = r->val[K_RATE_LIMIT], *slash;
	char num[32];
	long long v;
	double win;

	s->rate_requests = s->type->rate_requests;
	s->rate_window = s->type->rate_window;
	if (p == NULL)
		return;
	if (strcmp(p, "0") == 0 || strcmp(p, "off") == 0) {
		s->rate_requests = 0;
		s->rate_window = 0;
		return;
	}
	slash = strchr(p, '/');
	if (slash == NULL || (size_t)(slash - p) >= sizeof(num) ||
	    (memcpy(num, p, (size_t)(slash - p)), num[slash - p] = '\0',
		parse_int(num, 1, 100000, &v)) == -1 ||
	    conf_parse_duration(slash + 1, &win) == -1 || win <= 0) {
		problem(ctx, r->vline[K_RATE_LIMIT],
		    "rate_limit '%s' must be "
		    "REQUESTS/DURATION (like 60/30s) or off",
		    p);
		return;
	}
	s->rate_requests = (int)v;
	s->rate_window = win;
}

/* The section's name, its type (an adapter), base_url and org_id as the
 * adapter wants them.  Returns -1 when there is no usable type. */
static int
source_identity(struct ctx *ctx, const struct raw_source *r,
    struct conf_source *s)
{
	const char *name = r->section + 7, *t = r->val[K_TYPE], *p;
	char names[256];
	long long v;
	int loopback = 0;

	if (!conf_source_name_ok(name))
		problem(ctx, r->line,
		    "source name '%s' must be 1-64 of "
		    "A-Z a-z 0-9 _ . -",
		    name);
	s->name = strdup(name);
	source_type_names(names, sizeof(names));
	if (t == NULL) {
		problem(ctx, r->line, "[%s] has no 'type' (%s)", r->section,
		    names);
		return -1;
	}
	s->type = source_type_find(t);
	if (s->type == NULL) {
		problem(ctx, r->vline[K_TYPE], "unknown type '%s' (%s)", t,
		    names);
		return -1;
	}
	p = r->val[K_BASE_URL] != NULL ? r->val[K_BASE_URL] :
					 s->type->default_base_url;
	s->base_url = check_url(ctx,
	    r->val[K_BASE_URL] != NULL ? r->vline[K_BASE_URL] : r->line, p,
	    &loopback);
	check_proxy(ctx, r, loopback, s);
	if (!s->type->needs_org_id) {
		if (r->val[K_ORG_ID] != NULL)
			problem(ctx, r->vline[K_ORG_ID],
			    "org_id is not a key "
			    "of %s sources",
			    t);
	} else if (r->val[K_ORG_ID] == NULL) {
		problem(ctx, r->line, "[%s] is a %s source and needs org_id",
		    r->section, t);
	} else if (parse_int(r->val[K_ORG_ID], 1, INT64_MAX, &v) == -1) {
		problem(ctx, r->vline[K_ORG_ID],
		    "org_id '%s' is not a "
		    "positive integer",
		    r->val[K_ORG_ID]);
	} else {
		s->org_id = v;
	}
	return 0;
}

static void
finish_source(struct ctx *ctx, struct raw_source *r, struct conf_source *s)
{
	s->line = r->line;
	s->org_id = -1;
	if (source_identity(ctx, r, s) == -1)
		return;
	finish_token(ctx, r, s);
	duration_key(ctx, r, K_POLL_INTERVAL, 60, 1, &s->poll_interval);
	page_size_key(ctx, r, s);
	rate_key(ctx, r, s);
	duration_key(ctx, r, K_REFRESH_WINDOW, 86400, 0, &s->refresh_window);
	duration_key(ctx, r, K_REFRESH_MAX_INTERVAL, 300, 0.001,
	    &s->refresh_max_interval);
	duration_key(ctx, r, K_FULL_RESYNC_INTERVAL, 86400, 0,
	    &s->full_resync_interval);
	duration_key(ctx, r, K_BACKOFF_INITIAL, 1, 0.001, &s->backoff_initial);
	duration_key(ctx, r, K_BACKOFF_MAX, 300, 0.001, &s->backoff_max);
	if (s->backoff_max < s->backoff_initial)
		s->backoff_max = s->backoff_initial;
	int_key(ctx, r, K_MAX_RETRIES, 0, 1000, 5, &s->max_retries);
	int_key(ctx, r, K_MAX_PASS_PAGES, 1, 100000000, 100000,
	    &s->max_pass_pages);
	int_key(ctx, r, K_REQUESTS_IN_FLIGHT, 1, CONF_MAX_IN_FLIGHT, 4,
	    &s->requests_in_flight);
	duration_key(ctx, r, K_AUTH_BACKOFF, 900, 1, &s->auth_backoff);
	duration_key(ctx, r, K_REQUEST_TIMEOUT, 60, 1, &s->request_timeout);
	duration_key(ctx, r, K_REQUEST_DEADLINE, 120, 1, &s->request_deadline);
}

static void
ctx_release(struct ctx *ctx)
{
	size_t i;
	int k;

	for (i = 0; i < ctx->nraw; i++) {
		for (k = 0; k < NSKEYS; k++) {
			if (ctx->raw[i].val[k] != NULL && k == K_TOKEN)
				explicit_bzero(ctx->raw[i].val[k],
				    strlen(ctx->raw[i].val[k]));
			free(ctx->raw[i].val[k]);
		}
		free(ctx->raw[i].section);
	}
	free(ctx->raw);
	free(ctx->sections);
	free(ctx->database);
	free(ctx->log_level);
	free(ctx->retention);
	free(ctx->metrics_file);
}

/*
 * What can be known of the database before opening it: its directory
 * exists, an existing file is a regular file, and (when not root, e.g. as
 * the service's user under ExecReload=) both are writable.  Root can write
 * anything, so as root writability is left to the daemon's start.
 */
static void
check_database(struct ctx *ctx, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat sb;
	size_t n;

	if (*path == '\0')
		return;
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof(dir)) {
			problem(ctx, ctx->database_line,
			    "database path is "
			    "too long");
			return;
		}
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	if (stat(dir, &sb) == -1) {
		problem(ctx, ctx->database_line,
		    "database '%s': directory "
		    "'%s': %s",
		    path, dir,
		    errno == ENOENT ? "does not exist" : strerror(errno));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		problem(ctx, ctx->database_line,
		    "database '%s': '%s' is not "
		    "a directory",
		    path, dir);
		return;
	}
	if (stat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode))
			problem(ctx, ctx->database_line,
			    "database '%s' is not "
			    "a regular file",
			    path);
		else if (geteuid() != 0 && access(path, R_OK | W_OK) == -1)
			problem(ctx, ctx->database_line,
			    "database '%s' is not "
			    "writable by this user: %s",
			    path, strerror(errno));
		return;
	}
	if (geteuid() != 0 && access(dir, W_OK | X_OK) == -1)
		problem(ctx, ctx->database_line,
		    "database '%s': directory "
		    "'%s' is not writable by this user: %s",
		    path, dir, strerror(errno));
}

struct conf *
conf_load(const char *path, FILE *errf, int flags)
{
	struct ctx ctx;
	struct conf *conf;
	int rc, lvl;
	size_t n, i, j;

	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	ctx.flags = flags;
	ctx.errf = errf;
	ctx.in = fopen(path, "re");
	if (ctx.in == NULL) {
		fprintf(errf, "%s%s:0: cannot open: %s\n",
		    errf == stderr ? log_journal_prefix(LOG_LEVEL_ERROR) : "",
		    path, strerror(errno));
		return NULL;
	}
	/* stdio's buffer would hold the file (inline tokens too) freed
	 * unwiped: ours is wiped after fclose */
	setvbuf(ctx.in, ctx.inbuf, _IOFBF, sizeof(ctx.inbuf));
	conf = calloc(1, sizeof(*conf));
	if (conf != NULL)
		check_conf_mode(&ctx);
	if (conf == NULL) {
		fclose(ctx.in);
		explicit_bzero(ctx.inbuf, sizeof(ctx.inbuf));
		fprintf(errf, "%s%s:0: out of memory\n",
		    errf == stderr ? log_journal_prefix(LOG_LEVEL_ERROR) : "",
		    path);
		return NULL;
	}
	rc = ini_parse_stream(conf_reader, &ctx, conf_handler, &ctx);
	fclose(ctx.in);
	explicit_bzero(ctx.inbuf, sizeof(ctx.inbuf));
	if (rc > 0)
		problem(&ctx, rc,
		    "syntax error (expected [section], "
		    "key = value, or a comment)");
	else if (rc < 0)
		problem(&ctx, 0, "cannot parse the file");

	/* Sections: known names, each once. */
	for (i = 0; i < ctx.nsections; i++) {
		const char *name = ctx.sections[i].name;

		if (strcmp(name, "agentsyncd") != 0 &&
		    strncmp(name, "source ", 7) != 0)
			problem(&ctx, ctx.sections[i].line,
			    "unknown section "
			    "[%s] (expected [agentsyncd] or [source NAME])",
			    name);
		for (j = 0; j < i; j++)
			if (strcmp(ctx.sections[j].name, name) == 0) {
				problem(&ctx, ctx.sections[i].line,
				    "section "
				    "[%s] repeats the one at line %d",
				    name, ctx.sections[j].line);
				break;
			}
		/* a [source NAME] without keys still needs checking */
		if (strncmp(name, "source ", 7) == 0)
			(void)raw_for(&ctx, name);
	}

	conf->path = strdup(path);
	conf->database = strdup(ctx.database != NULL ? ctx.database :
						       "/var/lib/agentsyncd/"
						       "agentsyncd.db");
	if (ctx.database != NULL && ctx.database[0] == '\0')
		problem(&ctx, ctx.database_line, "database is empty");
	conf->log_level = LOG_LEVEL_INFO;
	if (ctx.log_level != NULL) {
		lvl = log_level_parse(ctx.log_level);
		if (lvl == -1)
			problem(&ctx, ctx.log_level_line,
			    "log_level '%s' must "
			    "be error, warning, info or debug",
			    ctx.log_level);
		else
			conf->log_level = lvl;
	}
	conf->history_retention = 90 * 86400.0;
	if (ctx.retention != NULL &&
	    conf_parse_duration(ctx.retention, &conf->history_retention) == -1)
		problem(&ctx, ctx.retention_line,
		    "history_retention '%s' is not a duration (0 keeps "
		    "everything)",
		    ctx.retention);
	if (ctx.metrics_file != NULL)
		conf->metrics_file = check_metrics_file(&ctx);
	if (flags & CONF_CHECK_DATABASE)
		check_database(&ctx, conf->database);
	/* No source is not an error: a fresh install idles until one is
	 * added (main.c says so); --once refuses it. */
	conf->sources = calloc(ctx.nraw ? ctx.nraw : 1, sizeof(*conf->sources));
	if (conf->sources == NULL) {
		problem(&ctx, 0, "out of memory");
	} else {
		for (n = 0; n < ctx.nraw; n++) {
			finish_source(&ctx, &ctx.raw[n], &conf->sources[n]);
			conf->nsources++;
		}
	}
	ctx_release(&ctx);
	if (ctx.errors > 0) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}

void
conf_free(struct conf *conf)
{
	size_t i;

	if (conf == NULL)
		return;
	for (i = 0; i < conf->nsources; i++) {
		struct conf_source *s = &conf->sources[i];

		if (s->token != NULL) {
			explicit_bzero(s->token, strlen(s->token));
			free(s->token);
		}
		free(s->name);
		free(s->base_url);
		free(s->proxy);
		free(s->token_origin);
	}
	free(conf->sources);
	free(conf->path);
	free(conf->database);
	free(conf->metrics_file);
	free(conf);
}
