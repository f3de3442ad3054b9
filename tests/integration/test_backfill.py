# SPDX-License-Identifier: ISC
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
        bullets = sum(len(r.get("evalBulletSummary") or [])
                      for r in self.api.cotool_sorted())
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_eval_bullets"), bullets)
        self.assertEqual(
            self.count("SELECT count(*) FROM runs WHERE source = 'cotool' "
                       "AND is_streaming"),
            sum(r["isStreaming"] for r in self.api.cotool_sorted()))
        self.assert_left_out_is_null()
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

    # Where each optional key lands: columns of runs, or child rows.
    COLUMNS = {
        "codegen": {"status": "status", "created_at": "created_at",
                    "web_url": "web_url", "result": "result",
                    "summary": "summary", "source_type": "source_type",
                    "metadata": "metadata",
                    "github_pull_requests": "run_pull_requests"},
        "cotool": {"modelName": "model_name",
                   "triggerSource": "trigger_source",
                   "triggerName": "trigger_name", "status": "status",
                   "evalScore": "eval_score",
                   "evalExplanation": "eval_explanation",
                   "evalBulletSummary": "run_eval_bullets",
                   "criticalIssue": "critical_issue_category, "
                                    "critical_issue_explanation",
                   "acceptanceCriteriaResults": "run_acceptance_criteria",
                   "linkedAlert": "linked_alert_display_id, "
                                  "linked_alert_title, linked_alert_status"},
    }

    def assert_left_out_is_null(self):
        """A run that leaves an optional key out (the fake does, for a
        few percent of its runs) has NULL in its columns and no child
        rows for it."""
        left_out = 0
        for src, runs in (("codegen", self.api.codegen_sorted()),
                          ("cotool", self.api.cotool_sorted())):
            for run in runs:
                rid = str(run["id"])
                for key, where in self.COLUMNS[src].items():
                    if key in run:
                        continue
                    left_out += 1
                    if where.startswith("run_"):
                        got = self.count(
                            f"SELECT count(*) FROM {where} WHERE run_id = "
                            "(SELECT id FROM runs WHERE source = ? AND "
                            "external_id = ?)", src, rid)
                        self.assertEqual(got, 0, (src, rid, key))
                    else:
                        got = self.sql(f"SELECT {where} FROM runs WHERE "
                                       "source = ? AND external_id = ?",
                                       src, rid)
                        self.assertEqual(len(got), 1, (src, rid))
                        self.assertEqual(set(got[0]), {None},
                                         (src, rid, key))
        self.assertGreater(left_out, 100)   # the fake does leave keys out


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


class UnparseableCreatedAtTest(DaemonTest):
    codegen_runs = 300
    cotool_runs = 0

    def test_unparseable_created_at_mirrored_with_null_column(self):
        # The spec types created_at string|null: a string that is no
        # time is upstream's to send.  The run is mirrored (raw_json
        # keeps the text), its column is NULL, run_field_problems says
        # which field and what it held, and the log points there.
        ids = [r["id"] for r in self.api.codegen_sorted()]
        bad = {ids[3]: "yesterday", ids[150]: "2025-13-45"}
        for rid, text in bad.items():
            self.api.update_codegen(rid, created_at=text)
        self.write_conf(sources=("codegen",))
        self.once_ok()
        self.assert_mirror_exact(sources=("codegen",))
        for rid, text in bad.items():
            self.assertEqual(self.sql(
                "SELECT created_at FROM runs WHERE source = 'codegen' AND "
                "external_id = ?", str(rid)), [(None,)])
            self.assertEqual(self.sql(
                "SELECT f.field, f.problem, f.value FROM run_field_problems "
                "f JOIN runs r ON r.id = f.run_id WHERE r.external_id = ?",
                str(rid)), [("created_at",
                             "is not a time this daemon can read",
                             f'"{text}"')])
        lines = [l for l in self.last_stderr.splitlines()
                 if "run_field_problems" in l]
        self.assertGreaterEqual(len(lines), 1, self.last_stderr[-2000:])
        self.assertIn("created_at", lines[0])
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_field_problems"), 2)
