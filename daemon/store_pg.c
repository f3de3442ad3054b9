/* SPDX-License-Identifier: ISC */
/*
 * store_pg.c: the PostgreSQL engine behind store.h (store_pg_engine):
 * connect (libpq's URI, keepalives by default), set the session (the
 * schema the daemon owns, UTC), check the schema is agentsyncd's, migrate
 * it under an advisory lock, prepare the page path's statements, close.
 *
 * A server that is down when the daemon starts does not stop it: the
 * store opens unconnected and every call tries again, with backoff
 * (store_pg_sql.c).  What a page, a pass or a command writes is in the
 * other store_pg_*.c files (store_pg.h says which).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store_pg.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

#include "pg_migrations.h"

#define NPGMIGRATIONS ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

/* The newest contract version these migrations reach: numbered as
 * SQLite's, so the last is SQLite's count (a test holds them equal). */
static int
pg_known_version(void)
{
	return pg_migrations[NPGMIGRATIONS - 1].version;
}

/*
 * Defaults an operator who runs PostgreSQL expects of a daemon that must
 * notice a dead server within seconds (README "Operations"); each can be
 * overridden in the URI, which comes after them.  keepalives_idle 10 s,
 * then 3 probes 5 s apart; tcp_user_timeout 20 s for unacknowledged data.
 */
static const char *const conn_keys[] = { "keepalives", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"connect_timeout", "application_name" };
static const char *const conn_defaults[] = { "1", "10", "5", "3", "20000", "10",
	"agentsyncd" };
#define NCONNDEFAULTS (sizeof(conn_keys) / sizeof(conn_keys[0]))

/* 1 when the keyword is one of the URI's secrets. */
static int
secret_key(const char *k)
{
	return strcmp(k, "password") == 0 || strcmp(k, "sslpassword") == 0;
}

/* The URI parses and holds no secret: 0, else -1 (logged, without it). */
static int
uri_check(const char *uri)
{
	PQconninfoOption *opts, *o;
	char *err = NULL;
	int rc = 0;

	if ((opts = PQconninfoParse(uri, &err)) == NULL) {
		log_error("database URI is not valid: %.*s",
		    err != NULL ? (int)strcspn(err, "\n") : 13,
		    err != NULL ? err : "out of memory");
		PQfreemem(err);
		return -1;
	}
	for (o = opts; o->keyword != NULL; o++)
		if (secret_key(o->keyword) && o->val != NULL) {
			log_error(
			    "database URI holds a %s: refusing it (use database_password_file, database_password_credential or libpq's passfile)",
			    o->keyword);
			rc = -1;
		}
	PQconninfoFree(opts);
	return rc;
}

/* Start the connection: the defaults, the URI, the password. */
static void
pg_connect(struct pg_store *store)
{
	const char *keys[NCONNDEFAULTS + 3], *vals[NCONNDEFAULTS + 3];
	size_t i, n = 0;

	for (i = 0; i < NCONNDEFAULTS; i++, n++) {
		keys[n] = conn_keys[i];
		vals[n] = conn_defaults[i];
	}
	keys[n] = "dbname";
	vals[n++] = store->uri;
	if (store->password != NULL) {
		keys[n] = "password";
		vals[n++] = store->password;
	}
	keys[n] = NULL;
	vals[n] = NULL;
	store->conn = PQconnectdbParams(keys, vals, 1);
}

/* The connection's value of a libpq keyword, or def. */
static const char *
conn_value(PGconn *conn, const char *key, const char *def,
    PQconninfoOption *opts)
{
	PQconninfoOption *o;

	(void)conn;
	for (o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL &&
		    o->val[0] != '\0')
			return o->val;
	return def;
}

/*
 * The session: the schema first on the search path, times in UTC, and
 * the server's keepalives as the client's (so that the server too drops
 * a dead daemon's session, and with it its claims, within seconds).
 * Custom plans always: the prepared statements' generic plans were made
 * while a backfill's tables were near empty, and kept scanning runs whole
 * as they grew (0.21 ms a child row at 6,000 runs, 0.03 ms replanned;
 * a backfill of 3,000 + 3,000 runs 6.1 s, then 2.5 s; measured with
 * pg_stat_statements).
 */
