# SPDX-License-Identifier: ISC
"""The PostgreSQL engine where it differs from SQLite's, against a
throwaway cluster (tests/pgcluster.py): the same upstream mirrored into
both engines compared row by row; an idle poll writes no row of runs,
pull_requests or run_pull_requests; NOTIFY agentsyncd, 'SOURCE' after each
committed batch that changed runs and none after an idle poll; a schema
that is not agentsyncd's, or newer, refused untouched; the password read
from database_password_file and never printed; the faults of issue 28
(restart mid-backfill, a server down at start, a read-only server,
permission denied, statement_timeout) cost nothing.

Skipped (with the reason) where PostgreSQL 15 is not installed; make
check-postgres installs it and runs this file."""
import os
import sqlite3
import subprocess
import time
import unittest

from tests import pgcluster
from tests.integration import harness
from tests.integration.harness import DaemonTest, stop, wait_for

# make check-postgres sets AGENTSYNCD_PG_TESTS=1; make test leaves these
# to it (a cluster per run takes time, and postgresql may be missing).
WHY = pgcluster.available() or (
    None if os.environ.get("AGENTSYNCD_PG_TESTS") == "1" else
    "PostgreSQL tests run in make check-postgres")

# Columns that say when the mirror saw something, not what upstream said.
SIGHTING = {"id", "run_id", "pull_request_id", "first_seen_at",
            "last_seen_at", "changed_at", "finished_seen_at", "observed_at",
            "last_seen_walk"}


def _norm(v):
    """A value as both engines hold it: booleans as 0/1, times as text."""
    if v is True or v is False:
        return int(v)
    return v


@unittest.skipIf(WHY, WHY)
class PgTest(DaemonTest):
    """A DaemonTest whose mirror is a database of the throwaway cluster,
    whatever AGENTSYNCD_TEST_ENGINE says."""
    codegen_runs = 250
    cotool_runs = 240

    def setUp(self):
        old = harness.ENGINE
        harness.ENGINE = "postgresql"
        try:
            super().setUp()
        finally:
            harness.ENGINE = old
        self.uri = self.db

    def psql(self, sql, **kw):
        return self.pg.psql(sql, self.pg_db, **kw)

    def stats(self, table):
        """Rows inserted + updated + deleted in table so far."""
        self.psql("SELECT pg_stat_force_next_flush()")
        r = self.pg.sql("SELECT n_tup_ins + n_tup_upd + n_tup_del FROM "
                        "pg_stat_user_tables WHERE schemaname = "
                        f"'agentsyncd' AND relname = '{table}'", self.pg_db)
        return int(r[0][0])


