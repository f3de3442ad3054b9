/* SPDX-License-Identifier: ISC */
/*
 * conf_database.c: the keys of [agentsyncd] that say where the mirror is:
 * database (a file's path, or postgresql://HOST[:PORT]/DBNAME[?PARAMS],
 * libpq's URI, postgres:// too), database_schema, and the password of a
 * PostgreSQL database, read from database_password_file or
 * database_password_credential under the rules of the token_* keys.
 *
 * No secret in the configuration file: a URI with a password (in its
 * userinfo, password= or sslpassword=) is refused without echoing it, so
 * that the `database` value may be printed anywhere (logs, --status).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_int.h"
#include "store_columns.h"

int
conf_database_is_uri(const char *v)
{
	return strncmp(v, "postgresql://", 13) == 0 ||
	    strncmp(v, "postgres://", 11) == 0;
}

/* What secret the URI holds, or NULL. */
static const char *
uri_secret(const char *uri)
{
	const char *auth = strstr(uri, "://") + 3;
	size_t n = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', n), *q, *p;

	if (at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL)
		return "a password (user:PASSWORD@)";
	if ((q = strchr(uri, '?')) == NULL)
		return NULL;
	for (p = q + 1; *p != '\0'; p += strcspn(p, "&"), p += *p == '&') {
		if (strncasecmp(p, "password=", 9) == 0)
			return "a password (password=)";
		if (strncasecmp(p, "sslpassword=", 12) == 0)
			return "an sslpassword";
	}
	return NULL;
}

static void
database_value(struct ctx *ctx, const struct kv *kv, struct conf *conf)
{
	const char *v = kv->val != NULL ? kv->val : kv->key->dflt;
	const char *secret;

	if ((conf->database = strdup(v)) == NULL)
		conf_problem(ctx, kv->line, "out of memory");
	if (*v == '\0')
		conf_problem(ctx, kv->line, "%s is empty", kv->key->name);
	else if (conf_database_is_uri(v) && (secret = uri_secret(v)) != NULL) {
		/* the value is not echoed: it holds the secret */
		conf_problem(ctx, kv->line,
		    "database: the URI holds %s: refused (no password in the configuration file: use database_password_file, database_password_credential or libpq's passfile)",
		    secret);
		free(conf->database);
		conf->database = strdup("(refused)");
	}
}

static void
schema_value(struct ctx *ctx, const struct kv *kv, struct conf *conf)
{
	const char *v = kv->val != NULL ? kv->val : kv->key->dflt;

	if (!columns_identifier(v))
		conf_problem(ctx, kv->line,
		    "database_schema '%s' must be a plain name: a-z or _, then a-z, 0-9 or _, at most 63 bytes",
		    v);
	if ((conf->database_schema = strdup(v)) == NULL)
		conf_problem(ctx, kv->line, "out of memory");
}

static void
password_value(struct ctx *ctx, const struct kv *kv, struct conf *conf)
{
	if (kv->val == NULL)
		return;
	if (conf->database_password != NULL) {
		conf_problem(ctx, kv->line,
		    "database_password_file and database_password_credential: give one");
		return;
	}
	if (conf->database != NULL && !conf_database_is_uri(conf->database)) {
		conf_problem(ctx, kv->line,
		    "%s is for a PostgreSQL database (database = postgresql://...)",
		    kv->key->name);
		return;
	}
	conf->database_password = conf_read_password(ctx, kv->key->kind,
	    kv->val, kv->line);
}

int
conf_database_key(struct ctx *ctx, const struct kv *kv, struct conf *conf)
{
	switch (kv->key->kind) {
	case CONF_KIND_DATABASE:
		database_value(ctx, kv, conf);
		return 1;
	case CONF_KIND_SCHEMA:
		schema_value(ctx, kv, conf);
		return 1;
	case CONF_KIND_DB_PASSWORD_FILE:
	case CONF_KIND_DB_PASSWORD_CREDENTIAL:
		password_value(ctx, kv, conf);
		return 1;
	default:
		return 0;
	}
}

void
conf_database_free(struct conf *conf)
{
	if (conf->database_password != NULL) {
		explicit_bzero(conf->database_password,
		    strlen(conf->database_password));
		free(conf->database_password);
	}
	free(conf->database_schema);
	free(conf->database);
}
