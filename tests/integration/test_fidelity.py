# SPDX-License-Identifier: ISC
"""Fidelity for analysts (issue 14): a run is never dropped over one field,
null and empty stay apart, upstream's totals are kept, the views say what
they hold, pull requests can be grouped, and finished_seen_at is honest.

Each case goes through the real binary against the fake API and is read
back with SQL, as an analyst would."""
import datetime as dt
import json
import time

from tests.integration.harness import DaemonTest


def cg_run(api, rid, **fields):
    """A Codegen run as the spec page shows it, then fields."""
    run = {"id": rid, "organization_id": api.org_id, "status": "COMPLETE",
           "created_at": "2025-06-21 11:20:04.338398",
           "web_url": f"https://codegen.com/agent/trace/{rid}",
           "result": None, "summary": None, "source_type": "GITHUB",
           "github_pull_requests": None, "metadata": None}
    run.update(fields)
    return run


def ct_run(rid, **fields):
    """A Cotool run with every required field, then fields."""
    run = {"id": rid, "agentId": "9b2e7c1a-5d4f-4e3b-8a21-7c6d5e4f3a2b",
           "agentName": "Alert triage", "agentType": "response",
           "runTitle": "Triage", "createdAt": "2025-06-17T12:34:56.789Z",
           "updatedAt": "2025-06-17T12:40:01.002Z", "modelAlias": "smart",
           "toolNames": ["okta_lookup"], "totalToolCount": 3,
           "hasError": False, "isStreaming": False, "status": "done"}
    run.update(fields)
    if "updatedAt" not in fields:   # distinct, so that no sort ties
        run["updatedAt"] = run["createdAt"]
    return run


