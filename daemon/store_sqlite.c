/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite.c: the SQLite engine behind store.h (store_sqlite_engine):
 * open a file and check it is a mirror of ours, its pragmas (WAL kept
 * between runs, foreign keys, defensive mode), the migrations, the WAL
 * checkpoints, and close.
 *
 * What a page, a pass or an administrative command writes is in the
 * other store_sqlite_*.c files (store_sqlite.h says which); what every
 * engine decides alike is in store_rules.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store_sqlite.h"

struct migration {
	int version;
	const char *name;
	const char *sql;
};

#include "migrations.h"

#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
/* How long one statement waits for another process's lock.  The wait
 * blocks the event loop (every source), so it is short: a write that still
 * finds the lock taken fails with STORE_BUSY, and sync waits for it off
 * the loop. */
#define BUSY_TIMEOUT_MS 1000

int
sqlite_version(struct store *base)
{
	struct sqlite_store *store = sqlite_of(base);

	return sq_user_version(store);
}

static int
sqlite_known_version(void)
{
	return NMIGRATIONS;
}

/* schema_judge() on the file's version, logging a refusal: 0 or -1. */
static int
sq_schema_ok(struct sqlite_store *store, enum schema_moment m)
{
	char why[PATH_MAX + 160];
	int v;

	if ((v = sq_user_version(store)) < 0)
		return -1;
	if (schema_judge(store->path, v, NMIGRATIONS, m, why, sizeof(why)) == 1)
		return 0;
	log_error("%s", why);
	return -1;
}

int
sqlite_schema_current(struct store *base, char *why, size_t len)
{
	struct sqlite_store *store = sqlite_of(base);
	int v;

	if ((v = sq_user_version(store)) < 0)
		return -1;
	return schema_judge(store->path, v, NMIGRATIONS, SCHEMA_IN_USE, why,
	    len);
}

/*
 * What records migration N applied, run in its transaction.  A PRAGMA
 * takes no bound parameter and no SQL text is built at run time (the
 * check of tests/reliability/rel_security.py), so each version's statement
 * is a literal; a migration past the last one here fails the build (the
 * assertion below): add its line.
 */
static const char *const user_version_sql[] = {
	"PRAGMA user_version = 1",
	"PRAGMA user_version = 2",
	"PRAGMA user_version = 3",
	"PRAGMA user_version = 4",
	"PRAGMA user_version = 5",
	"PRAGMA user_version = 6",
	"PRAGMA user_version = 7",
	"PRAGMA user_version = 8",
	"PRAGMA user_version = 9",
	"PRAGMA user_version = 10",
	"PRAGMA user_version = 11",
	"PRAGMA user_version = 12",
	"PRAGMA user_version = 13",
	"PRAGMA user_version = 14",
	"PRAGMA user_version = 15",
	"PRAGMA user_version = 16",
	"PRAGMA user_version = 17",
	"PRAGMA user_version = 18",
	"PRAGMA user_version = 19",
	"PRAGMA user_version = 20",
};

_Static_assert(NMIGRATIONS <=
	(int)(sizeof(user_version_sql) / sizeof(user_version_sql[0])),
    "migrations/ has more files than user_version_sql[] has lines");

static int sq_migrate_from(struct sqlite_store *store, int v);

int
sqlite_migrate(struct store *base)
{
	struct sqlite_store *store = sqlite_of(base);
	int v, applied;

	if (sq_schema_ok(store, SCHEMA_BEFORE_WRITE) == -1 ||
	    (v = sq_user_version(store)) < 0)
		return -1;
	/* A migration may rebuild a table that others reference (0003):
	 * with foreign keys on, dropping the old one would cascade.  So
	 * they run with foreign keys off (a no-op inside a transaction,
	 * hence here) and each is checked before it commits. */
	if (v < NMIGRATIONS &&
	    sq_exec(store, "PRAGMA foreign_keys = OFF") == -1)
		return -1;
	applied = sq_migrate_from(store, v);
	if (v < NMIGRATIONS && sq_exec(store, "PRAGMA foreign_keys = ON") == -1)
		return -1;
	return applied;
}

