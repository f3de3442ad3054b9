#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""How fast the analyst's queries are on a big mirror ("the dashboard is
fast too"), and which of them read the whole `runs` table:

    scripts/bench_queries.py BUILD_DIR      (make bench runs it too)

The built daemon makes an empty database in its own schema (`agentsyncd
--migrate`, so every migration and the SQL functions the daemon registers
apply); this script then fills it with plain INSERTs, in one transaction
(the indexes dropped and made again at the end, with their own SQL):
BENCH_QUERY_RUNS (default 1,000,000) runs per source for a Codegen and a
Cotool source, created over the two years up to now, plus a retired source
with 1% as many, with the shapes and rates of tests/fakeapi.py's Dataset
(status mix, Cotool tools, criteria and bullets, criticalIssue and
linkedAlert), a third of Codegen runs with one or two pull requests (15%
of them shared with an earlier run) in some 30 repositories, status
changes as a poller sees them, 90 days of pass history, 0.3% of runs gone
upstream and a few field problems.  Runs older than a day are finished but
for 1% left hanging; the last day has fakeapi's mix.

Then, for every ```sql block of README.md (the Cookbook and "When did a
run finish?"), a typical query on each view, and the daemon's own queries
on `runs` (daemon/store_sqlite*.c), it prints the wall time (best of 3,
in a fresh read-only connection; the file has just been written and read,
so the cache is warm) and how the plan reads `runs`: "index NAME" (a SEARCH:
only the rows a range of the index holds), "FULL SCAN of runs" (every
row, no index), "FULL SCAN of runs, in NAME order" (every entry of an
index, walked for its order, a row read for each entry the filters
checked in the index let through) or "full scan of covering index NAME"
(every entry, no row read).  The plans are SQLite's without ANALYZE, as
the daemon never runs it.  Writes of the daemon are explained, not run.

tests/integration/test_query_plans.py checks the same plans on a small
mirror made the same way, and says which index each query should use.

    scripts/bench_queries.py --mirror DB        the queries alone, on DB
    scripts/bench_queries.py --compare OLD NEW  the same, on two copies of
        a mirror before and after a migration, timed in turns

Environment: BENCH_QUERY_RUNS=1000000 (runs per source),
AGENTSYNCD_BIN (default ./agentsyncd of the checkout),
BENCH_QUERY_KEEP=1 (keep the mirror, print its path).
"""
import datetime as dt
import glob
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import fakeapi  # noqa: E402

NOW_FMT = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{}')"


def ago(what):
    return NOW_FMT.format(what)


# A typical query on each view, and the daemon's own queries on runs
# (tests/integration/test_query_plans.py says which index each should
# use).  params: the values of ?1, ?2, ... ("@N days": that long before
# now); write: a statement of the daemon's that writes (explained, not
# run).
VIEW_QUERIES = [
    dict(name="agent_runs: one source, last 7 days, newest 100",
         sql="SELECT run_id, external_id, agent, trigger, state, created_at\n"
             "FROM agent_runs\n"
             f"WHERE source = 'cotool' AND created_at >= {ago('7 days')}\n"
             "ORDER BY created_at DESC LIMIT 100"),
    dict(name="agent_runs: runs per state, last 7 days",
         sql="SELECT state, count(*) AS runs FROM agent_runs\n"
             f"WHERE created_at >= {ago('7 days')}\n"
             "GROUP BY state"),
    dict(name="agent_runs: runs per agent, last 7 days",
         sql="SELECT agent, trigger, count(*) AS runs FROM agent_runs\n"
             f"WHERE created_at >= {ago('7 days')}\n"
             "GROUP BY agent, trigger"),
    dict(name="agent_runs: runs per source, last 7 days",
         sql="SELECT source, count(*) AS runs FROM agent_runs\n"
             f"WHERE created_at >= {ago('7 days')}\n"
             "GROUP BY source"),
    dict(name="agent_runs: runs per day, last 30 days",
         sql="SELECT substr(created_at, 1, 10) AS day, count(*) AS runs\n"
             "FROM agent_runs\n"
             f"WHERE created_at >= {ago('30 days')}\n"
             "GROUP BY day"),
    dict(name="live_runs: failed per source, last 30 days",
         sql="SELECT source, count(*) AS failed FROM live_runs\n"
             f"WHERE state = 'failed' AND created_at >= {ago('30 days')}\n"
             "GROUP BY source"),
    dict(name="live_runs: count",
         sql="SELECT count(*) FROM live_runs"),
    dict(name="runs_daily: one source, last 30 days",
         sql="SELECT day, sum(runs) AS runs FROM runs_daily\n"
             "WHERE source = 'codegen' AND day >= date('now', '-30 days')\n"
             "GROUP BY day ORDER BY day"),
    dict(name="pull_requests_with_runs: one repository",
         sql="SELECT number, pr_title, run_external_id, run_state\n"
             "FROM pull_requests_with_runs WHERE repository = 'acme/app'\n"
             "ORDER BY number DESC LIMIT 50"),
    dict(name="pull_requests_with_runs: runs of the last 7 days",
         sql="SELECT repository, count(*) AS links\n"
             "FROM pull_requests_with_runs\n"
             f"WHERE run_created_at >= {ago('7 days')}\n"
             "GROUP BY repository"),
    dict(name="agent_outcomes: one source",
         sql="SELECT * FROM agent_outcomes WHERE source = 'cotool'"),
    dict(name="source_status",
         sql="SELECT * FROM source_status"),
]

# The daemon's SQL on runs (the upserts' lookup, the stop rule's, the
# re-check of unfinished runs, the counts of --status and the metrics
# file, the marks of a full walk, --forget-source, --rename-source), read
# from the SQLite engine's files (daemon/store_sqlite*.c) themselves, so
# that what is timed and held to its plan is the text the daemon runs.
C_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
C_GAP = re.compile(r'(?:\s|/\*.*?\*/)*', re.S)
# A macro that is one string literal (RUN_TERMINAL_SQL in source.h), named
# between the literals of a text: its literal stands in its place.
C_STRING_MACRO = re.compile(r'^#define\s+(\w+)\s+"((?:[^"\\\n]|\\.)*)"\s*$',
                            re.M)
C_NAME = re.compile(r'\w+')


def string_macros():
    """Name -> literal of each one-literal macro of daemon/*.h."""
    out = {}
    for path in glob.glob(os.path.join(ROOT, "daemon", "*.h")):
        with open(path) as f:
            out.update(C_STRING_MACRO.findall(f.read()))
    return out


def c_strings(text, macros=None):
    """Each run of adjacent C string literals of text (and macros named
    between two of them), concatenated."""
    out, i, macros = [], 0, macros or {}

    def part(j):
        j = C_GAP.match(text, j).end()
        if (n := C_LITERAL.match(text, j)):
            return n.group(1), n.end()
        if (n := C_NAME.match(text, j)) and n.group(0) in macros:
            return macros[n.group(0)], n.end()
        return None, j

    while (m := C_LITERAL.search(text, i)) is not None:
        parts, i = [m.group(1)], m.end()
        while (p := part(i))[0] is not None:
            parts.append(p[0])
            i = p[1]
        out.append("".join(parts).encode().decode("unicode_escape"))
    return out


STORE_ENGINE = "daemon/store_sqlite*.c"


def store_sql(start):
    """The one SQL text of the SQLite engine that begins with start."""
    hits, macros = [], string_macros()
    for path in sorted(glob.glob(os.path.join(ROOT, STORE_ENGINE))):
        with open(path) as f:
            hits += [t for t in c_strings(f.read(), macros)
                     if t.startswith(start)]
    if len(hits) != 1:
        raise SystemExit(f"{STORE_ENGINE}: {len(hits)} SQL texts begin "
                         f"with {start!r} (want 1)")
    return hits[0]


RUNS_SINCE = store_sql("SELECT external_id, created_at FROM runs ")

DAEMON_QUERIES = [
    dict(name="daemon: the run of an upsert (ST_SEL_RUN)",
         sql=store_sql("SELECT id, status, raw_json = ?3"),
         params=["codegen", "1234", "{}"]),
    dict(name="daemon: is a run mirrored (the stop rule, ST_HAS_RUN)",
         sql=store_sql("SELECT 1 FROM runs WHERE source = ?1 AND "
                       "external_id = ?2"),
         params=["codegen", "1234"]),
    # store_runs_since(), with unfinished 1 and 0
    *(dict(name=name, sql=RUNS_SINCE, params=["codegen", "@1 day", flag,
                                              "succeeded", "failed",
                                              "cancelled"])
      for name, flag in (("daemon: unfinished runs to re-check", 1),
                         ("daemon: live runs from the oldest due one", 0))),
    dict(name="daemon: live runs of a source (metrics)",
         sql=store_sql("SELECT count(*) FROM runs WHERE source = ?1 AND "
                       "deleted_upstream_at IS NULL"),
         params=["cotool"]),
    dict(name="daemon: --status",
         sql=store_sql("SELECT n.name, coalesce(s.kind, src.kind)")),
    dict(name="daemon: retired sources' runs (start, reload)",
         sql=store_sql("SELECT name, kind, identity, retired_at")),
    dict(name="daemon: mark runs gone (end of a full walk)",
         sql=store_sql("UPDATE runs SET deleted_upstream_at = ?3 "),
         params=["cotool", 2, "@0 days"], write=True),
    dict(name="daemon: --forget-source, 1,000 runs",
         sql=store_sql("DELETE FROM runs WHERE id IN (SELECT id FROM runs "
                       "WHERE source = ?1 LIMIT ?2)"),
         params=["codegen-old", 1000], write=True),
    dict(name="daemon: --rename-source",
         sql=store_sql("UPDATE runs SET source = ?2 WHERE source = ?1"),
         params=["codegen-old", "codegen-older"], write=True),
    dict(name="daemon: --rename-source, the status history",
         sql=store_sql("UPDATE run_status_changes SET source = ?2 WHERE "
                       "run_id IN "),
         params=["codegen-old", "codegen-older"], write=True),
]


def readme_queries():
    """Every ```sql block of README.md as (name, sql): the name is the
    paragraph before the block up to its first colon or parenthesis, or
    the heading above it when that is long."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    out = []
    for m in re.finditer(r"```sql\n(.*?)```", text, re.S):
        before = text[:m.start()].rstrip("\n")
        para = before.split("\n\n")[-1].replace("\n", " ").strip()
        heading = re.findall(r"^#+ (.*)$", before, re.M)[-1]
        name = re.split(r":| \(", para)[0].strip()
        if len(name) > 70:
            name = heading
        out.append((name, m.group(1).strip()))
    return out


