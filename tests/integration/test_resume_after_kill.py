# SPDX-License-Identifier: ISC
"""SIGKILL at several points of a backfill; after restarts and a final
--once the mirror equals upstream, no run is duplicated, and the pages
fetched in total stay within the minimum plus what each kill can cost: the
batch not yet committed (at most 1 s of pages) and the requests in
flight."""
import math
import signal
import time

from tests.integration.harness import DaemonTest


class ResumeAfterKillTest(DaemonTest):
    codegen_runs = 2400
    cotool_runs = 2400

    def test_kill_and_resume(self):
        # 10 requests/s per source: the backfill takes about 2.5 s, and a
        # kill 1.2 s or more after a start finds a batch committed.
        self.write_conf(codegen={"rate_limit": "2/200ms"},
                        cotool={"rate_limit": "2/200ms"})
        for delay in (1.2, 1.4, 1.3):
            p = self.start()
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        cg_pages_so_far = len(self.api.requests("codegen"))
        self.assertGreater(cg_pages_so_far, 0)
        self.assertGreater(self.count("SELECT count(*) FROM runs"), 0)
        self.once_ok()
        self.assert_mirror_exact()
        self.assertEqual(self.duplicated_runs(), [])
        if self.engine == "sqlite":
            self.assertEqual(self.count("PRAGMA integrity_check"), "ok")
        minimum = {"codegen": math.ceil((2400 - 1) / 99),
                   "cotool": math.ceil(2400 / 100)}
        for api, least in minimum.items():
            # The final --once ends with one idle page per completed
            # source; each kill loses at most a batch (1 s of pages at
            # 10 a second) and the 4 requests in flight.
            n = len(self.api.requests(api))
            self.assertLessEqual(n, least + 1 + 3 * (10 + 4),
                                 f"{api}: {n} requests")
        self.assertEqual(self.count(
            "SELECT count(*) FROM sync_runs WHERE outcome = 'running'"), 0)
