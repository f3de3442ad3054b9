# SPDX-License-Identifier: ISC
"""An idle poll costs exactly one request per source (Codegen: when no
unfinished run younger than refresh_window is due for a re-check), and
writes no run."""

from tests.integration.harness import DaemonTest, stop


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
        # the history holds each run's first sighting, and no change
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes WHERE "
                                    "old_state IS NOT NULL"), 0)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes"),
                         self.count("SELECT count(*) FROM runs"))

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


class SameFirstPageTest(DaemonTest):
    """A first page whose bytes are those of the last poll's is not parsed
    again (the daemon keeps that parse), and only the parse is skipped:
    the runs are still compared with the mirror, and a page that changed
    by one byte is parsed and written."""
    codegen_runs = 300
    cotool_runs = 300

    def reused(self, p):
        return {src: self.stderr_of(p).count(
            f"source '{src}': the first page is the bytes of the last "
            f"pass's; not parsed again") for src in ("codegen", "cotool")}

    def test_parse_kept_for_the_same_bytes_only(self):
        self.once_ok()
        with open(self.conf) as f:
            text = f.read()
        with open(self.conf, "w") as f:
            f.write(text.replace("log_level = info", "log_level = debug"))
        p = self.start()
        self.wait_until(lambda: min(self.reused(p).values()) >= 2, 30,
                        "an idle poll of each source on a kept parse")
        # The mirror's copy of the newest run of each source spoilt behind
        # the daemon's back: the next poll, on the kept parse, still finds
        # it differs from upstream and writes it again.
        newest = {"codegen": str(self.api.codegen_sorted()[0]["id"]),
                  "cotool": self.api.cotool_sorted()[0]["id"]}
        for src, eid in newest.items():
            self.write_sql("UPDATE runs SET raw_json = '{}', title = 'x' "
                           "WHERE source = ? AND external_id = ?", src, eid)
        n0 = self.reused(p)
        self.wait_until(lambda: self.count(
            "SELECT count(*) FROM runs WHERE raw_json = '{}'") == 0, 30,
            "the spoilt rows written again from the kept parse")
        n1 = self.reused(p)
        self.assertTrue(all(n1[s] > n0[s] for s in n0),
                        f"no kept parse used: {n0} -> {n1}")
        # A change upstream: new bytes, parsed, written.
        cg = self.api.codegen_sorted()[0]
        self.api.update_codegen(cg["id"], status="FAILED")
        ct = self.api.cotool_sorted()[0]
        self.api.update_cotool(ct["id"], runTitle="changed upstream")
        self.wait_until(lambda: self.sql(
            "SELECT status FROM runs WHERE source = 'codegen' AND "
            "external_id = ?", str(cg["id"])) == [("FAILED",)] and
            self.sql("SELECT title FROM runs WHERE source = 'cotool' AND "
                     "external_id = ?", ct["id"]) == [("changed upstream",)],
            30, "the changes upstream in the mirror")
        stop(p)
        self.assert_mirror_exact()
