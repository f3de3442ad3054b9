# SPDX-License-Identifier: ISC
"""The fake API itself (tests/fakeapi.py) against the spec pages
(../shared/specs/): the same seed serves the same data in every process;
an unparseable Codegen created_at is served and sorted, not a crash;
Cotool's 403 {"error", "missingPerms"} and Codegen's 403 {"message",
"status_code"}; generated runs leave out optional keys, carry unknown ones
and have empty lists now and then, all within the spec's types.  No daemon
here: these check the yardstick the daemon tests measure with.

The spec's keys are written out below from the pages, not imported from
the fake."""
import copy
import datetime as dt
import json
import os
import subprocess
import sys
import unittest
import urllib.error
import urllib.request
import uuid

from tests.integration.harness import ROOT, fakeapi

UTC = dt.timezone.utc

# Codegen AgentRunResponse: required id, organization_id; the rest may be
# left out.
CG_REQUIRED = {"id", "organization_id"}
CG_OPTIONAL = {"status", "created_at", "web_url", "result", "summary",
               "source_type", "github_pull_requests", "metadata"}
CG_SOURCE_TYPES = {"LOCAL", "SLACK", "GITHUB", "GITHUB_CHECK_SUITE",
                   "GITHUB_PR_REVIEW", "LINEAR", "API", "CHAT", "JIRA",
                   "CLICKUP", "MONDAY", "SETUP_COMMANDS"}
# Cotool runs[] items.
CT_REQUIRED = {"id", "agentId", "agentName", "agentType", "runTitle",
               "createdAt", "updatedAt", "modelAlias", "toolNames",
               "totalToolCount", "hasError", "isStreaming"}
CT_OPTIONAL = {"modelName", "triggerSource", "triggerName", "status",
               "evalScore", "evalExplanation", "evalBulletSummary",
               "criticalIssue", "acceptanceCriteriaResults", "linkedAlert"}
CT_STATUSES = {"queued", "running", "waiting", "done", "error",
               "interrupted"}
CT_CATEGORIES = {"authentication", "connectivity", "missing_data",
                 "permission", "configuration", "service_unavailable"}
CT_ALERT_STATUSES = {"open", "in_progress", "escalated",
                     "closed_true_positive", "closed_false_positive",
                     "closed_true_positive_benign"}

# Both time forms Codegen sends; anything else is "no usable time".
CG_FORMS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%SZ")


def cg_instant(c):
    for form in CG_FORMS:
        try:
            return dt.datetime.strptime(c, form).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            pass
    return None


def http_get(api, path, token):
    """(status, decoded JSON body) of GET path with a bearer token;
    straight to loopback, whatever proxy the environment names."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(api.url + path, headers={
        "Authorization": f"Bearer {token}"})
    try:
        with opener.open(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


# Prints what a seed generates, as JSON: the Dataset's runs and what a
# FakeAPI built from the seed serves (not started: no request is made).
DUMP = r"""
import json, sys
sys.path.insert(0, "tests")
import fakeapi
seed = int(sys.argv[1])
d = fakeapi.Dataset(seed)
out = {"codegen": [d.codegen_run() for _ in range(300)],
       "cotool": [d.cotool_run() for _ in range(300)]}
