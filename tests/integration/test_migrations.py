# SPDX-License-Identifier: ISC
"""Upgrading a mirror made by an older agentsyncd: every migration after the
database's version applies, and what was mirrored survives it whole.

0003 rebuilds `runs` (to drop the CHECK that named the two first kinds):
the rows, their ids, the child rows that point at them (pull request
links, tools, criteria, bullets, status changes), the indexes and views
must all be there after it, and a later sync must go on from the saved
state rather than backfill again.

0010 numbers walks: a full resync under way when the older binary stopped
is resumed by the new one and must mark exactly what the older rule
would have."""
import glob
import os
import re
import sqlite3
import subprocess

from tests.integration.harness import BIN, ROOT, DaemonTest
from tests.integration.test_clock_step import kill_mid_full_walk


def apply_migrations(db, upto):
    """A database as agentsyncd left it at schema version upto."""
    files = sorted(glob.glob(os.path.join(ROOT, "migrations", "*.sql")))
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    for f in files[:upto]:
        with open(f) as fh:
            con.executescript(fh.read())
    con.execute(f"PRAGMA user_version = {upto}")
    con.commit()
    con.close()


TABLES = ("runs", "pull_requests", "run_pull_requests", "run_tools",
          "run_acceptance_criteria", "run_eval_bullets", "run_status_changes",
          "sync_state", "sync_runs", "rejected_records")


def columns(db, table):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
    con.close()
    return cols