def queries():
    """Every query: dicts of name, sql and maybe params, write."""
    return ([dict(name="README: " + name, sql=sql)
             for name, sql in readme_queries()] +
            VIEW_QUERIES + DAEMON_QUERIES)


def params_of(q, now):
    """?N values: "@N days" / "@N day" is that long before now."""
    out = []
    for p in q.get("params", []):
        if isinstance(p, str) and p.startswith("@"):
            n = int(p[1:].split()[0])
            p = iso(now - n * 86400.0)
        out.append(p)
    return out


def runs_aliases(con, sql):
    """The names `runs` goes by in sql and in the views (plans name a
    table by its alias)."""
    texts = [sql] + [r[0] for r in con.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'view'")]
    names = {"runs"}
    for t in texts:
        for a in re.findall(r"\b(?:FROM|JOIN)\s+runs\s+(?:AS\s+)?(\w+)",
                            t, re.I):
            if a.upper() not in ("WHERE", "JOIN", "ON", "GROUP", "ORDER",
                                 "LEFT", "INNER", "CROSS", "NATURAL",
                                 "LIMIT", "UNION", "NOT", "INDEXED"):
                names.add(a)
    return names


def plan(con, sql, params=()):
    """EXPLAIN QUERY PLAN as lines, indented by depth."""
    rows = con.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    depth = {0: -1}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, -1) + 1
        lines.append("  " * depth[node] + detail)
    return lines