api = fakeapi.FakeAPI(200, 200, seed=seed)
api.server.server_close()
out["served_codegen"] = api.codegen_sorted()
out["served_cotool"] = api.cotool_sorted()
sys.stdout.write(json.dumps(out, sort_keys=True))
"""


class DeterminismTest(unittest.TestCase):
    def dump(self, seed, hashseed):
        env = dict(os.environ, PYTHONHASHSEED=str(hashseed))
        r = subprocess.run([sys.executable, "-c", DUMP, str(seed)],
                           cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return r.stdout

    def test_same_seed_same_data_across_processes(self):
        # Two processes with different hash salts (str hashes differ
        # between them, as they do between any two runs by default).
        a = self.dump(5, 1)
        b = self.dump(5, 2)
        self.assertGreater(len(a), 100000)
        if a != b:
            ja, jb = json.loads(a), json.loads(b)
            diff = [(k, i) for k in ja for i, (x, y) in
                    enumerate(zip(ja[k], jb[k])) if x != y]
            self.fail(f"seed 5 differs between processes at {diff[:5]}")
        # ... and the seed matters.
        self.assertNotEqual(a, self.dump(6, 1))


class CodegenCreatedAtTest(unittest.TestCase):
    def setUp(self):
        self.api = fakeapi.FakeAPI(150, 0, seed=4).start()
        self.addCleanup(self.api.stop)

    def served(self, limit):
        """Every run of the listing, page by page (bounded)."""
        items, total = [], None
        for page in range(1000):
            status, body = http_get(
                self.api, f"/v1/organizations/{self.api.org_id}/agent/"
                f"runs?skip={page * limit}&limit={limit}",
                self.api.codegen_token)
            self.assertEqual(status, 200, body)
            total = body["total"]
            items += body["items"]
            if not body["items"]:
                break
        self.assertEqual(len(items), total)
        return items

    def test_unparseable_created_at_is_served_and_sorted(self):
        api = self.api
        ids = [r["id"] for r in api.codegen_sorted()]
        api.update_codegen(ids[3], created_at="yesterday")
        api.update_codegen(ids[40], created_at="2025-13-45")
        api.update_codegen(ids[41], created_at="2025-06-17T25:00:00Z")
        api.update_codegen(ids[42], created_at="")
        api.update_codegen(ids[43], created_at=None)
        tmpl = api.codegen_sorted()[0]
        api.add_codegen(dict(copy.deepcopy(tmpl), id=10 ** 6,
                             created_at="not a time at all"))
        # one instant in both forms: the higher id first
        api.add_codegen(dict(copy.deepcopy(tmpl), id=10 ** 6 + 1,
                             created_at="2025-06-20 10:00:00.000000"))
        api.add_codegen(dict(copy.deepcopy(tmpl), id=10 ** 6 + 2,
                             created_at="2025-06-20T10:00:00Z"))
        for limit in (7, 100):
            got = [r["id"] for r in self.served(limit)]
            self.assertEqual(len(got), len(set(got)))
            runs = {r["id"]: r for r in api.codegen_sorted()}
            self.assertEqual(set(got), set(runs))
            dated = [r for r in runs.values()
                     if cg_instant(r.get("created_at")) is not None]
            undated = [r for r in runs.values()
                       if cg_instant(r.get("created_at")) is None]
            want = [r["id"] for r in sorted(
                dated, key=lambda r: (cg_instant(r["created_at"]),
                                      r["id"]), reverse=True)]
            want += sorted((r["id"] for r in undated), reverse=True)
            self.assertEqual(got, want)
            self.assertLess(got.index(10 ** 6 + 2), got.index(10 ** 6 + 1))
            for rid in (ids[3], ids[40], ids[41], 10 ** 6):
                self.assertIn(rid, got[len(dated):])
        # served as given, not rewritten
        self.assertEqual(api.codegen[ids[40]]["created_at"], "2025-13-45")


class ForbiddenTest(unittest.TestCase):
    def setUp(self):
        self.api = fakeapi.FakeAPI(
            20, 20, seed=2,
            cotool_forbidden_tokens=["key-without-perms"]).start()
        self.addCleanup(self.api.stop)

    def cotool(self, token, query="?page=0&pageSize=5"):
        return http_get(self.api, "/api/agent-runs" + query, token)

    def assert_cotool_403(self, answer, perms):
        status, body = answer
        self.assertEqual(status, 403, body)
        self.assertEqual(set(body), {"error", "missingPerms"})
        self.assertIsInstance(body["error"], str)
        self.assertTrue(body["error"])
        self.assertEqual(body["missingPerms"], perms)

    def test_cotool_403_missing_perms(self):
        api = self.api
        status, body = self.cotool(api.cotool_token)
        self.assertEqual((status, len(body["runs"])), (200, 5))
        self.assert_cotool_403(self.cotool("key-without-perms"),
                               ["agent_runs:read"])
        status, body = self.cotool("no-such-key")
        self.assertEqual((status, set(body)), (401, {"error"}))
        # the daemon's own (valid) key loses its permissions, and back
        api.forbid_cotool(missing_perms=["agents:read", "runs:list"])
        self.assert_cotool_403(self.cotool(api.cotool_token),
                               ["agents:read", "runs:list"])
        # (the log's status is set after the answer is sent: not read)
        self.assertEqual(api.requests("cotool")[-1]["auth"],
                         f"Bearer {api.cotool_token}")
        api.allow_cotool()
        self.assertEqual(self.cotool(api.cotool_token)[0], 200)
        # a queued fault of 403 has the same body shape
        api.fail("cotool", fakeapi.Fault(status=403))
        status, body = self.cotool(api.cotool_token)
        self.assertEqual((status, set(body)), (403, {"error",
                                                     "missingPerms"}))
        self.assertEqual(self.cotool(api.cotool_token)[0], 200)
        # Codegen does not know the Cotool key's fate
        api.forbid_cotool()
        status, _ = http_get(api, f"/v1/organizations/{api.org_id}/agent/"
                             "runs", api.codegen_token)
        self.assertEqual(status, 200)

    def test_cotool_403_perms_by_constructor_dict(self):
        api = fakeapi.FakeAPI(0, 3, cotool_forbidden_tokens={
            "k": ["runs:read"]}).start()
        self.addCleanup(api.stop)
        self.assert_cotool_403(
            http_get(api, "/api/agent-runs", "k"), ["runs:read"])
        self.assertEqual(http_get(api, "/api/agent-runs",
                                  api.cotool_token)[0], 200)

    def test_codegen_403_other_org(self):
        api = self.api
        want = {"message": "You do not have access to this organization.",
                "status_code": 403}
        self.assertEqual(http_get(api, "/v1/organizations/7/agent/runs",
                                  api.codegen_token), (403, want))
        api.fail("codegen", fakeapi.Fault(status=403))
        self.assertEqual(http_get(api, f"/v1/organizations/{api.org_id}/"
                                  "agent/runs", api.codegen_token),
                         (403, want))
        status, body = http_get(api, f"/v1/organizations/{api.org_id}/"
                                "agent/runs", api.codegen_token)
        self.assertEqual((status, len(body["items"])), (200, 20))


class GeneratedShapeTest(unittest.TestCase):
    N = 1500

    def runs(self, seed):
        d = fakeapi.Dataset(seed)
        return ([d.codegen_run() for _ in range(self.N)],
                [d.cotool_run() for _ in range(self.N)])

    def assert_share(self, n, what):
        """'A few percent': at least 1.5 %, at most 8 %."""
        self.assertGreaterEqual(n, self.N * 0.015, what)
        self.assertLessEqual(n, self.N * 0.08, what)

    def assert_nullable(self, run, key, types):
        if key in run and run[key] is not None:
            self.assertIsInstance(run[key], types, (key, run))

    def check_codegen(self, runs):
        omitted = unknown = 0
        for run in runs:
            keys = set(run)
            self.assertLessEqual(CG_REQUIRED, keys, run)
            self.assertIsInstance(run["id"], int)
            self.assertIsInstance(run["organization_id"], int)
            omitted += bool(CG_OPTIONAL - keys)
            unknown += bool(keys - CG_REQUIRED - CG_OPTIONAL)
            for key in ("status", "created_at", "web_url", "result",
                        "summary"):
                self.assert_nullable(run, key, str)
            if run.get("created_at") is not None:
                self.assertIsNotNone(cg_instant(run["created_at"]), run)
            if run.get("source_type") is not None:
                self.assertIn(run["source_type"], CG_SOURCE_TYPES)
            self.assert_nullable(run, "metadata", dict)
            self.assert_nullable(run, "github_pull_requests", list)
            for pr in run.get("github_pull_requests") or []:
                self.assertIsInstance(pr["id"], int)
                self.assertIsNotNone(cg_instant(pr["created_at"]), pr)
        self.assert_share(omitted, "codegen runs without an optional key")
        self.assert_share(unknown, "codegen runs with an unknown key")

    def check_cotool(self, runs):
        omitted = unknown = nested = streaming = 0
        empty = {"toolNames": 0, "evalBulletSummary": 0,
                 "acceptanceCriteriaResults": 0}
        for run in runs:
            keys = set(run)
            self.assertLessEqual(CT_REQUIRED, keys, run)
            omitted += bool(CT_OPTIONAL - keys)
            unknown += bool(keys - CT_REQUIRED - CT_OPTIONAL)
            self.assertEqual(run["agentId"], str(uuid.uuid5(
                uuid.NAMESPACE_URL, "cotool-agent:" + run["agentName"])))
            self.assertIn(run["agentType"], ("response", "detection"))
            for key in ("id", "agentName", "runTitle", "createdAt",
                        "updatedAt", "modelAlias"):
                self.assertIsInstance(run[key], str, key)
            self.assertIsInstance(run["toolNames"], list)
            self.assertLessEqual(len(run["toolNames"]), 5)
            self.assertIsInstance(run["totalToolCount"], int)
            self.assertIs(type(run["hasError"]), bool)
            self.assertIs(type(run["isStreaming"]), bool)
            self.assertIsInstance(run.get("modelName", ""), str)
            for key in ("triggerSource", "triggerName", "evalExplanation"):
                self.assert_nullable(run, key, str)
            self.assert_nullable(run, "evalScore", (int, float))
            if "status" in run:
                self.assertIn(run["status"], CT_STATUSES)
                # "currently streaming (in-progress)"
                self.assertEqual(run["isStreaming"],
                                 run["status"] == "running", run)
            streaming += run["isStreaming"]
            for key in empty:
                if run.get(key) == []:
                    empty[key] += 1
            self.assert_nullable(run, "evalBulletSummary", list)
            for b in run.get("evalBulletSummary") or []:
                self.assertIsInstance(b, str)
            ci = run.get("criticalIssue")
            if ci is not None:
                # never {}: both required properties, always
                self.assertIsInstance(ci, dict)
                self.assertIn(ci.get("category"), CT_CATEGORIES, run)
                self.assertIsInstance(ci.get("explanation"), str)
                nested += bool(set(ci) - {"category", "explanation"})
            self.assert_nullable(run, "acceptanceCriteriaResults", list)
            for c in run.get("acceptanceCriteriaResults") or []:
                self.assertIsInstance(c["criterion"], str)
                self.assertIs(type(c["met"]), bool)
                self.assertIsInstance(c["explanation"], str)
                nested += bool(set(c) - {"criterion", "met", "explanation"})
            la = run.get("linkedAlert")
            if la is not None:
                self.assertIsInstance(la["displayId"], str)
                self.assertIsInstance(la["title"], str)
                self.assertIn(la["status"], CT_ALERT_STATUSES)
                nested += bool(set(la) - {"displayId", "title", "status"})
        self.assert_share(omitted, "cotool runs without an optional key")
        self.assert_share(unknown + nested,
                          "cotool runs with an unknown key")
        self.assertGreater(unknown, 0)
        self.assertGreater(nested, 0)
        self.assertGreater(streaming, 0)
        for key, n in empty.items():
            self.assertGreater(n, 0, f"no run with {key} []")

    def test_shapes_within_the_spec(self):
        for seed in (1, 7):
            codegen, cotool = self.runs(seed)
            self.check_codegen(codegen)
            self.check_cotool(cotool)
        # every optional key is left out somewhere
        codegen, cotool = self.runs(3)
        self.assertEqual(set().union(*(CG_OPTIONAL - set(r)
                                       for r in codegen)), CG_OPTIONAL)
        self.assertEqual(set().union(*(CT_OPTIONAL - set(r)
                                       for r in cotool)), CT_OPTIONAL)

    def test_streaming_follows_status_updates(self):
        api = fakeapi.FakeAPI(0, 30, seed=3)
        api.server.server_close()
        rid = api.cotool_sorted()[0]["id"]
        self.assertTrue(api.update_cotool(rid, status="running")
                        ["isStreaming"])
        self.assertFalse(api.update_cotool(rid, status="done")
                         ["isStreaming"])
        self.assertTrue(api.update_cotool(rid, status="waiting",
                                          isStreaming=True)["isStreaming"])


if __name__ == "__main__":
    unittest.main()
