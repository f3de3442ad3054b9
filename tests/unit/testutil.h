/* SPDX-License-Identifier: ISC */
/*
 * testutil.h: helpers the cmocka tests share.  Include after <cmocka.h>
 * and <sqlite3.h>.
 */
#ifndef AGENTSYNCD_TESTUTIL_H
#define AGENTSYNCD_TESTUTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>

/* The integer the query's first row starts with, or -1. */
static inline int64_t
q_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* nftw callback of rmtree(). */
static inline int
rmtree_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove the directory a test made, and all in it; 0 or -1. */
static inline int
rmtree(const char *dir)
{
	return nftw(dir, rmtree_cb, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