class TypeDriftTest(DaemonTest):
    """The issue's six cases: each run stays in runs and every view, the
    bad field's column is NULL, the problem is queryable, the pass
    succeeds.  (Before 0008 each went to rejected_records.)"""

    def test_type_drift_keeps_the_run(self):
        api = self.api
        pr = {"id": 501, "title": "Fix", "created_at": "2025-06-21T11:30:00Z",
              "url": "https://github.com/acme/app/pull/501",
              "head_branch_name": "fix"}
        api.add_codegen(cg_run(api, 7001, github_pull_requests=[
            dict(pr, id="77", url="https://github.com/acme/app/pull/77")]))
        api.add_codegen(cg_run(api, 7002, metadata=["a", "b"],
                               created_at="2025-06-21 11:21:00"))
        api.add_codegen(cg_run(api, 7003, created_at="2025-06-21 11:22:00",
                               github_pull_requests=[
                                   dict(pr, created_at=1750000000)]))
        api.add_cotool(ct_run("c-1", totalToolCount=2.5))
        api.add_cotool(ct_run("c-2", evalScore="0.8",
                              createdAt="2025-06-17T12:35:00.000Z"))
        api.add_cotool(ct_run("c-3", createdAt="2025-06-17T12:36:00.000Z",
                              acceptanceCriteriaResults={
                                  "criterion": "x", "met": True,
                                  "explanation": "y"}))
        # and one without a usable id: the only kind rejected whole
        api.add_cotool(ct_run(42, createdAt="2025-06-17T12:37:00.000Z"))
        self.once_ok()
        self.assertIn("run_field_problems", self.last_stderr)

        self.assertEqual(self.sql(
            "SELECT source, external_id FROM agent_runs ORDER BY 1, 2"),
            [("codegen", "7001"), ("codegen", "7002"), ("codegen", "7003"),
             ("cotool", "c-1"), ("cotool", "c-2"), ("cotool", "c-3")])
        problems = self.sql(
            "SELECT r.external_id, f.field, f.problem, f.value FROM "
            "run_field_problems f JOIN runs r ON r.id = f.run_id "
            "ORDER BY 1, 2")
        self.assertEqual([p[:2] for p in problems], [
            ("7001", "github_pull_requests[0].id"),
            ("7002", "metadata"),
            ("7003", "github_pull_requests[0].created_at"),
            ("c-1", "totalToolCount"),
            ("c-2", "evalScore"),
            ("c-3", "acceptanceCriteriaResults")])
        by = {p[1]: p for p in problems}
        self.assertEqual(by["totalToolCount"][3], "2.5")
        self.assertEqual(by["evalScore"][3], '"0.8"')
        self.assertEqual(by["metadata"][2], "is not an object")
        self.assertEqual(by["metadata"][3], '["a","b"]')
        # the valid columns are filled, the bad ones NULL
        self.assertEqual(self.sql(
            "SELECT metadata, status, created_at FROM runs WHERE "
            "external_id = '7002'"),
            [(None, "COMPLETE", "2025-06-21T11:21:00.000Z")])
        self.assertEqual(self.sql(
            "SELECT total_tool_count, tool_names_count FROM runs WHERE "
            "external_id = 'c-1'"), [(None, 1)])
        self.assertEqual(self.sql(
            "SELECT eval_score FROM runs WHERE external_id = 'c-2'"),
            [(None,)])
        self.assertEqual(self.sql(
            "SELECT acceptance_criteria_count FROM runs WHERE "
            "external_id = 'c-3'"), [(None,)])
        # the pull request with a quoted id is kept under that id; the
        # one with a numeric created_at is kept without it
        self.assertEqual(self.sql(
            "SELECT run_external_id, pr_external_id, repository, number, "
            "pr_created_at FROM pull_requests_with_runs ORDER BY 1"),
            [("7001", "77", "acme/app", 77, "2025-06-21T11:30:00.000Z"),
             ("7003", "501", "acme/app", 501, None)])
        # raw_json is exactly what was served
        raw = self.sql("SELECT raw_json FROM runs WHERE external_id = "
                       "'c-2'")[0][0]
        self.assertEqual(json.loads(raw)["evalScore"], "0.8")
        rejected = self.sql("SELECT source, reason FROM rejected_records")
        self.assertEqual(len(rejected), 1)
        self.assertEqual(rejected[0][0], "cotool")
        self.assertIn('"id"', rejected[0][1])
        # the passes succeeded and say how many runs were partial
        self.assertEqual(self.sql(
            "SELECT source, outcome, runs_partial, runs_rejected FROM "
            "sync_runs ORDER BY source"),
            [("codegen", "succeeded", 3, 0), ("cotool", "succeeded", 3, 1)])

        # Upstream fixes the field: the next sighting clears the problem.
        api.update_cotool("c-1", totalToolCount=4)
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT total_tool_count, (SELECT count(*) FROM "
            "run_field_problems f WHERE f.run_id = runs.id) FROM runs "
            "WHERE external_id = 'c-1'"), [(4, 0)])


class NullOrEmptyTest(DaemonTest):
    """"Not evaluated" (null, or left out) and "evaluated, nothing found"
    ([] or {}) give different rows, told apart without JSON functions."""

    def test_null_and_empty_differ(self):
        api = self.api
        api.add_cotool(ct_run("null", toolNames=None,
                              evalBulletSummary=None,
                              acceptanceCriteriaResults=None,
                              criticalIssue=None, linkedAlert=None))
        api.add_cotool(ct_run("empty", toolNames=[], evalBulletSummary=[],
                              acceptanceCriteriaResults=[],
                              criticalIssue={}, linkedAlert={},
                              createdAt="2025-06-17T12:35:00.000Z"))
        absent = ct_run("absent", createdAt="2025-06-17T12:36:00.000Z")
        api.add_cotool(absent)
        api.add_codegen(cg_run(api, 8001, github_pull_requests=None))
        api.add_codegen(cg_run(api, 8002, github_pull_requests=[],
                               created_at="2025-06-21 11:21:00"))
        self.once_ok()
        rows = self.sql(
            "SELECT external_id, tool_names_count, eval_bullet_count, "
            "acceptance_criteria_count, has_critical_issue, "
            "has_linked_alert FROM runs WHERE kind = 'cotool' ORDER BY 1")
        self.assertEqual(rows, [("absent", 1, None, None, 0, 0),
                                ("empty", 0, 0, 0, 1, 1),
                                ("null", None, None, None, 0, 0)])
        self.assertEqual(self.sql(
            "SELECT run_external_id FROM pull_requests_with_runs"), [])
        self.assertEqual(self.sql(
            "SELECT external_id, pull_request_count FROM agent_runs WHERE "
            "kind = 'codegen' ORDER BY 1"), [("8001", None), ("8002", 0)])
        self.assertEqual(self.count(
            "SELECT count(*) FROM run_field_problems"), 0)


