# SPDX-License-Identifier: ISC
"""Several page requests of one source in flight at once
(requests_in_flight): the fake API answers after a delay, as a network
would, and serves requests concurrently, so the daemon really has several
out.  The serial walk's guarantees must hold all the same: pages written
in order with their cursor, drift stepped back, a 429 pausing the whole
source, the rate limit never exceeded, a kill losing nothing committed,
and an idle poll costing one request."""
import signal
import time

from tests import fakeapi
from tests.integration.harness import DaemonTest


def max_in_flight(reqs):
    """Most requests the server was answering at once."""
    ev = []
    for r in reqs:
        ev += [(r["time"], 1), (r["done"], -1)]
    ev.sort()
    most = now = 0
    for _, d in ev:
        now += d
        most = max(most, now)
    return most


def offsets(api, reqs):
    key = "skip" if api == "codegen" else "page"
    return sorted(int(r["query"].get(key, 0)) for r in reqs)


class InFlightTest(DaemonTest):
    codegen_runs = 1500
    cotool_runs = 1500

    def test_backfill_keeps_four_in_flight_and_asks_for_nothing_twice(self):
        self.api.latency = 0.15
        self.once_ok()
        self.assert_mirror_exact()
        done = {a: self.api.requests(a) for a in ("codegen", "cotool")}
        for api, reqs in done.items():
            self.assertEqual(max_in_flight(reqs), 4, api)
        # The same pages as one request at a time asks for, each once
        # (a second mirror, from scratch).
        self.api.clear_log()
        self.db = self.db + ".serial"
        self.write_conf(codegen={"requests_in_flight": "1"},
                        cotool={"requests_in_flight": "1"},
                        database=self.db)
        self.once_ok()
        for api in ("codegen", "cotool"):
            reqs = self.api.requests(api)
            self.assertEqual(max_in_flight(reqs), 1, api)
            self.assertEqual(offsets(api, reqs), offsets(api, done[api]),
                             api)
            pages = offsets(api, reqs)
            self.assertEqual(len(pages), len(set(pages)), api)
        # The idle poll after a backfill: one request per source.
        self.api.clear_log()
        self.once_ok()
        self.assertEqual(len(self.api.requests("codegen")), 1)
        self.assertEqual(len(self.api.requests("cotool")), 1)

    def test_deletions_behind_pages_in_flight_are_stepped_back(self):
        self.api.latency = 0.1
        deleted = []

        def delete(api_obj):
            # 40 runs the walk has passed: every later page, in flight
            # or not yet asked for, slides up by 40.
            for r in api_obj.codegen_sorted()[10:50]:
                deleted.append(("codegen", str(r["id"])))
                api_obj.delete_codegen(r["id"])
            for r in api_obj.cotool_sorted("createdAt")[10:50]:
                deleted.append(("cotool", r["id"]))
                api_obj.delete_cotool(r["id"])
        self.api.hook("codegen", 4, delete)
        self.once_ok()
        self.assertIn("stepping back", self.last_stderr)
        up = {("codegen", str(r["id"])) for r in self.api.codegen_sorted()}
        up |= {("cotool", r["id"]) for r in self.api.cotool_sorted()}
        got = set(self.sql("SELECT source, external_id FROM runs"))
        self.assertEqual(up - got, set())
        self.assertEqual(self.duplicated_runs(), [])
        # A full resync marks exactly the deleted ones gone.
        self.write_conf(codegen={"full_resync_interval": "1ms"},
                        cotool={"full_resync_interval": "1ms"})
        self.once_ok()
        gone = set(self.sql("SELECT source, external_id FROM runs WHERE "
                            "deleted_upstream_at IS NOT NULL"))
        self.assertEqual(gone, set(deleted) & got)
        self.assert_mirror_exact()

    def test_a_429_ahead_of_the_cursor_pauses_the_whole_source(self):
        self.api.latency = 0.1

        def limited(api_obj):
            api_obj.faults["codegen"].append(fakeapi.Fault(
                status=429, headers={"Retry-After": "1"}))
        # The third request is asked for while the first is in flight.
        self.api.hook("codegen", 3, limited)
        self.once_ok()
        reqs = self.api.requests("codegen")
        hit = [r for r in reqs if r["status"] == 429]
        self.assertEqual(len(hit), 1)
        # Requests the daemon sent before it read the 429 are not early:
        # allow it 0.3 s (an ASan build answering another page first).
        t429 = hit[0]["done"]
        early = [r for r in reqs if t429 + 0.3 < r["time"] < t429 + 0.95]
        self.assertEqual(early, [], "requests sent during Retry-After")
        self.assertIn("HTTP 429", self.last_stderr)
        self.assertEqual(self.count(
            "SELECT sum(http_429) FROM sync_runs WHERE source = 'codegen'"),
            1)
        self.assert_mirror_exact()

    def test_errors_ahead_of_the_cursor_are_retried_in_turn(self):
        self.api.latency = 0.1

        def fail(api_obj):
            # a 500, then a body that is not JSON, on pages asked for
            # while earlier ones were in flight
            api_obj.faults["codegen"].append(fakeapi.Fault(status=500))
            api_obj.faults["cotool"].append(fakeapi.Fault(
                kind="raw", status=200, body=b"<html>oops</html>"))
        self.api.hook("codegen", 3, fail)
        self.once_ok()
        self.assertIn("HTTP 500", self.last_stderr)
        self.assertIn("bad page", self.last_stderr)
        self.assertEqual(self.count(
            "SELECT sum(retries) FROM sync_runs"), 2)
        self.assert_mirror_exact()

    def test_rate_limit_holds_with_four_in_flight(self):
        self.api.latency = 0.05
        for api in ("codegen", "cotool"):
            self.api.rate_limit(api, 10, 1.0)
        self.write_conf(codegen={"rate_limit": "10/1s"},
                        cotool={"rate_limit": "10/1s"})
        self.once_ok()
        self.assertEqual(self.api.rejected_429, {"codegen": 0, "cotool": 0})
        for api in ("codegen", "cotool"):
            t = sorted(r["time"] for r in self.api.requests(api))
            self.assertGreater(len(t), 10, api)
            # any 1 s window: at most 10 (the server's clock)
            for i in range(len(t)):
                n = sum(1 for x in t[i:] if x < t[i] + 1.0)
                self.assertLessEqual(n, 10, f"{api} from request {i}")
        self.assert_mirror_exact()