def runs_access(con, sql, lines):
    """How the plan reads runs: (scans, indexes).  scans: the plan lines
    that read the whole table or the whole of one of its indexes (SCAN);
    indexes: the index names of its SEARCHes of runs ("rowid" for the
    primary key)."""
    names = runs_aliases(con, sql)
    scans, indexes = [], []
    for ln in lines:
        m = re.match(r"\s*(SCAN|SEARCH) (\w+)(?: USING (.*))?$", ln)
        if not m or m.group(2) not in names:
            continue
        how = m.group(3) or ""
        if m.group(1) == "SCAN":
            scans.append(ln.strip())
            continue
        i = re.match(r"(?:COVERING )?INDEX (\w+)", how)
        indexes.append(i.group(1) if i else "rowid")
    return scans, indexes


def verdict(scans, indexes):
    """What the table prints for a plan's reads of runs."""
    plain = [x for x in scans if " USING " not in x]
    if plain:
        return "FULL SCAN of runs"
    if scans:
        name = re.search(r"INDEX (\w+)", scans[0]).group(1)
        if all("COVERING INDEX" in x for x in scans):
            return f"full scan of covering index {name}"
        return f"FULL SCAN of runs, in {name} order"
    if indexes:
        return "index " + ", ".join(dict.fromkeys(indexes))
    return "(no runs)"


# --- the mirror ------------------------------------------------------

DAY = 86400.0
CODEGEN_TERMINAL = {"COMPLETE": "succeeded", "COMPLETED": "succeeded",
                    "FAILED": "failed", "ERROR": "failed",
                    "TIMEOUT": "failed", "MAX_ITERATIONS_REACHED": "failed",
                    "OUT_OF_TOKENS": "failed", "CANCELLED": "cancelled",
                    "CANCELED": "cancelled", "STOPPED": "cancelled"}
CODEGEN_OPEN = {"PENDING": "pending", "ACTIVE": "running",
                "RUNNING": "running", "EVALUATION": "running",
                "PAUSED": "waiting"}
COTOOL_STATE = {"queued": "pending", "running": "running",
                "waiting": "waiting", "done": "succeeded",
                "error": "failed", "interrupted": "cancelled"}
TERMINAL = ("succeeded", "failed", "cancelled")
TOOLS = ["splunk_search", "okta_lookup", "virustotal", "jira_create",
         "slack_post", "crowdstrike_rtr", "github_search"]
AGENTS = ["Alert triage", "Phishing responder", "Vuln scanner",
          "Access reviewer"]
TRIGGERS = ["manual", "api", "jira", "slack", "linear", "cron", "webhook",
            "email", None]
ALERT_STATUSES = ["open", "in_progress", "escalated", "closed_true_positive",
                  "closed_false_positive", "closed_true_positive_benign"]
# some 30 repositories, a few of them busy
REPOS = (["acme/app", "acme/api", "acme/web", "acme/infra"] +
         [f"acme/svc-{i:02d}" for i in range(26)])
REPO_WEIGHTS = [40, 20, 12, 8] + [1] * 26
CODEGEN_STATUSES = fakeapi.CODEGEN_STATUSES + [None]
COTOOL_STATUSES = fakeapi.COTOOL_STATUSES
SOURCE_TYPES = fakeapi.SOURCE_TYPES + [None]
CRITICAL = fakeapi.CRITICAL_CATEGORIES
AGENT_IDS = {a: fakeapi.cotool_agent_id(a) for a in AGENTS}
CODEGEN_RESULTS = [None, "Opened a PR", "No changes needed"]
CODEGEN_SUMMARIES = [None, "Fixed the failing build",
                     "Investigated 'x' \u00e9\u00e8 \u2713"]