static int
session_settings(struct pg_store *store)
{
	PQconninfoOption *opts = PQconninfo(store->conn);
	struct pg_params p;
	PGresult *res;

	pp_reset(&p);
	pp_text(&p, store->schema);
	pp_text(&p, conn_value(store->conn, "keepalives_idle", "10", opts));
	pp_text(&p, conn_value(store->conn, "keepalives_interval", "5", opts));
	pp_text(&p, conn_value(store->conn, "keepalives_count", "3", opts));
	pp_text(&p, conn_value(store->conn, "tcp_user_timeout", "20000", opts));
	pp_text(&p, store->flags & STORE_READONLY ? "on" : "off");
	res = pg_query(store, "cannot set the session",
	    "SELECT set_config('search_path', $1, false), "
	    "set_config('TimeZone', 'UTC', false), "
	    "set_config('tcp_keepalives_idle', $2, false), "
	    "set_config('tcp_keepalives_interval', $3, false), "
	    "set_config('tcp_keepalives_count', $4, false), "
	    "set_config('tcp_user_timeout', $5, false), "
	    "set_config('default_transaction_read_only', CASE WHEN "
	    "$6::boolean THEN 'on' ELSE current_setting("
	    "'default_transaction_read_only') END, false)",
	    &p);
	PQconninfoFree(opts);
	PQclear(res);
	return res != NULL ? 0 : -1;
}

/* The schema's contract version (0: none yet), and whether it is ours:
 * 0, or -1 after logging (a schema of another program refused). */
static int
schema_read(struct pg_store *store, int *version)
{
	struct pg_params p;
	PGresult *res;
	int64_t objects, marked;

	pp_reset(&p);
	pp_text(&p, store->schema);
	res = pg_query(store, "cannot read the schema",
	    "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
	    "n.oid = c.relnamespace WHERE n.nspname = $1), "
	    "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
	    "n.oid = c.relnamespace WHERE n.nspname = $1 AND "
	    "c.relname = 'schema_version' AND c.relkind = 'r')",
	    &p);
	if (res == NULL)
		return -1;
	objects = pg_i64(res, 0, 0);
	marked = pg_i64(res, 0, 1);
	PQclear(res);
	*version = 0;
	if (objects > 0 && marked == 0) {
		log_error(
		    "database '%s': schema '%s' is not an agentsyncd mirror (it holds %lld tables, views, indexes or sequences but no agentsyncd schema_version): refusing to touch it; set database_schema to another schema",
		    store->uri, store->schema, (long long)objects);
		return -1;
	}
	if (marked == 0)
		return 0;
	res = pg_query(store, "cannot read the schema version",
	    "SELECT coalesce(max(version), 0), count(*) FILTER (WHERE "
	    "application <> 'agentsyncd') FROM schema_version",
	    NULL);
	if (res == NULL)
		return -1;
	*version = (int)pg_i64(res, 0, 0);
	marked = pg_i64(res, 0, 1);
	PQclear(res);
	if (marked != 0 || *version <= 0) {
		log_error(
		    "database '%s': schema '%s' is not an agentsyncd mirror (its schema_version is not agentsyncd's): refusing to touch it",
		    store->uri, store->schema);
		return -1;
	}
	return 0;
}

static int
pg_version_of(struct pg_store *store)
{
	int v;

	if (schema_read(store, &v) == -1)
		return -1;
	return v;
}

static int
pg_version(struct store *base)
{
	struct pg_store *store = pg_of(base);

	if (pg_ready(store) == -1)
		return -1;
	return pg_version_of(store);
}

/* schema_judge() on the schema's version, logging a refusal: 0 or -1. */
static int
schema_ok(struct pg_store *store, enum schema_moment m)
{
	char why[1024];
	int v;

	if ((v = pg_version_of(store)) < 0)
		return -1;
	if (schema_judge(store->uri, v, pg_known_version(), m, why,
		sizeof(why)) == 1)
		return 0;
	log_error("%s", why);
	return -1;
}

static int
pg_schema_current(struct store *base, char *why, size_t len)
{
	struct pg_store *store = pg_of(base);
	int v;

	if (pg_ready(store) == -1 || (v = pg_version_of(store)) < 0)
		return -1;
	return schema_judge(store->uri, v, pg_known_version(), SCHEMA_IN_USE,
	    why, len);
}

/* The advisory lock key of the migrations of the schema:
 * the first 64 bits of md5(schema), as a bigint (README "Operations"). */
#define MIGRATION_KEY "('x' || substr(md5($1), 1, 16))::bit(64)::bigint"

