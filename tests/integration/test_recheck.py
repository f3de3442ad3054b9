# SPDX-License-Identifier: ISC
"""Codegen's re-check schedule (issue 18): an incremental poll fetches the
head plus only the pages that hold unfinished runs due for a re-check,
addressed with skip from what the mirror knows, and proves each targeted
page holds the run it was meant to (drift between the head and a targeted
request is stepped over; a run that cannot be found is left, never marked
deleted)."""
import datetime as dt
import sqlite3
import time

from tests.integration.harness import DaemonTest, stop


def skip_limit(req):
    return int(req["query"]["skip"]), int(req["query"]["limit"])


def now_run(api):
    """A run created now, with a creation time (a generated run may have
    none, and sorts last)."""
    r = api.add_codegen_now()
    t = dt.datetime.now(dt.timezone.utc)
    return api.update_codegen(r["id"], created_at=t.strftime(
        "%Y-%m-%d %H:%M:%S.%f"))


def offset_of(api, rid):
    """Where upstream lists run rid: how many runs come before it."""
    return [r["id"] for r in api.codegen_sorted()].index(rid)


class RecheckTest(DaemonTest):
    codegen_runs = 750
    cotool_runs = 0

    def setUp(self):
        super().setUp()
        self.write_conf(sources=("codegen",))
        self.once_ok()
        # 250 runs created now, the oldest of them ACTIVE: 249 newer
        self.fresh = [now_run(self.api) for _ in range(250)]
        for r in self.fresh[1:]:
            self.api.update_codegen(r["id"], status="COMPLETE")
        self.active = self.fresh[0]
        self.api.update_codegen(self.active["id"], status="ACTIVE")

    def test_targeted_page_instead_of_a_walk(self):
        self.once_ok()      # backfills the 250 (a walk of 3 pages)
        self.api.clear_log()
        # --once re-checks every unfinished run in the window: this one
        self.api.update_codegen(self.active["id"], status="COMPLETE")
        self.once_ok()
        reqs = self.api.requests("codegen")
        self.assertEqual(len(reqs), 2, [r["query"] for r in reqs])
        self.assertEqual(skip_limit(reqs[0]), (0, 100))
        # the run is the 250th newest: one item early, two items and RECHECK_SLACK (4) more
        pos = offset_of(self.api, self.active["id"])
        self.assertEqual(pos, 249)
        self.assertEqual(skip_limit(reqs[1]), (pos - 1, 2 + 4))
        self.assertEqual(self.sql(
            "SELECT status, finished_seen_at IS NOT NULL FROM runs WHERE "
            "external_id = ?", str(self.active["id"])), [("COMPLETE", 1)])
        self.assert_mirror_exact(sources=("codegen",))
        # nothing unfinished in the window now: one request a poll
        self.api.clear_log()
        self.once_ok()
        self.assertEqual(len(self.api.requests("codegen")), 1)

    def test_runs_created_between_head_and_target(self):
        self.once_ok()
        self.api.clear_log()
        self.api.update_codegen(self.active["id"], status="FAILED")
        # after the head request, 150 runs are created: the due run is
        # 150 further down than the mirror knows
        self.api.hook("codegen", 2, lambda api: [
            now_run(api) for _ in range(150)])
        self.once_ok()
        self.assertIn("runs moved upstream since the head request",
                      self.last_stderr)
        self.assertEqual(self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(self.active["id"])), [("FAILED",)])
        reqs = self.api.requests("codegen")
        self.assertLessEqual(len(reqs), 2 + 4, [r["query"] for r in reqs])
        # the runs created meanwhile are stored or come with the next poll
        self.once_ok()
        self.assert_mirror_exact(sources=("codegen",))
        self.assertEqual(self.count(
            "SELECT count(*) FROM runs WHERE deleted_upstream_at IS NOT "
            "NULL"), 0)

    def test_runs_deleted_between_head_and_target(self):
        self.once_ok()
        self.api.clear_log()
        self.api.update_codegen(self.active["id"], status="CANCELLED")
        gone = [r["id"] for r in self.fresh[100:230]]
        self.api.hook("codegen", 2, lambda api: [
            api.delete_codegen(i) for i in gone])
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(self.active["id"])), [("CANCELLED",)])
        self.assertIn("runs moved upstream since the head request",
                      self.last_stderr)
        # a partial view marks nothing deleted
        self.assertEqual(self.count(
            "SELECT count(*) FROM runs WHERE deleted_upstream_at IS NOT "
            "NULL"), 0)

    def test_due_run_gone_upstream_is_left(self):
        self.once_ok()
        self.api.delete_codegen(self.active["id"])
        self.api.clear_log()
        self.once_ok()
        self.assertIn("not where the mirror has them", self.last_stderr)
        self.assertEqual(self.count(
            "SELECT count(*) FROM runs WHERE deleted_upstream_at IS NOT "
            "NULL"), 0)
        self.assertLessEqual(len(self.api.requests("codegen")), 2 + 4)
        # the next full resync decides
        self.write_conf(sources=("codegen",),
                        codegen={"full_resync_interval": "1ms"})
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT external_id FROM runs WHERE deleted_upstream_at IS NOT "
            "NULL"), [(str(self.active["id"]),)])

    def test_fault_on_a_targeted_request(self):
        from tests import fakeapi
        self.once_ok()
        self.api.clear_log()
        self.api.update_codegen(self.active["id"], status="COMPLETE")
        self.api.hook("codegen", 2, lambda api: api.fail(
            "codegen", fakeapi.Fault(status=500)))
        self.once_ok()
        reqs = self.api.requests("codegen")
        self.assertEqual([skip_limit(r) for r in reqs],
                         [(0, 100), (248, 6), (248, 6)])
        self.assertEqual(self.count(
            "SELECT retries FROM sync_runs ORDER BY id DESC LIMIT 1"), 1)
        self.assertEqual(self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(self.active["id"])), [("COMPLETE",)])