PR_TITLES = ["Fix flaky test", "Add retries", "Bump deps", None,
             "Refactor parser"]
RUN_TITLES = ["Suspicious login for j.doe", "Triage alert #4411",
              "Weekly access review \u2014 EU"]
TRIGGER_NAMES = [None, "Nightly sweep", "SOC queue"]
BULLETS = ["Checked sign-in logs", "Escalated"]
# the way to a terminal state a poller sees: (status, state) before
CODEGEN_OPEN_PATH = [("PENDING", "pending"), ("RUNNING", "running")]
COTOOL_OPEN_PATH = [("queued", "pending"), ("running", "running")]
dumps = json.JSONEncoder().encode
compact = json.JSONEncoder(separators=(",", ":")).encode


def codegen_state(status):
    if status is None:
        return "unknown"
    u = status.upper()
    return CODEGEN_TERMINAL.get(u) or CODEGEN_OPEN.get(u) or "unknown"


def cotool_state(status):
    return COTOOL_STATE.get((status or "").lower(), "unknown")


_days = {}
_hms = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60)
        for s in range(60)]


def iso(t):
    """Seconds since the epoch as YYYY-MM-DDTHH:MM:SS.sssZ."""
    ms = int(t * 1000)
    d, rem = divmod(ms, 86400000)
    day = _days.get(d)
    if day is None:
        day = _days[d] = dt.date.fromordinal(
            dt.date(1970, 1, 1).toordinal() + d).isoformat() + "T"
    s, ms = divmod(rem, 1000)
    return f"{day}{_hms[s]}.{ms:03d}Z"


def codegen_time(s, form):
    """Both forms of fakeapi.codegen_time, from iso(t)."""
    return s[:10] + " " + s[11:23] + "000" if form == 0 else s[:19] + "Z"


CODEGEN_COLS = ("id, source, kind, external_id, status, state, web_url, "
                "created_at, raw_json, first_seen_at, last_seen_at, "
                "changed_at, deleted_upstream_at, organization_id, result, "
                "summary, source_type, metadata, pull_request_count, "
                "finished_seen_at")
COTOOL_COLS = ("id, source, kind, external_id, status, state, title, "
               "created_at, updated_at, raw_json, first_seen_at, "
               "last_seen_at, changed_at, deleted_upstream_at, agent_id, "
               "agent_name, agent_type, model_alias, model_name, "
               "total_tool_count, trigger_source, trigger_name, has_error, "
               "is_streaming, eval_score, eval_explanation, "
               "critical_issue_category, critical_issue_explanation, "
               "linked_alert_display_id, linked_alert_title, "
               "linked_alert_status, tool_names_count, "
               "acceptance_criteria_count, eval_bullet_count, "
               "has_critical_issue, has_linked_alert, finished_seen_at")


def insert_sql(table, cols):
    return (f"INSERT INTO {table} ({cols}) VALUES "
            f"({', '.join('?' * (cols.count(',') + 1))})")


# What a chunk of runs adds, table by table, in this order.
CHILD_SQL = [
    insert_sql("runs", CODEGEN_COLS),
    insert_sql("runs", COTOOL_COLS),
    insert_sql("run_tools", "run_id, position, name"),
    insert_sql("run_acceptance_criteria",
               "run_id, position, criterion, met, explanation"),
    insert_sql("run_eval_bullets", "run_id, position, bullet"),
    insert_sql("run_status_changes", "run_id, observed_at, old_status, "
               "new_status, old_state, new_state, source, external_id"),
    insert_sql("run_field_problems",
               "run_id, position, field, problem, value"),
    insert_sql("pull_requests", "id, source, external_id, title, url, "
               "head_branch_name, created_at, first_seen_at, changed_at, "
               "repository, number"),
    insert_sql("run_pull_requests", "run_id, pull_request_id, position"),
]


CODEGEN_DONE = {
    d: [s for s in CODEGEN_STATUSES if (codegen_state(s) in TERMINAL) == d]
    for d in (False, True)}
COTOOL_DONE = {
    d: [s for s in COTOOL_STATUSES if (cotool_state(s) in TERMINAL) == d]
    for d in (False, True)}