static int
add(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

/* CREATE SCHEMA of the name columns_identifier() checked at open. */
static int
create_schema(struct pg_store *store)
{
	struct pg_params p;
	struct buf b;
	int64_t n;
	int rc = -1;

	pp_reset(&p);
	pp_text(&p, store->schema);
	if (pg_query_i64(store,
		"SELECT count(*) FROM pg_namespace WHERE nspname = $1", &p,
		&n) == -1)
		return -1;
	if (n > 0)
		return 0;
	buf_init(&b, 4096);
	if (add(&b, "CREATE SCHEMA ") == -1 || add(&b, store->schema) == -1) {
		log_error("out of memory");
	} else {
		const char *sql = b.p;

		rc = pg_exec(store, "cannot create the schema", sql);
	}
	buf_free(&b);
	return rc;
}

/* Apply migration i in one transaction under the schema's advisory lock,
 * unless another daemon did meanwhile: 1 applied, 0 not needed, -1. */
static int
migrate_one(struct pg_store *store, int i)
{
	struct pg_params p;
	int v;

	pp_reset(&p);
	pp_text(&p, store->schema);
	if (pg_exec(store, "cannot begin a migration", "BEGIN") == -1)
		return -1;
	if (pg_run(store, "cannot lock the schema",
		"SELECT pg_advisory_xact_lock(" MIGRATION_KEY ")", &p,
		NULL) == -1 ||
	    create_schema(store) == -1 ||
	    schema_ok(store, SCHEMA_BEFORE_WRITE) == -1 ||
	    (v = pg_version_of(store)) < 0)
		goto fail;
	if (v >= pg_migrations[i].version) {
		(void)pg_exec(store, "cannot end a migration", "ROLLBACK");
		return 0;
	}
	pp_reset(&p);
	pp_i64(&p, pg_migrations[i].version);
	pp_text(&p, pg_migrations[i].name);
	if (pg_exec(store, "migration failed", pg_migrations[i].sql) == -1 ||
	    pg_run(store, "cannot record the migration",
		"INSERT INTO schema_version (version, name) VALUES ($1, $2)",
		&p, NULL) == -1 ||
	    pg_exec(store, "cannot commit the migration", "COMMIT") == -1)
		goto fail;
	log_info("database '%s': schema '%s': applied migration %s", store->uri,
	    store->schema, pg_migrations[i].name);
	return 1;
fail:
	log_error(
	    "database '%s': schema '%s': migration %s failed; nothing of it was applied",
	    store->uri, store->schema, pg_migrations[i].name);
	pg_rollback(store);
	return -1;
}

static int
migrate_all(struct pg_store *store)
{
	int i, rc, applied = 0, v;

	if (schema_ok(store, SCHEMA_BEFORE_WRITE) == -1 ||
	    (v = pg_version_of(store)) < 0)
		return -1;
	for (i = 0; i < NPGMIGRATIONS; i++) {
		if (pg_migrations[i].version <= v)
			continue;
		if ((rc = migrate_one(store, i)) < 0)
			return -1;
		applied += rc;
	}
	return applied;
}

static int
pg_migrate(struct store *base)
{
	struct pg_store *store = pg_of(base);

	if (store->conn == NULL || PQstatus(store->conn) != CONNECTION_OK) {
		if (pg_ready(store) == -1)
			return -1;
	}
	pg_end_batch(store);
	return migrate_all(store);
}

/*
 * Everything a new connection needs: the session, the migrations (unless
 * flags say otherwise), the check of the schema, the statements.  0 with
 * the store ready, or -1 (logged).
 */
int
pg_session(struct pg_store *store)
{
	int v;

	store->ready = 0;
	store->batch = 0;
	if (session_settings(store) == -1)
		return -1;
	if (store->flags & STORE_READONLY) {
		if (pg_version_of(store) < 0)
			return -1;
		store->ready = 1;
		return 0;
	}
	if (!(store->flags & STORE_NOMIGRATE) &&
	    (migrate_all(store) == -1 ||
		schema_ok(store, SCHEMA_MIGRATED) == -1))
		return -1;
	if ((v = pg_version_of(store)) < 0)
		return -1;
	if (v > pg_known_version())
		return schema_ok(store, SCHEMA_BEFORE_WRITE);
	/* ready for the pipeline of the preparations, not before */
	store->ready = 1;
	if (v == pg_known_version() && pg_prepare(store) == -1) {
		store->ready = 0;
		return -1;
	}
	return 0;
}

static void pg_close(struct store *base);

/* The server answered and said no (a password, a role, a database, an
 * entry of pg_hba.conf): waiting will not help.  Not a server starting
 * up, shutting down or in recovery (57P03), which will answer later. */
static int
server_refused(const PGconn *conn)
{
	const char *msg = PQerrorMessage(conn);

	return strstr(msg, "FATAL:") != NULL &&
	    strstr(msg, "the database system is") == NULL;
}

static void
pg_sleep(double seconds)
{
	struct timespec ts;

	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* The first connection: a server that cannot be reached leaves the
 * daemon's store unconnected (it retries); a command's fails now. */
static int
first_connect(struct pg_store *store)
{
	pg_connect(store);
	if (store->conn == NULL) {
		log_error("out of memory");
		return -1;
	}
	/* The daemon waits for its server (systemd's start timeout is
	 * extended while the database opens); a command does not. */
	while (PQstatus(store->conn) != CONNECTION_OK) {
		log_error("database '%s' is unreachable: %.*s", store->uri,
		    (int)strcspn(PQerrorMessage(store->conn), "\n"),
		    PQerrorMessage(store->conn));
		if (store->flags != 0 || server_refused(store->conn))
			return -1;
		log_warnx("database '%s': trying again in %.0f s", store->uri,
		    store->backoff);
		pg_sleep(store->backoff);
		store->backoff = store->backoff * 2 > 30 ? 30 :
							   store->backoff * 2;
		PQreset(store->conn);
	}
	store->backoff = 1.0;
	if (pg_session(store) == -1) {
		/* a refusal (a schema not ours, newer) or a server error */
		return -1;
	}
	return 0;
}

static struct store *
pg_open(const char *uri, int flags)
{
	struct pg_store *store;
	const char *pw = store_option_password();

	if (uri_check(uri) == -1)
		return NULL;
	if (!columns_identifier(store_option_schema())) {
		log_error(
		    "database_schema '%s' is not a plain identifier (a-z or _, then a-z, 0-9 or _, at most 63)",
		    store_option_schema());
		return NULL;
	}
	if ((store = calloc(1, sizeof(*store))) == NULL ||
	    (store->uri = strdup(uri)) == NULL ||
	    (store->schema = strdup(store_option_schema())) == NULL ||
	    (pw != NULL && (store->password = strdup(pw)) == NULL)) {
		log_error("out of memory");
		if (store != NULL)
			pg_close(&store->base);
		return NULL;
	}
	store->base.engine = &store_pg_engine;
	store->flags = flags;
	store->backoff = 1.0;
	if (first_connect(store) == -1) {
		pg_close(&store->base);
		return NULL;
	}
	return &store->base;
}

static void
pg_close(struct store *base)
{
	struct pg_store *store = pg_of(base);

	if (store == NULL)
		return;
	if (store->ready && store->batch)
		(void)pg_batch_commit(base);
	pg_forget_claims(store);
	pg_last_forget(store, NULL);
	if (store->conn != NULL)
		PQfinish(store->conn);
	pg_unprepare_runs(store);
	if (store->password != NULL) {
		explicit_bzero(store->password, strlen(store->password));
		free(store->password);
	}
	free(store->schema);
	free(store->uri);
	free(store);
}

/* PostgreSQL has no WAL file of ours to checkpoint: its server does. */
static void
pg_checkpoint(struct store *base, int truncate)
{
	struct pg_store *store = pg_of(base);

	(void)truncate;
	pg_end_batch(store);
}

static void
pg_checkpoint_over(struct store *base, long long bytes)
{
	(void)base;
	(void)bytes;
}

static int
pg_claims(const char *database)
{
	return strncmp(database, "postgresql://", 13) == 0 ||
	    strncmp(database, "postgres://", 11) == 0;
}

const struct store_engine store_pg_engine = {
	.name = "postgresql",
	.claims = pg_claims,
	.known_version = pg_known_version,
	.open = pg_open,
	.close = pg_close,
	.migrate = pg_migrate,
	.version = pg_version,
	.schema_current = pg_schema_current,
	.state_load = pg_state_load,
	.pass_begin = pg_pass_begin,
	.page = pg_page,
	.batch_begin = pg_batch_begin,
	.batch_commit = pg_batch_commit,
	.pass_end = pg_pass_end,
	.set_next_poll = pg_set_next_poll,
	.runs_since = pg_runs_since,
	.has_run = pg_has_run,
	.live_runs = pg_live_runs,
	.prune_history = pg_prune_history,
	.checkpoint = pg_checkpoint,
	.checkpoint_over = pg_checkpoint_over,
	.sources_sync = pg_sources_sync,
	.source_present = pg_source_present,
	.claim = pg_claim,
	.release = pg_release,
	.rename_source = pg_rename_source,
	.forget_source = pg_forget_source,
	.status_each = pg_status_each,
};