class SameAsSqliteTest(PgTest):
    def rows(self, query, sqlite_path=None):
        if sqlite_path is None:
            return [tuple(_norm(v) for v in r) for r in self.sql(query)]
        con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        try:
            return [tuple(_norm(v) for v in r)
                    for r in con.execute(query).fetchall()]
        finally:
            con.close()

    def columns(self, table, sqlite_path):
        con = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
        try:
            return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        finally:
            con.close()

    def test_same_upstream_same_rows(self):
        lite = os.path.join(self.dir, "same.db")

        def both():
            for db in (lite, self.uri):
                self.write_conf(database=db)
                self.once_ok()
        rid = self.api.codegen_sorted()[3]["id"]
        self.api.update_codegen(rid, status="ACTIVE")
        both()
        self.api.update_codegen(rid, status="COMPLETE")
        self.api.update_cotool(self.api.cotool_sorted()[7]["id"],
                               status="running")
        both()
        keyed = {
            "runs": "source, external_id",
            "pull_requests": "source, external_id",
            "run_tools": "run_id, position",
            "run_acceptance_criteria": "run_id, position",
            "run_eval_bullets": "run_id, position",
            "run_field_problems": "run_id, position",
            "rejected_records": "source, reason, raw_json",
            "sources": "name",
        }
        compared = 0
        for table, order in keyed.items():
            cols = [c for c in self.columns(table, lite)
                    if c not in SIGHTING and c not in (
                        "configured_since", "retired_at")]
            sel = ", ".join(cols)
            if "run_id" in order:
                sel = ("(SELECT source || '/' || external_id FROM runs r "
                       f"WHERE r.id = t.run_id) AS run, {sel}")
                order = "run, position"
            q = f"SELECT {sel} FROM {table} t ORDER BY {order}"
            if table in ("runs", "pull_requests", "sources"):
                q = q.replace("ORDER BY source, external_id",
                              "ORDER BY source, external_id COLLATE \"C\"")
            got_pg = self.rows(q)
            got_lite = self.rows(q.replace(' COLLATE "C"', ""), lite)
            self.assertEqual(len(got_pg), len(got_lite), table)
            for a, b in zip(got_pg, got_lite):
                self.assertEqual(a, b, f"{table}: {cols}")
            compared += len(got_pg)
        self.assertGreater(compared, 1000)
        # links and history, by the runs' keys
        q = ("SELECT r.source, r.external_id, p.external_id, l.position "
             "FROM run_pull_requests l JOIN runs r ON r.id = l.run_id "
             "JOIN pull_requests p ON p.id = l.pull_request_id "
             "ORDER BY 1, 2, 4")
        self.assertEqual(sorted(self.rows(q)), sorted(self.rows(q, lite)))
        q = ("SELECT source, external_id, old_status, new_status, "
             "old_state, new_state, updated_at FROM run_status_changes")
        self.assertEqual(sorted(map(str, self.rows(q))),
                         sorted(map(str, self.rows(q, lite))))
        # every table and view column of the SQLite mirror exists here
        con = sqlite3.connect(f"file:{lite}?mode=ro", uri=True)
        names = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type IN ('table', "
            "'view') AND name NOT LIKE 'sqlite_%'")]
        missing = []
        for n in names:
            want = {r[1] for r in con.execute(f"PRAGMA table_info({n})")}
            have = {r[0] for r in self.pg.sql(
                "SELECT column_name FROM information_schema.columns WHERE "
                f"table_schema = 'agentsyncd' AND table_name = '{n}'",
                self.pg_db)}
            missing += [f"{n}.{c}" for c in sorted(want - have)]
        con.close()
        self.assertEqual(missing, [])
        # the views answer alike
        for view, order in (("runs_daily", "1, 4, 5, 6"),
                            ("agent_outcomes", "1, 2, 3, 4")):
            q = f"SELECT * FROM {view} ORDER BY {order}"
            pg = [tuple(str(v) for v in r) for r in self.rows(q)]
            li = [tuple(str(v) for v in r) for r in self.rows(q, lite)]
            self.assertEqual(len(pg), len(li), view)


class IdleAndNotifyTest(PgTest):
    codegen_runs = 60      # one page a source: one transaction each
    cotool_runs = 50
    def listen_during(self, action, seconds=8):
        """The payloads of NOTIFY agentsyncd a psql session LISTENing
        receives while action() runs (psql prints them after its
        pg_sleep; its output is read when it exits)."""
        p = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p",
             str(self.pg.port), "-U", self.pg.superuser, "-d", self.pg_db,
             "-c", "LISTEN agentsyncd", "-c",
             f"SELECT pg_sleep({seconds})", "-c", "SELECT 'done'"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait(10)))
        wait_for(lambda: self.pg.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
            "'SELECT pg_sleep%'", self.pg_db) == [("1",)], 20,
            "the listener to wait")
        t0 = time.monotonic()
        action()
        self.assertLess(time.monotonic() - t0, seconds - 1,
                        "the action outlasted the listener")
        out, _ = p.communicate(timeout=seconds + 20)
        self.assertIn("done", out)
        return [ln.split('payload "')[1].split('"')[0]
                for ln in out.splitlines()
                if "Asynchronous notification" in ln]

    def test_idle_writes_nothing_and_notify_says_when(self):
        # one page a source: one batch (transaction) each
        got = self.listen_during(self.once_ok)
        self.assertEqual(sorted(got), ["codegen", "cotool"])
        before = {t: self.stats(t) for t in
                  ("runs", "pull_requests", "run_pull_requests")}

        def idle():
            self.once_ok()
            self.once_ok()
        self.assertEqual(self.listen_during(idle), [])
        after = {t: self.stats(t) for t in before}
        self.assertEqual(before, after)
        self.api.update_cotool(self.api.cotool_sorted()[0]["id"],
                               status="interrupted")
        self.assertEqual(self.listen_during(self.once_ok), ["cotool"])
        self.assertEqual(self.stats("runs"), before["runs"] + 1)