class Filler:
    """The rows of some runs and their child rows, in lists (the order of
    CHILD_SQL); ids, Codegen ids and pull request ids from the bases
    given, so that chunks made apart never collide."""

    def __init__(self, now, seed, id_base=0, ext_base=1000, pr_base=0):
        self.now = now
        self.r = random.Random(seed)
        self.next_id = id_base
        self.codegen_external = ext_base
        self.pr_id = pr_base
        self.tables = [[] for _ in CHILD_SQL]
        (self.codegen_runs, self.cotool_runs, self.tools, self.criteria,
         self.bullets, self.changes, self.problems, self.prs,
         self.links) = self.tables
        self.pr_recent = []
        self.full_resync = now - 3 * 3600.0
        self.resync_s = iso(self.full_resync)

    def lifecycle(self, t, created_s, state, open_statuses, status,
                  duration):
        """A run created at t as a poller saw it: first_seen_at,
        last_seen_at, changed_at, finished_seen_at (text), and its status
        changes (run_id left out)."""
        r = self.r
        first = t + 5 + r.random() * 55
        if first > self.now:
            first = self.now
        first_s = iso(first)
        last_s = self.resync_s if first < self.full_resync else first_s
        if state not in TERMINAL:
            return first_s, last_s, first_s, None, ()
        end = t + duration + r.random() * 60
        if end <= first or end > self.now:    # first seen finished
            return first_s, last_s, first_s, first_s, ()
        end_s = iso(end)
        old = open_statuses[int(r.random() * 2)]
        if r.random() < 0.3:
            mid = open_statuses[1]
            changes = ((iso(first + (end - first) * r.random()), old[0],
                        mid[0], old[1], mid[1]),
                       (end_s, mid[0], status, mid[1], state))
        else:
            changes = ((end_s, old[0], status, old[1], state),)
        return first_s, max(last_s, end_s), end_s, end_s, changes

    def history(self, rid, source, ext, first_s, status, state, changes):
        """A run's status history as the daemon writes it (0011): its
        first sighting (old side NULL), then its changes."""
        if changes:
            status, state = changes[0][1], changes[0][3]
        self.changes.append((rid, first_s, None, status, None, state,
                             source, ext))
        for c in changes:
            self.changes.append((rid,) + c + (source, ext))

    def status_for(self, t, statuses, done, state_of):
        """fakeapi's mix in the last day; before, finished but 1%.
        done: statuses split by (state_of(s) in TERMINAL)."""
        r = self.r
        status = statuses[int(r.random() * len(statuses))]
        if self.now - t > DAY:
            fin = state_of(status) in TERMINAL
            if (not fin and r.random() >= 0.01) or \
                    (fin and r.random() < 0.01):
                pool = done[not fin]
                status = pool[int(r.random() * len(pool))]
        return status

    def gone(self, t):
        r = self.r
        if r.random() < 0.003:
            return iso(t + (self.now - t) * r.random())
        return None

    def new_pr(self, source, t, first_s):
        r = self.r
        self.pr_id += 1
        repo = r.choices(REPOS, REPO_WEIGHTS)[0]
        num = self.pr_id          # increasing in each repository
        pr_ext = 50000 + self.pr_id
        github = r.random() < 0.98
        url = (f"https://github.com/{repo}/pull/{num}" if github else
               f"https://ghe.acme.example/{repo}/pull/{num}")
        title = PR_TITLES[int(r.random() * 5)]
        branch = f"codegen/fix-{pr_ext}" if r.random() < 0.5 else None
        created = iso(t + 300)
        self.prs.append((self.pr_id, source, str(pr_ext), title, url,
                         branch, created, first_s, first_s,
                         repo if github else None, num if github else None))
        pr = (self.pr_id, {"id": pr_ext, "title": title, "url": url,
                           "created_at": codegen_time(created, 0),
                           "head_branch_name": branch})
        self.pr_recent.append(pr)
        if len(self.pr_recent) > 2000:
            del self.pr_recent[:1000]
        return pr

    def codegen(self, source, t):
        r = self.r
        rnd = r.random
        self.next_id += 1
        rid = self.next_id
        self.codegen_external += 1 + int(rnd() * 3)
        ext = self.codegen_external
        status = self.status_for(t, CODEGEN_STATUSES, CODEGEN_DONE,
                                 codegen_state)
        state = codegen_state(status)
        created_s = None if rnd() < 0.01 else iso(t)
        first_s, last_s, changed_s, finished_s, changes = self.lifecycle(
            t, created_s, state, CODEGEN_OPEN_PATH, status,
            30 + rnd() * 1800)
        prs = []
        u = rnd()
        if u < 1 / 3:
            for pos in range(1 if rnd() < 0.7 else 2):
                if self.pr_recent and rnd() < 0.15:
                    pr = self.pr_recent[int(rnd() * len(self.pr_recent))]
                    if all(p[0] != pr[0] for p in prs):   # shared
                        prs.append(pr)
                    continue
                prs.append(self.new_pr(source, t, first_s))
            pr_list = [p[1] for p in prs]
            for pos, p in enumerate(prs):
                self.links.append((rid, p[0], pos))
        else:
            pr_list = [] if u < 2 / 3 else None
        metadata = None if rnd() < 0.3 else {
            "repo": "acme/app", "cost_usd": round(rnd() * 3, 4),
            "tags": ["ci", "bot"]}
        web_url = f"https://codegen.com/agent/trace/{ext}"
        result = CODEGEN_RESULTS[int(rnd() * 3)]
        summary = CODEGEN_SUMMARIES[int(rnd() * 3)]
        source_type = SOURCE_TYPES[int(rnd() * len(SOURCE_TYPES))]
        run = {"id": ext, "organization_id": 42, "status": status,
               "created_at": None if created_s is None else
               codegen_time(created_s, int(rnd() * 2)),
               "web_url": web_url, "result": result, "summary": summary,
               "source_type": source_type, "github_pull_requests": pr_list,
               "metadata": metadata}
        self.history(rid, source, str(ext), first_s, status, state, changes)
        if rnd() < 0.0005:
            self.problems.append((rid, 0, "metadata", "is not an object",
                                  '["ci"]'))
        self.codegen_runs.append((
            rid, source, "codegen", str(ext), status, state, web_url,
            created_s, dumps(run), first_s, last_s, changed_s,
            self.gone(t), 42, result, summary, source_type,
            None if metadata is None else compact(metadata),
            None if pr_list is None else len(prs), finished_s))

    def cotool(self, source, t):
        r = self.r
        rnd = r.random
        self.next_id += 1
        rid = self.next_id
        h = f"{r.getrandbits(128):032x}"
        ext = (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}"
               f"{h[17:20]}-{h[20:]}")
        upd = t + int(rnd() * 3600)
        agent = AGENTS[int(rnd() * 4)]
        evaluated = rnd() < 0.7
        tools = r.sample(TOOLS, int(rnd() * 6))
        status = self.status_for(t, COTOOL_STATUSES, COTOOL_DONE,
                                 cotool_state)
        state = cotool_state(status)
        created_s = iso(t)
        first_s, last_s, changed_s, finished_s, changes = self.lifecycle(
            t, created_s, state, COTOOL_OPEN_PATH, status, upd - t)
        title = RUN_TITLES[int(rnd() * 3)]
        agent_type = "response" if rnd() < 0.5 else "detection"
        model = "fast" if rnd() < 0.5 else "smart"
        model_name = "claude-sonnet-4" if rnd() < 0.5 else "gpt-4.1"
        trigger = TRIGGERS[int(rnd() * len(TRIGGERS))]
        trigger_name = TRIGGER_NAMES[int(rnd() * 3)]
        has_error = rnd() < 0.1
        score = round(rnd() * 10, 1) if evaluated else None
        bullets = (([] if rnd() < 0.1 else BULLETS) if evaluated else None)
        ci = {"category": CRITICAL[int(rnd() * len(CRITICAL))],
              "explanation": "The Okta token had expired."} \
            if rnd() < 0.1 else None
        criteria = None
        if evaluated:
            met = rnd() < 0.8
            criteria = [] if rnd() < 0.1 else [
                {"criterion": "Identifies the user", "met": True,
                 "explanation": "Named in the summary"},
                {"criterion": "Closes the alert", "met": met,
                 "explanation": "See the last step"}]
        la = {"displayId": f"ALR-{1 + int(rnd() * 9999)}",
              "title": "Impossible travel",
              "status": ALERT_STATUSES[int(rnd() * 6)]} \
            if rnd() < 0.4 else None
        total = len(tools) + int(rnd() * 13)
        run = {"id": ext, "agentId": AGENT_IDS[agent], "agentName": agent,
               "agentType": agent_type, "runTitle": title,
               "createdAt": created_s, "updatedAt": iso(upd),
               "modelAlias": model, "modelName": model_name,
               "toolNames": tools, "totalToolCount": total,
               "triggerSource": trigger, "triggerName": trigger_name,
               "hasError": has_error, "isStreaming": status == "running",
               "status": status, "evalScore": score,
               "evalExplanation": "Followed the runbook" if evaluated
               else None,
               "evalBulletSummary": bullets, "criticalIssue": ci,
               "acceptanceCriteriaResults": criteria, "linkedAlert": la}
        for pos, name in enumerate(tools):
            self.tools.append((rid, pos, name))
        if criteria:
            self.criteria.append((rid, 0, "Identifies the user", 1,
                                  "Named in the summary"))
            self.criteria.append((rid, 1, "Closes the alert", int(met),
                                  "See the last step"))
        if bullets:
            self.bullets.append((rid, 0, BULLETS[0]))
            self.bullets.append((rid, 1, BULLETS[1]))
        self.history(rid, source, str(ext), first_s, status, state, changes)
        if rnd() < 0.0005:
            self.problems.append((rid, 0, "totalToolCount",
                                  "is not an integer (below 2^53)", "2.5"))
            total = None
        self.cotool_runs.append((
            rid, source, "cotool", ext, status, state, title,
            created_s, run["updatedAt"], dumps(run), first_s, last_s,
            changed_s, self.gone(t), run["agentId"], agent, agent_type,
            model, model_name, total, trigger, trigger_name, int(has_error), int(status == "running"),
            score, run["evalExplanation"], ci and ci["category"],
            ci and ci["explanation"], la and la["displayId"],
            la and la["title"], la and la["status"], len(tools),
            None if criteria is None else len(criteria),
            None if bullets is None else len(bullets),
            int(ci is not None), int(la is not None), finished_s))