class TotalsAndViewsTest(DaemonTest):
    """sync_runs.upstream_total, completeness in source_status, and views
    whose names say what they hold."""
    codegen_runs = 250
    cotool_runs = 250

    def test_totals_and_views(self):
        api = self.api
        # one run without created_at (counted by runs_daily, day NULL)
        first = api.codegen_sorted()[0]
        api.update_codegen(first["id"], created_at=None)
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT source, upstream_total FROM sync_runs ORDER BY 1"),
            [("codegen", 250), ("cotool", 250)])
        self.assertEqual(self.sql(
            "SELECT source, live_runs, upstream_total, "
            "upstream_total_at IS NOT NULL FROM source_status ORDER BY 1"),
            [("codegen", 250, 250, 1), ("cotool", 250, 250, 1)])
        # runs_daily adds up to the live runs, NULL day included
        self.assertEqual(self.sql(
            "SELECT source, sum(runs) FROM runs_daily GROUP BY 1 ORDER BY 1"),
            [("codegen", 250), ("cotool", 250)])
        self.assertGreaterEqual(self.count(
            "SELECT sum(runs) FROM runs_daily WHERE day IS NULL AND "
            "source = 'codegen'"), 1)
        # agent_outcomes: Codegen has no agent; its source_type is a
        # trigger, as Cotool's triggerSource is
        self.assertEqual(self.count(
            "SELECT count(*) FROM agent_outcomes WHERE kind = 'codegen' "
            "AND agent IS NOT NULL"), 0)
        self.assertEqual(
            {r[0] for r in self.sql("SELECT DISTINCT trigger FROM "
                                    "agent_outcomes WHERE kind = 'codegen' "
                                    "AND trigger IS NOT NULL")},
            {r[0] for r in self.sql("SELECT DISTINCT lower(source_type) "
                                    "FROM runs "
                                    "WHERE kind = 'codegen' AND "
                                    "source_type IS NOT NULL")})
        self.assertEqual(self.count(
            "SELECT sum(runs) FROM agent_outcomes WHERE kind = 'cotool'"),
            250)
        # agent_runs: one row per live run of either API
        self.assertEqual(self.count("SELECT count(*) FROM agent_runs"), 500)
        self.assertEqual(self.sql(
            "SELECT count(*) FROM agent_runs a JOIN runs r ON "
            "r.id = a.run_id WHERE a.kind = 'cotool' AND (a.agent IS NOT "
            "r.agent_name OR a.trigger IS NOT lower(r.trigger_source) OR "
            "a.model IS NOT r.model_alias OR a.updated_at IS NOT "
            "r.updated_at OR a.web_url IS NOT NULL)"), [(0,)])
        self.assertEqual(self.sql(
            "SELECT count(*) FROM agent_runs a JOIN runs r ON "
            "r.id = a.run_id WHERE a.kind = 'codegen' AND (a.agent IS NOT "
            "NULL OR a.trigger IS NOT lower(r.source_type) OR "
            "a.model IS NOT NULL "
            "OR a.web_url IS NOT r.web_url OR a.eval_score IS NOT NULL)"),
            [(0,)])
        # A run deleted upstream leaves pull_requests_with_runs as it
        # leaves every other view.
        with_pr = self.sql(
            "SELECT run_external_id FROM pull_requests_with_runs LIMIT 1")
        self.assertTrue(with_pr)
        api.delete_codegen(int(with_pr[0][0]))
        self.write_conf(codegen={"full_resync_interval": "1ms"})
        self.once_ok()
        self.assertEqual(self.count(
            "SELECT count(*) FROM runs WHERE deleted_upstream_at IS NOT "
            "NULL"), 1)
        self.assertEqual(self.count(
            "SELECT count(*) FROM pull_requests_with_runs WHERE "
            "run_external_id = ?", with_pr[0][0]), 0)
        self.assertEqual(self.count("SELECT count(*) FROM agent_runs"), 499)
        self.assertEqual(self.sql(
            "SELECT live_runs, upstream_total FROM source_status WHERE "
            "source = 'codegen'"), [(249, 249)])


