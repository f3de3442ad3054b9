# SPDX-License-Identifier: ISC
"""429: Retry-After honoured in seconds and as an HTTP date (no request to
that source before it elapsed), growing waits without it, and the other
source keeps syncing meanwhile."""
from tests import fakeapi
from tests.integration.harness import DaemonTest


class RetryAfterTest(DaemonTest):
    codegen_runs = 300
    cotool_runs = 300

    def gaps_after_429(self, api):
        reqs = self.api.requests(api)
        return [(b["time"] - a["time"]) for a, b in zip(reqs, reqs[1:])
                if a["status"] == 429]

    def test_retry_after_seconds(self):
        self.api.fail("codegen", fakeapi.Fault(
            "status", 429, headers={"Retry-After": "2"}))
        self.once_ok()
        gaps = self.gaps_after_429("codegen")
        self.assertEqual(len(gaps), 1)
        self.assertGreaterEqual(gaps[0], 1.95)
        self.assertLess(gaps[0], 4.0)
        # Cotool was not slowed: it finished while codegen waited.
        ct = self.api.requests("cotool")
        cg429 = self.api.requests("codegen", status=429)[0]["time"]
        self.assertLess(ct[-1]["time"], cg429 + 1.9)
        self.assert_mirror_exact()
        self.assertEqual(self.count("SELECT http_429 FROM sync_runs WHERE "
                                    "source = 'codegen'"), 1)

    def test_retry_after_http_date(self):
        self.api.fail("cotool", fakeapi.Fault(
            "status", 429, headers={"Retry-After": fakeapi.http_date(3)}))
        self.once_ok()
        gaps = self.gaps_after_429("cotool")
        self.assertEqual(len(gaps), 1)
        # HTTP dates have one-second resolution.
        self.assertGreaterEqual(gaps[0], 1.5)
        self.assertLess(gaps[0], 5.0)
        self.assert_mirror_exact()

    def test_without_header_waits_grow(self):
        self.write_conf(codegen={"backoff_initial": "200ms",
                                 "backoff_max": "10s"})
        self.api.fail("codegen", *[fakeapi.Fault("status", 429)
                                   for _ in range(5)])
        self.once_ok()
        gaps = self.gaps_after_429("codegen")
        self.assertEqual(len(gaps), 5)
        # Full jitter: each wait is at most 200ms * 2^k; the sum of the
        # last three exceeds the first two's bound on average by far.
        for k, g in enumerate(gaps):
            self.assertLessEqual(g, 0.2 * 2 ** k + 0.2)
        self.assertGreater(sum(gaps[2:]), 0.2 * 2)
        self.assert_mirror_exact()