class ReadOnlyRoleTest(PgTest):
    codegen_runs = 20
    cotool_runs = 20

    def test_readme_grants(self):
        """README "BI access": the read-only role reads every view, a
        migration's new table too, and writes nothing."""
        with open(os.path.join(harness.ROOT, "README.md")) as f:
            text = f.read()
        block = text.split("```pgsql\n", 1)[1].split("```", 1)[0]
        self.once_ok()
        owner = self.pg.superuser
        sql = (block.replace("DATABASE mirror", f'DATABASE "{self.pg_db}"')
               .replace("FOR ROLE agentsyncd", f"FOR ROLE {owner}")
               .replace("PASSWORD '...'", "PASSWORD 'bi-pass-0123456789'"))
        self.psql(sql)
        # a table a later migration would add is readable too
        self.psql("CREATE TABLE agentsyncd.later (x int); "
                  "INSERT INTO agentsyncd.later VALUES (1)")
        for rel in ("agent_runs", "runs_daily", "live_runs",
                    "pull_requests_with_runs", "agent_outcomes",
                    "source_status", "run_state_spans", "later"):
            self.pg.sql(f"SELECT count(*) FROM {rel}", self.pg_db,
                        user="bi")
        r = self.pg.psql("DELETE FROM runs", self.pg_db, user="bi",
                         check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("read-only transaction", r.stderr)
        self.assertEqual(self.count("SELECT count(*) FROM runs"), 40)


class ClaimTest(PgTest):
    """The PostgreSQL side of fail-over through store.h, in C
    (tests/unit/test_store_pg_claim.c, skipped by make test): two
    processes opening one empty database migrate it once; one holder of a
    source at a time, named; SIGKILL of the holder, or a release, lets
    the other take it over within 30 s.  The sync side (a standby that
    keeps trying, two daemons) is tested with the daemon itself."""
    codegen_runs = 0
    cotool_runs = 0

    def test_claims(self):
        binary = os.path.join(harness.ROOT, "build", "tests",
                              "test_store_pg_claim")
        if not os.access(binary, os.X_OK):
            self.fail(f"{binary} missing: make unit-bin")
        r = subprocess.run([binary], capture_output=True, text=True,
                           timeout=120, env=dict(
                               os.environ, AGENTSYNCD_TEST_PG_URI=self.uri))
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, out[-3000:])
        self.assertIn("[  PASSED  ] 2 test(s)", out)
        self.assertEqual(self.pg.sql(
            "SELECT count(*) FROM agentsyncd.schema_version", self.pg_db),
            [("1",)])


