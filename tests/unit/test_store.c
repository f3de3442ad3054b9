/* SPDX-License-Identifier: ISC */
/*
 * test_store.c: the SQLite mirror: migrations, page upserts, history,
 * shared pull requests, rollback of a failed page, deletion marks.
 *
 * Writes are observed through triggers that the test adds to the database
 * (they fire for the daemon's connection too), so "an unchanged page
 * rewrites nothing" is checked on the database itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "log.h"
#include "source.h"
#include "store.h"
#include "testutil.h"
#include "runcols.h"

struct fixture {
	char dir[64];
	char path[128];
	struct store *store;
	sqlite3 *db; /* the test's own connection */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/agentsyncd-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/mirror.db", f->dir);
	log_set_level(LOG_LEVEL_ERROR);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char p[160];

	store_close(f->store);
	if (f->db != NULL)
		sqlite3_close(f->db);
	unlink(f->path);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
open_both(struct fixture *f)
{
	f->store = store_open(f->path, 0);
	assert_non_null(f->store);
	assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
	sqlite3_busy_timeout(f->db, 2000);
}

static void
q_text(sqlite3 *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	out[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, len, "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void
exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
}

/* Writes to the tables a page touches are counted in table "audit". */
static void
add_audit(sqlite3 *db)
{
	exec(db,
	    "CREATE TABLE audit (what TEXT);"
	    "CREATE TRIGGER a1 AFTER UPDATE ON runs BEGIN "
	    "INSERT INTO audit VALUES ('update runs'); END;"
	    "CREATE TRIGGER a2 AFTER INSERT ON runs BEGIN "
	    "INSERT INTO audit VALUES ('insert runs'); END;"
	    "CREATE TRIGGER a3 AFTER DELETE ON run_pull_requests BEGIN "
	    "INSERT INTO audit VALUES ('delete link'); END;"
	    "CREATE TRIGGER a4 AFTER UPDATE ON pull_requests BEGIN "
	    "INSERT INTO audit VALUES ('update pr'); END;"
	    "CREATE TRIGGER a5 AFTER INSERT ON run_tools BEGIN "
	    "INSERT INTO audit VALUES ('insert tool'); END;"
	    "CREATE TRIGGER a6 AFTER INSERT ON run_status_changes BEGIN "
	    "INSERT INTO audit VALUES ('insert change'); END;");
}

/* A page of Codegen-like runs built by hand. */
struct testpage {
	struct page page;
	struct run runs[4];
	struct pull_request prs[4];
	char raw[4][200];
	struct value values[4][16]; /* by codegen's fields */
	const char *tools[2];
	struct value cells[2][3]; /* two criteria */
};

static void
make_run(struct testpage *t, int i, const char *id, const char *status,
    enum run_state state, const char *created)
{
	struct run *r = &t->runs[i];

	memset(r, 0, sizeof(*r));
	snprintf(r->idbuf, sizeof(r->idbuf), "%s", id);
	r->external_id = r->idbuf;
	r->status = status;
	r->state = state;
	r->created_at = created;
	snprintf(t->raw[i], sizeof(t->raw[i]),
	    "{\"id\": %s, \"status\": \"%s\", \"created_at\": \"%s\"}", id,
	    status, created);
	r->raw = t->raw[i];
	r->raw_len = strlen(t->raw[i]);
	r->values = t->values[i];
	r->values[field_index(&source_codegen, "organization_id")] =
	    (struct value){ .v.i = 42, .set = 1 };
}

static void
make_pr(struct pull_request *p, const char *id, const char *title)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->external_id, sizeof(p->external_id), "%s", id);
	p->title = title;
	p->url = "https://github.com/o/r/pull/1";
	p->head_branch_name = "fix";
	p->created_at = "2025-06-21T10:00:00.000Z";
}

