"""SIGKILL at several points of a backfill; after restarts and a final
--once the mirror equals upstream, no run is duplicated, and the pages
fetched in total stay within 1.5x the minimum."""
import math
import signal
import time

from tests.integration.harness import DaemonTest


class ResumeAfterKillTest(DaemonTest):
    codegen_runs = 2400
    cotool_runs = 2400

    def test_kill_and_resume(self):
        # 25 requests/s per source: the backfill takes about a second.
        self.write_conf(codegen={"rate_limit": "5/200ms"},
                        cotool={"rate_limit": "5/200ms"})
        for delay in (0.25, 0.4, 0.3):
            p = self.start()
            time.sleep(delay)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        cg_pages_so_far = len(self.api.requests("codegen"))
        self.assertGreater(cg_pages_so_far, 0)
        self.assertGreater(self.count("SELECT count(*) FROM runs"), 0)
        self.once_ok()
        self.assert_mirror_exact()
        self.assertEqual(self.count(
            "SELECT count(*) FROM (SELECT source, external_id FROM runs "
            "GROUP BY 1, 2 HAVING count(*) > 1)"), 0)
        self.assertEqual(self.count("PRAGMA integrity_check"), "ok")
        minimum = {"codegen": math.ceil((2400 - 1) / 99),
                   "cotool": math.ceil(2400 / 100)}
        for api, least in minimum.items():
            # The final --once ends with one idle page per completed
            # source; kills lose at most the page in flight each.
            n = len(self.api.requests(api))
            self.assertLessEqual(n, 1.5 * least, f"{api}: {n} requests")
        self.assertEqual(self.count(
            "SELECT count(*) FROM sync_runs WHERE outcome = 'running'"), 0)