class RefusalsTest(PgTest):
    codegen_runs = 5
    cotool_runs = 5

    def test_foreign_schema_refused_untouched(self):
        self.psql("CREATE SCHEMA agentsyncd; CREATE TABLE agentsyncd.t "
                  "(x int); INSERT INTO agentsyncd.t VALUES (1)")
        self.assertEqual(self.once(), 1)
        self.assertIn("schema 'agentsyncd' is not an agentsyncd mirror",
                      self.last_stderr)
        self.assertEqual(self.pg.sql("SELECT count(*) FROM pg_tables "
                                     "WHERE schemaname = 'agentsyncd'",
                                     self.pg_db), [("1",)])

    def test_newer_schema_refused_untouched(self):
        self.once_ok()
        self.psql("INSERT INTO agentsyncd.schema_version (version, name) "
                  "VALUES (99, '0099_future.sql')")
        self.assertEqual(self.once(), 1)
        self.assertIn("has schema version 99, newer than this agentsyncd "
                      "knows (11): refusing to touch it", self.last_stderr)

    def test_other_schema_and_password_file(self):
        secret = "s3cret-pass-" + os.urandom(8).hex()
        self.psql(f"CREATE ROLE mirror LOGIN PASSWORD '{secret}'; "
                  f"GRANT CREATE ON DATABASE \"{self.pg_db}\" TO mirror")
        hba = os.path.join(self.pg.data, "pg_hba.conf")
        with open(hba) as f:
            text = f.read()
        with open(hba, "w") as f:
            f.write("host all mirror 127.0.0.1/32 scram-sha-256\n" + text)
        self.psql("SELECT pg_reload_conf()")
        pw = os.path.join(self.dir, "db.pw")
        with open(pw, "w") as f:
            f.write(secret + "\n")
        os.chmod(pw, 0o600)
        uri = self.pg.uri(self.pg_db, user="mirror")
        with open(self.conf) as f:
            conf = f.read().replace(
                f"database = {self.uri}\n",
                f"database = {uri}\ndatabase_schema = bi_mirror\n"
                f"database_password_file = {pw}\n")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.once_ok()
        self.assertEqual(self.pg.sql("SELECT count(*) FROM bi_mirror.runs",
                                     self.pg_db), [("10",)])
        st = subprocess.run([harness.BIN, "-c", self.conf, "--status"],
                            env=self.env(), capture_output=True, text=True,
                            timeout=60)
        for out in (self.last_stderr, st.stdout, st.stderr):
            self.assertNotIn(secret, out)
        # a wrong password: the server's message, not the password
        with open(pw, "w") as f:
            f.write("wrong-password-0123456789\n")
        self.assertNotEqual(self.once(), 0)
        self.assertIn("password authentication failed", self.last_stderr)
        self.assertNotIn("wrong-password", self.last_stderr)
        # a password in the URI is refused, and not echoed
        with open(self.conf, "w") as f:
            f.write(conf.replace(uri, self.pg.uri(
                self.pg_db, user=f"mirror:{secret}")))
        r = subprocess.run([harness.BIN, "-c", self.conf, "-t"],
                           env=self.env(), capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 78)
        self.assertIn("agentsyncd.conf:2: database: the URI holds a "
                      "password", r.stdout + r.stderr)
        self.assertNotIn(secret, r.stdout + r.stderr)