static void
two_runs(struct testpage *t)
{
	memset(t, 0, sizeof(*t));
	make_run(t, 0, "102", "ACTIVE", RUN_RUNNING,
	    "2025-06-21T11:00:00.000Z");
	make_run(t, 1, "101", "COMPLETE", RUN_SUCCEEDED,
	    "2025-06-21T10:00:00.000Z");
	/* PR 7 is shared by both runs. */
	make_pr(&t->prs[0], "7", "Fix the thing");
	make_pr(&t->prs[1], "7", "Fix the thing");
	make_pr(&t->prs[2], "8", "Another");
	t->runs[0].prs = &t->prs[0];
	t->runs[0].nprs = 1;
	t->runs[1].prs = &t->prs[1];
	t->runs[1].nprs = 2;
	t->runs[1].values[field_index(&source_codegen, "metadata")] =
	    (struct value){ .v.s = "{\"k\":1}", .len = 7, .set = 1 };
	t->page.runs = t->runs;
	t->page.nruns = 2;
	t->page.nitems = 2;
	t->page.total = 2;
}

/* Write t's page with the counters in *c (which it updates). */
static void
write_page(struct fixture *f, struct testpage *t, int touch, const char *now,
    struct sync_state *st, struct pass_counts *c, struct store_pass *pass)
{
	pass->counts = *c;
	assert_int_equal(store_page(f->store, pass, &t->page, st,
			     touch ? STORE_SEEN : 0, now),
	    0);
	*c = pass->counts;
}

static void
test_migrate_fresh_and_repeated(void **state)
{
	struct fixture *f = *state;
	struct stat sb;
	mode_t old = umask(022);

	f->store = store_open(f->path, 0);
	umask(old);
	assert_non_null(f->store);
	assert_int_equal(store_version(f->store), store_known_version());
	assert_true(store_known_version() >= 1);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	/* A second run is a no-op. */
	assert_int_equal(store_migrate(f->store), 0);
	store_close(f->store);
	f->store = store_open(f->path, 0);
	assert_non_null(f->store);
	assert_int_equal(store_migrate(f->store), 0);
	assert_int_equal(store_version(f->store), store_known_version());
}

static void
test_too_new_database_refused_untouched(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	exec(db, "CREATE TABLE future (x); PRAGMA user_version = 999;");
	sqlite3_close(db);
	f->store = store_open(f->path, 0);
	assert_null(f->store);
	assert_int_equal(sqlite3_open(f->path, &f->db), SQLITE_OK);
	assert_int_equal(q_int(f->db, "PRAGMA user_version"), 999);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM sqlite_schema "
			     "WHERE name = 'runs'"),
	    0);
	/* and its journal mode was not switched either */
	char mode[16];
	q_text(f->db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "delete");
}

/* Set the file's user_version behind the store's back. */
static void
set_user_version(const char *path, int v)
{
	char sql[64];
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
	exec(db, sql);
	sqlite3_close(db);
}

/* store_schema_current(): 1 at this binary's version; else 0 and the
 * words --status and --rename-source print, the hint only for an older
 * file. */
static void
test_schema_current(void **state)
{
	struct fixture *f = *state;
	char why[512], want[512];
	int known = store_known_version();

	f->store = store_open(f->path, 0);
	assert_non_null(f->store);
	assert_int_equal(store_schema_current(f->store, why, sizeof(why)), 1);
	assert_string_equal(why, "");
	store_close(f->store);
	set_user_version(f->path, known - 1);
	f->store = store_open(f->path, STORE_READONLY);
	assert_non_null(f->store);
	assert_int_equal(store_schema_current(f->store, why, sizeof(why)), 0);
	snprintf(want, sizeof(want),
	    "database '%s' is at schema version %d, this agentsyncd knows %d (run agentsyncd --migrate)",
	    f->path, known - 1, known);
	assert_string_equal(why, want);
	store_close(f->store);
	set_user_version(f->path, known + 1);
	f->store = store_open(f->path, STORE_READONLY);
	assert_non_null(f->store);
	assert_int_equal(store_schema_current(f->store, why, sizeof(why)), 0);
	snprintf(want, sizeof(want),
	    "database '%s' is at schema version %d, this agentsyncd knows %d",
	    f->path, known + 1, known);
	assert_string_equal(why, want);
	/* the newer file is refused by every opening that may write */
	store_close(f->store);
	f->store = store_open(f->path, STORE_NOMIGRATE);
	assert_null(f->store);
}

