#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""A fake Codegen + Cotool "list agent runs" API for agentsyncd's tests.

Written from the reference pages in ../shared/specs/, not from the client:

Codegen  GET /v1/organizations/{org_id}/agent/runs?skip=&limit=
         (skip >= 0, default 0; limit 1..100, default 100; user_id and
         source_type filters), newest created first (ties: higher id
         first), body {"items", "total", "page", "size", "pages"}.  Invalid
         query -> 422 {"detail": [{"loc", "msg", "type"}]}; another org ->
         403 {"message", "status_code"}; 429 {"message", "status_code"}.
         A wrong or missing token is not on the page; we answer 401 with a
         body of the same {"message", "status_code"} shape.
Cotool   GET /api/agent-runs?page=&pageSize=&sortField=&sortDirection=
         (page >= 0, default 0; pageSize 1..100, default 50; sortField
         createdAt|updatedAt|agentName|modelAlias|evalScore, default
         createdAt; sortDirection asc|desc, default desc; ties: id in the
         same direction), body {"runs", "totalCount"}.  Invalid query ->
         400 {"error", "issues"}; bad key -> 401 {"error"}; 403 {"error",
         "missingPerms"}; 500 {"error"}.

Codegen's created_at is string|null on the page, nothing more: a run
whose created_at is missing, null, not a string or not a time ("yesterday",
"2025-13-45") is served as is and sorts as the oldest (after every dated
run; ties: higher id first).  Parseable times sort by instant, both forms
("2025-06-17 12:34:56.789012", no zone = UTC, and "2025-06-17T12:34:56Z").

Cotool's 403: FakeAPI(cotool_forbidden_tokens=...) (a list of keys, or a
dict key -> missingPerms) or api.forbid_cotool(token=None,
missing_perms=None) (None: the valid cotool_token; perms default
["agent_runs:read"]) make Cotool answer that key 403 {"error",
"missingPerms"} (a valid key whose user lacks permissions: checked before
the 401 check, rate limits and faults); api.allow_cotool(token) undoes it.
Fault(status=403) sends the spec's 403 body of either API.

Generated data (Dataset: deterministic for a seed, in any process, with
any PYTHONHASHSEED.  One generator draws the values, the same as before
these shapes came (but agentId and isStreaming), a second the shapes):
- every 25th run of each API (4 %) leaves out 1-3 of its optional keys:
  Codegen all but id and organization_id, Cotool modelName,
  triggerSource, triggerName, status, evalScore, evalExplanation,
  evalBulletSummary, criticalIssue, acceptanceCriteriaResults,
  linkedAlert; the required keys are always there;
- every 30th run (3.3 %) carries a key the spec does not name, as an API
  that evolves would: a string, a nested object, a list or a null at the
  top level (sandbox_region / sandboxRegion, cost / usage, ...), or, for
  a third of the Cotool ones, inside its linkedAlert, criticalIssue or
  first acceptance criterion;
- Cotool: toolNames is [] one run in six; evalBulletSummary and
  acceptanceCriteriaResults are null when not evaluated and [] for one
  evaluated run in ten; criticalIssue is null or an object with both
  category and explanation (never {}); isStreaming is true exactly when
  the status is "running" ("currently streaming (in-progress)"), also
  when status is the key left out; update_cotool(status=...) keeps it so
  unless told otherwise; agentId is uuid5(NAMESPACE_URL, "cotool-agent:"
  + agentName).

Tests use it in-process (FakeAPI): change runs, queue faults, hook a
callable before the N-th request, enforce a rate limit, forbid a Cotool
key, delay every answer (api.latency, seconds: a network round trip;
requests are served concurrently, one thread each), read the request log
(each entry's "time" of arrival and "done" at the end of its answer).  The CLI serves a generated data set until
SIGTERM:

    python3 tests/fakeapi.py --codegen-runs 3000 --cotool-runs 3000 \\
        --seed 1 [--port 0] [--port-file F] [--org-id 42] \\
        [--codegen-token T] [--cotool-token T] [--recent]

--recent (make demo): the runs are dated over the last 30 days instead of
from 2025-06-01, and 24 runs of each API created in the last hour are
unfinished; POST /_fake/demo-step (a path of neither API, served only
with --recent) then changes upstream as time would: those runs finish,
some older Cotool runs finish or are re-opened, and one run of each API
comes back with a field of the wrong type.  The tests' data (FakeAPI()
without base) stays as it was.
"""
import argparse
import copy
import datetime as dt
import email.utils
import json
import math
import random
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

CODEGEN_STATUSES = ["COMPLETE", "COMPLETE", "COMPLETE", "FAILED", "ERROR",
                    "ACTIVE", "RUNNING", "PENDING", "EVALUATION", "PAUSED",
                    "TIMEOUT", "MAX_ITERATIONS_REACHED", "OUT_OF_TOKENS",
                    "CANCELLED", "STOPPED", "completed", "failed",
                    "running"]
SOURCE_TYPES = ["LOCAL", "SLACK", "GITHUB", "GITHUB_CHECK_SUITE",
                "GITHUB_PR_REVIEW", "LINEAR", "API", "CHAT", "JIRA",
                "CLICKUP", "MONDAY", "SETUP_COMMANDS"]
COTOOL_STATUSES = ["done", "done", "done", "error", "running", "waiting",
                   "queued", "interrupted"]
COTOOL_SORT = ["createdAt", "updatedAt", "agentName", "modelAlias",
               "evalScore"]
# What a forbidden Cotool key lacks unless the test says (the spec names
# no permission; this one reads like Cotool's others).
COTOOL_DEFAULT_MISSING_PERMS = ["agent_runs:read"]
COTOOL_403_ERROR = "Forbidden: the API key lacks the required permissions"
CODEGEN_403_MESSAGE = "You do not have access to this organization."


def iso_ms(t):
    """Cotool's form: 2025-06-17T12:34:56.789Z"""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def codegen_time(t, form):
    """Both forms Codegen has been seen to send."""
    if form == 0:
        return t.strftime("%Y-%m-%d %H:%M:%S.%f")      # no zone: UTC
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# What the spec pages require of a run; every other property of a run may
# be left out by the server (and an API that evolves adds properties the
# pages do not name yet).
CODEGEN_REQUIRED = ("id", "organization_id")
CODEGEN_OPTIONAL = ("status", "created_at", "web_url", "result", "summary",
                    "source_type", "github_pull_requests", "metadata")