/* 1 when foreign_key_check finds nothing wrong, 0 when it does, -1. */
static int
sq_foreign_keys_ok(struct sqlite_store *store)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, "PRAGMA foreign_key_check", -1, &st,
		NULL) != SQLITE_OK)
		return sq_fail(store, "cannot check foreign keys");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		log_error(
		    "database '%s': table %s breaks a foreign key (rowid %lld)",
		    store->path, (const char *)sqlite3_column_text(st, 0),
		    (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_fail(store, "cannot check foreign keys");
	return rc == SQLITE_DONE;
}

/* Apply migrations v+1.. one transaction each; how many, or -1. */
static int
sq_migrate_from(struct sqlite_store *store, int v)
{
	int i, applied = 0;

	for (i = v; i < NMIGRATIONS; i++) {
		if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
			return -1;
		/* Re-read inside the write lock: another process may have
		 * migrated meanwhile. */
		v = sq_user_version(store);
		if (v != i) {
			sq_rollback(store);
			if (v > i && v <= NMIGRATIONS) {
				i = v - 1;
				continue;
			}
			return -1;
		}
		if (sq_exec(store, migrations[i].sql) == -1 ||
		    sq_exec(store,
			user_version_sql[migrations[i].version - 1]) == -1 ||
		    sq_foreign_keys_ok(store) != 1 ||
		    sq_exec(store, "COMMIT") == -1) {
			log_error(
			    "database '%s': migration %s failed; nothing of it was applied",
			    store->path, migrations[i].name);
			sq_rollback(store);
			return -1;
		}
		log_info("database '%s': applied migration %s", store->path,
		    migrations[i].name);
		applied++;
	}
	return applied;
}

/* "dir" of "dir/file" into buf; "." for a bare name.  -1 if too long. */
static int
sq_dirname(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL) {
		snprintf(buf, len, ".");
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= len)
		return -1;
	memcpy(buf, path, n);
	buf[n] = '\0';
	return 0;
}

/*
 * Create the file with mode 0640 so that SQLite (which keeps an existing
 * file's mode) and its -wal/-shm files follow it.  A file root creates
 * (`sudo agentsyncd --migrate` before the first start) is given to the
 * owner of its directory, the service's user in /var/lib/agentsyncd, as
 * SQLite itself does with the -wal and -shm of a database root opens.
 */
