# SPDX-License-Identifier: ISC
"""Observability (issue 15): --status exit codes as monitoring plugins
expect them and --status --json; progress lines and STATUS= percentages
during a long backfill; quiet idle polls folded into one sync_runs row;
the history retention; the metrics file read back through the real
prometheus-node-exporter."""
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

from tests.integration.harness import BIN, DaemonTest, stop

JSON_SOURCE_KEYS = {
    "name", "kind", "configured", "retired_at", "forgetting_since",
    "health", "health_reason", "poll_interval_seconds", "runs",
    "runs_gone_upstream", "rejected_records", "backfill_done", "walk",
    "high_water", "last_success_at", "last_progress_at",
    "last_pass_outcome", "last_error", "last_error_at",
    "clock_skew_seconds", "next_poll_at", "walked_by"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class StatusTest(DaemonTest):
    codegen_runs = 30
    cotool_runs = 30
    seed = 15

    def status(self, *extra):
        r = subprocess.run([BIN, "-c", self.conf, "--status", *extra],
                           env=self.env(), capture_output=True, text=True,
                           timeout=60)
        return r.returncode, r.stdout

    def test_exit_codes_and_json(self):
        rc, out = self.status()
        self.assertEqual(rc, 3, out)
        self.assertTrue(out.startswith("agentsyncd UNKNOWN - database"))
        rc, out = self.status("--json")
        self.assertEqual((rc, json.loads(out)["status"]), (3, "UNKNOWN"))

        self.once_ok()
        rc, out = self.status()
        self.assertEqual(rc, 0, out)
        self.assertEqual(out.splitlines()[0], "agentsyncd OK - 2 sources ok")
        rc, out = self.status("--json")
        doc = json.loads(out)
        self.assertEqual((rc, doc["status"], doc["exit_code"]), (0, "OK", 0))
        self.assertEqual(len(doc["sources"]), 2)
        for s in doc["sources"]:
            self.assertEqual(set(s), JSON_SOURCE_KEYS)
            self.assertEqual(set(s["walk"]),
                             {"mode", "offset", "upstream_total"})
        cg = [s for s in doc["sources"] if s["name"] == "codegen"][0]
        self.assertEqual((cg["runs"], cg["backfill_done"], cg["health"]),
                         (30, True, "OK"))

        # a failed pass after a recent success: WARNING
        self.api.cotool_token = "rotated-token-0001"
        self.assertEqual(self.once(), 75)
        rc, out = self.status()
        self.assertEqual(rc, 1, out)
        self.assertRegex(out.splitlines()[0],
                         r"^agentsyncd WARNING - source 'cotool': last pass "
                         r"failed \(last success \d+s ago\): HTTP 401")
        # ... and no success within the stale time: CRITICAL
        con = sqlite3.connect(self.db)
        con.execute("UPDATE sync_state SET last_success_at = "
                    "'2026-01-01T00:00:00.000Z', last_progress_at = "
                    "'2026-01-01T00:00:00.000Z' WHERE source = 'cotool'")
        con.commit()
        con.close()
        rc, out = self.status()
        self.assertEqual(rc, 2, out)
        self.assertIn("agentsyncd CRITICAL - source 'cotool': last pass "
                      "failed, no success within the stale time", out)
        rc, out = self.status("--json")
        ct = [s for s in json.loads(out)["sources"]
              if s["name"] == "cotool"][0]
        self.assertEqual((rc, ct["health"], ct["last_pass_outcome"]),
                         (2, "CRITICAL", "failed"))
        # stale without a failure: CRITICAL too
        self.api.cotool_token = self.tokens[1]
        con = sqlite3.connect(self.db)
        con.execute("UPDATE sync_state SET last_success_at = "
                    "'2026-01-01T00:00:00.000Z', last_progress_at = "
                    "'2026-01-01T00:00:00.000Z' WHERE source = 'codegen'")
        con.commit()
        con.close()
        rc, out = self.status()
        self.assertEqual(rc, 2, out)
        self.assertIn("source 'codegen'", out.splitlines()[0])
        self.assertIn("and 1 more not ok", out.splitlines()[0])
        # a retired source is listed, not judged
        self.once_ok()
        self.write_conf(sources=("codegen",))
        self.once_ok()
        rc, out = self.status("--json")
        doc = json.loads(out)
        ct = [s for s in doc["sources"] if s["name"] == "cotool"][0]
        self.assertEqual((rc, ct["health"], ct["configured"]),
                         (0, "RETIRED", False))


class ProgressTest(DaemonTest):
    """A 36-page backfill at one request a second: progress lines every
    30 s with the numbers an operator wants, and STATUS= percentages."""
    cotool_runs = 72
    seed = 16

    def test_progress_lines_and_status(self):
        self.write_conf(sources=("cotool",),
                        cotool=dict(page_size="2", rate_limit="1/1s"))
        sock_path = os.path.join(self.dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        self.addCleanup(sock.close)
        env = dict(self.env(), NOTIFY_SOCKET=sock_path)
        p = subprocess.Popen([BIN, "-c", self.conf, "--once"], env=env,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        statuses = []
        sock.settimeout(0.5)
        deadline = time.monotonic() + 90
        while p.poll() is None and time.monotonic() < deadline:
            try:
                data = sock.recv(4096).decode()
            except socket.timeout:
                continue
            statuses += [ln[7:] for ln in data.splitlines()
                         if ln.startswith("STATUS=")]
        if p.poll() is None:
            p.kill()
        err = p.communicate(timeout=30)[1]
        self.assertEqual(p.returncode, 0, err[-2000:])
        lines = re.findall(r"source 'cotool': backfill: (\d+) of 72 runs "
                           r"\((\d+)%\), [\d.]+ runs/s, about (\S+) left",
                           err)
        self.assertGreaterEqual(len(lines), 1, err[-2000:])
        done, pct, eta = lines[0]
        self.assertAlmostEqual(int(pct), 100 * int(done) // 72, delta=1)
        self.assertRegex(eta, r"^\d+(s|m\d\ds)$")
        pcts = [s for s in statuses if re.search(
            r"cotool: backfill \d+ of 72 runs \(\d+%\)", s)]
        self.assertTrue(pcts, statuses[-5:])


class QuietTest(DaemonTest):
    codegen_runs = 20
    cotool_runs = 20
    seed = 17

    def test_idle_polls_are_quiet_and_folded(self):
        p = self.start()
        self.wait_until(lambda: os.path.exists(self.db) and self.passes()
                        >= 4, 30, "a backfill and idle polls")
        time.sleep(3)
        self.api.add_cotool()                   # one new run
        self.wait_until(lambda: self.count(
            "SELECT count(*) FROM runs WHERE source = 'cotool'") == 21, 20,
            "the new run")
        time.sleep(2.5)
        stop(p, log=lambda: self.stderr_of(p))
        err = self.stderr_of(p)
        done = re.findall(r"source '(\w+)': (\w+) pass done: .* (\d+) new",
                          err)
        # info lines: the backfills and the pass that found the new run
        self.assertEqual(sorted((s, m) for s, m, _ in done),
                         [("codegen", "backfill"), ("cotool", "backfill"),
                          ("cotool", "incremental")], err[-2000:])
        rows = self.sql("SELECT source, mode, passes, runs_new FROM sync_runs"
                        " WHERE outcome = 'succeeded' ORDER BY id")
        cg = [r for r in rows if r[0] == "codegen"]
        # codegen: its backfill, then ONE row for all its idle polls
        self.assertEqual(len(cg), 2, rows)
        self.assertGreaterEqual(cg[1][2], 4, rows)
        ct = [r for r in rows if r[0] == "cotool"]
        # cotool: backfill, idle stretch, the pass with the new run, idle
        self.assertEqual([(r[1], r[3]) for r in ct],
                         [("backfill", 20), ("incremental", 0),
                          ("incremental", 1), ("incremental", 0)], rows)

    def passes(self):
        try:
            return self.count("SELECT coalesce(sum(passes), 0) FROM "
                              "sync_runs")
        except sqlite3.Error:
            return 0

    def test_history_retention(self):
        self.once_ok()
        con = sqlite3.connect(self.db)
        for i in range(25):
            # (a pass that found something: idle ones fold into the
            # newest row, which would then be young again)
            con.execute("INSERT INTO sync_runs (source, mode, started_at, "
                        "finished_at, outcome, runs_new) VALUES "
                        "('codegen', 'incremental', "
                        "'2020-01-01T00:00:00.000Z', "
                        "'2020-01-01T00:00:01.000Z', 'succeeded', 1)")
        con.commit()
        con.close()
        before = self.count("SELECT count(*) FROM sync_runs")
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace("[agentsyncd]\n",
                                 "[agentsyncd]\nhistory_retention = 30d\n"))
        p = self.start()
        self.wait_until(lambda: "pruned 25 rows of sync_runs" in
                        self.stderr_of(p), 20, "the prune")
        stop(p, log=lambda: self.stderr_of(p))
        self.assertEqual(self.count("SELECT count(*) FROM sync_runs WHERE "
                                    "finished_at < '2021'"), 0)
        self.assertGreaterEqual(self.count("SELECT count(*) FROM sync_runs"),
                                before - 25)


class MetricsTest(DaemonTest):
    codegen_runs = 25
    cotool_runs = 35
    seed = 18

    def test_node_exporter_reads_the_file(self):
        exporter = shutil.which("prometheus-node-exporter")
        self.assertIsNotNone(exporter, "scripts/deps.sh installs "
                                       "prometheus-node-exporter")
        mdir = tempfile.mkdtemp(prefix="agentsyncd-metrics-")
        self.addCleanup(shutil.rmtree, mdir, True)
        path = os.path.join(mdir, "agentsyncd.prom")
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace("[agentsyncd]\n", f"[agentsyncd]\n"
                                 f"metrics_file = {path}\n"))
        self.once_ok()
        self.assertEqual(os.listdir(mdir), ["agentsyncd.prom"])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        port = free_port()
        ne = subprocess.Popen(
            [exporter, "--collector.disable-defaults",
             "--collector.textfile",
             f"--collector.textfile.directory={mdir}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (ne.kill(), ne.wait(10)))
        body = None
        deadline = time.monotonic() + 20
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.2)
        self.assertIsNotNone(body, "node_exporter did not answer")
        series = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                series[name] = float(value)
        self.assertEqual(series.get("node_textfile_scrape_error"), 0.0)
        want = {
            'agentsyncd_runs{kind="codegen",source="codegen"}': 25,
            'agentsyncd_runs{kind="cotool",source="cotool"}': 35,
            'agentsyncd_passes_total{outcome="succeeded",'
            'source="codegen"}': 1,
            'agentsyncd_passes_total{outcome="failed",source="cotool"}': 0,
            'agentsyncd_last_pass_success{source="cotool"}': 1,
            'agentsyncd_backfill_progress_ratio{source="cotool"}': 1,
            'agentsyncd_upstream_runs{source="cotool"}': 35,
            'agentsyncd_http_429_total{source="codegen"}': 0,
            'agentsyncd_poll_interval_seconds{source="codegen"}': 1,
        }
        for k, v in want.items():
            self.assertEqual(series.get(k), v, k)
        self.assertGreater(series['agentsyncd_requests_total{outcome="ok",'
                                  'source="cotool"}'], 0)
        ts = series['agentsyncd_last_success_timestamp_seconds'
                    '{source="codegen"}']
        self.assertLess(abs(time.time() - ts), 120)
        names = {k.split("{")[0] for k in series if k.startswith("agentsyncd")}
        for n in names:
            self.assertIn(f"# HELP {n} ", body)
            self.assertIn(f"# TYPE {n} ", body)
            if n.endswith("_total"):
                self.assertIn(f"# TYPE {n} counter", body)