class KillWhileInFlightTest(DaemonTest):
    codegen_runs = 6000
    cotool_runs = 6000

    def cursor_behind_rows(self):
        """The cursor is committed with its pages: never ahead of the
        rows (a walk that stepped back may sit behind them)."""
        for src, off, mode in self.sql(
                "SELECT source, walk_offset, walk_mode FROM sync_state"):
            rows = self.count("SELECT count(*) FROM runs WHERE source = ?",
                              src)
            if mode:
                self.assertLessEqual(off, rows + 1, f"{src}: cursor {off} "
                                     f"ahead of {rows} rows")

    def test_kill_during_a_pipelined_backfill(self):
        # A kill loses at most the batch not yet committed (1 s): each
        # run lasts longer than that.
        # 10 pages a second a source, 4 in flight: 6 s for the backfill.
        self.api.latency = 0.05
        self.write_conf(codegen={"rate_limit": "10/1s"},
                        cotool={"rate_limit": "10/1s"})
        seen = 0
        for delay in (1.6, 1.5, 1.7):
            p = self.start()
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            self.assertGreater(self.count(
                "SELECT count(*) FROM sync_state WHERE walk_mode IS NOT "
                "NULL AND walk_mode != 'none'"), 0, "killed after the walk")
            self.cursor_behind_rows()
            n = self.count("SELECT count(*) FROM runs")
            self.assertGreaterEqual(n, seen, "rows lost by a kill")
            seen = n
        self.assertGreater(seen, 0)
        self.assertEqual(self.count("PRAGMA integrity_check"), "ok")
        self.once_ok()
        self.assert_mirror_exact()
        self.assertEqual(self.duplicated_runs(), [])
