# SPDX-License-Identifier: ISC
"""A wall clock stepped during a full resync marks no live run deleted, and
the runs really deleted upstream are marked (issue 25).

The daemon runs under libfaketime with its offset read from a file
(FAKETIME_TIMESTAMP_FILE, re-read at every clock call with
FAKETIME_NO_CACHE=1; the monotonic clock is left alone), which the fake
API rewrites before serving the N-th request of the walk: a step that
lands mid-walk, at a known page.  One source a test, 300 runs, 20 a page
(about 16 requests a walk); three runs are deleted upstream before the
full resync.  Each step is checked to have landed mid-walk: some runs
upstream holds were last seen before it, the others after.

Until migration 0010 a full resync marked deleted the runs whose
last_seen_at was before the walk's start on the wall clock: a step back
during the walk marked every run seen after it, and a run last seen while
the clock was ahead escaped the mark.  Now a walk marks what it did not
number (runs.last_seen_walk), and one that ends earlier than it began on
the wall clock marks nothing and says so."""
import calendar
import os
import signal
import time
import unittest

from tests.integration.harness import DaemonTest, wait_for
from tests.integration.test_clock_skew import LIBFAKETIME, asan_binary

RUNS = 300
PAGE = "20"
WARNING = "the wall clock went back during the full resync"
HOUR = 3600


def iso_plus(ts, seconds):
    """The daemon's time ts ("YYYY-MM-DDTHH:MM:SS.sssZ") moved by
    seconds."""
    t = calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S"))
    return time.strftime("%Y-%m-%dT%H:%M:%S",
                         time.gmtime(t + seconds)) + ts[19:]


def kill_mid_full_walk(t, source, n=6):
    """Start the daemon of test t (a DaemonTest) on a full resync of
    source, and SIGKILL it once a batch of the walk is committed and
    before the walk ends: the fake API holds the n-th request (counted
    from its last clear_log) until then.  Returns the walk's start and
    offset, as the next start finds them."""
    def committed():
        row = t.sql("SELECT walk_mode, walk_offset FROM sync_state WHERE "
                    "source = ?", source)
        return bool(row) and row[0][0] == "full" and row[0][1] > 0

    def kill(api):
        wait_for(committed, 20, "a committed batch of the full walk", proc)
        proc.send_signal(signal.SIGKILL)
    t.api.hook(source, n, kill)
    proc = t.start()
    proc.wait(timeout=60)
    t.assertEqual(proc.returncode, -signal.SIGKILL)
    (mode, offset, started), = t.sql(
        "SELECT walk_mode, walk_offset, walk_started_at FROM sync_state "
        "WHERE source = ?", source)
    t.assertEqual(mode, "full")
    t.assertGreater(offset, 0)
    return started, offset


@unittest.skipUnless(os.path.exists(LIBFAKETIME),
                     "libfaketime not installed (apt-get install faketime)")