static void
test_wal_and_views(void **state)
{
	struct fixture *f = *state;
	char mode[16];

	open_both(f);
	q_text(f->db, "PRAGMA journal_mode", mode, sizeof(mode));
	assert_string_equal(mode, "wal");
	/* Views exist and run on an empty mirror. */
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM runs_daily"), 0);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM "
			     "pull_requests_with_runs"),
	    0);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM agent_outcomes"),
	    0);
}

static void
begin(struct fixture *f, struct sync_state *st, struct store_pass *pass)
{
	assert_int_equal(store_state_load(f->store, "cg", "codegen",
			     "codegen http://x org 42", st),
	    0);
	memset(pass, 0, sizeof(*pass));
	pass->source = "cg";
	pass->kind = "codegen";
	assert_int_equal(store_pass_begin(f->store, pass, WALK_BACKFILL,
			     "2025-07-01T00:00:00.000Z"),
	    0);
}

/*
 * A Cotool run's arrays land in the child tables its adapter declares
 * (run_tools, run_acceptance_criteria), counted in runs; a changed run's
 * rows are replaced, an unchanged one's left alone.
 */
static void
cotool_run(struct testpage *t, const char *raw, int ncriteria)
{
	const struct source_type *ct = &source_cotool;
	struct run *r;
	struct value *v;

	memset(t, 0, sizeof(*t));
	r = &t->runs[0];
	v = t->values[0];
	snprintf(r->idbuf, sizeof(r->idbuf), "run-1");
	r->external_id = r->idbuf;
	r->status = "completed";
	r->state = RUN_SUCCEEDED;
	r->raw = raw;
	r->raw_len = strlen(raw);
	r->values = v;
	t->tools[0] = "bash";
	t->tools[1] = NULL;
	v[field_index(ct, "tool_names_count")] =
	    (struct value){ .v.strs = t->tools, .len = 2, .set = 1 };
	t->cells[0][0] = (struct value){ .v.s = "tests pass", .set = 1 };
	t->cells[0][1] = (struct value){ .v.i = 1, .set = 1 };
	t->cells[1][0] = (struct value){ .v.s = "docs", .set = 1 };
	v[field_index(ct, "acceptance_criteria_count")] = (struct value){
		.v.cells = &t->cells[0][0],
		.len = (uint32_t)ncriteria,
		.set = 1
	};
	v[field_index(ct, "eval_score")] = (struct value){ .v.d = 7.5,
		.set = 1 };
	t->page.runs = t->runs;
	t->page.nruns = t->page.nitems = 1;
	t->page.total = 1;
}

static void
test_cotool_arrays(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;

	open_both(f);
	add_audit(f->db);
	assert_int_equal(store_state_load(f->store, "ct", "cotool",
			     "cotool http://x", &st),
	    0);
	memset(&pass, 0, sizeof(pass));
	pass.source = "ct";
	pass.kind = "cotool";
	assert_int_equal(store_pass_begin(f->store, &pass, WALK_BACKFILL,
			     "2025-07-01T00:00:00.000Z"),
	    0);
	memset(&c, 0, sizeof(c));
	cotool_run(&t, "{\"id\": \"run-1\"}", 2);
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	assert_int_equal(
	    q_int(f->db,
		"SELECT count(*) FROM runs WHERE kind = 'cotool' "
		"AND tool_names_count = 2 AND "
		"acceptance_criteria_count = 2 AND eval_score = 7.5 "
		"AND organization_id IS NULL AND agent_name IS NULL"),
	    1);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM run_tools WHERE "
			     "(position = 0 AND name = 'bash') OR "
			     "(position = 1 AND name IS NULL)"),
	    2);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM run_acceptance_criteria "
			     "WHERE (position = 0 AND criterion = 'tests pass' "
			     "AND met = 1) OR (position = 1 AND criterion = "
			     "'docs' AND met IS NULL AND explanation IS NULL)"),
	    2);
	/* unchanged: nothing written */
	exec(f->db, "DELETE FROM audit");
	cotool_run(&t, "{\"id\": \"run-1\"}", 2);
	write_page(f, &t, 0, "2025-07-01T00:01:00.000Z", &st, &c, &pass);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM audit"), 0);
	/* changed: its rows replaced */
	cotool_run(&t, "{\"id\": \"run-1\", \"x\": 1}", 1);
	write_page(f, &t, 0, "2025-07-01T00:02:00.000Z", &st, &c, &pass);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM "
			     "run_acceptance_criteria"),
	    1);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM run_tools"), 2);
	assert_int_equal(q_int(f->db,
			     "SELECT acceptance_criteria_count FROM runs"),
	    1);
}

