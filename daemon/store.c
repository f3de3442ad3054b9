/* SPDX-License-Identifier: ISC */
/*
 * store.c: the SQLite mirror: open, migrate, and write one page at a time.
 *
 * The statements of the page path (stmt_sql[]) are prepared once per
 * connection and reused; the rare ones (a source's state, a pass's start
 * and end, --status) are prepared when used.  Upstream data reaches SQLite
 * only through bound parameters.  A page is one IMMEDIATE
 * transaction: runs, pull requests, child rows, rejects, the walk cursor and
 * the pass counters.  An error anywhere rolls all of it back.
 *
 * "Unchanged rows are not rewritten": a run whose raw JSON is byte-for-byte
 * what the mirror holds is left alone (no write, no changed_at), so an idle
 * poll writes only its pass bookkeeping.  The raw JSON is the whole truth of
 * a run; every other column is derived from it.
 *
 * This file is not the place for HTTP, JSON parsing or walk decisions.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store.h"

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

enum stmt_id {
	ST_SEL_RUN,
	ST_INS_RUN,
	ST_UPD_RUN,
	ST_TOUCH_RUN,
	ST_INS_CHANGE,
	ST_DEL_LINKS,
	ST_DEL_TOOLS,
	ST_DEL_CRITERIA,
	ST_DEL_BULLETS,
	ST_DEL_PROBLEMS,
	ST_UPSERT_PR,
	ST_SEL_PR,
	ST_INS_LINK,
	ST_INS_TOOL,
	ST_INS_CRITERION,
	ST_INS_BULLET,
	ST_INS_PROBLEM,
	ST_INS_REJECT,
	ST_SAVE_STATE,
	ST_SAVE_COUNTS,
	ST_HAS_RUN,
	NSTMTS
};

/* Column lists of runs shared by insert and update, in bind order 3..
 * 3 + NRUN_COLS - 1; then the kind, the time and (update) the row id. */
#define RUN_COLS                                                             \
	"status, state, title, web_url, created_at, updated_at, raw_json, "  \
	"organization_id, result, summary, source_type, metadata, "          \
	"agent_id, agent_name, agent_type, model_alias, model_name, "        \
	"total_tool_count, trigger_source, trigger_name, has_error, "        \
	"is_streaming, eval_score, eval_explanation, "                       \
	"critical_issue_category, critical_issue_explanation, "              \
	"linked_alert_display_id, linked_alert_title, linked_alert_status, " \
	"pull_request_count, tool_names_count, acceptance_criteria_count, "  \
	"eval_bullet_count, has_critical_issue, has_linked_alert"
#define NRUN_COLS 35
#define RUN_VALUES                                                             \
	"?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, " \
	"?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, "    \
	"?31, ?32, ?33, ?34, ?35, ?36, ?37"
#define P_KIND "?38"
#define P_NOW  "?39"
#define P_WALK "?41"
enum {
	I_KIND = 38,
	I_NOW = 39,
	I_ROWID = 40,
	I_WALK = 41 /* the walk_generation of the sighting */
};
/* finished_seen_at: the first time the run is seen in a terminal state
 * (?4 is state, ?39 I_NOW). */
#define FINISHED_NOW "CASE WHEN ?4 IN " RUN_TERMINAL_SQL " THEN ?39 END"

static const char *const stmt_sql[NSTMTS] = {
	[ST_SEL_RUN] = "SELECT id, status, raw_json = ?3, "
		       "deleted_upstream_at IS NOT NULL "
		       "FROM runs WHERE source = ?1 AND external_id = ?2",
	[ST_INS_RUN] = "INSERT INTO runs (source, external_id, kind, " RUN_COLS
		       ", first_seen_at, last_seen_at, last_seen_walk, "
		       "changed_at, finished_seen_at) VALUES (?1, ?2, " P_KIND
		       ", " RUN_VALUES ", " P_NOW ", " P_NOW ", " P_WALK
		       ", " P_NOW ", " FINISHED_NOW ")",
	[ST_UPD_RUN] = "UPDATE runs SET (" RUN_COLS ", last_seen_at, "
		       "last_seen_walk, changed_at, deleted_upstream_at, "
		       "finished_seen_at) = "
		       "(" RUN_VALUES ", " P_NOW ", " P_WALK ", " P_NOW
		       ", NULL, coalesce(finished_seen_at, " FINISHED_NOW "))"
		       " WHERE id = ?40",
	[ST_TOUCH_RUN] = "UPDATE runs SET last_seen_at = ?2, "
			 "last_seen_walk = ?3, deleted_upstream_at = NULL "
			 "WHERE id = ?1",
	/* Taken before the update, so old_* come from the row itself. */
	[ST_INS_CHANGE] = "INSERT INTO run_status_changes (run_id, "
			  "observed_at, old_status, new_status, old_state, "
			  "new_state) "
			  "SELECT id, ?2, status, ?3, state, ?4 FROM runs "
			  "WHERE id = ?1",
	[ST_DEL_LINKS] = "DELETE FROM run_pull_requests WHERE run_id = ?1",
	[ST_DEL_TOOLS] = "DELETE FROM run_tools WHERE run_id = ?1",
	[ST_DEL_CRITERIA] = "DELETE FROM run_acceptance_criteria "
			    "WHERE run_id = ?1",
	[ST_DEL_BULLETS] = "DELETE FROM run_eval_bullets WHERE run_id = ?1",
	[ST_DEL_PROBLEMS] = "DELETE FROM run_field_problems WHERE run_id = ?1",
	[ST_UPSERT_PR] = "INSERT INTO pull_requests (source, external_id, "
			 "title, url, head_branch_name, created_at, "
			 "first_seen_at, changed_at, repository, number) "
			 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9) "
			 "ON CONFLICT (source, external_id) DO UPDATE SET "
			 "title = excluded.title, url = excluded.url, "
			 "head_branch_name = excluded.head_branch_name, "
			 "created_at = excluded.created_at, changed_at = "
			 "excluded.changed_at, repository = "
			 "excluded.repository, number = excluded.number "
			 "WHERE title IS NOT excluded.title OR url IS NOT "
			 "excluded.url "
			 "OR head_branch_name IS NOT excluded.head_branch_name "
			 "OR created_at IS NOT excluded.created_at",
	[ST_SEL_PR] = "SELECT id FROM pull_requests "
		      "WHERE source = ?1 AND external_id = ?2",
	[ST_INS_LINK] = "INSERT OR IGNORE INTO run_pull_requests (run_id, "
			"pull_request_id, position) VALUES (?1, ?2, ?3)",
	[ST_INS_TOOL] = "INSERT INTO run_tools (run_id, position, name) "
			"VALUES (?1, ?2, ?3)",
	[ST_INS_CRITERION] = "INSERT INTO run_acceptance_criteria (run_id, "
			     "position, criterion, met, explanation) "
			     "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_INS_BULLET] = "INSERT INTO run_eval_bullets (run_id, position, "
			  "bullet) VALUES (?1, ?2, ?3)",
	[ST_INS_PROBLEM] = "INSERT INTO run_field_problems (run_id, "
			   "position, field, problem, value) "
			   "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_INS_REJECT] = "INSERT INTO rejected_records (source, kind, "
			  "external_id, reason, raw_json, first_seen_at) "
			  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
			  "ON CONFLICT (source, reason, raw_json) DO NOTHING",
	[ST_SAVE_STATE] = "UPDATE sync_state SET high_water = ?2, "
			  "backfill_done = ?3, walk_mode = ?4, walk_offset = "
			  "?5, "
			  "walk_anchor_id = ?6, walk_anchor_key = ?7, "
			  "walk_total = ?8, "
			  "walk_high_water = ?9, walk_started_at = ?10, "
			  "walk_pages = ?11, "
			  "last_full_resync_at = ?12, last_success_at = ?13, "
			  "walk_degraded = ?14, clock_skew_seconds = ?15, "
			  "last_progress_at = coalesce(?16, last_progress_at), "
			  "walk_generation = ?17 "
			  "WHERE source = ?1",
	[ST_SAVE_COUNTS] = "UPDATE sync_runs SET requests = ?2, pages = ?3, "
			   "runs_seen = ?4, runs_new = ?5, runs_changed = ?6, "
			   "runs_rejected = ?7, runs_deleted = ?8, http_429 = "
			   "?9, retries = ?10, runs_partial = ?11, "
			   "upstream_total = coalesce(?12, upstream_total) "
			   "WHERE id = ?1",
	[ST_HAS_RUN] = "SELECT 1 FROM runs WHERE source = ?1 AND "
		       "external_id = ?2 AND deleted_upstream_at IS NULL",
};

#define EXEC_CACHE 32

struct store {
	sqlite3 *db;
	char *path;
	int busy;    /* the last failure was another's lock */
	int gone;    /* ... or found the source's sync state gone */
	int bind_rc; /* the first failed bind since the last step */
	int bind_at; /* ... and its parameter */
	sqlite3_stmt *stmt[NSTMTS];
	/* exec_bound()'s statements, kept prepared by the address of their
	 * text (a literal: the same text at each call). */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} exec[EXEC_CACHE];
	int batch;	/* a batch transaction is open (store_batch_begin) */
	int batch_lost; /* the last failed store_page() lost the batch */
};