class RecheckKillTest(RecheckTest):
    """SIGKILL while a targeted request is in flight: nothing is lost or
    half-written, the pass is recorded as interrupted, and the next pass
    re-checks the run (nothing of the re-check phase needs resuming)."""

    def test_kill_during_the_recheck(self):
        import signal
        from tests import fakeapi
        self.once_ok()
        self.api.update_codegen(self.active["id"], status="COMPLETE")
        self.api.clear_log()
        arrived = []

        def stall(api):
            arrived.append(time.monotonic())
            api.fail("codegen", fakeapi.Fault(kind="stall", seconds=3))
        self.api.hook("codegen", 2, stall)
        p = self.start()
        self.wait_until(lambda: arrived, 20, "the targeted request")
        time.sleep(0.3)
        self.assertEqual(stop(p, sig=signal.SIGKILL, expect=None), -9)
        self.assertEqual(self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(self.active["id"])), [("ACTIVE",)])
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(self.active["id"])), [("COMPLETE",)])
        self.assertEqual(self.sql("PRAGMA integrity_check"), [("ok",)])
        self.assertIn(("interrupted",), self.sql(
            "SELECT outcome FROM sync_runs"))
        self.assert_mirror_exact(sources=("codegen",))

    # the RecheckTest cases run once, in RecheckTest
    test_targeted_page_instead_of_a_walk = None
    test_runs_created_between_head_and_target = None
    test_runs_deleted_between_head_and_target = None
    test_due_run_gone_upstream_is_left = None
    test_fault_on_a_targeted_request = None


class ScheduleTest(DaemonTest):
    """A running daemon: young unfinished runs are fetched again about
    every poll, older ones less often, none less often than
    refresh_max_interval; a poll with nothing due is one request."""
    codegen_runs = 0
    cotool_runs = 0

    def test_schedule(self):
        api = self.api
        runs = [now_run(api) for _ in range(300)]
        for r in runs:
            api.update_codegen(r["id"], status="COMPLETE")
        # the oldest, 20 minutes old (interval: refresh_max_interval), and
        # one in the middle, seconds old (interval: the poll's)
        old, young = runs[0], runs[150]
        t = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)
        api.update_codegen(old["id"], status="RUNNING",
                           created_at=t.strftime("%Y-%m-%d %H:%M:%S.%f"))
        api.update_codegen(young["id"], status="RUNNING")
        self.write_conf(sources=("codegen",), codegen={
            "poll_interval": "1s", "refresh_max_interval": "3s"})
        p = self.start()

        def mirrored():
            try:
                return self.count("SELECT count(*) FROM runs") == 300
            except sqlite3.Error:
                return False        # not created yet
        self.wait_until(mirrored, 30, "the backfill")
        time.sleep(0.5)
        api.clear_log()
        time.sleep(9.0)
        reqs = api.requests("codegen")
        heads = [r for r in reqs if skip_limit(r)[0] == 0]
        at = {rid: [r["time"] for r in reqs
                    if skip_limit(r)[0] <= offset_of(api, rid) <
                    sum(skip_limit(r))]
              for rid in (old["id"], young["id"])}
        self.assertGreaterEqual(len(heads), 7)
        # the young one about every poll, the old one every 3 s or so
        self.assertGreaterEqual(len(at[young["id"]]), 6, at)
        self.assertGreaterEqual(len(at[old["id"]]), 2, at)
        self.assertLessEqual(len(at[old["id"]]), 4, at)
        for times in at.values():
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertLess(max(gaps), 3.0 + 1.0 + 0.5, gaps)
        # the old one finishes: in the mirror within its bound, then the
        # young one: then the polls are one request each
        api.update_codegen(old["id"], status="COMPLETE")
        t0 = time.monotonic()
        self.wait_until(lambda: self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(old["id"])) == [("COMPLETE",)], 10, "the finish")
        self.assertLess(time.monotonic() - t0, 3.0 + 1.0 + 0.5)
        api.update_codegen(young["id"], status="COMPLETE")
        self.wait_until(lambda: self.sql(
            "SELECT status FROM runs WHERE external_id = ?",
            str(young["id"])) == [("COMPLETE",)], 10, "the finish")
        time.sleep(1.0)
        api.clear_log()
        time.sleep(3.0)
        reqs = api.requests("codegen")
        self.assertTrue(reqs)
        self.assertTrue(all(skip_limit(r)[0] == 0 for r in reqs),
                        [r["query"] for r in reqs])
        stop(p)