static int
sq_create_file(const char *path)
{
	char dir[PATH_MAX];
	struct stat sb;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd == -1) {
		if (errno == EEXIST)
			return 0;
		log_error("cannot create database '%s': %s", path,
		    strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && sq_dirname(path, dir, sizeof(dir)) == 0 &&
	    stat(dir, &sb) == 0 && sb.st_uid != 0 &&
	    fchown(fd, sb.st_uid, sb.st_gid) == -1) {
		log_error("cannot give database '%s' to the owner of '%s': %s",
		    path, dir, strerror(errno));
		close(fd);
		(void)unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Keep the -wal and -shm files when the last connection closes.  Readers
 * (group agentsyncd) can read the directory but not write it; SQLite lets
 * them read a WAL database whose -shm they cannot write (3.22+), but not one
 * whose -shm is missing, and a clean close deletes both.  So, persisted,
 * readers read the mirror while the daemon runs, stops, restarts or after a
 * crash.  The WAL is truncated to journal_size_limit at close.
 */
static int
sq_persist_wal(struct sqlite_store *store)
{
	int on = 1;

	if (sqlite3_file_control(store->db, "main", SQLITE_FCNTL_PERSIST_WAL,
		&on) != SQLITE_OK)
		return sq_fail(store, "cannot keep the WAL between runs");
	return 0;
}

/* The -wal and -shm files live beside the database: its directory must
 * be writable too, or the first write fails with a vague message. */
static int
sq_dir_writable(const char *path)
{
	char dir[PATH_MAX];

	if (sq_dirname(path, dir, sizeof(dir)) == -1)
		return 0;
	if (access(dir, W_OK) == -1) {
		log_error(
		    "database '%s': its directory '%s' is not writable (%s); agentsyncd keeps the -wal and -shm files there",
		    path, dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* PRAGMA application_id of an agentsyncd mirror (migration 0005): "agsy" */
#define STORE_APPLICATION_ID 0x61677379

/*
 * Is this file agentsyncd's?  A new one is empty; a mirror has a schema
 * version of 1 or more with the tables runs and sync_state (one newer than
 * this binary is left to the caller's message), and an
 * application_id of 0 (before migration 0005) or STORE_APPLICATION_ID.
 * Anything else belongs to another program: refuse it before changing a
 * byte of it (its journal mode included).  Returns 0 or -1 (logged).
 */
static int
sq_check_ours(struct sqlite_store *store)
{
	int64_t app, version, objects, ours;
	char why[160];

	if (sq_query_int(store, "PRAGMA application_id", &app) == -1 ||
	    sq_query_int(store, "PRAGMA user_version", &version) == -1 ||
	    sq_query_int(store, "SELECT count(*) FROM sqlite_schema",
		&objects) == -1 ||
	    sq_query_int(store,
		"SELECT count(*) FROM sqlite_schema WHERE "
		"type = 'table' AND name IN ('runs', 'sync_state')",
		&ours) == -1)
		return -1;
	if (app != 0 && app != STORE_APPLICATION_ID)
		snprintf(why, sizeof(why), "its application_id is %lld",
		    (long long)app);
	else if (version < 0)
		snprintf(why, sizeof(why), "its user_version is %lld",
		    (long long)version);
	else if (version == 0 && objects > 0)
		snprintf(why, sizeof(why),
		    "it holds %lld tables, indexes or views but no agentsyncd schema version",
		    (long long)objects);
	else if (version > 0 && version <= NMIGRATIONS && ours != 2)
		snprintf(why, sizeof(why),
		    "it is at user_version %lld without agentsyncd's tables",
		    (long long)version);
	else
		return 0;
	log_error(
	    "database '%s' is not an agentsyncd mirror (%s): refusing to touch it; point `database` at another file",
	    store->path, why);
	return -1;
}

/* A symbolic link at the path would have SQLite create (or open) the
 * file it names, with the process's default mode: refuse it. */
static int
sq_not_a_link(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
		log_error(
		    "database '%s' is a symbolic link: point `database` at the file itself",
		    path);
		return -1;
	}
	return 0;
}

/* github_pr_repository(url) and github_pr_number(url), for migration
 * 0008 (pull requests mirrored before it): the parse the daemon uses. */
static void
sql_github_pr(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *url = sqlite3_value_text(argv[0]);
	char repo[GITHUB_REPO_LEN];
	int64_t number;

	(void)argc;
	if (url == NULL || github_pr_parse((const char *)url, repo, &number))
		sqlite3_result_null(ctx);
	else if (sqlite3_user_data(ctx) != NULL)
		sqlite3_result_int64(ctx, number);
	else
		sqlite3_result_text(ctx, repo, -1, SQLITE_TRANSIENT);
}

static int
sq_functions(struct sqlite_store *store)
{
	static int number = 1;
	int fl = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;

	if (sqlite3_create_function(store->db, "github_pr_repository", 1, fl,
		NULL, sql_github_pr, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(store->db, "github_pr_number", 1, fl,
		&number, sql_github_pr, NULL, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot register SQL functions");
	return 0;
}

/*
 * Open the file (creating it first when writing), with extended result
 * codes, the busy timeout, and nothing it holds able to run with more
 * than SQL's own rights; then check it is ours.  0 or -1 (logged).
 */
static int
sq_connect(struct sqlite_store *store, const char *path, int flags)
{
	int oflags, rc;

	if (sq_not_a_link(path) == -1)
		return -1;
	if (flags & STORE_READONLY) {
		oflags = SQLITE_OPEN_READONLY;
	} else {
		oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
		if (sq_create_file(path) == -1)
			return -1;
	}
	rc = sqlite3_open_v2(path, &store->db,
	    oflags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open database '%s': %s", path,
		    store->db != NULL ? sqlite3_errmsg(store->db) :
					sqlite3_errstr(rc));
		return -1;
	}
	sqlite3_extended_result_codes(store->db, 1);
	sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
	/* Nothing a file holds runs with more than SQL's own rights: no
	 * schema writes through SQL, no functions with side effects in its
	 * views or triggers. */
	if (sqlite3_db_config(store->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL) !=
		SQLITE_OK ||
	    /* The last connection's close takes an EXCLUSIVE lock on the
	     * file to checkpoint: a reader opening the mirror at that
	     * instant got "database is locked" (11 of 10,700 reads across
	     * 15 stops, measured).  The daemon checkpoints itself before
	     * it stops (PASSIVE, never blocking readers), so a close takes
	     * no lock. */
	    sqlite3_db_config(store->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1,
		NULL) != SQLITE_OK ||
	    sq_exec(store, "PRAGMA trusted_schema = OFF") == -1 ||
	    sq_functions(store) == -1 || sq_check_ours(store) == -1)
		return -1;
	return 0;
}

/* SQLite quietly falls back to a read-only descriptor when it cannot open
 * the file for writing; a daemon on it would start, say READY and fail
 * every write forever.  Refuse now, saying why.  0 or -1. */
static int
sq_writable(struct sqlite_store *store, const char *path)
{
	if (sqlite3_db_readonly(store->db, "main") == 1) {
		log_error("database '%s' is not writable by this process: %s",
		    path,
		    access(path, W_OK) == -1 ? strerror(errno) :
					       "SQLite opened it read-only");
		return -1;
	}
	return sq_dir_writable(path);
}

/*
 * Make a writable file ready: refuse a newer schema before changing
 * anything of it, then WAL and the pragmas, the migrations (unless
 * STORE_NOMIGRATE) and the page path's statements.  0 or -1.
 */
static int
sq_ready_to_write(struct sqlite_store *store, int flags)
{
	if (sq_schema_ok(store, SCHEMA_BEFORE_WRITE) == -1 ||
	    sq_persist_wal(store) == -1)
		return -1;
	/* A page cache of 1 MiB, not SQLite's 2: the writer touches the
	 * tree paths of one page's rows, which the OS's page cache serves
	 * as fast (a 100k + 100k backfill: peak RSS 15.0 MiB, was 16.0, at
	 * the same speed; make bench). */
	if (sq_exec(store,
		"PRAGMA journal_mode = WAL; "
		"PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
		"PRAGMA journal_size_limit = 67108864; "
		"PRAGMA cache_size = -1024") == -1)
		return -1;
	if (flags & STORE_NOMIGRATE) {
		/* Left as it is, unprepared: the caller says why. */
		if (sqlite_schema_current(&store->base, NULL, 0) != 1)
			return 0;
	} else if (sqlite_migrate(&store->base) == -1 ||
	    sq_schema_ok(store, SCHEMA_MIGRATED) == -1) {
		return -1;
	}
	return sq_prepare(store);
}

static struct store *
sqlite_open(const char *path, int flags)
{
	struct sqlite_store *store;

	store = calloc(1, sizeof(*store));
	if (store == NULL || (store->path = strdup(path)) == NULL) {
		free(store);
		log_error("out of memory");
		return NULL;
	}
	store->base.engine = &store_sqlite_engine;
	if (sq_connect(store, path, flags) == -1)
		goto fail;
	if (flags & STORE_READONLY) {
		if (sq_exec(store, "PRAGMA query_only = ON") == -1)
			goto fail;
		return &store->base;
	}
	if (sq_writable(store, path) == -1 ||
	    sq_ready_to_write(store, flags) == -1)
		goto fail;
	return &store->base;
fail:
	sqlite_close(&store->base);
	return NULL;
}

void
sqlite_close(struct store *base)
{
	struct sqlite_store *store = sqlite_of(base);
	int i;

	if (store == NULL)
		return;
	for (i = 0; i < NSTMTS; i++)
		sqlite3_finalize(store->stmt[i]);
	sq_unprepare_runs(store);
	for (i = 0; i < EXEC_CACHE; i++)
		sqlite3_finalize(store->exec[i].st);
	if (store->db != NULL && sqlite3_close(store->db) != SQLITE_OK)
		log_error("database '%s': close: %s", store->path,
		    sqlite3_errmsg(store->db));
	free(store->path);
	free(store);
}

void
sqlite_checkpoint(struct store *base, int truncate)
{
	struct sqlite_store *store = sqlite_of(base);
	int rc, log_frames = 0, done = 0;

	sq_end_batch(store);
	/* TRUNCATE waits for readers through the busy handler; the event
	 * loop must not, so try once and come back at the next tick. */
	sqlite3_busy_timeout(store->db, 0);
	rc = sqlite3_wal_checkpoint_v2(store->db, NULL,
	    truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
	    &log_frames, &done);
	sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		sq_fail(store, "checkpoint failed");
	else
		log_debug("database '%s': checkpoint %s: %d of %d frames",
		    store->path, truncate ? "truncate" : "passive", done,
		    log_frames);
}

void
sqlite_checkpoint_over(struct store *base, long long bytes)
{
	struct sqlite_store *store = sqlite_of(base);
	char wal[PATH_MAX + sizeof("-wal")];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", store->path);
	if (stat(wal, &sb) == 0 && (long long)sb.st_size > bytes)
		sqlite_checkpoint(base, 1);
}

/* Any `database` that no other engine claims is a file's path. */
static int
sqlite_claims(const char *database)
{
	(void)database;
	return 1;
}

const struct store_engine store_sqlite_engine = {
	.name = "sqlite",
	.claims = sqlite_claims,
	.known_version = sqlite_known_version,
	.open = sqlite_open,
	.close = sqlite_close,
	.migrate = sqlite_migrate,
	.version = sqlite_version,
	.schema_current = sqlite_schema_current,
	.state_load = sqlite_state_load,
	.pass_begin = sqlite_pass_begin,
	.page = sqlite_page,
	.batch_begin = sqlite_batch_begin,
	.batch_commit = sqlite_batch_commit,
	.pass_end = sqlite_pass_end,
	.set_next_poll = sqlite_set_next_poll,
	.runs_since = sqlite_runs_since,
	.has_run = sqlite_has_run,
	.live_runs = sqlite_live_runs,
	.prune_history = sqlite_prune_history,
	.checkpoint = sqlite_checkpoint,
	.checkpoint_over = sqlite_checkpoint_over,
	.sources_sync = sqlite_sources_sync,
	.source_present = sqlite_source_present,
	.rename_source = sqlite_rename_source,
	.forget_source = sqlite_forget_source,
	.status_each = sqlite_status_each,
};
