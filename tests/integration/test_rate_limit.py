# SPDX-License-Identifier: ISC
"""A source limited to N requests per window never exceeds N in any window
of the server's request log and uses at least 90% of the allowance (a
scaled-down 20/2s stands for Codegen's 60/30s)."""
from tests.integration.harness import DaemonTest


class RateLimitTest(DaemonTest):
    codegen_runs = 0
    cotool_runs = 6000      # 60 pages of 100

    def test_window_and_usage(self):
        self.write_conf(cotool={"rate_limit": "20/2s"}, sources=("cotool",))
        self.api.rate_limit("cotool", 20, 2.0)   # the server enforces it
        self.once_ok(timeout=120)
        reqs = self.api.requests("cotool")
        times = [r["time"] for r in reqs]
        self.assertEqual(len(times), 60)
        self.assertEqual(self.api.rejected_429["cotool"], 0)
        for i, t in enumerate(times):
            in_window = sum(1 for u in times[i:] if u < t + 2.0)
            self.assertLessEqual(in_window, 20)
        # Allowance used: the sustained rate once the first window's 20
        # are out.  Requests 20..59 can follow request 19 no sooner than
        # two windows later, so ideally 40 requests in 4 s = 20 per 2 s.
        rate = (len(times) - 20) / (times[-1] - times[19]) * 2.0
        self.assertGreaterEqual(rate / 20, 0.9, f"{rate:.2f} per window")
        self.assert_mirror_exact(sources=("cotool",))
