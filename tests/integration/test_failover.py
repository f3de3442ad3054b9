# SPDX-License-Identifier: ISC
"""Fail-over: two daemons with one configuration share one PostgreSQL
database; each source is walked by exactly one of them at a time, and the
other takes a source over within 30 s of its holder's end (SIGKILL,
SIGTERM, its connection dropped).  The mirror stays exact and nothing is
counted twice.

PostgreSQL only (make check-postgres runs it with
AGENTSYNCD_TEST_ENGINE=postgresql); skipped with SQLite, whose file one
daemon writes."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

from tests.integration import harness
from tests.integration.harness import DaemonTest

N = 1500
TAKEOVER_BOUND = 30.0   # the bound, seconds


@unittest.skipUnless(harness.ENGINE == "postgresql",
                     "fail-over is a PostgreSQL engine's (make "
                     "check-postgres)")
class FailoverTest(DaemonTest):
    codegen_runs = N
    cotool_runs = N

    def setUp(self):
        super().setUp()
        # a slow upstream: a backfill is under way when a holder ends
        self.api.latency = 0.02
        self.write_conf(codegen=dict(page_size="50"),
                        cotool=dict(page_size="50"))

    def holders(self):
        """{source: holder} as --status --json of the database says."""
        rc, doc = self.status_json()
        return {s["name"]: s.get("walked_by") for s in doc["sources"]}

    def status_json(self):
        import json
        import subprocess
        r = subprocess.run([harness.BIN, "-c", self.conf, "--status",
                            "--json"], env=self.env(), capture_output=True,
                           text=True, timeout=60)
        return r.returncode, json.loads(r.stdout)

    def held_by(self, p):
        return f"pid {p.pid}"

    def both_held_by(self, p):
        try:
            h = self.holders()
        except (ValueError, KeyError):
            return False
        return (len(h) == 2 and all(v is not None and
                                    v.endswith(self.held_by(p))
                                    for v in h.values()))

    def backfilled(self):
        return self.count("SELECT count(*) FROM runs") == 2 * N

    def stop_all(self):
        for p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in self.procs:
            p.wait(timeout=60)

    def no_double_counting(self):
        # every run counted new once, across both daemons' passes
        new = self.count("SELECT coalesce(sum(runs_new), 0) FROM sync_runs")
        self.assertEqual(new, 2 * N)
        self.assertEqual(self.duplicated_runs(), [])

    def takeover(self, end, conf_a=None):
        """A holds both sources, B stands by; end(A); B takes both over
        within TAKEOVER_BOUND seconds."""
        conf, self.conf = self.conf, conf_a or self.conf
        a = self.start()
        self.conf = conf
        self.wait_until(lambda: self.both_held_by(a), 60,
                        "the first daemon holds both sources")
        b = self.start()
        self.wait_until(lambda: self.stderr_of(b).count("standing by") >= 2,
                        30, "the second daemon stands by for both")
        self.assertFalse(self.backfilled(), "the backfill ended too soon")
        # --once does not wait for sources another daemon walks
        self.assertEqual(self.once(), 75)
        self.assertEqual(self.last_stderr.count("(--once does not wait)"),
                         2, self.last_stderr[-2000:])
        t0 = time.monotonic()
        end(a)
        self.wait_until(lambda: self.both_held_by(b), TAKEOVER_BOUND,
                        "the second daemon takes both sources over")
        took = time.monotonic() - t0
        print(f"\n  take-over after {took:.1f} s", file=sys.stderr)
        self.assertLess(took, TAKEOVER_BOUND)
        self.assertEqual(self.stderr_of(b).count("taking it over"), 2)
        if getattr(self, "on_takeover", None):
            self.on_takeover()
            self.wait_until(lambda: self.stderr_of(a).count(
                "; standing by") >= 2, TAKEOVER_BOUND,
                "the first daemon, back, stands by for both")
        self.wait_until(self.backfilled, 120, "the backfill completes")
        self.stop_all()
        self.no_double_counting()
        self.assert_mirror_exact()
        return a, b, took

    def test_sigkill_of_the_holder(self):
        def kill(a):
            a.kill()
            a.wait(timeout=10)
        self.takeover(kill)

    def test_sigterm_of_the_holder(self):
        def term(a):
            a.send_signal(signal.SIGTERM)
            a.wait(timeout=60)
        self.takeover(term)

    def proxy(self, port):
        """scripts/pgproxy.py from port to the cluster, no delay."""
        p = subprocess.Popen([sys.executable,
                              os.path.join(harness.ROOT, "scripts",
                                           "pgproxy.py"),
                              str(port), str(self.pg.port), "0"])
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.wait_until(lambda: self.port_open(port), 10, "the proxy")
        return p

    @staticmethod
    def port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            return False

    def test_holder_loses_its_connection(self):
        # A reaches the server through a proxy the test cuts: its session
        # ends and it cannot connect again; B takes both sources over.
        # When A can connect again it finds them held and stands by.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        box = [self.proxy(port)]
        self.write_conf(database=self.db.replace(f":{self.pg.port}/",
                                                 f":{port}/"),
                        codegen=dict(page_size="50"),
                        cotool=dict(page_size="50"))
        conf_a = self.conf + ".a"
        os.rename(self.conf, conf_a)
        self.write_conf(codegen=dict(page_size="50"),
                        cotool=dict(page_size="50"))

        def cut(a):
            box[0].kill()
            box[0].wait(timeout=10)

        def back():
            box[0] = self.proxy(port)
        self.on_takeover = back
        a, b, _ = self.takeover(cut, conf_a)
        # A connected again and stood by: B walked to the end
        self.assertRegex(self.stderr_of(a),
                         r"walked by \S+ pid %d; standing by" % b.pid)

    @staticmethod
    def unclaimed_pages(log, name):
        """Pages of source name written after the reconnection that come
        before this daemon held it again (debug log)."""
        lines = log.splitlines()
        at = [k for k, ln in enumerate(lines) if "reconnected" in ln]
        if not at:
            return None
        claimed, bad = False, 0
        for ln in lines[at[0]:]:
            if f"source '{name}': held by this daemon" in ln:
                claimed = True
            elif f"source '{name}': page at offset" in ln and not claimed:
                bad += 1
        return bad

    def test_holder_session_terminated(self):
        # The server ends A's session (pg_terminate_backend) and A
        # connects again at once: its claims went with the session, so it
        # writes no page of a source before it holds it again (its next
        # page is refused, STORE_UNHELD, or its next pass claims first);
        # whichever daemon claims first walks.
        a = self.start(("-v",))
        self.wait_until(lambda: self.both_held_by(a), 60,
                        "the first daemon holds both sources")
        b = self.start(("-v",))
        self.wait_until(lambda: self.stderr_of(b).count("standing by") >= 2,
                        30, "the second daemon stands by for both")
        self.pg.sql("SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted", self.pg_db)
        self.wait_until(lambda: "reconnected" in self.stderr_of(a),
                        TAKEOVER_BOUND, "the first daemon reconnects")
        self.wait_until(self.backfilled, 120, "the backfill completes")
        h = self.holders()
        self.assertEqual(len(h), 2)
        for name, holder in h.items():  # each held by one of the two
            self.assertRegex(holder or "", r" pid (%d|%d)$" % (a.pid, b.pid))
        self.stop_all()
        log = self.stderr_of(a)
        for name in ("codegen", "cotool"):
            self.assertEqual(self.unclaimed_pages(log, name), 0,
                             f"{name}: pages written unclaimed: "
                             f"{log[-3000:]}")
        self.no_double_counting()
        self.assert_mirror_exact()

    def test_concurrent_start_migrates_once(self):
        a = self.start()
        b = self.start()
        self.wait_until(self.backfilled, 120, "the backfill completes")
        h = self.holders()
        self.assertEqual(len(h), 2)
        pids = {p.pid for p in (a, b)}
        for name, holder in h.items():
            self.assertIsNotNone(holder, name)
            self.assertIn(int(re.search(r"pid (\d+)$", holder).group(1)),
                          pids)
        self.stop_all()
        logs = self.stderr_of(a) + self.stderr_of(b)
        migrated = re.findall(r"migrat\w+ [^\n]*", logs)
        self.assertTrue(migrated, "neither daemon migrated")
        # each migration applied by one daemon: no line twice
        self.assertEqual(len(migrated), len(set(migrated)), migrated)
        self.no_double_counting()
        self.assert_mirror_exact()


if __name__ == "__main__":
    unittest.main()
