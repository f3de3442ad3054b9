"""Upgrading a mirror made by an older agentsyncd: every migration after the
database's version applies, and what was mirrored survives it whole.

0003 rebuilds `runs` (to drop the CHECK that named the two first kinds):
the rows, their ids, the child rows that point at them (pull request
links, tools, criteria, bullets, status changes), the indexes and views
must all be there after it, and a later sync must go on from the saved
state rather than backfill again."""
import glob
import os
import sqlite3
import subprocess

from tests.integration.harness import BIN, ROOT, DaemonTest


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


class MigrationTest(DaemonTest):
    codegen_runs = 60
    cotool_runs = 60

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
            con.execute(f"INSERT INTO main.{t} ({c}) SELECT {c} FROM cur.{t}")
        con.commit()
        con.execute("DETACH cur")
        con.close()
        self.assertEqual(snapshot(old, cols), now)

        self.write_conf(database=old)
        r = subprocess.run([BIN, "-c", self.conf, "--migrate"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0003_runs_kind_any_adapter.sql", r.stderr)
        self.assertEqual(snapshot(old, cols), now)
        con = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone(),
                         ("ok",))
        self.assertEqual(con.execute("PRAGMA foreign_key_check").fetchall(),
                         [])
        indexes = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND "
            "tbl_name = 'runs' AND sql IS NOT NULL")}
        self.assertEqual(indexes, {"runs_source_created",
                                   "runs_source_updated", "runs_state",
                                   "runs_created"})
        views = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'view'")}
        self.assertEqual(views, {"runs_daily", "pull_requests_with_runs",
                                 "agent_outcomes", "source_status",
                                 "live_runs"})
        # the views read the rebuilt table as they read the old one
        for view in views:
            q = f"SELECT * FROM {view}"
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
