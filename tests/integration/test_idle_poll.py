"""An idle poll costs exactly one request per source (Codegen: when no
unfinished run younger than refresh_window is due for a re-check), and
writes no run."""
from tests.integration.harness import DaemonTest


class IdlePollTest(DaemonTest):
    codegen_runs = 750
    cotool_runs = 750

    def test_one_request_per_source(self):
        self.once_ok()
        self.api.clear_log()
        before = self.sql("SELECT id, changed_at, last_seen_at FROM runs "
                          "ORDER BY id")
        self.once_ok()
        self.assertEqual(len(self.api.requests("codegen")), 1)
        self.assertEqual(len(self.api.requests("cotool")), 1)
        self.assertEqual(self.sql("SELECT id, changed_at, last_seen_at "
                                  "FROM runs ORDER BY id"), before)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes"), 0)

    def test_codegen_rechecks_young_unfinished_runs(self):
        # 250 new runs, some unfinished (the oldest of them ACTIVE): --once
        # re-checks each, with the head and the pages that hold them
        # (tests/integration/test_recheck.py has the details).
        self.once_ok()
        fresh = [self.api.add_codegen_now() for _ in range(250)]
        self.api.update_codegen(fresh[0]["id"], status="ACTIVE")
        self.once_ok()
        self.api.clear_log()
        self.once_ok()
        n = len(self.api.requests("codegen"))
        self.assertGreaterEqual(n, 3)       # 250 runs back, 99 a page
        self.assertLessEqual(n, 4)
        self.assertEqual(len(self.api.requests("cotool")), 1)


class IdleAfterBackfillTest(DaemonTest):
    codegen_runs = 0
    cotool_runs = 750

    def test_first_poll_after_backfill_is_one_request(self):
        # Old runs updated (long ago) after the newest-created ones: the
        # backfill walks by creation, yet must know it saw those updates.
        for i, run in enumerate(self.api.cotool_sorted("createdAt")[-150:]):
            run["updatedAt"] = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.000Z"
        self.api.invalidate()
        self.write_conf(sources=("cotool",))
        self.once_ok()
        self.api.clear_log()
        self.once_ok()
        self.assertEqual(len(self.api.requests("cotool")), 1)
        self.assert_mirror_exact(sources=("cotool",))