static void
test_insert_then_unchanged_is_noop(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;

	open_both(f);
	add_audit(f->db);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	two_runs(&t);
	st.walk_mode = WALK_BACKFILL;
	st.walk_offset = 2;
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	assert_int_equal(c.runs_new, 2);
	assert_int_equal(c.pages, 1);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM runs"), 2);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "kind = 'codegen' AND source = 'cg' AND raw_json "
			     "LIKE '{\"id\": 1%' "
			     "AND organization_id = 42 AND first_seen_at = "
			     "'2025-07-01T00:00:01.000Z'"),
	    2);
	/* PR 7 shared: one row, two links; PR 8 one link. */
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM pull_requests"), 2);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM run_pull_requests "
			     "l JOIN pull_requests p ON p.id = "
			     "l.pull_request_id WHERE "
			     "p.external_id = '7'"),
	    2);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM "
			     "pull_requests_with_runs"),
	    3);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "metadata = '{\"k\":1}'"),
	    1);
	/* The cursor committed with the page. */
	assert_int_equal(q_int(f->db,
			     "SELECT walk_offset FROM sync_state "
			     "WHERE source = 'cg'"),
	    2);
	assert_int_equal(q_int(f->db,
			     "SELECT pages FROM sync_runs WHERE "
			     "id = (SELECT max(id) FROM sync_runs)"),
	    1);

	exec(f->db, "DELETE FROM audit");
	two_runs(&t);
	write_page(f, &t, 0, "2025-07-01T00:05:00.000Z", &st, &c, &pass);
	assert_int_equal(c.runs_new, 2);
	assert_int_equal(c.runs_changed, 0);
	assert_int_equal(c.runs_seen, 4);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM audit"), 0);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "changed_at = '2025-07-01T00:00:01.000Z'"),
	    2);
}

static void
test_status_change_one_history_row(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;
	char buf[64];

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	two_runs(&t);
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	/* each new run's first sighting, and no change */
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM run_status_changes "
			     "WHERE old_state IS NULL AND observed_at = "
			     "'2025-07-01T00:00:01.000Z'"),
	    2);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM "
			     "run_status_changes WHERE old_state IS NOT NULL"),
	    0);

	/* Run 102 completes and opens a second pull request. */
	two_runs(&t);
	make_run(&t, 0, "102", "COMPLETE", RUN_SUCCEEDED,
	    "2025-06-21T11:00:00.000Z");
	t.runs[0].prs = &t.prs[1];
	t.runs[0].nprs = 2;
	write_page(f, &t, 0, "2025-07-01T00:01:00.000Z", &st, &c, &pass);
	assert_int_equal(c.runs_changed, 1);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM "
			     "run_status_changes WHERE old_state IS NOT NULL"),
	    1);
	q_text(f->db,
	    "SELECT old_status || '>' || new_status || ' ' || "
	    "old_state || '>' || new_state FROM run_status_changes "
	    "WHERE old_state IS NOT NULL",
	    buf, sizeof(buf));
	assert_string_equal(buf, "ACTIVE>COMPLETE running>succeeded");
	q_text(f->db,
	    "SELECT state || ' ' || changed_at FROM runs WHERE "
	    "external_id = '102'",
	    buf, sizeof(buf));
	assert_string_equal(buf, "succeeded 2025-07-01T00:01:00.000Z");
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM run_pull_requests "
			     "l JOIN runs r ON r.id = l.run_id WHERE "
			     "r.external_id = '102'"),
	    2);
	/* The same page again adds no second history row. */
	write_page(f, &t, 0, "2025-07-01T00:02:00.000Z", &st, &c, &pass);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM "
			     "run_status_changes WHERE old_state IS NOT NULL"),
	    1);
}