def sync_history(con, now, per_day, sources):
    """90 days of passes (history_retention's default) per source, as the
    daemon leaves them: a row for each poll that found something (idle
    polls folded into the row before), a full resync a day, and the
    backfill two years ago."""
    r = random.Random(7)
    rows = []
    for name in sources:
        start = now - 730 * DAY
        rows.append((name, "backfill", iso(start), iso(start + 120), 40, 40,
                     4000, 4000, 0, 0, 0, 0, 0, "succeeded", None, 1, 4000,
                     0))
        polls = int(min(1440, max(1, per_day * 0.7)))
        t = now - 90 * DAY
        step = DAY / polls
        total = int(per_day * 640)
        while t < now:
            busy = r.random() < 0.9
            new = r.randint(1, 3) if busy else 0
            total += new
            if r.random() < 1 / polls:
                rows.append((name, "full", iso(t), iso(t + 600),
                             total // 100 + 1, total // 100 + 1, total, 0, 0,
                             0, 0, 0, 0, "succeeded", None, 1, total, 0))
            rows.append((name, "incremental", iso(t), iso(t + 0.4), 1, 1,
                         100, new, r.randint(0, 2) if busy else 0, 0, 0,
                         r.random() < 0.01, 0,
                         "succeeded" if r.random() < 0.995 else "failed",
                         None, 1 if busy else r.randint(2, 30), total, 0))
            t += step
    con.executemany(
        "INSERT INTO sync_runs (source, mode, started_at, finished_at, "
        "requests, pages, runs_seen, runs_new, runs_changed, runs_rejected, "
        "runs_deleted, http_429, retries, outcome, error, passes, "
        "upstream_total, runs_partial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def make_schema(path, bin_path):
    """An empty mirror made by the daemon itself (every migration)."""
    d = os.path.dirname(path)
    conf = os.path.join(d, "migrate.conf")
    with open(conf, "w") as f:
        f.write(f"[agentsyncd]\ndatabase = {path}\nlog_level = warning\n")
    os.chmod(conf, 0o600)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC")}
    r = subprocess.run([bin_path, "-c", conf, "--migrate"], env=env,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"{bin_path} --migrate exited {r.returncode}: "
                           f"{r.stderr[-2000:]}")


CHUNK = 10000       # time steps (a Codegen and a Cotool run each)


def make_chunk(job):
    """The rows of one chunk of runs (CHILD_SQL's tables): job is (seed,
    now, codegen source, cotool source or None, first step, steps, t0,
    step, id base, Codegen id base, pull request id base).  Run i of the
    chunk is created in [t0 + i * step, t0 + (i + 1) * step)."""
    (seed, now, cg, ct, lo, k, t0, step, id_base, ext_base,
     pr_base) = job
    f = Filler(now, f"{seed}:{cg}:{lo}", id_base, ext_base, pr_base)
    rnd = f.r.random
    for i in range(lo, lo + k):
        t = t0 + i * step
        f.codegen(cg, t + rnd() * step)
        if ct:
            f.cotool(ct, t + rnd() * step)
    return f.tables


def jobs(n, now, seed):
    """The chunks of a mirror: the retired source's n // 100 Codegen runs
    over the first 100 of the 730 days, then n steps of a Codegen and a
    Cotool run over the 730 days."""
    span = 730 * DAY
    old = max(1, n // 100)
    for lo in range(0, old, CHUNK):
        yield (seed, now, "codegen-old", None, lo, min(CHUNK, old - lo),
               now - span, 100 * DAY / old, lo, 1000 + 3 * lo, 2 * lo)
    for lo in range(0, n, CHUNK):
        yield (seed, now, "codegen", "cotool", lo, min(CHUNK, n - lo),
               now - span, span / n, old + 2 * lo, 1000 + 3 * lo,
               2 * old + 2 * lo)


def fill(path, n, now=None, seed=1):
    """Fill the empty mirror at path: n runs per source (codegen,
    cotool), n // 100 of a retired source (codegen-old), child rows,
    history.  Indexes of the filled tables are dropped first and made
    again at the end (their own SQL), which is faster than keeping them
    up to date row by row."""
    now = now if now is not None else time.time()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA cache_size = -1000000")
    con.execute("PRAGMA temp_store = MEMORY")
    con.execute("BEGIN")
    saved = con.execute(
        "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND "
        "sql IS NOT NULL AND tbl_name IN ('runs', 'run_tools', "
        "'run_status_changes', 'run_pull_requests', 'pull_requests', "
        "'run_field_problems', 'sync_runs')").fetchall()
    for name, _ in saved:
        con.execute(f"DROP INDEX {name}")
    base = "http://127.0.0.1:1"
    srcs = [("codegen", "codegen", f"codegen {base} org 42", 42, 1),
            ("cotool", "cotool", f"cotool {base}", None, 1),
            ("codegen-old", "codegen", f"codegen {base} org 7", 7, 0)]
    for name, kind, ident, org, configured in srcs:
        con.execute(
            "INSERT INTO sources (name, kind, identity, base_url, org_id, "
            "configured, configured_since, retired_at) VALUES (?, ?, ?, ?, "
            "?, ?, ?, ?)", (name, kind, ident, base, org, configured,
                            iso(now - 730 * DAY), None if configured
                            else iso(now - 400 * DAY)))
        con.execute(
            "INSERT INTO sync_state (source, kind, identity, high_water, "
            "backfill_done, last_full_resync_at, last_success_at, "
            "next_poll_at, last_progress_at, clock_skew_seconds) VALUES "
            "(?, ?, ?, ?, 1, ?, ?, ?, ?, 0.1)",
            (name, kind, ident, iso(now - 60), iso(now - 3 * 3600),
             iso(now - 30), iso(now + 30), iso(now - 30)))

    for job in jobs(n, now, seed):
        for sql, rows in zip(CHILD_SQL, make_chunk(job)):
            con.executemany(sql, rows)
    for i in range(10):
        con.execute(
            "INSERT INTO rejected_records (source, kind, external_id, "
            "reason, raw_json, first_seen_at) VALUES ('cotool', 'cotool', "
            "NULL, 'no usable id', ?, ?)",
            (json.dumps({"agentName": "Alert triage", "n": i}),
             iso(now - i * DAY)))
    sync_history(con, now, n / 730.0, ["codegen", "cotool"])
    for _, sql in saved:
        con.execute(sql)
    con.execute("COMMIT")
    con.execute("PRAGMA journal_mode = WAL")
    con.close()


def file_bytes(path):
    return sum(os.path.getsize(path + s) for s in ("", "-wal")
               if os.path.exists(path + s))


def best_ms(con, sql, params, reps=3):
    best = None
    for _ in range(reps):
        t0 = time.perf_counter()
        con.execute(sql, params).fetchall()
        ms = (time.perf_counter() - t0) * 1000
        best = ms if best is None else min(best, ms)
    return best


def measure(path, now, out, header=""):
    """The table of every query on the mirror at path."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    runs = con.execute("SELECT count(*) FROM runs").fetchone()[0]
    out(f"Analyst queries on a mirror of {runs:,} runs, schema version "
        f"{version}{header}")
    out("  best of 3, warm cache; plans without ANALYZE")
    out(f"  {'query':<58} {'ms':>9}  runs read through")
    for q in queries():
        params = params_of(q, now)
        lines = plan(con, q["sql"], params)
        scans, idx = runs_access(con, q["sql"], lines)
        how = verdict(scans, idx)
        if q.get("write"):
            ms = "(write)"
        else:
            ms = f"{best_ms(con, q['sql'], params):9.1f}"
        out(f"  {q['name'][:58]:<58} {ms:>9}  {how}")
    con.close()


def compare(before, after, now, out):
    """Each query on two mirrors of the same rows (before and after a
    schema change), timed in turns: ms before, ms after, and how each
    reads runs."""
    cons = [sqlite3.connect(f"file:{p}?mode=ro", uri=True)
            for p in (before, after)]
    vers = [c.execute("PRAGMA user_version").fetchone()[0] for c in cons]
    runs = cons[0].execute("SELECT count(*) FROM runs").fetchone()[0]
    out(f"Analyst queries on {runs:,} runs, schema version {vers[0]} "
        f"against {vers[1]}: best of 3, warm cache, timed in turns")
    out(f"  {'query':<52} {'before':>8} {'after':>8}  runs read through "
        "(after; before when not the same)")
    for q in queries():
        params = params_of(q, now)
        how = []
        for c in cons:
            lines = plan(c, q["sql"], params)
            how.append(verdict(*runs_access(c, q["sql"], lines)))
        if q.get("write"):
            ms = ["(write)"] * 2
        else:
            best = [None, None]
            for _ in range(3):
                for i, c in enumerate(cons):
                    t = best_ms(c, q["sql"], params, 1)
                    best[i] = t if best[i] is None else min(best[i], t)
            ms = [f"{b:8.1f}" for b in best]
        what = how[1] if how[0] == how[1] else f"{how[1]} (was: {how[0]})"
        out(f"  {q['name'][:52]:<52} {ms[0]:>8} {ms[1]:>8}  {what}")
    for c in cons:
        c.close()


def main(build="build", out=print):
    n = int(os.environ.get("BENCH_QUERY_RUNS", "1000000"))
    bin_path = os.environ.get("AGENTSYNCD_BIN",
                              os.path.join(ROOT, "agentsyncd"))
    work = tempfile.mkdtemp(prefix="agentsyncd-bench-queries-")
    path = os.path.join(work, "mirror.db")
    try:
        now = time.time()
        t0 = time.monotonic()
        make_schema(path, bin_path)
        fill(path, n, now)
        built = time.monotonic() - t0
        size = file_bytes(path)
        with open(path, "rb") as fh:        # into the page cache
            while fh.read(1 << 24):
                pass
        measure(path, now, out, f" ({n:,} per source): built in "
                f"{built:.1f} s, {size / 1e9:.2f} GB")
        if os.environ.get("BENCH_QUERY_KEEP"):
            out(f"  mirror kept: {path}")
            work = None
    finally:
        if work:
            shutil.rmtree(work, True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--mirror":
        # the queries alone, on a mirror made before (BENCH_QUERY_KEEP)
        measure(sys.argv[2], time.time(),
                lambda line: print(line, flush=True))
        sys.exit(0)
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        # the same rows before and after a migration: --compare OLD NEW
        compare(sys.argv[2], sys.argv[3], time.time(),
                lambda line: print(line, flush=True))
        sys.exit(0)
    main(sys.argv[1] if len(sys.argv) > 1 else "build",
         out=lambda line: print(line, flush=True))
