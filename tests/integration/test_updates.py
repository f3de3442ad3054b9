# SPDX-License-Identifier: ISC
"""Updates reach the mirror in the next poll, each with its history row:
Codegen ACTIVE -> COMPLETE with a new pull request; Cotool running -> done
(updatedAt bumped); an old finished Cotool run re-opened."""
from tests.integration.harness import DaemonTest


class UpdatesTest(DaemonTest):
    codegen_runs = 400
    cotool_runs = 400

    def test_updates(self):
        active = self.api.add_codegen_now()
        self.api.update_codegen(active["id"], status="ACTIVE",
                                github_pull_requests=[])
        ct = self.api.cotool_sorted("createdAt")
        running, old = ct[0], ct[-1]
        self.api.update_cotool(running["id"], status="running")
        self.api.update_cotool(old["id"], status="done")
        self.once_ok()
        self.assert_mirror_exact()
        # first sightings only (old_state NULL), one per run
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes WHERE "
                                    "old_state IS NOT NULL"), 0)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes"),
                         self.count("SELECT count(*) FROM runs"))

        self.api.update_codegen(active["id"], status="COMPLETE",
                                github_pull_requests=[{
                                    "id": 999001, "title": "Fix it",
                                    "url": "https://github.com/a/b/pull/1",
                                    "created_at": "2025-06-21 11:20:04.338398",
                                    "head_branch_name": "fix"}])
        self.api.update_cotool(running["id"], status="done")
        self.api.update_cotool(old["id"], status="running")   # re-opened
        self.api.clear_log()
        self.once_ok()
        self.assert_mirror_exact()
        rows = self.sql("SELECT r.source, r.external_id, c.old_status, "
                        "c.new_status, c.new_state FROM run_status_changes "
                        "c JOIN runs r ON r.id = c.run_id WHERE "
                        "c.old_state IS NOT NULL ORDER BY 1, 2")
        # the history names its run without a join
        self.assertEqual(self.count(
            "SELECT count(*) FROM run_status_changes c JOIN runs r ON "
            "r.id = c.run_id WHERE c.source IS NOT r.source OR "
            "c.external_id IS NOT r.external_id"), 0)
        self.assertEqual(sorted(rows), sorted([
            ("codegen", str(active["id"]), "ACTIVE", "COMPLETE",
             "succeeded"),
            ("cotool", running["id"], "running", "done", "succeeded"),
            ("cotool", old["id"], "done", "running", "running")]))
        self.assertEqual(self.count(
            "SELECT count(*) FROM pull_requests_with_runs WHERE "
            "pr_external_id = '999001' AND run_external_id = ?",
            str(active["id"])), 1)
        # One page each: the changes are at the head.
        self.assertEqual(len(self.api.requests("cotool")), 1)
        self.assertEqual(self.count(
            "SELECT runs_changed FROM sync_runs WHERE source = 'cotool' "
            "ORDER BY id DESC LIMIT 1"), 2)