static void
test_failed_page_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st, st2;
	struct pass_counts c, before;
	struct store_pass pass;

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	/* The second run of the page fails inside the transaction. */
	exec(f->db,
	    "CREATE TRIGGER boom BEFORE INSERT ON runs WHEN "
	    "NEW.external_id = '101' BEGIN SELECT RAISE(ABORT, 'injected'); "
	    "END;");
	two_runs(&t);
	st2 = st;
	st2.walk_mode = WALK_BACKFILL;
	st2.walk_offset = 100;
	pass.counts = c;
	before = c;
	assert_int_equal(store_page(f->store, &pass, &t.page, &st2, 0,
			     "2025-07-01T00:00:01.000Z"),
	    -1);
	assert_memory_equal(&pass.counts, &before, sizeof(c));
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM runs"), 0);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM pull_requests"), 0);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM run_pull_requests"),
	    0);
	assert_int_equal(q_int(f->db,
			     "SELECT coalesce(walk_offset, -1) FROM "
			     "sync_state WHERE source = 'cg'"),
	    -1);
	assert_int_equal(q_int(f->db, "SELECT pages FROM sync_runs"), 0);
	/* And the store still works afterwards. */
	exec(f->db, "DROP TRIGGER boom");
	write_page(f, &t, 0, "2025-07-01T00:00:02.000Z", &st2, &c, &pass);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM runs"), 2);
}

static void
test_rejects_kept_once(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct reject rj;
	struct store_pass pass;

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	two_runs(&t);
	memset(&rj, 0, sizeof(rj));
	rj.raw = "{\"id\": 1.5}";
	rj.raw_len = strlen(rj.raw);
	snprintf(rj.reason, sizeof(rj.reason), "\"id\" is not an integer");
	t.page.rejects = &rj;
	t.page.nrejects = 1;
	t.page.nitems = 3;
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	write_page(f, &t, 0, "2025-07-01T00:00:02.000Z", &st, &c, &pass);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM runs"), 2);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM rejected_records "
			     "WHERE raw_json = '{\"id\": 1.5}' AND source = "
			     "'cg'"),
	    1);
	assert_int_equal(c.runs_rejected, 2);
}

static void
test_full_walk_marks_deleted_and_revives(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	two_runs(&t);
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	/* A full walk that started at 00:00:00 sees only run 102, on its
	 * last page, which marks the rest in the same transaction. */
	t.page.nruns = 1;
	pass.counts.runs_deleted = 0;
	snprintf(st.walk_started_at, sizeof(st.walk_started_at),
	    "2025-07-02T00:00:00.000Z");
	st.walk_generation++; /* a new walk (walk_begin numbers it) */
	assert_int_equal(store_page(f->store, &pass, &t.page, &st,
			     STORE_SEEN | STORE_MARK_GONE,
			     "2025-07-02T00:10:00.000Z"),
	    0);
	assert_int_equal(pass.counts.runs_deleted, 1);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "external_id = '101' AND deleted_upstream_at = "
			     "'2025-07-02T00:10:00.000Z'"),
	    1);
	assert_int_equal(q_int(f->db,
			     "SELECT max(runs_deleted) FROM "
			     "sync_runs"),
	    1);
	assert_int_equal(q_int(f->db, "SELECT count(*) FROM runs"), 2);
	/* Seen again: the mark goes. */
	two_runs(&t);
	write_page(f, &t, 0, "2025-07-03T00:00:01.000Z", &st, &c, &pass);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "deleted_upstream_at IS NOT NULL"),
	    0);
}