COTOOL_REQUIRED = ("id", "agentId", "agentName", "agentType", "runTitle",
                   "createdAt", "updatedAt", "modelAlias", "toolNames",
                   "totalToolCount", "hasError", "isStreaming")
COTOOL_OPTIONAL = ("modelName", "triggerSource", "triggerName", "status",
                   "evalScore", "evalExplanation", "evalBulletSummary",
                   "criticalIssue", "acceptanceCriteriaResults",
                   "linkedAlert")
CRITICAL_CATEGORIES = ["authentication", "connectivity", "missing_data",
                       "permission", "configuration", "service_unavailable"]
# The share of generated runs of either API that leave out optional keys,
# and that carry a key the spec does not name: the n-th run (0-based,
# counted per API) of every OMIT_EVERY does the first, of every
# UNKNOWN_EVERY the second.
OMIT_EVERY, OMIT_AT = 25, 12             # 4 %
UNKNOWN_EVERY, UNKNOWN_AT = 30, 17       # 3.3 %
# Keys (and values) a newer server might add: at the top level of a run,
# or inside one of its objects.
CODEGEN_UNKNOWN = [
    ("sandbox_region", "eu-1"),
    ("cost", {"usd": 0.42, "tokens": {"input": 12034, "output": 2210}}),
    ("labels", ["nightly", "beta"]),
    ("parent_run_id", None),
]
COTOOL_UNKNOWN = [
    ("sandboxRegion", "eu-1"),
    ("usage", {"inputTokens": 18200, "outputTokens": 1330,
               "cache": {"hits": 3, "misses": 1}}),
    ("tags", ["beta"]),
    ("parentRunId", None),
]
COTOOL_UNKNOWN_NESTED = {                # inside an object, when present
    "linkedAlert": ("severity", "high"),
    "criticalIssue": ("detectedAt", "2025-06-01T00:00:00.000Z"),
    "acceptanceCriteriaResults": ("weight", 1),
}