class PullRequestsTest(DaemonTest):
    def test_repository_number_and_positions(self):
        api = self.api
        prs = [{"id": 11, "created_at": "2025-06-21T11:30:00Z",
                "url": "https://github.com/acme/app/pull/11"},
               {"id": 12, "created_at": "2025-06-21T11:30:00Z",
                "url": "https://github.example.com/acme/app/pull/12"},
               {"id": 11, "created_at": "2025-06-21T11:30:00Z",
                "url": "https://github.com/acme/app/pull/11"},
               {"id": 13, "created_at": "2025-06-21T11:30:00Z",
                "url": "https://github.com/acme/lib/pull/3/files"}]
        api.add_codegen(cg_run(api, 9001, github_pull_requests=prs))
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT pr_external_id, position, repository, number FROM "
            "pull_requests_with_runs ORDER BY position"),
            [("11", 0, "acme/app", 11), ("12", 1, None, None),
             ("13", 2, "acme/lib", 3)])
        self.assertEqual(self.sql(
            "SELECT pull_request_count FROM runs"), [(3,)])
        if self.engine == "sqlite":     # SQLite's planner and its words
            plan = " ".join(r[3] for r in self.sql(
                "EXPLAIN QUERY PLAN SELECT repository, count(*) FROM "
                "pull_requests GROUP BY repository"))
            self.assertIn("pull_requests_repository", plan)


class FinishedSeenTest(DaemonTest):
    def test_finished_seen_at(self):
        api = self.api
        now = dt.datetime.now(dt.timezone.utc)
        form = "%Y-%m-%dT%H:%M:%SZ"
        api.add_codegen(cg_run(api, 9101, status="RUNNING",
                               created_at=now.strftime(form)))
        api.add_codegen(cg_run(api, 9100, status="COMPLETE",
                               created_at=(now - dt.timedelta(seconds=5))
                               .strftime(form)))
        self.once_ok()
        self.assertEqual(self.sql(
            "SELECT external_id, finished_seen_at IS first_seen_at, "
            "finished_seen_at IS NULL FROM runs ORDER BY 1"),
            [("9100", 1, 0), ("9101", 0, 1)])
        time.sleep(0.05)
        api.update_codegen(9101, status="COMPLETE")
        self.once_ok()
        rows = self.sql("SELECT finished_seen_at > first_seen_at, "
                        "finished_seen_at = (SELECT observed_at FROM "
                        "run_status_changes c WHERE c.run_id = runs.id "
                        "AND c.old_state IS NOT NULL) "
                        "FROM runs WHERE external_id = '9101'")
        self.assertEqual(rows, [(1, 1)])
        # re-opened and finished again: the first finish stays
        first = self.sql("SELECT finished_seen_at FROM runs WHERE "
                         "external_id = '9101'")
        api.update_codegen(9101, status="RUNNING")
        self.once_ok()
        api.update_codegen(9101, status="FAILED")
        self.once_ok()
        self.assertEqual(self.sql("SELECT finished_seen_at FROM runs WHERE "
                                  "external_id = '9101'"), first)