/* Runs of the page: ids with a status each; the raw JSON follows them. */
static void
page_of(struct testpage *t, const char *const *ids, const char *const *statuses,
    size_t n)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < n; i++)
		make_run(t, (int)i, ids[i], statuses[i], RUN_UNKNOWN,
		    "2025-06-21T10:00:00.000Z");
	t->page.runs = t->runs;
	t->page.nruns = t->page.nitems = n;
	t->page.total = (int64_t)n;
}

/*
 * Issue 25: a full walk marks what it did not number, whatever the wall
 * clock said.  Walk 1 writes with the host's clock 6 days ahead; walk 2
 * starts at 01:00 and writes its first page with the clock stepped back
 * an hour.  Its sightings (touch, change, insert) are older than its start
 * and must stay; the run only walk 1 saw, later than walk 2's start on the
 * clock, is gone.
 */
static void
test_mark_by_walk_not_by_clock(void **state)
{
	static const char *const ids1[] = { "102", "101", "100" };
	static const char *const st1[] = { "ACTIVE", "COMPLETE", "ACTIVE" };
	static const char *const ids2[] = { "102", "100", "99" };
	static const char *const st2[] = { "ACTIVE", "COMPLETE", "ACTIVE" };
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;

	open_both(f);
	add_audit(f->db);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	st.walk_generation = 1;
	page_of(&t, ids1, st1, 3);
	write_page(f, &t, 1, "2025-07-09T00:00:00.000Z", &st, &c, &pass);
	st.walk_generation = 2;
	snprintf(st.walk_started_at, TS_LEN, "2025-07-03T01:00:00.000Z");
	exec(f->db, "DELETE FROM audit");
	page_of(&t, ids2, st2, 3);
	write_page(f, &t, 1, "2025-07-03T00:30:00.000Z", &st, &c, &pass);
	/* 102 touched, 100 changed, 99 new: each a write of its row */
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM audit "
			     "WHERE what IN ('update runs', 'insert runs')"),
	    3);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "last_seen_walk = 2 AND last_seen_at = "
			     "'2025-07-03T00:30:00.000Z'"),
	    3);
	/* the last page (empty) ends the walk with the marks */
	t.page.nruns = t.page.nitems = 0;
	pass.counts.runs_deleted = 0;
	assert_int_equal(store_page(f->store, &pass, &t.page, &st,
			     STORE_SEEN | STORE_MARK_GONE,
			     "2025-07-03T00:40:00.000Z"),
	    0);
	assert_int_equal(pass.counts.runs_deleted, 1);
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM runs WHERE "
			     "deleted_upstream_at IS NOT NULL"),
	    1);
	assert_int_equal(q_int(f->db,
			     "SELECT external_id FROM runs WHERE "
			     "deleted_upstream_at = "
			     "'2025-07-03T00:40:00.000Z' AND last_seen_at = "
			     "'2025-07-09T00:00:00.000Z'"),
	    101);
	/* the number is kept with the cursor */
	assert_int_equal(q_int(f->db,
			     "SELECT walk_generation FROM sync_state "
			     "WHERE source = 'cg'"),
	    2);
}

/* The stop rule's question: is the run in the mirror, and not marked
 * gone upstream?  Of this source only. */