def cotool_agent_id(name):
    """An agent's id, the same in every process (not hash(): that one is
    salted per process)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "cotool-agent:" + name))


class Dataset:
    """Deterministic, realistic runs of both APIs.

    Two generators, both seeded from seed: rng draws the runs' values (the
    same draws, in the same order, as before runs had shapes), shape draws
    which optional keys a run leaves out, which unknown key it carries and
    which evaluated run has empty lists."""

    def __init__(self, seed=1, base=None):
        self.rng = random.Random(seed)
        self.shape = random.Random(f"fakeapi-shape:{seed}")
        self.base = base or dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
        self.next_codegen_id = 1000
        self.next_pr_id = 50000
        self.prs = []
        self.made = {"codegen": 0, "cotool": 0}

    def _reshape(self, api, run, optional, unknown, nested=None):
        """Leave out optional keys of the run, add an unknown one."""
        n = self.made[api]
        self.made[api] += 1
        s = self.shape
        if n % OMIT_EVERY == OMIT_AT:
            for key in s.sample(optional, s.randint(1, 3)):
                del run[key]
        if n % UNKNOWN_EVERY == UNKNOWN_AT:
            # in one of the run's objects (when it has one) one time in
            # three, at the top level otherwise
            inside = [k for k in sorted(nested or {}) if run.get(k)]
            if inside and s.random() < 1 / 3:
                where = s.choice(inside)
                key, value = nested[where]
                obj = run[where]
                obj = obj[0] if isinstance(obj, list) else obj
                obj[key] = copy.deepcopy(value)
            else:
                key, value = s.choice(unknown)
                run[key] = copy.deepcopy(value)
        return run

    def codegen_run(self, t=None, org_id=42):
        r = self.rng
        self.next_codegen_id += r.randint(1, 3)
        t = t or self.base + dt.timedelta(seconds=self.next_codegen_id * 500)
        prs = []
        for _ in range(r.choice([0, 0, 1, 1, 1, 2, 3])):
            if self.prs and r.random() < 0.15:
                prs.append(copy.deepcopy(r.choice(self.prs)))   # shared
                continue
            self.next_pr_id += 1
            pr = {"id": self.next_pr_id,
                  "title": r.choice(["Fix flaky test", "Add retries",
                                     "Bump deps", None, "Refactor parser"]),
                  "url": f"https://github.com/acme/app/pull/"
                         f"{self.next_pr_id}",
                  "created_at": codegen_time(t + dt.timedelta(minutes=5),
                                             r.randint(0, 1)),
                  "head_branch_name": r.choice(
                      [f"codegen/fix-{self.next_pr_id}", None])}
            self.prs.append(pr)
            prs.append(pr)
        status = r.choice(CODEGEN_STATUSES + [None])
        run = {
            "id": self.next_codegen_id,
            "organization_id": org_id,
            "status": status,
            "created_at": None if r.random() < 0.01 else
            codegen_time(t, r.randint(0, 1)),
            "web_url": f"https://codegen.com/agent/trace/"
                       f"{self.next_codegen_id}",
            "result": r.choice([None, "Opened a PR", "No changes needed"]),
            "summary": r.choice([None, "Fixed the failing build",
                                 "Investigated 'x' \u00e9\u00e8 \u2713"]),
            "source_type": r.choice(SOURCE_TYPES + [None]),
            "github_pull_requests": prs if prs or r.random() < 0.5 else
            None,
            "metadata": None if r.random() < 0.3 else
            {"repo": "acme/app", "cost_usd": round(r.random() * 3, 4),
             "tags": ["ci", "bot"]},
        }
        return self._reshape("codegen", run, CODEGEN_OPTIONAL,
                             CODEGEN_UNKNOWN)

    def cotool_run(self, t=None, i=None):
        r, s = self.rng, self.shape
        # rng: the same draws in the same order as ever (one a statement
        # below, in the order of the keys).
        i = i if i is not None else r.randrange(1 << 60)
        t = t or self.base + dt.timedelta(seconds=r.randrange(30 * 86400))
        t = t.replace(microsecond=r.randrange(1000) * 1000)
        upd = t + dt.timedelta(seconds=r.randrange(3600))
        agent = r.choice(["Alert triage", "Phishing responder",
                          "Vuln scanner", "Access reviewer"])
        evaluated = r.random() < 0.7
        tools = r.sample(["splunk_search", "okta_lookup", "virustotal",
                          "jira_create", "slack_post", "crowdstrike_rtr",
                          "github_search"], r.randint(0, 5))  # 1 in 6: []
        run = {"id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
               "agentId": cotool_agent_id(agent),
               "agentName": agent}
        run["agentType"] = r.choice(["response", "detection"])
        run["runTitle"] = r.choice(["Suspicious login for j.doe",
                                    "Triage alert #4411",
                                    "Weekly access review \u2014 EU"])
        run["createdAt"] = iso_ms(t)
        run["updatedAt"] = iso_ms(upd)
        run["modelAlias"] = r.choice(["fast", "smart"])
        run["modelName"] = r.choice(["claude-sonnet-4", "gpt-4.1"])
        run["toolNames"] = tools
        run["totalToolCount"] = len(tools) + r.randint(0, 12)
        run["triggerSource"] = r.choice(["manual", "api", "jira", "slack",
                                         "linear", "cron", "webhook",
                                         "email", None])
        run["triggerName"] = r.choice([None, "Nightly sweep", "SOC queue"])
        run["hasError"] = r.random() < 0.1
        status = r.choice(COTOOL_STATUSES)
        # "Whether the run is currently streaming (in-progress)": exactly
        # the running ones (also when the status key is left out below).
        run["isStreaming"] = status == "running"
        run["status"] = status
        run["evalScore"] = round(r.random() * 10, 1) if evaluated else None
        run["evalExplanation"] = "Followed the runbook" if evaluated else None
        # evaluated with nothing to say: [] one time in ten
        run["evalBulletSummary"] = (
            ([] if s.random() < 0.1 else
             ["Checked sign-in logs", "Escalated"]) if evaluated else None)
        # an object with both required keys, or null; never {}
        run["criticalIssue"] = {
            "category": r.choice(CRITICAL_CATEGORIES),
            "explanation": "The Okta token had expired."} \
            if r.random() < 0.1 else None
        criteria = [
            {"criterion": "Identifies the user", "met": True,
             "explanation": "Named in the summary"},
            {"criterion": "Closes the alert", "met": r.random() < 0.8,
             "explanation": "See the last step"}] if evaluated else None
        # the agent has no criteria: [] one evaluated run in ten
        run["acceptanceCriteriaResults"] = (
            [] if evaluated and s.random() < 0.1 else criteria)
        run["linkedAlert"] = {
            "displayId": f"ALR-{r.randint(1, 9999)}",
            "title": "Impossible travel",
            "status": r.choice(["open", "in_progress", "escalated",
                                "closed_true_positive",
                                "closed_false_positive",
                                "closed_true_positive_benign"])} \
            if r.random() < 0.4 else None
        return self._reshape("cotool", run, COTOOL_OPTIONAL, COTOOL_UNKNOWN,
                             COTOOL_UNKNOWN_NESTED)


def _codegen_instant(c):
    """created_at as an aware datetime (either form; no zone = UTC), or
    None when it is missing, null, not a string or not a time at all
    ("yesterday", "2025-13-45"): the spec types it string|null, nothing
    more, so the fake must not choke on it."""
    if not isinstance(c, str) or not c:
        return None
    try:
        t = dt.datetime.fromisoformat(c.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t


def _codegen_key(run):
    """Creation instant, then id; a run without a usable creation time
    sorts as the oldest (newest first: after every dated run), ties by
    id."""
    t = _codegen_instant(run.get("created_at"))
    if t is None:
        return (dt.datetime.min.replace(tzinfo=dt.timezone.utc), run["id"])
    return (t, run["id"])


class Fault:
    """What to do instead of a normal answer."""

    def __init__(self, kind="status", status=500, body=None, headers=None,
                 seconds=0.0, size=0):
        # the kinds are _Handler's fault_<kind> methods: status, raw,
        # truncate, reset, stall, huge, deep, edit, partial, hang,
        # stream, forever, endless, drip
        self.kind = kind
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.seconds = seconds
        self.size = size


class FakeAPI:
    def __init__(self, codegen_runs=0, cotool_runs=0, seed=1, org_id=42,
                 codegen_token="codegen-test-token",
                 cotool_token="cotool-test-token", port=0,
                 cotool_forbidden_tokens=None, base=None):
        self.lock = threading.RLock()
        self.data = Dataset(seed, base)
        self.org_id = org_id
        self.codegen_token = codegen_token
        self.cotool_token = cotool_token
        # Cotool keys that are valid but lack permissions: token -> the
        # missingPerms of its 403.  The argument: that dict, or a list of
        # keys (each with the default perms).  See forbid_cotool().
        self.cotool_forbidden_tokens = {}
        if isinstance(cotool_forbidden_tokens, dict):
            for token, perms in cotool_forbidden_tokens.items():
                self.forbid_cotool(token, perms)
        else:
            for token in cotool_forbidden_tokens or ():
                self.forbid_cotool(token)
        self.codegen = {}           # id -> run
        self.cotool = {}            # id -> run
        self.log = []               # dicts, in arrival order
        self.faults = {"codegen": [], "cotool": []}
        self.hooks = {}             # (api, n) -> callable(api_obj)
        self.limits = {}            # api -> (n, window, [times])
        self.sorted_cache = {}      # the server's orderings; see _sorted
        # Benchmarks: answer each distinct URL from bytes rendered once, so
        # that the server is not what is measured.  Off by default.
        self.render_cache = None    # {path?query: body bytes} when on
        self.quiet_log = False      # benchmarks: keep no request log
        self.rejected_429 = {"codegen": 0, "cotool": 0}
        # Off by default (the spec allows 100): a server that silently
        # returns fewer runs a page than asked.
        self.max_page_size = None
        # Seconds each request takes before its answer starts, as a
        # network round trip would (requests are served concurrently:
        # one thread each).  The log entry's "time" is the arrival and
        # "done" the end of the answer.
        self.latency = 0.0
        # Spread the runs over the past, ending two days ago: nothing is
        # in the future, and nothing falls inside a default refresh window.
        t0 = self.data.base
        end = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)
        for n, add in ((codegen_runs, self.add_codegen),
                       (cotool_runs, self.add_cotool)):
            step = min(900.0, (end - t0).total_seconds() / max(n, 1))
            for i in range(n):
                add(t=t0 + dt.timedelta(seconds=step * i))
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.api = self
        self.port = self.server.server_address[1]
        self.thread = None

    # -- data ------------------------------------------------------------
    def add_codegen(self, run=None, **kw):
        with self.lock:
            self.sorted_cache.clear()
            run = run or self.data.codegen_run(org_id=self.org_id, **kw)
            self.codegen[run["id"]] = run
            return run

    def add_cotool(self, run=None, **kw):
        with self.lock:
            self.sorted_cache.clear()
            run = run or self.data.cotool_run(**kw)
            self.cotool[run["id"]] = run
            return run

    def add_codegen_now(self):
        """A run created now, at the head of the listing."""
        return self.add_codegen(t=dt.datetime.now(dt.timezone.utc))

    def update_codegen(self, rid, **fields):
        with self.lock:
            self.sorted_cache.clear()
            self.codegen[rid].update(fields)
            return self.codegen[rid]

    def update_cotool(self, rid, **fields):
        """Change fields of a run and stamp updatedAt now.  A new status
        brings isStreaming along (true when "running") unless fields
        sets isStreaming too."""
        with self.lock:
            self.sorted_cache.clear()
            run = self.cotool[rid]
            if "status" in fields and "isStreaming" not in fields:
                fields = dict(fields,
                              isStreaming=fields["status"] == "running")
            run.update(fields)
            now = dt.datetime.now(dt.timezone.utc)
            run["updatedAt"] = iso_ms(now)
            return run

    # -- the demo's history (make demo; not used by the tests) -----------
    def demo_start(self, n=24):
        """Runs of both APIs created in the last hour and not finished:
        the first pass mirrors them so."""
        now = dt.datetime.now(dt.timezone.utc)
        self.demo_runs = {"codegen": [], "cotool": []}
        for i in range(n):
            t = now - dt.timedelta(minutes=50 - 2 * i)
            run = self.add_codegen(t=t)
            self.update_codegen(run["id"], status="RUNNING")
            self.demo_runs["codegen"].append(run["id"])
            run = self.add_cotool(t=t)
            self.update_cotool(run["id"], status="running")
            self.demo_runs["cotool"].append(run["id"])

    def demo_step(self):
        """What happens upstream between the demo's two passes: the runs
        of demo_start() finish (most succeed, some fail, one is
        cancelled), some older Cotool runs finish or are re-opened, and
        two runs come back with a field the mirror cannot use.  Returns
        how many runs changed."""
        ends = {"codegen": ["COMPLETE", "COMPLETE", "FAILED", "COMPLETE",
                            "ERROR", "COMPLETE", "TIMEOUT", "COMPLETE"],
                "cotool": ["done", "done", "error", "done", "done",
                           "error", "done", "interrupted"]}
        changed = 0
        for i, rid in enumerate(self.demo_runs["codegen"]):
            self.update_codegen(rid, status=ends["codegen"][i % 8])
            changed += 1
        for i, rid in enumerate(self.demo_runs["cotool"]):
            self.update_cotool(rid, status=ends["cotool"][i % 8])
            changed += 1
        older = [r for r in self.cotool_sorted("createdAt")
                 if r["id"] not in self.demo_runs["cotool"]]
        for i, run in enumerate(older[:200:10]):
            self.update_cotool(run["id"], status="running" if
                               run.get("status") == "done" else "done")
            changed += 1
        # a Cotool count of 2.5 and a Codegen pull request id as text
        self.update_cotool(older[3]["id"], totalToolCount=2.5)
        pr = {"id": "77", "title": "Pin the parser",
              "url": "https://github.com/acme/app/pull/77",
              "created_at": "2025-06-21 11:20:04.338398",
              "head_branch_name": None}
        self.update_codegen(self.demo_runs["codegen"][0],
                            github_pull_requests=[pr])
        return changed + 2

    def delete_codegen(self, rid):
        with self.lock:
            self.sorted_cache.clear()
            del self.codegen[rid]

    def delete_cotool(self, rid):
        with self.lock:
            self.sorted_cache.clear()
            del self.cotool[rid]

    def codegen_sorted(self):
        with self.lock:
            return sorted(self.codegen.values(), key=_codegen_key,
                          reverse=True)

    def cotool_sorted(self, field="createdAt", desc=True):
        with self.lock:
            def key(r):
                v = r.get(field)
                return (v is not None, v if v is not None else 0, r["id"])
            return sorted(self.cotool.values(), key=key, reverse=desc)

    def _sorted(self, key):
        """The handler's view: sorted once per change of the data (runs
        changed through the methods above; a test that edits a run dict
        by hand calls invalidate())."""
        with self.lock:
            if key not in self.sorted_cache:
                self.sorted_cache[key] = (
                    self.codegen_sorted() if key == "codegen" else
                    self.cotool_sorted(key[0], key[1]))
            return self.sorted_cache[key]

    def invalidate(self):
        with self.lock:
            self.sorted_cache.clear()

    # -- control ---------------------------------------------------------
    def fail(self, api, *faults):
        with self.lock:
            self.faults[api].extend(faults)

    def hook(self, api, n, fn):
        """Call fn(self) before serving the n-th (1-based) request to api."""
        with self.lock:
            self.hooks[(api, n)] = fn

    def forbid_cotool(self, token=None, missing_perms=None):
        """From now on Cotool answers a request with this key (default:
        the valid cotool_token, the one the daemon is given) 403
        {"error", "missingPerms": missing_perms} -- the spec's
        PermissionError: the key is valid, its user lacks permissions.
        The key counts as valid (any key: it is checked before the 401
        check), and the 403 comes before rate limits and faults."""
        with self.lock:
            self.cotool_forbidden_tokens[
                self.cotool_token if token is None else token] = list(
                    COTOOL_DEFAULT_MISSING_PERMS if missing_perms is None
                    else missing_perms)

    def allow_cotool(self, token=None):
        """Undo forbid_cotool(token) (default: cotool_token)."""
        with self.lock:
            self.cotool_forbidden_tokens.pop(
                self.cotool_token if token is None else token, None)

    def rate_limit(self, api, n, window):
        with self.lock:
            self.limits[api] = (n, window, [])

    def requests(self, api=None, status=None):
        with self.lock:
            return [r for r in self.log
                    if (api is None or r["api"] == api) and
                    (status is None or r["status"] == status)]

    def clear_log(self):
        with self.lock:
            self.log.clear()

    # -- lifecycle -------------------------------------------------------
    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address):
        # A client that hangs up mid-answer (a killed daemon, a timeout
        # under test) is expected here, not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def get_request(self):
        conn, addr = super().get_request()
        # Without this every keep-alive response waits ~40 ms for a
        # delayed ACK, and tests measure that instead of the daemon.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeapi/1"

    def log_message(self, fmt, *args):
        pass

    # -- plumbing --------------------------------------------------------
    def send_json(self, status, obj, headers=None):
        api = self.server.api
        if status == 200 and api.render_cache is not None:
            body = api.render_cache.get(self.path)
            if body is None:
                body = json.dumps(obj).encode()
                api.render_cache[self.path] = body
        else:
            body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        return status

    def send_raw(self, status, body, ctype="application/json",
                 headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        return status

    def do_POST(self):
        """POST /_fake/demo-step (make demo; no such path in either API):
        api.demo_step(), answered {"changed": N}."""
        api = self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if urlparse(self.path).path != "/_fake/demo-step" or \
                getattr(api, "demo_runs", None) is None:
            self.send_json(404, {"error": "Not found"})
            return
        with api.lock:
            changed = api.demo_step()
        self.send_json(200, {"changed": changed})

    def do_GET(self):
        api = self.server.api
        u = urlparse(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        if u.path == "/api/agent-runs":
            name = "cotool"
        elif u.path.startswith("/v1/organizations/") and \
                u.path.endswith("/agent/runs"):
            name = "codegen"
        else:
            self.send_json(404, {"error": "Not found"})
            return
        entry = {"api": name, "path": u.path,
                 "query": {k: v[0] for k, v in q.items()},
                 "auth": self.headers.get("Authorization"),
                 "user_agent": self.headers.get("User-Agent"),
                 "time": time.monotonic(), "status": None}
        with api.lock:
            if api.quiet_log:
                api.log_count = getattr(api, "log_count", 0) + 1
                hook = None
            else:
                api.log.append(entry)
                n = sum(1 for r in api.log if r["api"] == name)
                hook = api.hooks.pop((name, n), None)
        if hook is not None:
            hook(api)
        self.arrival = entry["time"]
        if api.latency > 0:
            time.sleep(api.latency)
        entry["status"] = self.answer(api, name, u, q)
        entry["done"] = time.monotonic()

    def answer(self, api, name, u, q):
        token = api.codegen_token if name == "codegen" else api.cotool_token
        auth = self.headers.get("Authorization") or ""
        with api.lock:
            missing = (api.cotool_forbidden_tokens.get(auth[7:])
                       if name == "cotool" and auth.startswith("Bearer ")
                       else None)
        if missing is not None:      # a valid key without the permissions
            return self.send_json(403, {"error": COTOOL_403_ERROR,
                                        "missingPerms": list(missing)})
        if auth != f"Bearer {token}":
            if name == "codegen":
                return self.send_json(401, {"message": "Invalid API token.",
                                            "status_code": 401})
            return self.send_json(401, {"error": "Unauthorized"})
        with api.lock:
            if name in api.limits:
                n, window, times = api.limits[name]
                now = self.arrival   # as a server counts: on arrival
                while times and times[0] <= now - window:
                    times.pop(0)
                if len(times) >= n:
                    api.rejected_429[name] += 1
                    return self.rate_limited(name, None)
                times.append(now)
            fault = api.faults[name].pop(0) if api.faults[name] else None
        if fault is not None:
            return self.inject(name, fault)
        if name == "codegen":
            return self.codegen(api, u, q)
        return self.cotool(api, q)

    def rate_limited(self, name, retry_after):
        headers = {} if retry_after is None else {"Retry-After": retry_after}
        if name == "codegen":
            return self.send_json(429, {"message": "Rate limit exceeded. "
                                        "Please try again later.",
                                        "status_code": 429}, headers)
        return self.send_json(429, {"error": "Too many requests"}, headers)

    def inject(self, name, f):
        """Answer with fault f instead of the normal page: one method a
        kind, fault_<kind>(name, f), each returning the status sent."""
        method = getattr(self, "fault_" + f.kind, None)
        if method is None:
            raise ValueError(f"no fault kind {f.kind!r}")
        return method(name, f)

    def send_head(self, status, length=None, chunked=False):
        """Status line and JSON headers; the body is the caller's."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def rst(self):
        """Close with a TCP reset (SO_LINGER 0), not a FIN."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.close_connection = True

    def fault_status(self, name, f):
        """An error status with the API's error body (or f.body); a 403
        with the spec's body for it."""
        if f.status == 429:
            return self.rate_limited(name, f.headers.get("Retry-After"))
        body = f.body
        if body is None and f.status == 403:
            body = ({"message": CODEGEN_403_MESSAGE, "status_code": 403}
                    if name == "codegen" else
                    {"error": COTOOL_403_ERROR,
                     "missingPerms": list(COTOOL_DEFAULT_MISSING_PERMS)})
        if body is None:
            body = ({"message": "Internal error", "status_code": f.status}
                    if name == "codegen" else
                    {"error": "Internal server error"})
        return self.send_json(f.status, body, f.headers)

    def fault_raw(self, name, f):
        """A body of our choosing with f.status."""
        return self.send_raw(f.status, f.body,
                             f.headers.get("Content-Type",
                                           "application/json"))

    def fault_truncate(self, name, f):
        """Content-Length promises 1000 bytes more than come."""
        body = f.body or b'{"items": [{"id": 1, "organization_id'
        self.send_head(200, len(body) + 1000)
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True
        return 200

    def fault_reset(self, name, f):
        """Headers, a little body, then RST."""
        self.send_head(200, 100000)
        self.wfile.write(b'{"runs": [' + b" " * 1000)
        self.wfile.flush()
        self.rst()
        return 200

    def fault_stall(self, name, f):
        """Headers and a little body, then f.seconds of nothing."""
        self.send_head(200, 100000)
        self.wfile.write(b'{"items": [')
        self.wfile.flush()
        time.sleep(f.seconds)
        self.close_connection = True
        return 200

    def fault_huge(self, name, f):
        """A valid-looking body of f.size bytes."""
        pad = b" " * max(0, f.size - 30)
        return self.send_raw(200, b'{"items": [' + pad + b'], "total": 0}')

    def fault_deep(self, name, f):
        """Arrays nested f.size deep."""
        return self.send_raw(200, b'{"items": [' + b"[" * f.size +
                             b"]" * f.size + b'], "total": 1}')

    def fault_edit(self, name, f):
        """The page the request asks for, as the normal server would
        answer it (a deep copy: the data stays untouched), passed to
        f.body(api_name, obj, query), which returns the bytes (or an
        object to encode) to send with f.status and f.headers.  query:
        {name: first value} of the request."""
        status, obj = self.normal_answer(name)
        query = {k: v[0] for k, v in parse_qs(
            urlparse(self.path).query, keep_blank_values=True).items()}
        out = f.body(name, copy.deepcopy(obj), query)
        if not isinstance(out, (bytes, bytearray)):
            out = json.dumps(out).encode()
        headers = dict(f.headers)
        ctype = headers.pop("Content-Type", "application/json")
        return self.send_raw(f.status, bytes(out), ctype, headers)

    def fault_partial(self, name, f):
        """The real page with its full Content-Length, but only f.size
        bytes of it (0: half), then f.seconds of silence, then RST."""
        status, obj = self.normal_answer(name)
        body = json.dumps(obj).encode()
        keep = f.size if 0 < f.size < len(body) else len(body) // 2
        self.send_head(status, len(body))
        try:
            self.wfile.write(body[:keep])
            self.wfile.flush()
            if f.seconds:
                time.sleep(f.seconds)
            self.rst()
        except OSError:
            pass
        self.close_connection = True
        return status

    def fault_hang(self, name, f):
        """No answer at all for f.seconds."""
        time.sleep(f.seconds)
        self.close_connection = True
        return 0

    def fault_stream(self, name, f):
        """A valid-looking page of f.size bytes written in 64 KiB chunks
        (never built whole), with a Content-Length, or with chunked
        framing when f.headers asks for it."""
        key, total = (("items", "total") if name == "codegen" else
                      ("runs", "totalCount"))
        head = b'{"%s": [' % key.encode()
        tail = b'], "%s": 0}' % total.encode()
        chunked = f.headers.get("Transfer-Encoding") == "chunked"
        self.send_head(200, f.size, chunked)
        block = b" " * 65536
        left = max(0, f.size - len(head) - len(tail))

        def put(data):
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)
        try:
            put(head)
            while left > 0:
                n = min(left, len(block))
                put(block[:n])
                left -= n
            put(tail)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:          # the client gave up: as it should
            pass
        self.close_connection = True
        return 200

    def fault_forever(self, name, f):
        """A listing that never ends: every offset holds a full page (the
        real runs, over and over) and the total grows with every request
        (f.size: how much this one reports above the real total; queue
        one fault per request, growing)."""
        q = parse_qs(urlparse(self.path).query, keep_blank_values=True)
        if name == "codegen":
            runs = self.server.api._sorted("codegen")
            off = int(q.get("skip", ["0"])[0])
            size = int(q.get("limit", ["100"])[0])
        else:
            field = q.get("sortField", ["createdAt"])[0]
            desc = q.get("sortDirection", ["desc"])[0] == "desc"
            runs = self.server.api._sorted((field, desc))
            size = int(q.get("pageSize", ["50"])[0])
            off = int(q.get("page", ["0"])[0]) * size
        items = [runs[(off + i) % len(runs)] for i in range(size)] \
            if runs else []
        total = len(runs) + f.size
        if name == "codegen":
            return self.send_json(200, {
                "items": items, "total": total,
                "page": off // size + 1, "size": size,
                "pages": math.ceil(total / size)})
        return self.send_json(200, {"runs": items, "totalCount": total})

    def fault_endless(self, name, f):
        """A listing no client can finish: a full page of runs with ids
        never served before (made from the offset) and a total of
        2^53 - 1, as the spec's envelope has it.  Queue one a request."""
        q = parse_qs(urlparse(self.path).query, keep_blank_values=True)
        total = 2 ** 53 - 1
        if name == "codegen":
            size = int(q.get("limit", ["100"])[0])
            off = int(q.get("skip", ["0"])[0])
            items = [dict(self.server.api._sorted("codegen")[0],
                          id=10 ** 12 + off + i) for i in range(size)]
            return self.send_json(200, {
                "items": items, "total": total, "page": off // size + 1,
                "size": size, "pages": math.ceil(total / size)})
        size = int(q.get("pageSize", ["50"])[0])
        off = int(q.get("page", ["0"])[0]) * size
        base = self.server.api._sorted(("createdAt", True))[0]
        items = [dict(base, id=f"endless-{off + i}") for i in range(size)]
        return self.send_json(200, {"runs": items, "totalCount": total})

    def fault_drip(self, name, f):
        """Headers, then one byte every f.seconds, for f.size bytes: a
        body that is never idle for long and never done."""
        self.send_head(200, f.size + 100)
        try:
            for _ in range(f.size):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(f.seconds)
        except OSError:          # the client gave up: as it should
            pass
        self.close_connection = True
        return 200

    def normal_answer(self, name):
        """(status, body object) of what the normal server would answer
        this request, without sending it."""
        api = self.server.api
        u = urlparse(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        got = {}

        def capture(status, obj, headers=None):
            got["status"], got["obj"] = status, obj
            return status
        self.send_json = capture     # shadows the method for this call
        try:
            if name == "codegen":
                self.codegen(api, u, q)
            else:
                self.cotool(api, q)
        finally:
            del self.send_json
        return got["status"], got["obj"]

    # -- Codegen ---------------------------------------------------------
    def codegen(self, api, u, q):
        parts = u.path.split("/")
        errors = []

        def int_param(key, default, lo, hi):
            if key not in q:
                return default
            raw = q[key][0]
            try:
                v = int(raw)
            except ValueError:
                errors.append({"loc": ["query", key],
                               "msg": "Input should be a valid integer, "
                                      "unable to parse string as an "
                                      "integer",
                               "type": "int_parsing"})
                return default
            if lo is not None and v < lo:
                errors.append({"loc": ["query", key],
                               "msg": f"Input should be greater than or "
                                      f"equal to {lo}",
                               "type": "greater_than_equal"})
            if hi is not None and v > hi:
                errors.append({"loc": ["query", key],
                               "msg": f"Input should be less than or "
                                      f"equal to {hi}",
                               "type": "less_than_equal"})
            return v
        try:
            org = int(parts[3])
        except ValueError:
            errors.append({"loc": ["path", "org_id"],
                           "msg": "Input should be a valid integer",
                           "type": "int_parsing"})
            org = None
        skip = int_param("skip", 0, 0, None)
        limit = int_param("limit", 100, 1, 100)
        user_id = int_param("user_id", None, None, None)
        source_type = q.get("source_type", [None])[0]
        if source_type is not None and source_type not in SOURCE_TYPES:
            errors.append({"loc": ["query", "source_type"],
                           "msg": "Input should be one of the source types",
                           "type": "enum"})
        if errors:
            return self.send_json(422, {"detail": errors})
        if org != api.org_id:
            return self.send_json(403, {"message": CODEGEN_403_MESSAGE,
                                        "status_code": 403})
        runs = api._sorted("codegen")
        if source_type is not None:
            runs = [r for r in runs if r.get("source_type") == source_type]
        if user_id is not None:
            runs = [r for r in runs if r.get("user_id") == user_id]
        total = len(runs)
        return self.send_json(200, {
            "items": runs[skip:skip + limit], "total": total,
            "page": skip // limit + 1, "size": limit,
            "pages": math.ceil(total / limit) if total else 0})

    # -- Cotool ----------------------------------------------------------
    def cotool(self, api, q):
        issues = []

        def num_param(key, default, lo, hi):
            if key not in q:
                return default
            try:
                v = float(q[key][0])
            except ValueError:
                issues.append({"path": [key], "message": "Expected number"})
                return default
            if v < lo or (hi is not None and v > hi) or v != int(v):
                issues.append({"path": [key],
                               "message": f"Number must be between {lo} "
                                          f"and {hi}"})
                return default
            return int(v)
        page = num_param("page", 0, 0, None)
        size = num_param("pageSize", 50, 1, 100)
        field = q.get("sortField", ["createdAt"])[0]
        direction = q.get("sortDirection", ["desc"])[0]
        if field not in COTOOL_SORT:
            issues.append({"path": ["sortField"],
                           "message": "Invalid enum value"})
        if direction not in ("asc", "desc"):
            issues.append({"path": ["sortDirection"],
                           "message": "Invalid enum value"})
        if issues:
            return self.send_json(400, {"error": "Invalid query parameters",
                                        "issues": issues})
        if api.max_page_size is not None:
            size = min(size, api.max_page_size)
        runs = api._sorted((field, direction == "desc"))
        name = q.get("agentNameFilter", [None])[0]
        if name:
            runs = [r for r in runs if name.lower() in
                    str(r.get("agentName") or "").lower()]
        agent = q.get("agentIdFilter", [None])[0]
        if agent:
            runs = [r for r in runs if r.get("agentId") == agent]
        return self.send_json(200, {"runs": runs[page * size:
                                                 (page + 1) * size],
                                    "totalCount": len(runs)})


def http_date(seconds_from_now):
    return email.utils.formatdate(time.time() + seconds_from_now,
                                  usegmt=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codegen-runs", type=int, default=1000)
    ap.add_argument("--cotool-runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--org-id", type=int, default=42)
    ap.add_argument("--codegen-token", default="codegen-test-token")
    ap.add_argument("--cotool-token", default="cotool-test-token")
    ap.add_argument("--recent", action="store_true",
                    help="date the runs over the last 30 days and add "
                    "unfinished runs of the last hour, which POST "
                    "/_fake/demo-step finishes (make demo)")
    args = ap.parse_args()
    base = None
    if args.recent:
        base = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30)
    api = FakeAPI(args.codegen_runs, args.cotool_runs, args.seed,
                  args.org_id, args.codegen_token, args.cotool_token,
                  args.port, base=base)
    if args.recent:
        api.demo_start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    api.start()
    print(f"listening on 127.0.0.1:{api.port}", flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(api.port))
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    stop.wait()
    api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