static void
store_note_rc(struct store *store, int rc)
{
	store->busy = (rc & 0xff) == SQLITE_BUSY ||
	    (rc & 0xff) == SQLITE_LOCKED;
}

/* Log what failed, with the OS error where SQLite has one (a read-only
 * file system, a permission) since its own message is often vaguer. */
static int
store_fail(struct store *store, const char *what)
{
	int sys = sqlite3_system_errno(store->db);

	store_note_rc(store, sqlite3_extended_errcode(store->db));
	if (sys != 0)
		log_error("database '%s': %s: %s (%s)", store->path, what,
		    sqlite3_errmsg(store->db), strerror(sys));
	else
		log_error("database '%s': %s: %s", store->path, what,
		    sqlite3_errmsg(store->db));
	return -1;
}

static int
store_exec(struct store *store, const char *sql)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(store->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		store_note_rc(store, rc);
		log_error("database '%s': %s", store->path,
		    msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* End a failed write transaction, if SQLite has not already (it rolls
 * back by itself on SQLITE_FULL and some I/O errors; a second ROLLBACK
 * would only log a misleading "no transaction is active"). */
static void
store_rollback(struct store *store)
{
	int busy = store->busy;

	if (!sqlite3_get_autocommit(store->db))
		(void)store_exec(store, "ROLLBACK");
	store->busy = busy;
}

/*
 * Batches: pages written under one transaction, each in a savepoint.  The
 * writer (writer.c) commits an open batch before any other write and
 * knows what to do when that fails; a write that still finds one open
 * commits it here.
 */
static void
store_end_batch(struct store *store)
{
	if (store->batch)
		(void)store_batch_commit(store);
}

/* Why the last write failed, from what its failure noted. */
static int
store_rc(const struct store *store)
{
	if (store->batch_lost)
		return STORE_LOST;
	if (store->gone)
		return STORE_GONE;
	return store->busy ? STORE_BUSY : STORE_FAILED;
}

int
store_batch_begin(struct store *store)
{
	store_end_batch(store);
	store->busy = 0;
	store->gone = 0;
	store->batch_lost = 0;
	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return store_rc(store);
	store->batch = 1;
	return STORE_OK;
}

int
store_batch_commit(struct store *store)
{
	if (!store->batch)
		return 0;
	store->batch = 0;
	if (sqlite3_get_autocommit(store->db))
		return -1; /* SQLite rolled it back already */
	if (store_exec(store, "COMMIT") == 0)
		return 0;
	store_rollback(store);
	return -1;
}

/* The integer the query's first row starts with into *out; 0 or -1. */
static int
store_query_int(struct store *store, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot read the database");
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_fail(store, "cannot read the database");
	return 0;
}

/* PRAGMA user_version, or -1 (logged) when it cannot be read. */
static int
store_user_version(struct store *store)
{
	int64_t v = -1;

	if (store_query_int(store, "PRAGMA user_version", &v) == -1)
		return -1;
	return (int)v;
}

int
store_version(struct store *store)
{
	return store_user_version(store);
}

int
store_known_version(void)
{
	return NMIGRATIONS;
}

/* When a schema version is judged: what passes and how a refusal reads. */
enum schema_moment {
	SCHEMA_BEFORE_WRITE, /* an older file passes: it will be migrated */
	SCHEMA_MIGRATED,     /* after the migrations ran */
	SCHEMA_IN_USE,	     /* a command that uses the file as it is */
};

/*
 * The one judgement of a file's schema version v against this binary's:
 * 1 when the file passes at that moment, else 0 with the refusal in why.
 */
static int
schema_judge(const char *path, int v, enum schema_moment m, char *why,
    size_t len)
{
	if (len > 0)
		why[0] = '\0';
	if (v == NMIGRATIONS || (m == SCHEMA_BEFORE_WRITE && v < NMIGRATIONS))
		return 1;
	if (m == SCHEMA_BEFORE_WRITE)
		snprintf(why, len,
		    "database '%s' has schema version %d, newer than this agentsyncd knows (%d): refusing to touch it",
		    path, v, NMIGRATIONS);
	else if (m == SCHEMA_MIGRATED)
		snprintf(why, len,
		    "database '%s' is at schema version %d, expected %d", path,
		    v, NMIGRATIONS);
	else
		snprintf(why, len,
		    "database '%s' is at schema version %d, this agentsyncd knows %d%s",
		    path, v, NMIGRATIONS,
		    v < NMIGRATIONS ? " (run agentsyncd --migrate)" : "");
	return 0;
}

/* schema_judge() on the file's version, logging a refusal: 0 or -1. */
static int
store_schema_ok(struct store *store, enum schema_moment m)
{
	char why[PATH_MAX + 160];
	int v;

	if ((v = store_user_version(store)) < 0)
		return -1;
	if (schema_judge(store->path, v, m, why, sizeof(why)) == 1)
		return 0;
	log_error("%s", why);
	return -1;
}

int
store_schema_current(struct store *store, char *why, size_t len)
{
	int v;

	if ((v = store_user_version(store)) < 0)
		return -1;
	return schema_judge(store->path, v, SCHEMA_IN_USE, why, len);
}

static int store_migrate_from(struct store *store, int v);

int
store_migrate(struct store *store)
{
	int v, applied;

	if (store_schema_ok(store, SCHEMA_BEFORE_WRITE) == -1 ||
	    (v = store_user_version(store)) < 0)
		return -1;
	/* A migration may rebuild a table that others reference (0003):
	 * with foreign keys on, dropping the old one would cascade.  So
	 * they run with foreign keys off (a no-op inside a transaction,
	 * hence here) and each is checked before it commits. */
	if (v < NMIGRATIONS &&
	    store_exec(store, "PRAGMA foreign_keys = OFF") == -1)
		return -1;
	applied = store_migrate_from(store, v);
	if (v < NMIGRATIONS &&
	    store_exec(store, "PRAGMA foreign_keys = ON") == -1)
		return -1;
	return applied;
}

/* 1 when foreign_key_check finds nothing wrong, 0 when it does, -1. */
static int
store_foreign_keys_ok(struct store *store)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, "PRAGMA foreign_key_check", -1, &st,
		NULL) != SQLITE_OK)
		return store_fail(store, "cannot check foreign keys");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		log_error("database '%s': table %s breaks a foreign key "
			  "(rowid %lld)",
		    store->path, (const char *)sqlite3_column_text(st, 0),
		    (long long)sqlite3_column_int64(st, 1));
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(store, "cannot check foreign keys");
	return rc == SQLITE_DONE;
}

/* Apply migrations v+1.. one transaction each; how many, or -1. */
static int
store_migrate_from(struct store *store, int v)
{
	char sql[64];
	int i, applied = 0;

	for (i = v; i < NMIGRATIONS; i++) {
		if (store_exec(store, "BEGIN IMMEDIATE") == -1)
			return -1;
		/* Re-read inside the write lock: another process may have
		 * migrated meanwhile. */
		v = store_user_version(store);
		if (v != i) {
			store_rollback(store);
			if (v > i && v <= NMIGRATIONS) {
				i = v - 1;
				continue;
			}
			return -1;
		}
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    migrations[i].version);
		if (store_exec(store, migrations[i].sql) == -1 ||
		    store_exec(store, sql) == -1 ||
		    store_foreign_keys_ok(store) != 1 ||
		    store_exec(store, "COMMIT") == -1) {
			log_error("database '%s': migration %s failed; "
				  "nothing of it was applied",
			    store->path, migrations[i].name);
			store_rollback(store);
			return -1;
		}
		log_info("database '%s': applied migration %s", store->path,
		    migrations[i].name);
		applied++;
	}
	return applied;
}

