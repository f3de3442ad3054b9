/* SPDX-License-Identifier: ISC */
/*
 * store_sqlite_sql.c: what every statement of the SQLite engine goes
 * through: its binds (a failed bind fails the statement rather than write
 * NULL), its step, its failure (logged once, with the OS error, noting a
 * lock held by another process), the rollback, and the batch's
 * transaction.
 *
 * Upstream data reaches SQLite only through bound parameters.  This file
 * knows no table: the statements are their callers'.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "store_sqlite.h"

static void
sq_note_rc(struct sqlite_store *store, int rc)
{
	store->busy = (rc & 0xff) == SQLITE_BUSY ||
	    (rc & 0xff) == SQLITE_LOCKED;
}

/* Log what failed, with the OS error where SQLite has one (a read-only
 * file system, a permission) since its own message is often vaguer. */
int
sq_fail(struct sqlite_store *store, const char *what)
{
	int sys = sqlite3_system_errno(store->db);

	sq_note_rc(store, sqlite3_extended_errcode(store->db));
	if (sys != 0)
		log_error("database '%s': %s: %s (%s)", store->path, what,
		    sqlite3_errmsg(store->db), strerror(sys));
	else
		log_error("database '%s': %s: %s", store->path, what,
		    sqlite3_errmsg(store->db));
	return -1;
}

int
sq_exec(struct sqlite_store *store, const char *sql)
{
	char *msg = NULL;
	int rc;

	rc = sqlite3_exec(store->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		sq_note_rc(store, rc);
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
void
sq_rollback(struct sqlite_store *store)
{
	int busy = store->busy;

	if (!sqlite3_get_autocommit(store->db))
		(void)sq_exec(store, "ROLLBACK");
	store->busy = busy;
}

/*
 * Batches: pages written under one transaction, each in a savepoint.  The
 * writer (writer.c) commits an open batch before any other write and
 * knows what to do when that fails; a write that still finds one open
 * commits it here.
 */
void
sq_end_batch(struct sqlite_store *store)
{
	if (store->batch)
		(void)sqlite_batch_commit(&store->base);
}

/* Why the last write failed, from what its failure noted. */
int
sq_rc(const struct sqlite_store *store)
{
	if (store->batch_lost)
		return STORE_LOST;
	if (store->gone)
		return STORE_GONE;
	return store->busy ? STORE_BUSY : STORE_FAILED;
}

/* Forget why the last write failed: a new write starts. */
void
sq_clear_rc(struct sqlite_store *store)
{
	store->busy = 0;
	store->gone = 0;
	store->batch_lost = 0;
}

int
sqlite_batch_begin(struct store *base)
{
	struct sqlite_store *store = sqlite_of(base);

	sq_end_batch(store);
	sq_clear_rc(store);
	if (sq_exec(store, "BEGIN IMMEDIATE") == -1)
		return sq_rc(store);
	store->batch = 1;
	return STORE_OK;
}

int
sqlite_batch_commit(struct store *base)
{
	struct sqlite_store *store = sqlite_of(base);

	if (!store->batch)
		return 0;
	store->batch = 0;
	if (sqlite3_get_autocommit(store->db))
		return -1; /* SQLite rolled it back already */
	if (sq_exec(store, "COMMIT") == 0)
		return 0;
	sq_rollback(store);
	return -1;
}

/* The integer the query's first row starts with into *out; 0 or -1. */
int
sq_query_int(struct sqlite_store *store, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sq_fail(store, "cannot read the database");
	rc = sqlite3_step(st);
	*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return sq_fail(store, "cannot read the database");
	return 0;
}

/* PRAGMA user_version, or -1 (logged) when it cannot be read. */
int
sq_user_version(struct sqlite_store *store)
{
	int64_t v = -1;

	if (sq_query_int(store, "PRAGMA user_version", &v) == -1)
		return -1;
	return (int)v;
}

/*
 * Every bind goes through these.  A failed bind (SQLITE_TOOBIG, _NOMEM,
 * _RANGE) leaves its parameter NULL, which a step would write as NULL: the
 * first failure is kept and sq_step() fails the statement instead.
 */
static void
sq_bound(struct sqlite_store *store, int i, int rc)
{
	if (rc != SQLITE_OK && store->bind_rc == SQLITE_OK) {
		store->bind_rc = rc;
		store->bind_at = i;
	}
}

/* NULL and "" (for fixed-size time buffers) bind NULL. */
void
sq_bind_text(struct sqlite_store *store, sqlite3_stmt *st, int i, const char *s)
{
	sq_bound(store, i,
	    s == NULL ? sqlite3_bind_null(st, i) :
			sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC));
}

void
sq_bind_ts(struct sqlite_store *store, sqlite3_stmt *st, int i, const char *s)
{
	sq_bind_text(store, st, i, s != NULL && *s != '\0' ? s : NULL);
}

/* len bytes at p (not NUL-terminated); p NULL binds NULL. */
void
sq_bind_span(struct sqlite_store *store, sqlite3_stmt *st, int i, const char *p,
    size_t len)
{
	sq_bound(store, i,
	    p == NULL ? sqlite3_bind_null(st, i) :
		len > INT_MAX ?
			SQLITE_TOOBIG :
			sqlite3_bind_text(st, i, p, (int)len, SQLITE_STATIC));
}

void
sq_bind_i64(struct sqlite_store *store, sqlite3_stmt *st, int i, int64_t v)
{
	sq_bound(store, i, sqlite3_bind_int64(st, i, v));
}

void
sq_bind_opt_int(struct sqlite_store *store, sqlite3_stmt *st, int i, int set,
    int64_t v)
{
	sq_bound(store, i,
	    set ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i));
}