@unittest.skipIf(asan_binary(), "libfaketime cannot preload into ASan")
class ClockStepTest(DaemonTest):
    codegen_runs = RUNS
    cotool_runs = RUNS

    def setUp(self):
        super().setUp()
        self.clock = os.path.join(self.dir, "faketime.rc")
        self.set_clock("+0")

    def env(self):
        env = super().env()
        env.pop("FAKETIME", None)       # it would win over the file
        env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME_TIMESTAMP_FILE=self.clock,
                   FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
        return env

    def set_clock(self, offset):
        """Step the daemon's wall clock to the true time + offset ("-1h"),
        in one rename: libfaketime never reads a half-written file."""
        tmp = self.clock + ".tmp"
        with open(tmp, "w") as f:
            f.write(offset + "\n")
        os.replace(tmp, self.clock)

    def step_at(self, n, offset):
        """The clock goes to offset before the n-th request of the walk
        is served (counted from the last clear_log)."""
        self.api.hook(self.kind, n, lambda api: self.set_clock(offset))

    def ids(self):
        """Upstream's runs of the source, newest created first."""
        if self.kind == "codegen":
            return [str(r["id"]) for r in self.api.codegen_sorted()]
        return [r["id"] for r in self.api.cotool_sorted("createdAt")]

    def delete(self, rid):
        if self.kind == "codegen":
            self.api.delete_codegen(int(rid))
        else:
            self.api.delete_cotool(rid)

    def prepare(self, kind):
        """A backfill of one source at the true time, three runs deleted
        upstream (newest, middle, oldest), the next pass a full resync;
        returns the deleted ids."""
        self.kind = kind
        self.write_conf(sources=(kind,), **{kind: {"page_size": PAGE}})
        self.once_ok()
        ids = self.ids()
        self.assertEqual(len(ids), RUNS)
        gone = {ids[2], ids[RUNS // 2], ids[-3]}
        for rid in gone:
            self.delete(rid)
        self.write_conf(sources=(kind,), **{kind: {
            "page_size": PAGE, "full_resync_interval": "1ms"}})
        self.api.clear_log()
        return gone

    def full_resync(self):
        """One --once that must be a full walk of the source; its
        stderr and the walk's start (the host's clock)."""
        self.once_ok()
        started = self.sql("SELECT started_at, mode FROM sync_runs WHERE "
                           "source = ? ORDER BY id DESC LIMIT 1", self.kind)
        self.assertEqual(started[0][1], "full")
        return self.last_stderr, started[0][0]

    def marked(self):
        return {r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE source = ? AND "
            "deleted_upstream_at IS NOT NULL", self.kind)}

    def assert_landed_mid_walk(self, at):
        """Of the runs upstream holds, some were last seen before the time
        at and the others at or after it: the step came between two pages
        of the walk."""
        up = set(self.ids())
        seen = [r[1] for r in self.sql(
            "SELECT external_id, last_seen_at FROM runs WHERE source = ?",
            self.kind) if r[0] in up]
        self.assertEqual(len(seen), len(up))
        before = sum(1 for t in seen if t < at)
        self.assertGreater(before, 0, f"no run seen before {at}")
        self.assertLess(before, len(up), f"no run seen from {at}")

    # -- the clock stepped back an hour mid-walk -------------------------
    def clock_back(self, kind):
        gone = self.prepare(kind)
        self.step_at(5, "-1h")
        err, started = self.full_resync()
        self.assert_landed_mid_walk(started)
        # now earlier than the walk's start: nothing marked, one warning
        self.assertEqual(self.marked(), set())
        self.assertEqual(err.count(WARNING), 1, err[-2000:])
        # the next full resync (the clock still an hour back) marks them
        err, _ = self.full_resync()
        self.assertNotIn(WARNING, err)
        self.assertEqual(self.marked(), gone)
        self.assert_mirror_exact(sources=(kind,))

    def test_codegen_clock_back(self):
        self.clock_back("codegen")

    def test_cotool_clock_back(self):
        self.clock_back("cotool")

    # -- back an hour, then forward again, within one walk ---------------
    def clock_back_and_forward(self, kind):
        """The walk ends later than it began: only the walk numbers keep
        the runs seen in the hour that went back."""
        gone = self.prepare(kind)
        self.step_at(4, "-1h")
        self.step_at(10, "+0")
        err, started = self.full_resync()
        self.assert_landed_mid_walk(started)
        self.assertNotIn(WARNING, err)
        self.assertEqual(self.marked(), gone)
        self.assert_mirror_exact(sources=(kind,))

    def test_codegen_clock_back_and_forward(self):
        self.clock_back_and_forward("codegen")

    def test_cotool_clock_back_and_forward(self):
        self.clock_back_and_forward("cotool")

    # -- forward an hour mid-walk, then set right ------------------------
    def clock_forward(self, kind):
        gone = self.prepare(kind)
        self.step_at(5, "+1h")
        err, started = self.full_resync()
        ahead = iso_plus(started, HOUR - 60)
        self.assert_landed_mid_walk(ahead)
        self.assertNotIn(WARNING, err)
        self.assertEqual(self.marked(), gone)
        # NTP sets the clock right; a run last seen while it was ahead
        # goes upstream and the next full resync marks it
        self.set_clock("+0")
        late = self.sql("SELECT external_id FROM runs WHERE source = ? AND "
                        "last_seen_at >= ? ORDER BY external_id LIMIT 1",
                        kind, ahead)[0][0]
        self.delete(late)
        self.full_resync()
        self.assertEqual(self.marked(), gone | {late})
        self.assert_mirror_exact(sources=(kind,))

    def test_codegen_clock_forward(self):
        self.clock_forward("codegen")

    def test_cotool_clock_forward(self):
        self.clock_forward("cotool")

    # -- killed mid-walk, the clock stepped, the walk resumed ------------
    def restart(self, kind):
        """Stepped back while the daemon was down, forward again during
        the resumed walk: the runs seen before the kill keep the walk's
        number (a resumed walk is not a new one)."""
        gone = self.prepare(kind)
        started, offset = kill_mid_full_walk(self, self.kind)
        self.assertLess(offset, RUNS)
        # stepped back while the daemon was down; forward again mid-walk
        self.set_clock("-1h")
        self.api.clear_log()
        self.step_at(4, "+0")
        err, _ = self.full_resync()
        self.assertIn(f"resuming full walk at offset {offset}", err)
        self.assertNotIn(WARNING, err)
        self.assert_landed_mid_walk(started)
        self.assertEqual(self.marked(), gone)
        self.assert_mirror_exact(sources=(kind,))

    def test_codegen_restart_resumes_walk(self):
        self.restart("codegen")

    def test_cotool_restart_resumes_walk(self):
        self.restart("cotool")

    def restart_clock_back(self, kind):
        """Stepped back while the daemon was down, and still back when
        the resumed walk ends: nothing marked; the next one marks."""
        gone = self.prepare(kind)
        started, offset = kill_mid_full_walk(self, self.kind)
        self.set_clock("-1h")
        self.api.clear_log()
        err, _ = self.full_resync()
        self.assertIn(f"resuming full walk at offset {offset}", err)
        self.assert_landed_mid_walk(started)
        self.assertEqual(self.marked(), set())
        self.assertEqual(err.count(WARNING), 1, err[-2000:])
        self.full_resync()
        self.assertEqual(self.marked(), gone)
        self.assert_mirror_exact(sources=(kind,))

    def test_codegen_restart_clock_back(self):
        self.restart_clock_back("codegen")

    def test_cotool_restart_clock_back(self):
        self.restart_clock_back("cotool")


if __name__ == "__main__":
    unittest.main()