static int
store_prepare(struct store *store)
{
	int i;

	for (i = 0; i < NSTMTS; i++) {
		if (sqlite3_prepare_v3(store->db, stmt_sql[i], -1,
			SQLITE_PREPARE_PERSISTENT, &store->stmt[i],
			NULL) != SQLITE_OK)
			return store_fail(store, "cannot prepare statement");
	}
	return 0;
}

/* "dir" of "dir/file" into buf; "." for a bare name.  -1 if too long. */
static int
store_dirname(const char *path, char *buf, size_t len)
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
store_create_file(const char *path)
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
	if (geteuid() == 0 && store_dirname(path, dir, sizeof(dir)) == 0 &&
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
store_persist_wal(struct store *store)
{
	int on = 1;

	if (sqlite3_file_control(store->db, "main", SQLITE_FCNTL_PERSIST_WAL,
		&on) != SQLITE_OK)
		return store_fail(store, "cannot keep the WAL between runs");
	return 0;
}

/* The -wal and -shm files live beside the database: its directory must
 * be writable too, or the first write fails with a vague message. */
static int
store_dir_writable(const char *path)
{
	char dir[PATH_MAX];

	if (store_dirname(path, dir, sizeof(dir)) == -1)
		return 0;
	if (access(dir, W_OK) == -1) {
		log_error("database '%s': its directory '%s' is not writable "
			  "(%s); agentsyncd keeps the -wal and -shm files "
			  "there",
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
store_check_ours(struct store *store)
{
	int64_t app, version, objects, ours;
	char why[160];

	if (store_query_int(store, "PRAGMA application_id", &app) == -1 ||
	    store_query_int(store, "PRAGMA user_version", &version) == -1 ||
	    store_query_int(store, "SELECT count(*) FROM sqlite_schema",
		&objects) == -1 ||
	    store_query_int(store,
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
		    "it holds %lld tables, indexes or views but no agentsyncd "
		    "schema version",
		    (long long)objects);
	else if (version > 0 && version <= NMIGRATIONS && ours != 2)
		snprintf(why, sizeof(why),
		    "it is at user_version %lld without agentsyncd's tables",
		    (long long)version);
	else
		return 0;
	log_error("database '%s' is not an agentsyncd mirror (%s): refusing "
		  "to touch it; point `database` at another file",
	    store->path, why);
	return -1;
}

/* A symbolic link at the path would have SQLite create (or open) the
 * file it names, with the process's default mode: refuse it. */
static int
store_not_a_link(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
		log_error("database '%s' is a symbolic link: point `database` "
			  "at the file itself",
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
store_functions(struct store *store)
{
	static int number = 1;
	int fl = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;

	if (sqlite3_create_function(store->db, "github_pr_repository", 1, fl,
		NULL, sql_github_pr, NULL, NULL) != SQLITE_OK ||
	    sqlite3_create_function(store->db, "github_pr_number", 1, fl,
		&number, sql_github_pr, NULL, NULL) != SQLITE_OK)
		return store_fail(store, "cannot register SQL functions");
	return 0;
}

struct store *
store_open(const char *path, int flags)
{
	struct store *store;
	int oflags, rc;

	store = calloc(1, sizeof(*store));
	if (store == NULL || (store->path = strdup(path)) == NULL) {
		free(store);
		log_error("out of memory");
		return NULL;
	}
	if (store_not_a_link(path) == -1)
		goto fail;
	if (flags & STORE_READONLY) {
		oflags = SQLITE_OPEN_READONLY;
	} else {
		oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
		if (store_create_file(path) == -1)
			goto fail;
	}
	rc = sqlite3_open_v2(path, &store->db,
	    oflags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open database '%s': %s", path,
		    store->db != NULL ? sqlite3_errmsg(store->db) :
					sqlite3_errstr(rc));
		goto fail;
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
	    store_exec(store, "PRAGMA trusted_schema = OFF") == -1 ||
	    store_functions(store) == -1 || store_check_ours(store) == -1)
		goto fail;
	/* SQLite quietly falls back to a read-only descriptor when it cannot
	 * open the file for writing; a daemon on it would start, say READY
	 * and fail every write forever.  Refuse now, saying why. */
	if (!(flags & STORE_READONLY) &&
	    sqlite3_db_readonly(store->db, "main") == 1) {
		log_error("database '%s' is not writable by this process: %s",
		    path,
		    access(path, W_OK) == -1 ? strerror(errno) :
					       "SQLite opened it read-only");
		goto fail;
	}
	if (!(flags & STORE_READONLY) && store_dir_writable(path) == -1)
		goto fail;
	if (flags & STORE_READONLY) {
		if (store_exec(store, "PRAGMA query_only = ON") == -1)
			goto fail;
		return store;
	}
	/* Refuse a newer schema before changing anything of the file. */
	if (store_schema_ok(store, SCHEMA_BEFORE_WRITE) == -1)
		goto fail;
	if (store_persist_wal(store) == -1)
		goto fail;
	if (store_exec(store,
		"PRAGMA journal_mode = WAL; "
		"PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
		"PRAGMA journal_size_limit = 67108864") == -1)
		goto fail;
	if (flags & STORE_NOMIGRATE) {
		/* Left as it is, unprepared: the caller says why. */
		if (store_schema_current(store, NULL, 0) != 1)
			return store;
	} else if (store_migrate(store) == -1 ||
	    store_schema_ok(store, SCHEMA_MIGRATED) == -1) {
		goto fail;
	}
	if (store_prepare(store) == -1)
		goto fail;
	return store;
fail:
	store_close(store);
	return NULL;
}

void
store_close(struct store *store)
{
	int i;

	if (store == NULL)
		return;
	for (i = 0; i < NSTMTS; i++)
		sqlite3_finalize(store->stmt[i]);
	for (i = 0; i < EXEC_CACHE; i++)
		sqlite3_finalize(store->exec[i].st);
	if (store->db != NULL && sqlite3_close(store->db) != SQLITE_OK)
		log_error("database '%s': close: %s", store->path,
		    sqlite3_errmsg(store->db));
	free(store->path);
	free(store);
}

static enum walk_mode
walk_mode_parse(const char *s)
{
	if (s == NULL)
		return WALK_NONE;
	if (strcmp(s, "backfill") == 0)
		return WALK_BACKFILL;
	if (strcmp(s, "incremental") == 0)
		return WALK_INCREMENTAL;
	if (strcmp(s, "full") == 0)
		return WALK_FULL;
	return WALK_NONE;
}

/*
 * Every bind goes through these.  A failed bind (SQLITE_TOOBIG, _NOMEM,
 * _RANGE) leaves its parameter NULL, which a step would write as NULL: the
 * first failure is kept and store_step() fails the statement instead.
 */
static void
bound(struct store *store, int i, int rc)
{
	if (rc != SQLITE_OK && store->bind_rc == SQLITE_OK) {
		store->bind_rc = rc;
		store->bind_at = i;
	}
}

/* NULL and "" (for fixed-size time buffers) bind NULL. */
static void
bind_text(struct store *store, sqlite3_stmt *st, int i, const char *s)
{
	bound(store, i,
	    s == NULL ? sqlite3_bind_null(st, i) :
			sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC));
}

static void
bind_ts(struct store *store, sqlite3_stmt *st, int i, const char *s)
{
	bind_text(store, st, i, s != NULL && *s != '\0' ? s : NULL);
}

/* len bytes at p (not NUL-terminated); p NULL binds NULL. */
static void
bind_span(struct store *store, sqlite3_stmt *st, int i, const char *p,
    size_t len)
{
	bound(store, i,
	    p == NULL ? sqlite3_bind_null(st, i) :
		len > INT_MAX ?
			SQLITE_TOOBIG :
			sqlite3_bind_text(st, i, p, (int)len, SQLITE_STATIC));
}

static void
bind_i64(struct store *store, sqlite3_stmt *st, int i, int64_t v)
{
	bound(store, i, sqlite3_bind_int64(st, i, v));
}

static void
bind_opt_int(struct store *store, sqlite3_stmt *st, int i, int set, int64_t v)
{
	bound(store, i,
	    set ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i));
}

/* A run's optional values (source.h): not set binds NULL. */
static void
bind_int(struct store *store, sqlite3_stmt *st, int i, struct opt_int o)
{
	bind_opt_int(store, st, i, o.set, o.v);
}

static void
bind_num(struct store *store, sqlite3_stmt *st, int i, struct opt_num o)
{
	bound(store, i,
	    o.set ? sqlite3_bind_double(st, i, o.v) : sqlite3_bind_null(st, i));
}

static void
bind_bool(struct store *store, sqlite3_stmt *st, int i, struct opt_bool o)
{
	bound(store, i,
	    o.set ? sqlite3_bind_int(st, i, o.v != 0) :
		    sqlite3_bind_null(st, i));
}

/* sqlite3_step(), or the failure of a bind since the last step. */
static int
store_step(struct store *store, sqlite3_stmt *st)
{
	int rc = store->bind_rc;

	if (rc != SQLITE_OK) {
		log_error("database '%s': cannot bind parameter %d: %s",
		    store->path, store->bind_at, sqlite3_errstr(rc));
		store->bind_rc = SQLITE_OK;
		return rc;
	}
	return sqlite3_step(st);
}

/*
 * Run a statement that returns no rows, binding ?1.. from the arguments
 * that follow as types says: 't' a string (const char *, NULL binds NULL),
 * 'i' an integer (int64_t).  Returns 0, or -1 after logging what failed.
 * sql is a literal (or a static table's): the statement is kept prepared
 * by its address for the next call (the first EXEC_CACHE texts).
 */
static int
exec_bound(struct store *store, const char *what, const char *sql,
    const char *types, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int i, rc, slot = -1;

	for (i = 0; i < EXEC_CACHE && store->exec[i].sql != NULL; i++)
		if (store->exec[i].sql == sql) {
			st = store->exec[i].st;
			break;
		}
	if (st == NULL) {
		if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) !=
		    SQLITE_OK)
			return store_fail(store, what);
		if (i < EXEC_CACHE) { /* kept; else finalized below */
			store->exec[i].sql = sql;
			store->exec[i].st = st;
		}
	}
	if (i < EXEC_CACHE)
		slot = i;
	va_start(ap, types);
	for (i = 0; types[i] != '\0'; i++) {
		if (types[i] == 'i') {
			bind_i64(store, st, i + 1, va_arg(ap, int64_t));
		} else if (types[i] == 'I') { /* negative: NULL */
			int64_t v = va_arg(ap, int64_t);

			bind_opt_int(store, st, i + 1, v >= 0, v);
		} else {
			bind_text(store, st, i + 1, va_arg(ap, const char *));
		}
	}
	va_end(ap);
	rc = store_step(store, st);
	if (rc != SQLITE_DONE)
		(void)store_fail(store, what); /* before the reset */
	if (slot >= 0) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else
		sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
copy_col(sqlite3_stmt *st, int i, char *out, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(out, len, "%s", s != NULL ? (const char *)s : "");
}

/* Run a statement that returns no rows, then reset it. */
static int
step_done(struct store *store, sqlite3_stmt *st)
{
	int rc = store_step(store, st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return store_fail(store, "write failed");
	return 0;
}

int
store_state_load(struct store *store, const char *source, const char *kind,
    const char *identity, struct sync_state *state)
{
	sqlite3_stmt *st = NULL;
	const char *stored;

	memset(state, 0, sizeof(*state));
	store_end_batch(store);
	/* The cursor and the sources row change together. */
	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	/* A new source's walks are numbered above any its runs carry (a
	 * source forgotten halfway and added back). */
	if (exec_bound(store, "cannot create sync state",
		"INSERT INTO sync_state (source, kind, identity, "
		"walk_generation) SELECT ?1, ?2, ?3, (SELECT "
		"coalesce(max(last_seen_walk), 0) FROM runs WHERE source = ?1) "
		"WHERE NOT EXISTS (SELECT 1 FROM sync_state WHERE source = ?1)",
		"ttt", source, kind, identity) == -1)
		goto rollback;

	if (sqlite3_prepare_v2(store->db,
		"SELECT identity, high_water, "
		"backfill_done, walk_mode, walk_offset, walk_anchor_id, "
		"walk_anchor_key, walk_total, walk_high_water, "
		"walk_started_at, "
		"walk_pages, last_full_resync_at, last_success_at, "
		"walk_degraded, clock_skew_seconds, walk_generation "
		"FROM sync_state WHERE source = ?1",
		-1, &st, NULL) != SQLITE_OK) {
		store_fail(store, "cannot read sync state");
		goto rollback;
	}
	bind_text(store, st, 1, source);
	if (store_step(store, st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		store_fail(store, "cannot read sync state");
		goto rollback;
	}
	stored = (const char *)sqlite3_column_text(st, 0);
	if (stored != NULL && strcmp(stored, identity) != 0) {
		/* Same name, different upstream: what we hold says nothing
		 * about the new one, so walk it completely. */
		log_warnx("source '%s' now points at %s (was %s): starting a "
			  "fresh backfill; mirrored rows are kept",
		    source, identity, stored);
		sqlite3_finalize(st);
		if (exec_bound(store, "cannot reset sync state",
			"UPDATE "
			"sync_state SET identity = ?2, kind = ?3, high_water = "
			"NULL, backfill_done = 0, walk_mode = NULL WHERE "
			"source = ?1",
			"ttt", source, identity, kind) == -1 ||
		    exec_bound(store, "cannot update sources",
			"UPDATE sources SET identity = ?2, kind = ?3 "
			"WHERE name = ?1",
			"ttt", source, identity, kind) == -1 ||
		    store_exec(store, "COMMIT") == -1)
			goto rollback;
		return 0;
	}
	copy_col(st, 1, state->high_water, sizeof(state->high_water));
	state->backfill_done = sqlite3_column_int(st, 2);
	state->walk_mode = walk_mode_parse(
	    (const char *)sqlite3_column_text(st, 3));
	state->walk_offset = sqlite3_column_int64(st, 4);
	copy_col(st, 5, state->walk_anchor_id, sizeof(state->walk_anchor_id));
	copy_col(st, 6, state->walk_anchor_key, sizeof(state->walk_anchor_key));
	state->walk_total = sqlite3_column_int64(st, 7);
	copy_col(st, 8, state->walk_high_water, sizeof(state->walk_high_water));
	copy_col(st, 9, state->walk_started_at, sizeof(state->walk_started_at));
	state->walk_pages = sqlite3_column_int64(st, 10);
	copy_col(st, 11, state->last_full_resync_at,
	    sizeof(state->last_full_resync_at));
	copy_col(st, 12, state->last_success_at,
	    sizeof(state->last_success_at));
	state->walk_degraded = sqlite3_column_int(st, 13);
	state->clock_skew.set = sqlite3_column_type(st, 14) != SQLITE_NULL;
	state->clock_skew.v = sqlite3_column_double(st, 14);
	state->walk_generation = sqlite3_column_int64(st, 15);
	sqlite3_finalize(st);
	if (store_exec(store, "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	store_rollback(store);
	memset(state, 0, sizeof(*state));
	return -1;
}

int
store_pass_begin(struct store *store, struct store_pass *pass,
    enum walk_mode mode, const char *now)
{
	const char *source = pass->source;

	/* A pass left 'running' by a crash or kill ends as interrupted. */
	store_end_batch(store);
	if (exec_bound(store, "cannot close old passes",
		"UPDATE sync_runs "
		"SET outcome = 'interrupted', finished_at = "
		"coalesce(finished_at, "
		"?2) WHERE source = ?1 AND outcome = 'running'",
		"tt", source, now) == -1 ||
	    exec_bound(store, "cannot start pass",
		"INSERT INTO sync_runs "
		"(source, mode, started_at) VALUES (?1, ?2, ?3)",
		"ttt", source, walk_mode_name(mode), now) == -1)
		return -1;
	pass->id = sqlite3_last_insert_rowid(store->db);
	pass->mode = mode;
	memset(&pass->counts, 0, sizeof(pass->counts));
	pass->counts.upstream_total = -1;
	return 0;
}

static int
save_state(struct store *store, const char *source, const struct sync_state *s,
    const char *page_at)
{
	sqlite3_stmt *st = store->stmt[ST_SAVE_STATE];
	int walking = s->walk_mode != WALK_NONE;

	bind_text(store, st, 1, source);
	bind_ts(store, st, 2, s->high_water);
	bind_i64(store, st, 3, s->backfill_done);
	bind_text(store, st, 4, walking ? walk_mode_name(s->walk_mode) : NULL);
	bind_opt_int(store, st, 5, walking, s->walk_offset);
	bind_ts(store, st, 6, walking ? s->walk_anchor_id : NULL);
	bind_ts(store, st, 7, walking ? s->walk_anchor_key : NULL);
	bind_opt_int(store, st, 8, walking, s->walk_total);
	bind_ts(store, st, 9, walking ? s->walk_high_water : NULL);
	bind_ts(store, st, 10, walking ? s->walk_started_at : NULL);
	bind_opt_int(store, st, 11, walking, s->walk_pages);
	bind_ts(store, st, 12, s->last_full_resync_at);
	bind_ts(store, st, 13, s->last_success_at);
	bind_i64(store, st, 14, walking && s->walk_degraded);
	bind_num(store, st, 15, s->clock_skew);
	bind_text(store, st, 16, page_at);
	bind_i64(store, st, 17, s->walk_generation);
	if (step_done(store, st) == -1)
		return -1;
	if (sqlite3_changes(store->db) != 1) {
		/* renamed or forgotten by agentsyncd --rename-source /
		 * --forget-source while this daemon synced it */
		store->gone = 1;
		log_error("source '%s' is no longer in the database "
			  "(renamed or forgotten by another process)",
		    source);
		return -1;
	}
	return 0;
}

static int
save_counts(struct store *store, int64_t pass_id, const struct pass_counts *c)
{
	sqlite3_stmt *st = store->stmt[ST_SAVE_COUNTS];

	bind_i64(store, st, 1, pass_id);
	bind_i64(store, st, 2, c->requests);
	bind_i64(store, st, 3, c->pages);
	bind_i64(store, st, 4, c->runs_seen);
	bind_i64(store, st, 5, c->runs_new);
	bind_i64(store, st, 6, c->runs_changed);
	bind_i64(store, st, 7, c->runs_rejected);
	bind_i64(store, st, 8, c->runs_deleted);
	bind_i64(store, st, 9, c->http_429);
	bind_i64(store, st, 10, c->retries);
	bind_i64(store, st, 11, c->runs_partial);
	bind_opt_int(store, st, 12, c->upstream_total >= 0, c->upstream_total);
	return step_done(store, st);
}

/* An array's count column: its child rows, or NULL when not sent. */
static void
bind_count(struct store *store, sqlite3_stmt *st, int i, int sent, size_t n)
{
	bind_opt_int(store, st, i, sent, (int64_t)n);
}

/* Bind the RUN_COLS of r to parameters 3..3 + NRUN_COLS - 1. */
static void
bind_run_cols(struct store *store, sqlite3_stmt *st, const struct run *r)
{
	int i = 3;

	bind_text(store, st, i++, r->status);
	bind_text(store, st, i++, run_state_name(r->state));
	bind_text(store, st, i++, r->title);
	bind_text(store, st, i++, r->web_url);
	bind_text(store, st, i++, r->created_at);
	bind_text(store, st, i++, r->updated_at);
	bind_span(store, st, i++, r->raw, r->raw_len);
	bind_int(store, st, i++, r->organization_id);
	bind_text(store, st, i++, r->result);
	bind_text(store, st, i++, r->summary);
	bind_text(store, st, i++, r->source_type);
	bind_span(store, st, i++, r->metadata, r->metadata_len);
	bind_text(store, st, i++, r->agent_id);
	bind_text(store, st, i++, r->agent_name);
	bind_text(store, st, i++, r->agent_type);
	bind_text(store, st, i++, r->model_alias);
	bind_text(store, st, i++, r->model_name);
	bind_int(store, st, i++, r->total_tool_count);
	bind_text(store, st, i++, r->trigger_source);
	bind_text(store, st, i++, r->trigger_name);
	bind_bool(store, st, i++, r->has_error);
	bind_bool(store, st, i++, r->is_streaming);
	bind_num(store, st, i++, r->eval_score);
	bind_text(store, st, i++, r->eval_explanation);
	bind_text(store, st, i++, r->critical_issue_category);
	bind_text(store, st, i++, r->critical_issue_explanation);
	bind_text(store, st, i++, r->linked_alert_display_id);
	bind_text(store, st, i++, r->linked_alert_title);
	bind_text(store, st, i++, r->linked_alert_status);
	bind_count(store, st, i++, r->prs_sent, r->nprs);
	bind_count(store, st, i++, r->tool_names_sent, r->ntool_names);
	bind_count(store, st, i++, r->criteria_sent, r->ncriteria);
	bind_count(store, st, i++, r->eval_bullets_sent, r->neval_bullets);
	bind_bool(store, st, i++, r->has_critical_issue);
	bind_bool(store, st, i++, r->has_linked_alert);
}

/* Replace the pull request links and child rows of run_id with r's. */
static int
write_children(struct store *store, const char *source, int64_t run_id,
    const struct run *r, const char *now, int replace)
{
	static const enum stmt_id dels[] = { ST_DEL_LINKS, ST_DEL_TOOLS,
		ST_DEL_CRITERIA, ST_DEL_BULLETS, ST_DEL_PROBLEMS };
	sqlite3_stmt *st;
	size_t i;
	int64_t pr_id, number, position = 0;
	char repo[GITHUB_REPO_LEN];
	int rc, github;

	for (i = 0; replace && i < sizeof(dels) / sizeof(dels[0]); i++) {
		st = store->stmt[dels[i]];
		bind_i64(store, st, 1, run_id);
		if (step_done(store, st) == -1)
			return -1;
	}
	for (i = 0; i < r->nprs; i++) {
		const struct pull_request *p = &r->prs[i];

		st = store->stmt[ST_UPSERT_PR];
		bind_text(store, st, 1, source);
		bind_text(store, st, 2, p->external_id);
		bind_text(store, st, 3, p->title);
		bind_text(store, st, 4, p->url);
		bind_text(store, st, 5, p->head_branch_name);
		bind_text(store, st, 6, p->created_at);
		bind_text(store, st, 7, now);
		github = github_pr_parse(p->url, repo, &number) == 0;
		bind_text(store, st, 8, github ? repo : NULL);
		bind_opt_int(store, st, 9, github, number);
		if (step_done(store, st) == -1)
			return -1;
		st = store->stmt[ST_SEL_PR];
		bind_text(store, st, 1, source);
		bind_text(store, st, 2, p->external_id);
		rc = store_step(store, st);
		pr_id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (rc != SQLITE_ROW)
			return store_fail(store, "pull request vanished");
		st = store->stmt[ST_INS_LINK];
		bind_i64(store, st, 1, run_id);
		bind_i64(store, st, 2, pr_id);
		bind_i64(store, st, 3, position);
		if (step_done(store, st) == -1)
			return -1;
		/* a pull request listed twice keeps one link: positions
		 * stay contiguous */
		position += sqlite3_changes(store->db);
	}
	for (i = 0; i < r->nproblems; i++) {
		st = store->stmt[ST_INS_PROBLEM];
		bind_i64(store, st, 1, run_id);
		bind_i64(store, st, 2, (int64_t)i);
		bind_text(store, st, 3, r->problems[i].field);
		bind_text(store, st, 4, r->problems[i].problem);
		bind_text(store, st, 5, r->problems[i].value);
		if (step_done(store, st) == -1)
			return -1;
	}
	for (i = 0; i < r->ntool_names; i++) {
		st = store->stmt[ST_INS_TOOL];
		bind_i64(store, st, 1, run_id);
		bind_i64(store, st, 2, (int64_t)i);
		bind_text(store, st, 3, r->tool_names[i]);
		if (step_done(store, st) == -1)
			return -1;
	}
	for (i = 0; i < r->ncriteria; i++) {
		st = store->stmt[ST_INS_CRITERION];
		bind_i64(store, st, 1, run_id);
		bind_i64(store, st, 2, (int64_t)i);
		bind_text(store, st, 3, r->criteria[i].criterion);
		bind_bool(store, st, 4, r->criteria[i].met);
		bind_text(store, st, 5, r->criteria[i].explanation);
		if (step_done(store, st) == -1)
			return -1;
	}
	for (i = 0; i < r->neval_bullets; i++) {
		st = store->stmt[ST_INS_BULLET];
		bind_i64(store, st, 1, run_id);
		bind_i64(store, st, 2, (int64_t)i);
		bind_text(store, st, 3, r->eval_bullets[i]);
		if (step_done(store, st) == -1)
			return -1;
	}
	return 0;
}

static int
same_text(const unsigned char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL && b == NULL;
	return strcmp((const char *)a, b) == 0;
}

/* Upsert one run, seen at now by walk number walk.  Adds to *c what it
 * did. */
static int
write_run(struct store *store, const char *source, const char *kind,
    const struct run *r, int touch, const char *now, int64_t walk,
    struct pass_counts *c)
{
	sqlite3_stmt *st = store->stmt[ST_SEL_RUN];
	int64_t run_id = 0;
	int rc, found, same = 0, deleted = 0, status_changed = 0;

	bind_text(store, st, 1, source);
	bind_text(store, st, 2, r->external_id);
	bind_span(store, st, 3, r->raw, r->raw_len);
	rc = store_step(store, st);
	found = rc == SQLITE_ROW;
	if (found) {
		run_id = sqlite3_column_int64(st, 0);
		status_changed = !same_text(sqlite3_column_text(st, 1),
		    r->status);
		same = sqlite3_column_int(st, 2);
		deleted = sqlite3_column_int(st, 3);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (!found && rc != SQLITE_DONE)
		return store_fail(store, "cannot read run");

	c->runs_seen++;
	if (found && same) {
		/* Unchanged: no write, unless a full walk must record the
		 * sighting or the run came back after being marked gone. */
		if (!touch && !deleted)
			return 0;
		st = store->stmt[ST_TOUCH_RUN];
		bind_i64(store, st, 1, run_id);
		bind_text(store, st, 2, now);
		bind_i64(store, st, 3, walk);
		return step_done(store, st);
	}
	if (found && status_changed) {
		st = store->stmt[ST_INS_CHANGE];
		bind_i64(store, st, 1, run_id);
		bind_text(store, st, 2, now);
		bind_text(store, st, 3, r->status);
		bind_text(store, st, 4, run_state_name(r->state));
		if (step_done(store, st) == -1)
			return -1;
	}
	st = store->stmt[found ? ST_UPD_RUN : ST_INS_RUN];
	bind_text(store, st, 1, source);
	bind_text(store, st, 2, r->external_id);
	bind_run_cols(store, st, r);
	bind_text(store, st, I_KIND, kind);
	bind_text(store, st, I_NOW, now);
	bind_i64(store, st, I_WALK, walk);
	if (found)
		bind_i64(store, st, I_ROWID, run_id);
	if (step_done(store, st) == -1)
		return -1;
	if (!found) {
		run_id = sqlite3_last_insert_rowid(store->db);
		c->runs_new++;
	} else {
		c->runs_changed++;
	}
	if (r->nproblems > 0)
		c->runs_partial++;
	return write_children(store, source, run_id, r, now, found);
}

/* One line per page that stored runs with a field left out, naming the
 * first written (a run unchanged since is not written, so not named
 * again). */
static void
log_page_problems(const char *source, const struct run *r, int64_t n)
{
	log_warnx("source '%s': %lld run%s stored with fields left out, "
		  "e.g. run '%s': \"%s\" %s (see run_field_problems)",
	    source, (long long)n, n == 1 ? "" : "s", r->external_id,
	    r->problems[0].field, r->problems[0].problem);
}

int
store_page(struct store *store, struct store_pass *pass,
    const struct page *page, const struct sync_state *next, unsigned flags,
    const char *now)
{
	const char *source = pass->source, *kind = pass->kind;
	int touch = (flags & STORE_SEEN) != 0;
	struct pass_counts c = pass->counts;
	sqlite3_stmt *st;
	size_t i;
	int64_t partial = c.runs_partial;
	const struct run *first_partial = NULL;

	store->busy = 0;
	store->gone = 0;
	store->batch_lost = 0;
	if ((store->batch ? store_exec(store, "SAVEPOINT page") :
			    store_exec(store, "BEGIN IMMEDIATE")) == -1)
		goto rollback;
	for (i = 0; i < page->nruns; i++) {
		if (write_run(store, source, kind, &page->runs[i], touch, now,
			next->walk_generation, &c) == -1)
			goto rollback;
		if (first_partial == NULL && c.runs_partial > partial)
			first_partial = &page->runs[i];
	}
	for (i = 0; i < page->nrejects; i++) {
		const struct reject *rj = &page->rejects[i];

		st = store->stmt[ST_INS_REJECT];
		bind_text(store, st, 1, source);
		bind_text(store, st, 2, kind);
		bind_text(store, st, 3, rj->external_id);
		bind_text(store, st, 4, rj->reason);
		bind_span(store, st, 5, rj->raw, rj->raw_len);
		bind_text(store, st, 6, now);
		if (step_done(store, st) == -1)
			goto rollback;
		c.runs_rejected++;
	}
	c.pages++;
	c.upstream_total = page->total;
	/* The end of a complete full walk: what it did not see is gone
	 * upstream.  In this transaction, so that a kill cannot record the
	 * walk as done with the marks never made.  By the walk's number,
	 * not by time: see walk.c.  A search of runs_source_created reads
	 * the source's runs, as the walk itself did (an index on
	 * last_seen_walk would be rewritten by each of its sightings). */
	if (flags & STORE_MARK_GONE) {
		if (exec_bound(store, "cannot mark deleted runs",
			"UPDATE runs SET deleted_upstream_at = ?3 "
			"WHERE source = ?1 AND last_seen_walk < ?2 AND "
			"deleted_upstream_at IS NULL",
			"tit", source, next->walk_generation, now) == -1)
			goto rollback;
		c.runs_deleted += sqlite3_changes(store->db);
	}
	if (save_state(store, source, next, now) == -1 ||
	    save_counts(store, pass->id, &c) == -1)
		goto rollback;
	if ((store->batch ? store_exec(store, "RELEASE page") :
			    store_exec(store, "COMMIT")) == -1)
		goto rollback;
	pass->counts = c;
	if (first_partial != NULL)
		log_page_problems(source, first_partial,
		    c.runs_partial - partial);
	return 0;
rollback:
	if (!store->batch) {
		store_rollback(store);
	} else if (sqlite3_get_autocommit(store->db)) {
		/* SQLite rolled the whole transaction back (a full disk, an
		 * I/O error): the batch's earlier pages went with it */
		store->batch = 0;
		store->batch_lost = 1;
	} else {
		int busy = store->busy;

		(void)store_exec(store, "ROLLBACK TO page");
		(void)store_exec(store, "RELEASE page");
		store->busy = busy;
	}
	return store_rc(store);
}

int
store_pass_idle(const struct store_pass *pass)
{
	const struct pass_counts *c = &pass->counts;

	return pass->mode == WALK_INCREMENTAL && c->runs_new == 0 &&
	    c->runs_changed == 0 && c->runs_deleted == 0 &&
	    c->runs_rejected == 0;
}

/*
 * Fold the idle pass into the source's previous row when that is an idle
 * stretch too (migration 0007): 1 folded (this pass's row deleted), 0 not
 * (nothing done), -1 on error.
 */
static int
fold_idle(struct store *store, const struct store_pass *pass, const char *now)
{
	const struct pass_counts *c = &pass->counts;
	sqlite3_stmt *st;
	int64_t prev;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT id FROM sync_runs WHERE source = ?1 AND id < ?2 AND "
		"id = (SELECT max(id) FROM sync_runs WHERE source = ?1 AND "
		"id < ?2) AND mode = 'incremental' AND outcome = 'succeeded' "
		"AND runs_new = 0 AND runs_changed = 0 AND runs_deleted = 0 "
		"AND runs_rejected = 0",
		-1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot read the pass history");
	bind_text(store, st, 1, pass->source);
	bind_i64(store, st, 2, pass->id);
	rc = store_step(store, st);
	prev = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(store, "cannot read the pass history");
	if (rc == SQLITE_DONE)
		return 0;
	if (exec_bound(store, "cannot fold an idle pass",
		"UPDATE sync_runs SET passes = passes + 1, finished_at = ?2, "
		"requests = requests + ?3, pages = pages + ?4, runs_seen = "
		"runs_seen + ?5, http_429 = http_429 + ?6, retries = retries "
		"+ ?7, upstream_total = coalesce(?8, upstream_total) "
		"WHERE id = ?1",
		"itiiiiiI", prev, now, c->requests, c->pages, c->runs_seen,
		c->http_429, c->retries, c->upstream_total) == -1 ||
	    exec_bound(store, "cannot fold an idle pass",
		"DELETE FROM sync_runs WHERE id = ?1", "i", pass->id) == -1)
		return -1;
	return 1;
}

int
store_pass_end(struct store *store, const struct store_pass *pass,
    const struct sync_state *state, enum pass_outcome outcome,
    const char *error, const char *now)
{
	const char *source = pass->source;

	store_end_batch(store);
	store->busy = 0;
	store->gone = 0;
	store->batch_lost = 0;
	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return store_rc(store);
	if (save_state(store, source, state, NULL) == -1 ||
	    save_counts(store, pass->id, &pass->counts) == -1)
		goto rollback;
	if (outcome == PASS_SUCCEEDED && store_pass_idle(pass)) {
		switch (fold_idle(store, pass, now)) {
		case -1:
			goto rollback;
		case 1:
			if (store_exec(store, "COMMIT") == -1)
				goto rollback;
			return 0;
		default:
			break;
		}
	}
	if (exec_bound(store, "cannot record pass",
		"UPDATE sync_runs SET outcome = ?2, error = ?3, finished_at = "
		"?4 "
		"WHERE id = ?1",
		"ittt", pass->id, verdict_pass_name(outcome), error, now) == -1)
		goto rollback;
	if (error != NULL &&
	    exec_bound(store, "cannot record pass",
		"UPDATE sync_state SET last_error = ?2, "
		"last_error_at = ?3 WHERE source = ?1",
		"ttt", source, error, now) == -1)
		goto rollback;
	if (store_exec(store, "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	store_rollback(store);
	return store_rc(store);
}

int
store_set_next_poll(struct store *store, const char *source, const char *when)
{
	store_end_batch(store);
	return exec_bound(store, "cannot record next poll",
	    "UPDATE "
	    "sync_state SET next_poll_at = ?2 WHERE source = ?1",
	    "tt", source, when != NULL && *when != '\0' ? when : NULL);
}

int64_t
store_runs_since(struct store *store, const char *source, const char *since,
    int unfinished, struct store_run_key **out)
{
	sqlite3_stmt *st;
	struct store_run_key *v = NULL, *nv;
	size_t n = 0, cap = 0;
	int rc;

	*out = NULL;
	if (sqlite3_prepare_v2(store->db,
		"SELECT external_id, created_at FROM runs "
		"WHERE source = ?1 AND created_at >= ?2 AND "
		"deleted_upstream_at IS NULL AND "
		"(?3 = 0 OR state NOT IN " RUN_TERMINAL_SQL ") "
		"ORDER BY created_at DESC, CAST(external_id AS INTEGER) DESC, "
		"external_id DESC",
		-1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot read runs to re-check");
	bind_text(store, st, 1, source);
	bind_text(store, st, 2, since);
	bind_i64(store, st, 3, unfinished);
	while ((rc = store_step(store, st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				break;
			v = nv;
		}
		copy_col(st, 0, v[n].external_id, sizeof(v[n].external_id));
		copy_col(st, 1, v[n].created_at, sizeof(v[n].created_at));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_fail(store, "cannot read runs to re-check");
	}
	*out = v;
	return (int64_t)n;
}

void
store_checkpoint(struct store *store, int truncate)
{
	int rc, log_frames = 0, done = 0;

	store_end_batch(store);
	/* TRUNCATE waits for readers through the busy handler; the event
	 * loop must not, so try once and come back at the next tick. */
	sqlite3_busy_timeout(store->db, 0);
	rc = sqlite3_wal_checkpoint_v2(store->db, NULL,
	    truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE,
	    &log_frames, &done);
	sqlite3_busy_timeout(store->db, BUSY_TIMEOUT_MS);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		store_fail(store, "checkpoint failed");
	else
		log_debug("database '%s': checkpoint %s: %d of %d frames",
		    store->path, truncate ? "truncate" : "passive", done,
		    log_frames);
}

void
store_checkpoint_over(struct store *store, long long bytes)
{
	char wal[PATH_MAX + sizeof("-wal")];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", store->path);
	if (stat(wal, &sb) == 0 && (long long)sb.st_size > bytes)
		store_checkpoint(store, 1);
}

/* Column i as text, or NULL; valid until the next step. */
static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* --rename-source: every table that names a source, in one transaction. */
static const char *const rename_sql[] = {
	"UPDATE runs SET source = ?2 WHERE source = ?1",
	"UPDATE pull_requests SET source = ?2 WHERE source = ?1",
	"UPDATE sync_runs SET source = ?2 WHERE source = ?1",
	"UPDATE rejected_records SET source = ?2 WHERE source = ?1",
	"UPDATE sync_state SET source = ?2 WHERE source = ?1",
	"UPDATE sources SET name = ?2 WHERE name = ?1",
};

/* --forget-source: runs first (their child rows and links go with them),
 * then what only names the source.  Each deletes at most ?2 rows. */
static const char *const forget_sql[] = {
	"DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE "
	"source = ?1 LIMIT ?2)",
	"DELETE FROM pull_requests WHERE id IN (SELECT id FROM "
	"pull_requests WHERE source = ?1 LIMIT ?2)",
	"DELETE FROM sync_runs WHERE id IN (SELECT id FROM sync_runs "
	"WHERE source = ?1 LIMIT ?2)",
	"DELETE FROM rejected_records WHERE id IN (SELECT id FROM "
	"rejected_records WHERE source = ?1 LIMIT ?2)",
};

/* Mark configured source src (added, or back after a retirement). */
static int
source_configure(struct store *store, const struct store_source *src,
    const char *now)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"INSERT INTO sources (name, kind, identity, base_url, org_id, "
		"configured, configured_since) VALUES (?1, ?2, ?3, ?4, ?5, 1, "
		"?6) ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
		"base_url = excluded.base_url, org_id = excluded.org_id, "
		"configured_since = CASE WHEN configured = 0 THEN "
		"excluded.configured_since ELSE configured_since END, "
		"configured = 1, retired_at = NULL",
		-1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot record the sources");
	bind_text(store, st, 1, src->name);
	bind_text(store, st, 2, src->kind);
	bind_text(store, st, 3, src->identity);
	bind_text(store, st, 4, src->base_url);
	if (src->org_id >= 0)
		bind_i64(store, st, 5, src->org_id);
	bind_text(store, st, 6, now);
	rc = store_step(store, st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ?
	    0 :
	    store_fail(store, "cannot record the sources");
}

/* Retire every configured row that srcs does not name. */
static int
sources_retire_others(struct store *store, const struct store_source *srcs,
    size_t n, const char *now)
{
	sqlite3_stmt *st;
	const char *name;
	size_t i;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT name FROM sources WHERE configured = 1", -1, &st,
		NULL) != SQLITE_OK)
		return store_fail(store, "cannot read the sources");
	while ((rc = store_step(store, st)) == SQLITE_ROW) {
		name = (const char *)sqlite3_column_text(st, 0);
		for (i = 0; i < n && strcmp(srcs[i].name, name) != 0; i++)
			;
		if (i < n)
			continue;
		if (exec_bound(store, "cannot retire a source",
			"UPDATE sources SET configured = 0, retired_at = ?2 "
			"WHERE name = ?1",
			"tt", name, now) == -1) {
			sqlite3_finalize(st);
			return -1;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 :
				   store_fail(store, "cannot read the sources");
}

int
store_sources_sync(struct store *store, const struct store_source *srcs,
    size_t n, const char *now, store_retired_fn *fn, void *arg)
{
	struct store_retired r;
	sqlite3_stmt *st;
	size_t i;
	int rc;

	store_end_batch(store);
	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (source_configure(store, &srcs[i], now) == -1)
			goto rollback;
	if (sources_retire_others(store, srcs, n, now) == -1 ||
	    store_exec(store, "COMMIT") == -1)
		goto rollback;
	if (fn == NULL)
		return 0;
	if (sqlite3_prepare_v2(store->db,
		"SELECT name, kind, identity, retired_at, "
		"forgetting_since IS NOT NULL, "
		"(SELECT count(*) FROM runs WHERE source = name) "
		"FROM sources WHERE configured = 0 ORDER BY name",
		-1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot read the sources");
	while ((rc = store_step(store, st)) == SQLITE_ROW) {
		memset(&r, 0, sizeof(r));
		r.name = col_text(st, 0);
		r.kind = col_text(st, 1);
		r.identity = col_text(st, 2);
		r.retired_at = col_text(st, 3);
		r.forgetting = sqlite3_column_int(st, 4);
		r.runs = sqlite3_column_int64(st, 5);
		for (i = 0; i < n && r.identity != NULL; i++)
			if (strcmp(srcs[i].identity, r.identity) == 0) {
				r.same_upstream = srcs[i].name;
				break;
			}
		fn(&r, arg);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 :
				   store_fail(store, "cannot read the sources");
rollback:
	store_rollback(store);
	return -1;
}

int
store_source_present(struct store *store, const char *source)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db,
		"SELECT 1 FROM sync_state WHERE source = ?1", -1, &st,
		NULL) != SQLITE_OK)
		return store_fail(store, "cannot read sync state");
	bind_text(store, st, 1, source);
	rc = store_step(store, st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 :
				   store_fail(store, "cannot read sync state");
}

int
store_has_run(struct store *store, const char *source, const char *external_id)
{
	sqlite3_stmt *st = store->stmt[ST_HAS_RUN];
	int rc;

	bind_text(store, st, 1, source);
	bind_text(store, st, 2, external_id);
	rc = store_step(store, st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		(void)store_fail(store,
		    "cannot read run"); /* before the reset */
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The number sql (one ?1 parameter) counts, or -1. */
static int64_t
count_of(struct store *store, const char *sql, const char *arg)
{
	sqlite3_stmt *st;
	int64_t n = -1;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot count rows");
	bind_text(store, st, 1, arg);
	if (store_step(store, st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n < 0 ? store_fail(store, "cannot count rows") : n;
}

int64_t
store_live_runs(struct store *store, const char *source)
{
	return count_of(store,
	    "SELECT count(*) FROM runs WHERE source = ?1 AND "
	    "deleted_upstream_at IS NULL",
	    source);
}

/* Rows of source in the tables that name sources (0 when none). */
static int64_t
rows_of(struct store *store, const char *source)
{
	return count_of(store,
	    "SELECT (SELECT count(*) FROM sources WHERE name = ?1) + "
	    "(SELECT count(*) FROM sync_state WHERE source = ?1) + "
	    "(SELECT count(*) FROM runs WHERE source = ?1) + "
	    "(SELECT count(*) FROM pull_requests WHERE source = ?1) + "
	    "(SELECT count(*) FROM sync_runs WHERE source = ?1) + "
	    "(SELECT count(*) FROM rejected_records WHERE source = ?1)",
	    source);
}

int
store_rename_source(struct store *store, const char *old, const char *new_name,
    char *why, size_t whylen)
{
	int64_t n;
	size_t i;

	*why = '\0';
	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	if ((n = rows_of(store, old)) < 0)
		goto rollback;
	if (n == 0) {
		snprintf(why, whylen, "no source '%s' in the database", old);
		goto rollback;
	}
	if ((n = rows_of(store, new_name)) < 0)
		goto rollback;
	if (n > 0) {
		snprintf(why, whylen,
		    "source '%s' already has %lld rows in the database",
		    new_name, (long long)n);
		goto rollback;
	}
	for (i = 0; i < sizeof(rename_sql) / sizeof(rename_sql[0]); i++)
		if (exec_bound(store, "cannot rename the source", rename_sql[i],
			"tt", old, new_name) == -1)
			goto rollback;
	if (store_exec(store, "COMMIT") == -1)
		goto rollback;
	return 0;
rollback:
	store_rollback(store);
	return -1;
}

/* Run sql (?1 arg, ?2 batch: a DELETE of at most batch rows) in one
 * transaction; returns the rows deleted, or -1. */
static int64_t
delete_batch(struct store *store, const char *sql, const char *arg, int batch)
{
	int64_t n;

	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	if (exec_bound(store, "cannot delete rows", sql, "ti", arg,
		(int64_t)batch) == -1) {
		store_rollback(store);
		return -1;
	}
	n = sqlite3_changes(store->db);
	if (store_exec(store, "COMMIT") == -1) {
		store_rollback(store);
		return -1;
	}
	return n;
}

int64_t
store_prune_history(struct store *store, const char *cutoff, int batch,
    int max_batches)
{
	int64_t total = 0, n;
	int i;

	store_end_batch(store);
	for (i = 0; i < max_batches; i++) {
		n = delete_batch(store,
		    "DELETE FROM sync_runs WHERE id IN (SELECT id FROM "
		    "sync_runs WHERE finished_at < ?1 AND outcome != "
		    "'running' LIMIT ?2)",
		    cutoff, batch);
		if (n < 0)
			return -1;
		total += n;
		if (n < batch)
			break;
	}
	return total;
}

int
store_forget_source(struct store *store, const char *source, int batch,
    const char *now, int64_t *deleted, char *why, size_t whylen)
{
	int64_t n;
	size_t i;

	*why = '\0';
	*deleted = 0;
	if (store_exec(store, "BEGIN IMMEDIATE") == -1)
		return -1;
	if ((n = rows_of(store, source)) < 0)
		goto rollback;
	if (n == 0) {
		snprintf(why, whylen, "no source '%s' in the database", source);
		goto rollback;
	}
	/* From here the source is being forgotten: its cursor goes first,
	 * so that a source added again under this name starts afresh. */
	if (exec_bound(store, "cannot mark the source",
		"INSERT INTO sources (name, kind, identity, configured, "
		"retired_at, forgetting_since) VALUES (?1, '?', '', 0, ?2, ?2) "
		"ON CONFLICT (name) DO UPDATE SET configured = 0, "
		"forgetting_since = coalesce(forgetting_since, ?2)",
		"tt", source, now) == -1 ||
	    exec_bound(store, "cannot delete the sync state",
		"DELETE FROM sync_state WHERE source = ?1", "t",
		source) == -1 ||
	    store_exec(store, "COMMIT") == -1)
		goto rollback;
	for (i = 0; i < sizeof(forget_sql) / sizeof(forget_sql[0]); i++) {
		do {
			if ((n = delete_batch(store, forget_sql[i], source,
				 batch)) < 0)
				return -1;
			if (i == 0)
				*deleted += n;
		} while (n == batch);
	}
	return exec_bound(store, "cannot delete the source",
	    "DELETE FROM sources WHERE name = ?1", "t", source);
rollback:
	store_rollback(store);
	return -1;
}

int
store_status_each(struct store *store, store_status_fn *fn, void *arg)
{
	struct source_status ss;
	sqlite3_stmt *st;
	int rc, n = 0;

	if (sqlite3_prepare_v2(store->db,
		"SELECT n.name, coalesce(s.kind, src.kind), "
		"s.backfill_done, s.walk_mode, s.walk_offset, s.walk_total, "
		"s.last_success_at, s.last_error, s.last_error_at, "
		"s.next_poll_at, "
		"(SELECT count(*) FROM runs r WHERE r.source = n.name), "
		"(SELECT count(*) FROM runs r WHERE r.source = n.name AND "
		"r.deleted_upstream_at IS NOT NULL), "
		"(SELECT count(*) FROM rejected_records j WHERE j.source = "
		"n.name), s.high_water, s.clock_skew_seconds, "
		"coalesce(src.configured, 1), src.retired_at, "
		"src.forgetting_since, s.source IS NOT NULL, "
		"(SELECT outcome FROM sync_runs x WHERE x.source = n.name AND "
		"x.outcome != 'running' ORDER BY x.id DESC LIMIT 1), "
		"s.last_progress_at "
		"FROM (SELECT source AS name FROM sync_state UNION "
		"SELECT name FROM sources) n "
		"LEFT JOIN sync_state s ON s.source = n.name "
		"LEFT JOIN sources src ON src.name = n.name ORDER BY n.name",
		-1, &st, NULL) != SQLITE_OK)
		return store_fail(store, "cannot read sync state");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&ss, 0, sizeof(ss));
		ss.source = col_text(st, 0);
		ss.kind = col_text(st, 1);
		ss.backfill_done = sqlite3_column_int(st, 2);
		ss.walk_mode = walk_mode_parse(col_text(st, 3));
		ss.walk_offset = sqlite3_column_int64(st, 4);
		ss.walk_total = sqlite3_column_type(st, 5) == SQLITE_NULL ?
		    -1 :
		    sqlite3_column_int64(st, 5);
		ss.last_success_at = col_text(st, 6);
		ss.last_error = col_text(st, 7);
		ss.last_error_at = col_text(st, 8);
		ss.next_poll_at = col_text(st, 9);
		ss.runs = sqlite3_column_int64(st, 10);
		ss.runs_gone = sqlite3_column_int64(st, 11);
		ss.rejected = sqlite3_column_int64(st, 12);
		ss.high_water = col_text(st, 13);
		ss.clock_skew.set = sqlite3_column_type(st, 14) != SQLITE_NULL;
		ss.clock_skew.v = sqlite3_column_double(st, 14);
		ss.configured = sqlite3_column_int(st, 15);
		ss.retired_at = col_text(st, 16);
		ss.forgetting_since = col_text(st, 17);
		ss.has_state = sqlite3_column_int(st, 18);
		ss.last_outcome = col_text(st, 19);
		ss.last_progress_at = col_text(st, 20);
		fn(&ss, arg);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_fail(store, "cannot read sync state");
	return n;
}