def snapshot(db, cols):
    """Every row of every table, in the columns cols[table] (the columns
    of version 2, which later versions keep)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = {}
    for t in TABLES:
        out[t] = sorted(con.execute(
            f"SELECT {', '.join(cols[t])} FROM {t}").fetchall(), key=repr)
    con.close()
    return out


def views_of_version_10():
    """The views as 0010 left them: the last CREATE VIEW of each name in
    migrations 0001-0010."""
    views = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "migrations",
                                              "00*.sql"))):
        if os.path.basename(path) >= "0011":
            break
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r"^CREATE VIEW (\w+) AS.*?;$", text,
                             re.S | re.M):
            views[m.group(1)] = m.group(0)
    return views


def to_version_10(con):
    """Take a mirror of this binary back to what the release before 0011
    (schema 10) wrote: no view_types, 0010's views, a status history of
    changes only, without source, external_id and updated_at.  The time
    columns keep their TIMESTAMP declarations (an affinity only: the
    rows are the same)."""
    for (view,) in con.execute("SELECT name FROM sqlite_schema WHERE "
                               "type = 'view'").fetchall():
        con.execute(f"DROP VIEW {view}")
    con.execute("DROP TABLE view_types")
    con.execute("DELETE FROM run_status_changes WHERE old_state IS NULL")
    for col in ("updated_at", "external_id", "source"):
        con.execute(f"ALTER TABLE run_status_changes DROP COLUMN {col}")
    for sql in views_of_version_10().values():
        con.execute(sql)
    con.execute("PRAGMA user_version = 10")


class MigrationTest(DaemonTest):
    codegen_runs = 60
    cotool_runs = 60

    def test_upgrade_from_version_7_derives_the_new_columns(self):
        """A mirror written by the release before 0008 (schema 7): the
        new columns and views are derived from what it holds, equal to
        what the daemon writes itself."""
        self.api.add_codegen(self.api.data.codegen_run(org_id=42) | {
            "id": 99, "created_at": "2025-05-01T00:00:00Z",
            "github_pull_requests": [
                {"id": 7, "created_at": "2025-05-01T00:00:00Z",
                 "url": "https://github.com/acme/app/pull/7"}]})
        self.once_ok()
        old = os.path.join(self.dir, "old7.db")
        apply_migrations(old, 7)
        tables = TABLES + ("sources",)
        cols = {t: columns(old, t) for t in tables}
        con = sqlite3.connect(old)
        con.execute("DELETE FROM sources")
        con.execute("ATTACH ? AS cur", (self.db,))
        for t in tables:
            c = ", ".join(cols[t])
            # a release before 0011 wrote changes only, no first sighting
            where = " WHERE old_state IS NOT NULL" \
                if t == "run_status_changes" else ""
            con.execute(f"INSERT INTO main.{t} ({c}) SELECT {c} FROM "
                        f"cur.{t}{where}")
        con.commit()
        con.execute("DETACH cur")
        con.close()
        self.write_conf(database=old)
        r = subprocess.run([BIN, "-c", self.conf, "--migrate"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0008_fidelity.sql", r.stderr)
        self.assertNotIn("0007", r.stderr)
        con = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        self.assertEqual(con.execute("PRAGMA foreign_key_check").fetchall(),
                         [])
        derived = ("SELECT external_id, pull_request_count, "
                   "tool_names_count, acceptance_criteria_count, "
                   "eval_bullet_count, has_critical_issue, "
                   "has_linked_alert, finished_seen_at FROM runs ORDER BY 1")
        got = con.execute(derived).fetchall()
        self.assertEqual(got, self.sql(derived))
        self.assertTrue(any(r[1] is not None for r in got))
        self.assertTrue(any(r[2] is not None for r in got))
        prs = "SELECT external_id, repository, number FROM pull_requests " \
              "ORDER BY 1"
        self.assertEqual(con.execute(prs).fetchall(), self.sql(prs))
        self.assertIn(("7", "acme/app", 7), self.sql(prs))
        for view in ("agent_runs", "runs_daily", "agent_outcomes",
                     "pull_requests_with_runs"):
            q = f"SELECT * FROM {view}"
            self.assertEqual(sorted(con.execute(q).fetchall(), key=repr),
                             sorted(self.sql(q), key=repr), view)
        con.close()

    def as_version_9(self, old):
        """A copy of the mirror at old as the release before 0010 left it:
        0010 only adds two columns, so without them and at user_version
        9 it is that file.  (0008 calls the daemon's SQL functions, so
        apply_migrations cannot make a file past version 7.)"""
        src = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        con = sqlite3.connect(old)
        src.backup(con)
        src.close()
        to_version_10(con)
        con.execute("ALTER TABLE runs DROP COLUMN last_seen_walk")
        con.execute("ALTER TABLE sync_state DROP COLUMN walk_generation")
        con.execute("PRAGMA user_version = 9")
        con.commit()
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone(),
                         ("ok",))
        con.close()

    def test_upgrade_from_version_9_mid_full_resync(self):
        """Schema 9 (the release before 0010), killed during a full
        resync: 0010 gives the walk's number to the runs it had seen
        (last_seen_at at or after its start), and the walk, resumed by
        this binary, marks exactly the runs deleted upstream: one it
        had passed before the kill, one it had not reached."""
        conf = {"page_size": "5"}
        self.write_conf(sources=("cotool",), cotool=conf)
        self.once_ok()
        ids = [r["id"] for r in self.api.cotool_sorted("createdAt")]
        gone = {ids[1], ids[-2]}
        for rid in gone:
            self.api.delete_cotool(rid)
        conf["full_resync_interval"] = "1ms"
        self.write_conf(sources=("cotool",), cotool=conf)
        self.api.clear_log()
        started, offset = kill_mid_full_walk(self, "cotool")
        self.assertLess(offset, 58)
        old = os.path.join(self.dir, "old9.db")
        self.as_version_9(old)
        self.db = old
        self.write_conf(sources=("cotool",), cotool=conf, database=old)
        r = subprocess.run([BIN, "-c", self.conf, "--migrate"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0010_walk_generation.sql", r.stderr)
        self.assertEqual(self.sql("SELECT walk_mode, walk_offset, "
                                  "walk_started_at, walk_generation FROM "
                                  "sync_state"),
                         [("full", offset, started, 1)])
        seen = self.count("SELECT count(*) FROM runs WHERE last_seen_at >= ?",
                          started)
        self.assertGreater(seen, 0)
        self.assertLess(seen, 58)
        self.assertEqual(self.sql(
            "SELECT last_seen_walk, count(*) FROM runs GROUP BY 1"),
            [(0, 60 - seen), (1, seen)])
        self.once_ok()
        self.assertIn(f"resuming full walk at offset {offset}",
                      self.last_stderr)
        self.assertEqual({r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE "
            "deleted_upstream_at IS NOT NULL")}, gone)
        self.assert_mirror_exact(sources=("cotool",))

    def test_upgrade_from_version_2_keeps_everything(self):
        # Mirror with the current binary, then take the data back into a
        # version-2 schema, as a mirror made by the previous release.
        self.once_ok()
        old = os.path.join(self.dir, "old.db")
        apply_migrations(old, 2)
        cols = {t: columns(old, t) for t in TABLES}
        now = snapshot(self.db, cols)
        self.assertGreater(len(now["run_pull_requests"]), 0)
        self.assertGreater(len(now["run_tools"]), 0)
        con = sqlite3.connect(old)
        con.execute("ATTACH ? AS cur", (self.db,))
        for t in TABLES:
            c = ", ".join(cols[t])
            # a release before 0011 wrote changes only, no first sighting
            where = " WHERE old_state IS NOT NULL" \
                if t == "run_status_changes" else ""
            con.execute(f"INSERT INTO main.{t} ({c}) SELECT {c} FROM "
                        f"cur.{t}{where}")
        con.commit()
        con.execute("DETACH cur")
        con.close()
        before = snapshot(old, cols)
        self.assertEqual(before["run_status_changes"],
                         [r for r in now["run_status_changes"]
                          if r[5] is not None])
        self.assertEqual(dict(before, run_status_changes=[]),
                         dict(now, run_status_changes=[]))

        self.write_conf(database=old)
        r = subprocess.run([BIN, "-c", self.conf, "--migrate"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0003_runs_kind_any_adapter.sql", r.stderr)
        after = snapshot(old, cols)
        # 0011 adds each run's first sighting as the daemon writes it (ids
        # apart: they come after the changes kept)
        self.assertEqual(sorted((r[1:] for r in after["run_status_changes"]),
                                key=repr),
                         sorted((r[1:] for r in now["run_status_changes"]),
                                key=repr))
        self.assertEqual(dict(after, run_status_changes=[]),
                         dict(now, run_status_changes=[]))
        con = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone(),
                         ("ok",))
        self.assertEqual(con.execute("PRAGMA foreign_key_check").fetchall(),
                         [])
        indexes = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND "
            "tbl_name = 'runs' AND sql IS NOT NULL")}
        self.assertEqual(indexes, {"runs_source_created", "runs_state",
                                   "runs_created", "runs_day"})
        views = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'view'")}
        self.assertEqual(views, {"runs_daily", "pull_requests_with_runs",
                                 "agent_outcomes", "source_status",
                                 "live_runs", "agent_runs",
                                 "live_runs_json", "run_state_spans"})
        # the views read the rebuilt table as they read the old one (the
        # upstream totals are not known before 0008: NULL)
        for view in views:
            q = f"SELECT * FROM {view}"
            if view == "source_status":
                q = ("SELECT source, kind, backfill_done, high_water, "
                     "last_success_at, runs, live_runs FROM source_status")
                self.assertEqual(con.execute(
                    "SELECT DISTINCT upstream_total FROM source_status"
                    ).fetchall(), [(None,)])
            if view == "live_runs":
                # last_seen_walk numbers the walks since 0010: 0 for
                # every run of a mirror with no full resync under way
                q = "SELECT {} FROM live_runs".format(", ".join(
                    c for c in columns(old, "live_runs")
                    if c != "last_seen_walk"))
                self.assertEqual(con.execute(
                    "SELECT DISTINCT last_seen_walk FROM live_runs"
                    ).fetchall(), [(0,)])
            self.assertEqual(sorted(con.execute(q).fetchall(), key=repr),
                             sorted(self.sql(q), key=repr), view)
        # no CHECK on kind any more: any adapter's name goes in
        sql = con.execute("SELECT sql FROM sqlite_schema WHERE name = "
                          "'runs'").fetchone()[0]
        self.assertNotIn("'codegen'", sql)
        con.close()
        # Foreign keys are on again for the daemon: a later pass goes on
        # from the saved state (no new backfill) and cascades still work.
        self.once_ok()
        con = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        modes = con.execute("SELECT DISTINCT mode FROM sync_runs WHERE id > "
                            "?", (max(r[0] for r in now["sync_runs"]),)
                            ).fetchall()
        con.close()
        self.assertEqual(modes, [("incremental",)])
        self.assertEqual(snapshot(old, cols)["runs"], now["runs"])


class UpgradeFromVersion10Test(DaemonTest):
    codegen_runs = 80
    cotool_runs = 80

    def test_upgrade_from_version_10_keeps_everything(self):
        """A mirror as the release before 0011 (schema 10) wrote it, with
        status changes: 0011 keeps every row, fills the history's source
        and external_id, adds each run's first sighting as the daemon
        writes it, and declares the times TIMESTAMP."""
        self.once_ok()
        for run in self.api.cotool_sorted("createdAt")[:5]:
            self.api.update_cotool(run["id"], status="error")
        self.once_ok()
        keep = ("runs", "pull_requests", "run_pull_requests", "sync_runs",
                "run_tools", "sync_state", "sources")
        now = {t: self.sql(f"SELECT * FROM {t} ORDER BY 1, 2")
               for t in keep}
        history = ("SELECT run_id, observed_at, old_status, new_status, "
                   "old_state, new_state, source, external_id FROM "
                   "run_status_changes ORDER BY run_id, observed_at, "
                   "old_state IS NOT NULL")
        want = self.sql(history)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes WHERE old_state "
                                    "IS NOT NULL"), 5)
        old = os.path.join(self.dir, "old10.db")
        src = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        con = sqlite3.connect(old)
        src.backup(con)
        src.close()
        to_version_10(con)
        con.commit()
        self.assertEqual(con.execute("SELECT count(*) FROM "
                                     "run_status_changes").fetchone(), (5,))
        con.close()
        self.db = old
        self.write_conf(database=old)
        r = subprocess.run([BIN, "-c", self.conf, "--migrate"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0011_analyst_views.sql", r.stderr)
        for t in keep:
            self.assertEqual(self.sql(f"SELECT * FROM {t} ORDER BY 1, 2"),
                             now[t], t)
        self.assertEqual(self.sql(history), want)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes WHERE old_state "
                                    "IS NULL"), 160)
        self.assertEqual(self.sql("SELECT type FROM pragma_table_info("
                                  "'runs') WHERE name = 'created_at'"),
                         [("TIMESTAMP",)])
        self.assertEqual(self.sql("PRAGMA foreign_key_check"), [])
        self.assertEqual(self.sql("PRAGMA integrity_check"), [("ok",)])
