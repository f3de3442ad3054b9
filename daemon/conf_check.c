/* SPDX-License-Identifier: ISC */
/*
 * conf_check.c: the checks of values that name something outside the file:
 * base_url and proxy URLs, the metrics file's directory, the database's
 * directory and the configuration file's own mode.
 *
 * It is not the parser: conf.c decides which key a value belongs to and
 * calls these once the whole file is read.  Each problem is reported with
 * conf_problem() as "FILE:LINE: message".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "source.h"

/* metrics_file: an absolute path of a *.prom file (node_exporter's
 * textfile collector reads only those) in a directory that exists. */
char *
conf_check_metrics_file(struct ctx *ctx, const char *v, int line)
{
	const char *slash = strrchr(v, '/');
	size_t len = strlen(v);
	char dir[PATH_MAX];
	struct stat sb;

	if (v[0] != '/' || len < 6 || strcmp(v + len - 5, ".prom") != 0 ||
	    len >= sizeof(dir) - 16) {
		conf_problem(ctx, line,
		    "metrics_file '%s' must be an absolute path ending in .prom (node_exporter's textfile collector reads only those)",
		    v);
		return NULL;
	}
	memcpy(dir, v, (size_t)(slash - v));
	dir[slash == v ? 1 : slash - v] = '\0';
	if (slash == v)
		dir[0] = '/';
	if (stat(dir, &sb) == -1) {
		conf_problem(ctx, line, "metrics_file '%s': directory '%s': %s",
		    v, dir, strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(sb.st_mode)) {
		conf_problem(ctx, line,
		    "metrics_file '%s': '%s' is not a directory", v, dir);
		return NULL;
	}
	return strdup(v);
}

/* A file that group or others may write lets them choose the database,
 * the hosts that get the tokens, and which tokens are read.  Its mode is
 * kept for token_inline(): that of the descriptor read, race-free. */
void
conf_check_mode(struct ctx *ctx)
{
	struct stat sb;

	if (fstat(fileno(ctx->in), &sb) == -1) {
		conf_problem(ctx, 0, "cannot stat: %s", strerror(errno));
		return;
	}
	ctx->mode = sb.st_mode;
	if ((sb.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		conf_problem(ctx, 0,
		    "refused: mode %04o lets group or others write it (run: chmod go-w %s)",
		    (unsigned)(sb.st_mode & 07777), ctx->path);
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

/* The host of base_url url, whose authority starts at rest, into host
 * (without the port): 0, or -1 with a problem reported. */
static int
url_host(struct ctx *ctx, int line, const char *url, const char *rest,
    char *host, size_t size)
{
	const char *slash = strchr(rest, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	char *rb, *colon;
	long long port;

	if (hlen == 0 || hlen >= size) {
		conf_problem(ctx, line, "base_url '%s' has no host", url);
		return -1;
	}
	memcpy(host, rest, hlen);
	host[hlen] = '\0';
	if (strchr(host, '@') != NULL) {
		conf_problem(ctx, line,
		    "base_url must not hold credentials (user@host); use a token_* key");
		return -1;
	}
	/* drop the port */
	if (host[0] == '[') {
		if ((rb = strchr(host, ']')) == NULL) {
			conf_problem(ctx, line, "base_url '%s' has a bad host",
			    url);
			return -1;
		}
		rb[1] = '\0';
	} else if ((colon = strchr(host, ':')) != NULL) {
		if (conf_parse_int(colon + 1, 1, 65535, &port) == -1) {
			conf_problem(ctx, line, "base_url '%s' has a bad port",
			    url);
			return -1;
		}
		*colon = '\0';
	}
	return 0;
}

/* Check base_url; returns a new string without trailing slashes, or NULL.
 * *loopback says whether its host is a loopback one. */
char *
conf_check_url(struct ctx *ctx, int line, const char *url, int *loopback)
{
	const char *rest;
	char host[256], *out;
	size_t len;
	int https;

	if (strlen(url) > SOURCE_MAX_BASE_URL) {
		conf_problem(ctx, line, "base_url is longer than %d bytes",
		    SOURCE_MAX_BASE_URL);
		return NULL;
	}
	https = strncasecmp(url, "https://", 8) == 0;
	if (!https && strncasecmp(url, "http://", 7) != 0) {
		conf_problem(ctx, line,
		    "base_url '%s' must start with https:// (http:// only for loopback hosts)",
		    url);
		return NULL;
	}
	rest = url + (https ? 8 : 7);
	if (strpbrk(url, "?# \t") != NULL) {
		conf_problem(ctx, line,
		    "base_url '%s' must have no query, fragment or spaces",
		    url);
		return NULL;
	}
	if (url_host(ctx, line, url, rest, host, sizeof(host)) == -1)
		return NULL;
	*loopback = loopback_host(host);
	if (!https && !*loopback) {
		conf_problem(ctx, line,
		    "base_url '%s': http:// is only allowed for loopback hosts; use https://",
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
void
conf_check_proxy(struct ctx *ctx, const struct kv *kv, int loopback,
    struct conf_source *s)
{
	static const char *const schemes[] = { "http://", "https://",
		"socks5://", "socks5h://" };
	const char *v = kv->val != NULL ? kv->val : kv->key->dflt, *host;
	int line = kv->line;
	size_t i;

	s->proxy_mode = PROXY_NONE;
	if (strcmp(v, "none") == 0 || loopback)
		return;
	if (strcmp(v, "env") == 0) {
		s->proxy_mode = PROXY_ENV;
		return;
	}
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncasecmp(v, schemes[i], strlen(schemes[i])) == 0)
			break;
	if (i == sizeof(schemes) / sizeof(schemes[0])) {
		conf_problem(ctx, line,
		    "proxy '%s' must be none, env, or a URL starting with http://, https://, socks5:// or socks5h://",
		    v);
		return;
	}
	host = v + strlen(schemes[i]);
	if (*host == '\0' || *host == '/' || strpbrk(v, " \t?#") != NULL ||
	    strlen(v) > SOURCE_MAX_BASE_URL) {
		conf_problem(ctx, line, "proxy '%s' is not a proxy URL", v);
		return;
	}
	if (strchr(host, '@') != NULL) {
		conf_problem(ctx, line,
		    "proxy URL must not hold credentials (user@host): agentsyncd does not support proxy authentication");
		return;
	}
	s->proxy = strdup(v);
	if (s->proxy == NULL)
		conf_problem(ctx, line, "out of memory");
	else
		s->proxy_mode = PROXY_URL;
}

/*
 * What can be known of the database before opening it: its directory
 * exists, an existing file is a regular file, and (when not root, e.g. as
 * the service's user under ExecReload=) both are writable.  Root can write
 * anything, so as root writability is left to the daemon's start.
 */
void
conf_check_database(struct ctx *ctx, const char *path, int line)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat sb;
	size_t n;

	if (*path == '\0' || conf_database_is_uri(path))
		return; /* a server's: nothing to find on this disk */
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof(dir)) {
			conf_problem(ctx, line, "database path is too long");
			return;
		}
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	if (stat(dir, &sb) == -1) {
		conf_problem(ctx, line, "database '%s': directory '%s': %s",
		    path, dir,
		    errno == ENOENT ? "does not exist" : strerror(errno));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		conf_problem(ctx, line,
		    "database '%s': '%s' is not a directory", path, dir);
		return;
	}
	if (stat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode))
			conf_problem(ctx, line,
			    "database '%s' is not a regular file", path);
		else if (geteuid() != 0 && access(path, R_OK | W_OK) == -1)
			conf_problem(ctx, line,
			    "database '%s' is not writable by this user: %s",
			    path, strerror(errno));
		return;
	}
	if (geteuid() != 0 && access(dir, W_OK | X_OK) == -1)
		conf_problem(ctx, line,
		    "database '%s': directory '%s' is not writable by this user: %s",
		    path, dir, strerror(errno));
}
