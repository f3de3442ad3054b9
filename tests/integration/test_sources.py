# SPDX-License-Identifier: ISC
"""Sources that leave the configuration (issue 20): the database knows
which are configured, retired ones are named at start and left out of the
analysis views, --rename-source keeps one copy and its history (daemon
stopped, and running with a reload), --forget-source deletes a retired
source in bounded transactions while a reader reads, and a kill in the
middle of a forget leaves the documented, resumable state."""
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time

from tests.integration.harness import BIN, DaemonTest, stop

N = 120      # cotool runs (source 'ct'), pages of 10: a backfill is 12+
M = 40       # codegen runs


class SourcesTest(DaemonTest):
    codegen_runs = M
    cotool_runs = N
    seed = 20

    def conf_with(self, ct_name):
        self.write_conf(sources=("codegen", f"cotool:{ct_name}"),
                        cotool=dict(page_size="10"))

    def cli(self, *args, timeout=120):
        return subprocess.run([BIN, "-c", self.conf, *args], env=self.env(),
                              capture_output=True, text=True,
                              timeout=timeout)

    def cotool_requests(self):
        return len(self.api.requests("cotool"))

    def no_rows_named(self, name):
        for table, col in (("runs", "source"), ("pull_requests", "source"),
                           ("sync_runs", "source"),
                           ("run_status_changes", "source"),
                           ("rejected_records", "source"),
                           ("sync_state", "source"), ("sources", "name")):
            n = self.count(f"SELECT count(*) FROM {table} WHERE {col} = ?",
                           name)
            self.assertEqual(n, 0, f"{table} still has {n} rows of {name}")

    def runs_of(self, name):
        """Runs of source name, or -1 while the daemon is still creating
        the file (not yet there, or not yet migrated)."""
        try:
            return self.count("SELECT count(*) FROM runs WHERE source = ?",
                              name)
        except sqlite3.Error:
            return -1

    def view_total(self):
        return self.count("SELECT coalesce(sum(runs), 0) FROM runs_daily")

    # -- retired sources --------------------------------------------------

    def test_removed_source_is_named_and_left_out_of_views(self):
        self.conf_with("ct")
        self.once_ok()
        self.assertEqual(self.view_total(), N + M)
        self.write_conf(sources=("codegen",))
        self.once_ok()
        self.assertIn(f"source 'ct' ({N} runs) is in the database but not "
                      f"in the configuration", self.last_stderr)
        self.assertEqual(self.sql("SELECT configured FROM sources WHERE "
                                  "name = 'ct'"), [(0,)])
        self.assertEqual(self.sql("SELECT configured FROM source_status "
                                  "WHERE source = 'ct'"), [(0,)])
        self.assertEqual(self.view_total(), M)
        self.assertEqual(self.count("SELECT count(*) FROM live_runs"), M)
        self.assertEqual(self.count(
            "SELECT coalesce(sum(runs), 0) FROM agent_outcomes"), M)
        st = self.cli("--status")
        self.assertIn("configured:      no (retired", st.stdout)
        # back in the configuration: configured again, no second copy
        self.conf_with("ct")
        self.once_ok()
        self.assertNotIn("not in the configuration", self.last_stderr)
        self.assertEqual(self.view_total(), N + M)
        self.assert_mirror_exact(("codegen", "ct"),
                                 kinds={"ct": "cotool"})

    # -- rename -----------------------------------------------------------

    def test_rename_with_the_daemon_stopped(self):
        self.conf_with("ct")
        self.once_ok()
        passes = self.count("SELECT count(*) FROM sync_runs WHERE "
                            "source = 'ct'")
        # renaming the section without --rename-source: warned
        self.conf_with("ct2")
        r = self.cli("--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.cli("--rename-source", "ct2", "x")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("[source ct2] is still in", r.stderr)
        r = self.cli("--rename-source", "ct", "ct2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("renamed to 'ct2'", r.stdout)
        before = self.cotool_requests()
        self.once_ok()
        # one incremental request, not a backfill of N / 10 pages
        self.assertEqual(self.cotool_requests() - before, 1)
        self.no_rows_named("ct")
        self.assertEqual(self.count("SELECT count(*) FROM runs WHERE "
                                    "source = 'ct2'"), N)
        # the history follows its runs (each run's first sighting)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes WHERE "
                                    "source = 'ct2'"), N)
        self.assertEqual(self.count("SELECT count(*) FROM sync_runs WHERE "
                                    "source = 'ct2'"), passes + 1)
        self.assertEqual(self.view_total(), N + M)
        self.assertNotIn("not in the configuration", self.last_stderr)
        self.assert_mirror_exact(("codegen", "ct2"),
                                 kinds={"ct2": "cotool"})

    def test_rename_refusals(self):
        self.conf_with("ct")
        self.once_ok()
        self.write_conf(sources=("codegen", "cotool:ct", "cotool:other"),
                        cotool=dict(page_size="10"))
        self.once_ok()
        self.write_conf(sources=("codegen",))
        for args, want in (
                (("--rename-source", "ct", "other"),
                 "source 'other' already has"),
                (("--rename-source", "nope", "ct9"),
                 "no source 'nope' in the database"),
                (("--rename-source", "ct", "bad name"),
                 "a source name is 1-64"),
                (("--rename-source", "ct"), "NEW is missing"),
                (("--forget-source", "codegen", "--yes"),
                 "[source codegen] is still in"),
                (("--forget-source", "ct"), "add --yes")):
            r = self.cli(*args)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(want, r.stderr, args)
        self.assertEqual(self.count("SELECT count(*) FROM runs WHERE "
                                    "source = 'ct'"), N)

    def test_same_upstream_under_a_new_name_is_pointed_out(self):
        self.conf_with("ct")
        self.once_ok()
        self.conf_with("ct2")
        self.once_ok()
        self.assertIn("'agentsyncd --rename-source ct ct2' would keep its "
                      "history", self.last_stderr)
        # that second copy is not counted twice by the views
        self.assertEqual(self.view_total(), N + M)

    def test_rename_with_the_daemon_running_then_reload(self):
        self.conf_with("ct")
        p = self.start()
        self.wait_until(lambda: self.runs_of("ct") == N, 60, "the backfill")
        backfills = self.count("SELECT count(*) FROM sync_runs WHERE "
                               "mode = 'backfill'")
        self.conf_with("ct2")                   # 1: edit the file
        r = self.cli("--rename-source", "ct", "ct2")   # 2: rename
        self.assertEqual(r.returncode, 0, r.stderr)
        # the daemon, still on the old file, stops 'ct' at its next poll
        # (poll_interval 1s) and writes nothing under it
        self.wait_until(lambda: "no longer in the database" in
                        self.stderr_of(p), 15, "the daemon to notice")
        self.no_rows_named("ct")
        polled = self.count("SELECT coalesce(sum(passes), 0) FROM "
                            "sync_runs WHERE source = 'ct2'")
        p.send_signal(signal.SIGHUP)            # 3: reload
        # (idle passes fold into one sync_runs row: count passes)
        self.wait_until(lambda: self.count(
            "SELECT coalesce(sum(passes), 0) FROM sync_runs WHERE "
            "source = 'ct2' AND outcome = 'succeeded'") >= polled + 2, 30,
            "ct2 to poll")
        stop(p, log=lambda: self.stderr_of(p))
        self.no_rows_named("ct")
        self.assertEqual(self.count("SELECT count(*) FROM sync_runs WHERE "
                                    "mode = 'backfill'"), backfills)
        self.assertEqual(self.view_total(), N + M)
        self.assert_mirror_exact(("codegen", "ct2"),
                                 kinds={"ct2": "cotool"})

    # -- forget -----------------------------------------------------------

    def test_forget_while_a_reader_reads(self):
        self.conf_with("ct")
        self.once_ok()
        self.write_conf(sources=("codegen",))
        self.once_ok()                          # ct retired
        errors, reads, done = [], [0], threading.Event()

        def reader():
            while not done.is_set():
                try:
                    if self.engine == "postgresql":
                        self.sql("SELECT count(*) FROM runs_daily")
                    else:
                        con = sqlite3.connect(f"file:{self.db}?mode=ro",
                                              uri=True, timeout=5)
                        con.execute("SELECT count(*) FROM runs_daily")
                        con.close()
                    reads[0] += 1
                except (sqlite3.Error, AssertionError) as e:
                    errors.append(str(e))
        t = threading.Thread(target=reader)
        t.start()
        try:
            r = self.cli("--forget-source", "ct", "--yes")
        finally:
            done.set()
            t.join(10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{N} runs deleted", r.stdout)
        self.assertEqual(errors, [])
        self.assertGreater(reads[0], 0)
        self.no_rows_named("ct")
        for t in ("run_tools", "run_acceptance_criteria",
                  "run_eval_bullets", "run_status_changes"):
            self.assertEqual(self.count(
                f"SELECT count(*) FROM {t} WHERE run_id NOT IN "
                f"(SELECT id FROM runs)"), 0, t)
        if self.engine == "sqlite":    # PostgreSQL enforces them always
            self.assertEqual(self.sql("PRAGMA foreign_key_check"), [])
        self.assert_mirror_exact(("codegen",))


class ForgetKillTest(DaemonTest):
    """SIGKILL at several instants of a forget of 6,000 runs: each time
    the source is whole, or marked forgetting (its cursor gone, some runs
    left: --status and the daemon's start say so), or gone; running the
    forget again always finishes it."""
    codegen_runs = 10
    cotool_runs = 6000
    seed = 21

    def test_kill_in_the_middle(self):
        self.write_conf(sources=("codegen", "cotool:ct"))
        self.once_ok(timeout=300)
        self.write_conf(sources=("codegen",))
        self.once_ok()
        con = sqlite3.connect(self.db)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        golden = os.path.join(self.dir, "golden.db")
        shutil.copy(self.db, golden)
        seen = set()
        for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.2):
            for ext in ("-wal", "-shm"):
                if os.path.exists(self.db + ext):
                    os.unlink(self.db + ext)
            shutil.copy(golden, self.db)
            p = subprocess.Popen([BIN, "-c", self.conf, "--forget-source",
                                  "ct", "--yes"], env=self.env(),
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.kill()
            p.wait(10)
            runs = self.count("SELECT count(*) FROM runs WHERE source = "
                              "'ct'")
            row = self.sql("SELECT forgetting_since FROM sources WHERE "
                           "name = 'ct'")
            cursor = self.count("SELECT count(*) FROM sync_state WHERE "
                                "source = 'ct'")
            if row and row[0][0] is None:
                state = "whole"
                self.assertEqual((runs, cursor), (6000, 1))
            elif row:
                state = "forgetting"
                self.assertEqual(cursor, 0)
                st = subprocess.run([BIN, "-c", self.conf, "--status"],
                                    env=self.env(), capture_output=True,
                                    text=True, timeout=60)
                self.assertIn("--forget-source interrupted", st.stdout)
                self.once_ok()
                self.assertIn("source 'ct' is half forgotten",
                              self.last_stderr)
            else:
                state = "gone"
                self.assertEqual(runs, 0)
            seen.add(state)
            self.assertEqual(self.sql("PRAGMA integrity_check"), [("ok",)])
            self.assertEqual(self.sql("PRAGMA foreign_key_check"), [])
            r = subprocess.run([BIN, "-c", self.conf, "--forget-source",
                                "ct", "--yes"], env=self.env(),
                               capture_output=True, text=True, timeout=120)
            if state == "gone":
                self.assertIn("no source 'ct'", r.stderr)
            else:
                self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.count("SELECT count(*) FROM runs WHERE "
                                        "source = 'ct'"), 0)
            self.assert_mirror_exact(("codegen",))
        print(f"\nkill states seen: {sorted(seen)}", flush=True)


class UpgradeTest(DaemonTest):
    """Migration 0006 on a mirror of schema version 5: every source that
    synced (and any that only has runs) is in `sources`, configured until
    the daemon's next start says otherwise."""

    def test_upgrade_from_version_5(self):
        from tests.integration.test_migrations import apply_migrations
        apply_migrations(self.db, 5)
        con = sqlite3.connect(self.db)
        con.execute("INSERT INTO sync_state (source, kind, identity) "
                    "VALUES ('cg', 'codegen', 'codegen http://x org 1')")
        con.execute("INSERT INTO runs (source, kind, external_id, state, raw_json, "
                    "first_seen_at, last_seen_at, changed_at) VALUES "
                    "('old', 'cotool', 'r1', 'pending', '{}', 't', 't', 't')")
        con.commit()
        con.close()
        r = subprocess.run([BIN, "-c", self.conf, "--migrate"],
                           env=self.env(), capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.sql("SELECT name, kind, identity, configured "
                                  "FROM sources ORDER BY name"),
                         [("cg", "codegen", "codegen http://x org 1", 1),
                          ("old", "cotool", "", 1)])
        self.assertEqual(self.count("SELECT count(*) FROM live_runs"), 1)