/* A run's optional values (source.h): not set binds NULL. */
void
sq_bind_int(struct sqlite_store *store, sqlite3_stmt *st, int i,
    struct opt_int o)
{
	sq_bind_opt_int(store, st, i, o.set, o.v);
}

void
sq_bind_num(struct sqlite_store *store, sqlite3_stmt *st, int i,
    struct opt_num o)
{
	sq_bound(store, i,
	    o.set ? sqlite3_bind_double(st, i, o.v) : sqlite3_bind_null(st, i));
}

void
sq_bind_bool(struct sqlite_store *store, sqlite3_stmt *st, int i,
    struct opt_bool o)
{
	sq_bound(store, i,
	    o.set ? sqlite3_bind_int(st, i, o.v != 0) :
		    sqlite3_bind_null(st, i));
}

/* sqlite3_step(), or the failure of a bind since the last step. */
int
sq_step(struct sqlite_store *store, sqlite3_stmt *st)
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
int
exec_bound(struct sqlite_store *store, const char *what, const char *sql,
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
			return sq_fail(store, what);
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
			sq_bind_i64(store, st, i + 1, va_arg(ap, int64_t));
		} else if (types[i] == 'I') { /* negative: NULL */
			int64_t v = va_arg(ap, int64_t);

			sq_bind_opt_int(store, st, i + 1, v >= 0, v);
		} else {
			sq_bind_text(store, st, i + 1,
			    va_arg(ap, const char *));
		}
	}
	va_end(ap);
	rc = sq_step(store, st);
	if (rc != SQLITE_DONE)
		(void)sq_fail(store, what); /* before the reset */
	if (slot >= 0)
		sq_reset(st);
	else
		sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

void
sq_copy_col(sqlite3_stmt *st, int i, char *out, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	snprintf(out, len, "%s", s != NULL ? (const char *)s : "");
}

/* Make a kept statement ready for its next binds. */
void
sq_reset(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows, then reset it. */
int
sq_step_done(struct sqlite_store *store, sqlite3_stmt *st)
{
	int rc = sq_step(store, st);

	sq_reset(st);
	if (rc != SQLITE_DONE)
		return sq_fail(store, "write failed");
	return 0;
}

/* Column i as text, or NULL; valid until the next step. */
const char *
sq_col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}
