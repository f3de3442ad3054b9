# SPDX-License-Identifier: ISC
"""A step of the host's wall clock does not move request_timeout (issue 25).

request_timeout is counted from a response's last byte on the monotonic
clock.  Counted on libev's ev_now(), the wall clock, a step forward (NTP
after a suspend, an operator's date -s) cut every request in flight as
stalled, and a step back left a stalled request alone until it ended
(request_deadline, or the server hanging up).

The daemon runs under libfaketime with its offset read from a file
(FAKETIME_TIMESTAMP_FILE, re-read on every call with FAKETIME_NO_CACHE=1)
that the test rewrites while a request is in flight; CLOCK_MONOTONIC is
left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as a real step leaves it."""
import os
import subprocess
import threading
import unittest

from tests import fakeapi
from tests.integration.harness import BIN, DaemonTest
from tests.integration.test_clock_skew import LIBFAKETIME, asan_binary


@unittest.skipUnless(os.path.exists(LIBFAKETIME),
                     "libfaketime not installed (apt-get install faketime)")
@unittest.skipIf(asan_binary(), "libfaketime cannot preload into ASan")
class ClockStepTest(DaemonTest):
    codegen_runs = 50

    def setUp(self):
        super().setUp()
        self.offset_file = os.path.join(self.dir, "faketime")
        self.step("+0")

    def step(self, offset):
        """Set the daemon's wall clock to the true time plus offset, in
        one rename (the daemon never reads a half-written file)."""
        tmp = self.offset_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(offset + "\n")
        os.replace(tmp, self.offset_file)

    def once_stepped(self):
        env = dict(self.env(), LD_PRELOAD=LIBFAKETIME,
                   FAKETIME_TIMESTAMP_FILE=self.offset_file,
                   FAKETIME_NO_CACHE="1", FAKETIME_DONT_FAKE_MONOTONIC="1")
        env.pop("FAKETIME", None)
        r = subprocess.run([BIN, "-c", self.conf, "--once"], env=env,
                           capture_output=True, text=True, timeout=120)
        self.last_stderr = r.stderr
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        return r.stderr

    def test_step_forward_spares_a_slow_answer(self):
        # Each answer starts 2 s after its request, inside the 5 s
        # request_timeout; the clock jumps an hour ahead meanwhile.
        self.write_conf(codegen={"request_timeout": "5s"},
                        sources=("codegen",))
        self.api.latency = 2.0
        self.api.hook("codegen", 1, lambda api: self.step("+1h"))
        err = self.once_stepped()
        self.assertIn("this host's clock is", err)     # the step took
        self.assertNotIn("request_timeout", err)
        self.assertEqual(len(self.api.requests("codegen")), 1)
        self.assertEqual(self.count("SELECT retries FROM sync_runs"), 0)
        self.assert_mirror_exact(sources=("codegen",))

    def test_step_back_still_cuts_a_stall(self):
        # Headers and a little body, then 15 s of nothing; the clock goes
        # an hour back 0.7 s into the silence.  The stall is cut 2 s after
        # the last byte (request_timeout), not when the server hangs up.
        self.write_conf(codegen={"request_timeout": "2s",
                                 "request_deadline": "60s"},
                        sources=("codegen",))
        self.api.fail("codegen", fakeapi.Fault("stall", seconds=15))
        timer = threading.Timer(0.7, self.step, ("-1h",))
        self.addCleanup(timer.cancel)
        self.api.hook("codegen", 1, lambda api: timer.start())
        err = self.once_stepped()
        self.assertIn("this host's clock is", err)     # the step took
        self.assertIn("no data for 2 s (request_timeout)", err)
        reqs = self.api.requests("codegen")
        self.assertEqual(len(reqs), 2)
        gap = reqs[1]["time"] - reqs[0]["time"]
        self.assertLess(gap, 8.0, f"the stall was cut after {gap:.1f} s")
        self.assertEqual(self.count("SELECT retries FROM sync_runs"), 1)
        self.assert_mirror_exact(sources=("codegen",))
