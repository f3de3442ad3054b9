# SPDX-License-Identifier: ISC
"""SIGTERM in the middle of a walk: exit 0 within 5 s, integrity_check ok,
and the next start completes the mirror.  SIGHUP reloads: a new source
starts, progress is kept."""
import signal
import time

from tests.integration.harness import DaemonTest


class ShutdownTest(DaemonTest):
    codegen_runs = 3000
    cotool_runs = 3000

    def test_sigterm_mid_walk(self):
        self.write_conf(codegen={"rate_limit": "5/500ms"},
                        cotool={"rate_limit": "5/500ms"})
        p = self.start()
        self.wait_until(lambda: len(self.api.requests()) >= 8, 20,
                        "the walk to start")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(self.count("PRAGMA integrity_check"), "ok")
        self.assertGreater(self.count("SELECT count(*) FROM sync_runs "
                                      "WHERE outcome = 'interrupted'"), 0)
        self.write_conf()
        self.once_ok()
        self.assert_mirror_exact()

    def test_sighup_adds_a_source(self):
        self.write_conf(sources=("codegen",))
        p = self.start()
        self.wait_until(lambda: self.count(
            "SELECT count(*) FROM sync_state WHERE backfill_done = 1") == 1
            if self.db_exists() else False, 30, "codegen backfill")
        self.write_conf()
        p.send_signal(signal.SIGHUP)
        self.wait_until(lambda: self.count(
            "SELECT count(*) FROM sync_state WHERE backfill_done = 1") == 2,
            30, "cotool backfill after reload")
        self.assertIsNone(p.poll())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=5), 0)
        self.assert_mirror_exact()
        # codegen was not restarted: one backfill pass only.
        self.assertEqual(self.count(
            "SELECT count(*) FROM sync_runs WHERE source = 'codegen' AND "
            "mode = 'backfill'"), 1)

    def db_exists(self):
        import os
        return os.path.exists(self.db) and self.count(
            "SELECT count(*) FROM sqlite_schema WHERE name = "
            "'sync_state'") == 1