class FaultsTest(PgTest):
    codegen_runs = 3000
    cotool_runs = 3000

    def test_restart_mid_backfill(self):
        self.write_conf(codegen=dict(page_size="50"),
                        cotool=dict(page_size="50"))
        d = self.start()
        wait_for(lambda: self.count("SELECT count(*) FROM runs") > 500
                 if self.pg_ready() else False, 60, "backfill under way",
                 d, lambda: self.stderr_of(d))
        self.pg.restart("fast")
        wait_for(lambda: "reconnected" in self.stderr_of(d), 60,
                 "the daemon to reconnect", d, lambda: self.stderr_of(d))
        wait_for(lambda: self.count(
            "SELECT count(*) FROM sync_state WHERE backfill_done") == 2,
            120, "backfill done", d, lambda: self.stderr_of(d))
        stop(d, log=lambda: self.stderr_of(d))
        self.assertIn("connection lost", self.stderr_of(d))
        self.assertEqual(self.settled_problems(), [])

    def test_dropped_connection_mid_backfill(self):
        self.write_conf(codegen=dict(page_size="50"),
                        cotool=dict(page_size="50"))
        d = self.start()
        wait_for(lambda: self.count("SELECT count(*) FROM runs") > 500
                 if self.pg_ready() else False, 60, "backfill under way",
                 d, lambda: self.stderr_of(d))
        killed = self.pg.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'agentsyncd'", self.pg_db)
        self.assertEqual(killed, [("1",)])
        wait_for(lambda: "reconnected" in self.stderr_of(d), 60,
                 "the daemon to reconnect", d, lambda: self.stderr_of(d))
        wait_for(lambda: self.count(
            "SELECT count(*) FROM sync_state WHERE backfill_done") == 2,
            120, "backfill done", d, lambda: self.stderr_of(d))
        stop(d, log=lambda: self.stderr_of(d))
        self.assertIn("connection lost", self.stderr_of(d))
        self.assertEqual(self.settled_problems(), [])

    def test_status_says_unreachable(self):
        self.once_ok()
        self.pg.stop_server()
        try:
            r = subprocess.run([harness.BIN, "-c", self.conf, "--status"],
                               env=self.env(), capture_output=True,
                               text=True, timeout=60)
        finally:
            self.pg.start()
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("is unreachable", r.stderr)
        self.assertIn("UNKNOWN", r.stdout)

    def pg_ready(self):
        try:
            self.sql("SELECT 1 FROM sync_state LIMIT 1")
            return True
        except AssertionError:
            return False

    def test_down_at_start_then_up(self):
        self.pg.stop_server()
        try:
            d = self.start()
            wait_for(lambda: "is unreachable" in self.stderr_of(d), 30,
                     "the daemon to say the database is unreachable", d,
                     lambda: self.stderr_of(d))
            time.sleep(2)
            self.assertIsNone(d.poll())
        finally:
            self.pg.start()
        wait_for(lambda: self.pg_ready() and self.count(
            "SELECT count(*) FROM sync_state WHERE backfill_done") == 2,
            120, "backfill after the server came up", d,
            lambda: self.stderr_of(d))
        stop(d, log=lambda: self.stderr_of(d))
        self.assertEqual(self.settled_problems(), [])

    def test_read_only_then_writable(self):
        self.once_ok()
        self.api.update_cotool(self.api.cotool_sorted()[0]["id"],
                               status="interrupted")
        self.psql(f'ALTER DATABASE "{self.pg_db}" SET '
                  "default_transaction_read_only = on")
        self.assertNotEqual(self.once(), 0)
        self.assertIn("read-only transaction", self.last_stderr)
        self.psql(f'ALTER DATABASE "{self.pg_db}" SET '
                  "default_transaction_read_only = off", env={
                      "PGOPTIONS": "-c default_transaction_read_only=off"})
        self.assertEqual(self.settled_problems(), [])

    def test_permission_denied_then_granted(self):
        self.once_ok()
        self.psql("CREATE ROLE weak LOGIN; GRANT USAGE ON SCHEMA agentsyncd "
                  "TO weak; GRANT SELECT ON ALL TABLES IN SCHEMA agentsyncd "
                  "TO weak")
        uri = self.pg.uri(self.pg_db, user="weak")
        with open(self.conf) as f:
            conf = f.read()
        with open(self.conf, "w") as f:
            f.write(conf.replace(self.uri, uri))
        self.api.update_cotool(self.api.cotool_sorted()[0]["id"],
                               status="interrupted")
        self.assertNotEqual(self.once(), 0)
        self.assertIn("permission denied", self.last_stderr)
        with open(self.conf, "w") as f:
            f.write(conf)
        self.assertEqual(self.settled_problems(), [])

    def test_statement_timeout(self):
        """A statement held past statement_timeout (a lock another
        session holds) fails the pass with the server's message; the
        next pass, unhindered, leaves the mirror exact."""
        self.once_ok()
        self.api.update_cotool(self.api.cotool_sorted()[0]["id"],
                               status="interrupted")
        uri = self.uri + "?options=-c%20statement_timeout%3D300"
        with open(self.conf) as f:
            conf = f.read()
        with open(self.conf, "w") as f:
            f.write(conf.replace(self.uri, uri))
        locker = subprocess.Popen(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p",
             str(self.pg.port), "-U", self.pg.superuser, "-d", self.pg_db,
             "-c", "BEGIN; LOCK TABLE agentsyncd.runs IN ACCESS "
             "EXCLUSIVE MODE; SELECT pg_sleep(6); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: locker.poll() is None and (
            locker.kill(), locker.wait(10)))
        wait_for(lambda: self.pg.sql(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
            "l.relation WHERE c.relname = 'runs' AND l.mode = "
            "'AccessExclusiveLock' AND l.granted", self.pg_db) == [("1",)],
            20, "the lock")
        self.assertNotEqual(self.once(), 0)
        self.assertIn("statement timeout", self.last_stderr)
        locker.wait(30)
        with open(self.conf, "w") as f:
            f.write(conf)
        self.assertEqual(self.settled_problems(), [])


if __name__ == "__main__":
    unittest.main()
