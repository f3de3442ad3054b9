/* SPDX-License-Identifier: ISC */
/*
 * conf_token.c: the token of a [source NAME], from exactly one of
 * token_env, token_file, token_credential or an inline token, each checked
 * for what an API token must look like, read without leaving a copy in a
 * stdio buffer.
 *
 * It is not the parser (conf.c decides which key is given, and that there
 * is one) and never logs a token: messages name where it came from.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "conf_int.h"
#include "log.h"

#define MAX_TOKEN LOG_SECRET_MAX /* log.c redacts up to this */
/* No API token is this short; a very short one would also turn every log
 * line's matching letters into '*' (log_redact), revealing it. */
#define MIN_TOKEN 16

static int
token_ok(struct ctx *ctx, int line, const char *tok, const char *origin)
{
	const unsigned char *p;

	if (tok == NULL || *tok == '\0') {
		conf_problem(ctx, line, "the token from %s is empty", origin);
		return -1;
	}
	if (strlen(tok) < MIN_TOKEN) {
		conf_problem(ctx, line,
		    "the token from %s is shorter than %d bytes: not an API token",
		    origin, MIN_TOKEN);
		return -1;
	}
	if (strlen(tok) > MAX_TOKEN) {
		conf_problem(ctx, line,
		    "the token from %s is longer than %d bytes", origin,
		    MAX_TOKEN);
		return -1;
	}
	for (p = (const unsigned char *)tok; *p != '\0'; p++)
		if (*p <= ' ' || *p == 0x7f) {
			conf_problem(ctx, line,
			    "the token from %s holds spaces or control characters",
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
		conf_problem(ctx, line, "cannot read %s: %s", origin,
		    strerror(errno));
		return NULL;
	}
	/* stdio's buffer would be malloc'ed and freed unwiped: ours is
	 * wiped below (nothing has been read into it before a return) */
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	if (fstat(fileno(f), &sb) == -1 || !S_ISREG(sb.st_mode)) {
		conf_problem(ctx, line, "%s is not a regular file", origin);
		fclose(f);
		return NULL;
	}
	if (private && (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		conf_problem(ctx, line,
		    "%s refused: its mode %04o lets group or others at it (run: chmod 600 %s)",
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

/* token_env: the variable's value, or "" (noted) where it is not set
 * here and only --check-config is asked. */
static char *
token_from_env(struct ctx *ctx, const char *section, int line, const char *v,
    const char *origin)
{
	const char *t = getenv(v);

	if ((t == NULL || *t == '\0') && (ctx->flags & CONF_CHECK_ONLY)) {
		conf_note(ctx, line,
		    "token of [%s] not checked: environment variable '%s' (token_env) is not set here; the service must have it",
		    section, v);
		return strdup("");
	}
	if (t == NULL || *t == '\0') {
		conf_problem(ctx, line,
		    "environment variable '%s' (token_env) is not set or empty",
		    v);
		return NULL;
	}
	return token_ok(ctx, line, t, origin) == 0 ? strdup(t) : NULL;
}

/* token_credential: $CREDENTIALS_DIRECTORY/NAME, or "" (noted) outside
 * the service when only --check-config is asked. */
static char *
token_from_credential(struct ctx *ctx, const char *section, int line,
    const char *v, const char *origin)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[PATH_MAX];

	if (strchr(v, '/') != NULL || *v == '\0' || strcmp(v, ".") == 0 ||
	    strcmp(v, "..") == 0) {
		conf_problem(ctx, line,
		    "token_credential '%s' must be a plain name", v);
		return NULL;
	}
	if ((dir == NULL || *dir == '\0') && (ctx->flags & CONF_CHECK_ONLY)) {
		conf_note(ctx, line,
		    "token of [%s] not checked: token_credential '%s' is read from $CREDENTIALS_DIRECTORY, which only the service has (LoadCredential=)",
		    section, v);
		return strdup("");
	}
	if (dir == NULL || *dir == '\0') {
		conf_problem(ctx, line,
		    "token_credential '%s': CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)",
		    v);
		return NULL;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, v) >=
	    sizeof(path)) {
		conf_problem(ctx, line,
		    "token_credential '%s': the path in $CREDENTIALS_DIRECTORY is too long",
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
		conf_problem(ctx, line,
		    "inline token refused: '%s' is readable by group or others (chmod 600 it, or use token_credential / token_file)",
		    ctx->path);
		return NULL;
	}
	return token_ok(ctx, line, v, origin) == 0 ? strdup(v) : NULL;
}

int
conf_is_token_kind(enum conf_kind kind)
{
	return kind == CONF_KIND_TOKEN_ENV || kind == CONF_KIND_TOKEN_FILE ||
	    kind == CONF_KIND_TOKEN_CREDENTIAL || kind == CONF_KIND_TOKEN;
}

void
conf_read_token(struct ctx *ctx, const char *section, enum conf_kind kind,
    const char *v, int line, struct conf_source *s)
{
	char origin[PATH_MAX + 64];

	switch (kind) {
	case CONF_KIND_TOKEN_ENV:
		snprintf(origin, sizeof(origin), "environment variable %s", v);
		s->token = token_from_env(ctx, section, line, v, origin);
		break;
	case CONF_KIND_TOKEN_FILE:
		snprintf(origin, sizeof(origin), "token_file '%s'", v);
		s->token = read_token_file(ctx, line, v, origin, 1);
		break;
	case CONF_KIND_TOKEN_CREDENTIAL:
		snprintf(origin, sizeof(origin), "credential '%s'", v);
		s->token = token_from_credential(ctx, section, line, v, origin);
		break;
	default:
		snprintf(origin, sizeof(origin), "the inline token of [%s]",
		    section);
		s->token = token_inline(ctx, line, v, origin);
		break;
	}
	if (s->token != NULL)
		s->token_origin = strdup(origin);
}

char *
conf_read_password(struct ctx *ctx, enum conf_kind kind, const char *v,
    int line)
{
	char origin[PATH_MAX + 64];

	if (kind == CONF_KIND_DB_PASSWORD_FILE) {
		snprintf(origin, sizeof(origin), "database_password_file '%s'",
		    v);
		return read_token_file(ctx, line, v, origin, 1);
	}
	snprintf(origin, sizeof(origin), "database_password_credential '%s'",
	    v);
	return token_from_credential(ctx, "agentsyncd", line, v, origin);
}