static void
test_has_run(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_has_run(f->store, "cg", "101"), 0);
	two_runs(&t);
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	assert_int_equal(store_has_run(f->store, "cg", "101"), 1);
	assert_int_equal(store_has_run(f->store, "cg", "102"), 1);
	assert_int_equal(store_has_run(f->store, "cg", "103"), 0);
	assert_int_equal(store_has_run(f->store, "other", "101"), 0);
	/* a full walk (the next number) that saw only 102 marks 101 gone */
	t.page.nruns = 1;
	st.walk_generation++;
	snprintf(st.walk_started_at, sizeof(st.walk_started_at),
	    "2025-07-02T00:00:00.000Z");
	assert_int_equal(store_page(f->store, &pass, &t.page, &st,
			     STORE_SEEN | STORE_MARK_GONE,
			     "2025-07-02T00:10:00.000Z"),
	    0);
	assert_int_equal(store_has_run(f->store, "cg", "101"), 0);
	assert_int_equal(store_has_run(f->store, "cg", "102"), 1);
}

static void
test_runs_since(void **state)
{
	struct fixture *f = *state;
	struct testpage t;
	struct sync_state st;
	struct pass_counts c;
	struct store_pass pass;
	struct store_run_key *k;

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	two_runs(&t);
	write_page(f, &t, 0, "2025-07-01T00:00:01.000Z", &st, &c, &pass);
	/* unfinished only: 102 */
	assert_int_equal(store_runs_since(f->store, "cg",
			     "2025-06-21T00:00:00.000Z", 1, &k),
	    1);
	assert_string_equal(k[0].external_id, "102");
	assert_string_equal(k[0].created_at, "2025-06-21T11:00:00.000Z");
	free(k);
	/* all, in listing order */
	assert_int_equal(store_runs_since(f->store, "cg",
			     "2025-06-21T00:00:00.000Z", 0, &k),
	    2);
	assert_string_equal(k[0].external_id, "102");
	assert_string_equal(k[1].external_id, "101");
	free(k);
	assert_int_equal(store_runs_since(f->store, "cg",
			     "2025-06-22T00:00:00.000Z", 1, &k),
	    0);
	free(k);
}

static void
test_state_roundtrip_and_identity_change(void **state)
{
	struct fixture *f = *state;
	struct sync_state st, st2;
	struct pass_counts c;
	struct store_pass pass;

	open_both(f);
	begin(f, &st, &pass);
	memset(&c, 0, sizeof(c));
	st.backfill_done = 1;
	snprintf(st.high_water, sizeof(st.high_water),
	    "2025-06-21T11:00:00.000Z");
	st.walk_mode = WALK_INCREMENTAL;
	st.walk_offset = 99;
	st.walk_generation = 12;
	snprintf(st.walk_anchor_id, sizeof(st.walk_anchor_id), "abc");
	pass.counts = c;
	assert_int_equal(store_pass_end(f->store, &pass, &st, PASS_FAILED,
			     "HTTP 500", "2025-07-01T00:00:09.000Z"),
	    0);
	assert_int_equal(store_state_load(f->store, "cg", "codegen",
			     "codegen http://x org 42", &st2),
	    0);
	assert_int_equal(st2.backfill_done, 1);
	assert_int_equal(st2.walk_mode, WALK_INCREMENTAL);
	assert_int_equal(st2.walk_offset, 99);
	assert_int_equal(st2.walk_generation, 12);
	assert_string_equal(st2.walk_anchor_id, "abc");
	assert_int_equal(q_int(f->db,
			     "SELECT count(*) FROM sync_runs WHERE "
			     "outcome = 'failed' AND error = 'HTTP 500'"),
	    1);
	/* Another org under the same name: start over. */
	assert_int_equal(store_state_load(f->store, "cg", "codegen",
			     "codegen http://x org 43", &st2),
	    0);
	assert_int_equal(st2.backfill_done, 0);
	assert_int_equal(st2.walk_mode, WALK_NONE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_migrate_fresh_and_repeated,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_too_new_database_refused_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_current, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_cotool_arrays, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wal_and_views, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_insert_then_unchanged_is_noop, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_status_change_one_history_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_page_leaves_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_kept_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_full_walk_marks_deleted_and_revives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_by_walk_not_by_clock,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_has_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_runs_since, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_state_roundtrip_and_identity_change, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
