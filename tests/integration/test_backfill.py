"""Backfill of a few thousand runs per source: the mirror equals upstream
exactly, with ceil(N / page_size) requests (Codegen: pages overlap by one
run to verify the boundary, so ceil((N - 1) / (page_size - 1)))."""
import math

from tests.integration.harness import DaemonTest


class BackfillTest(DaemonTest):
    codegen_runs = 3000
    cotool_runs = 2950

    def test_backfill_exact_and_minimal(self):
        self.once_ok()
        self.assert_mirror_exact()
        n_cg = len(self.api.requests("codegen"))
        n_ct = len(self.api.requests("cotool"))
        self.assertEqual(n_cg, math.ceil((3000 - 1) / 99))
        self.assertEqual(n_ct, math.ceil(2950 / 100))
        # Cotool child rows: every field landed somewhere.
        tools = sum(len(r["toolNames"]) for r in self.api.cotool_sorted())
        self.assertEqual(self.count("SELECT count(*) FROM run_tools"), tools)
        # (optional keys: a run may leave them out)
        crit = sum(len(r.get("acceptanceCriteriaResults") or [])
                   for r in self.api.cotool_sorted())
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_acceptance_criteria"), crit)
        self.assertEqual(self.count(
            "SELECT count(*) FROM sync_runs WHERE outcome = 'succeeded' "
            "AND mode = 'backfill'"), 2)
        # Both Codegen time forms normalized; null stays NULL.
        for run in self.api.codegen_sorted()[:200]:
            got = self.sql("SELECT created_at FROM runs WHERE source = "
                           "'codegen' AND external_id = ?", str(run["id"]))
            c = run.get("created_at")
            if c is None:
                self.assertIsNone(got[0][0])
            else:
                self.assertRegex(got[0][0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:"
                                 r"\d\d\.\d{3}Z$")
                self.assertEqual(got[0][0][:19], c.replace(" ", "T")[:19])
        # Requests carried the token and our User-Agent.
        for r in self.api.requests():
            self.assertTrue(r["user_agent"].startswith("agentsyncd/"))


class CappedPageSizeTest(DaemonTest):
    codegen_runs = 0
    cotool_runs = 1000

    def test_server_caps_page_size(self):
        # Asked for 100, given 30: the walk follows the server's size
        # instead of ending at the first short page.
        self.api.max_page_size = 30
        self.write_conf(sources=("cotool",))
        self.once_ok()
        self.assert_mirror_exact(sources=("cotool",))
        self.assertLessEqual(len(self.api.requests("cotool")),
                             math.ceil(1000 / 30) + 1)
