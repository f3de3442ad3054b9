# SPDX-License-Identifier: ISC
"""The analyst's queries and the daemon's own read `runs` through the
index meant for them, not by scanning the table.

A fresh database is made by the built binary (`agentsyncd --migrate`),
filled with a few hundred runs per source by scripts/bench_queries.py (the
same rows, fewer, as `make bench` measures at a million per source), and
every query of that script (each ```sql block of README.md, a typical
query on each view, the daemon's SQL on runs from store.c) is explained
(EXPLAIN QUERY PLAN).  No ANALYZE: the daemon never runs it, so these are
the plans every mirror gets, whatever its size.

PLANS says how each query must read runs: "index NAME" (a SEARCH through
that index), "index rowid" (by primary key only), "(no runs)", or, for a
few listed with the reason, a walk of a whole index in its order.  WHOLE
lists the queries that read every run (of a source or of a kind) by
nature, for which a scan is the right plan.  Every other query fails when
its plan has a `SCAN` of runs without an index, or reads runs through
another index than the one listed (the plan is in the message); and
dropping any index named here makes at least one query fail
(test_each_index_is_needed)."""
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import unittest

from tests.integration.harness import BIN, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench_queries as bq  # noqa: E402

RUNS = 300      # per source

# query name -> how its plan must read runs (bench_queries.verdict), and
# optionally index names its plan must also name (other tables, or
# COVERING: counted from the index alone).
PLANS = {
    "README: Runs per day and state, last 14 days": "index runs_day",
    "README: Pull requests per repository": "index rowid",
    "README: Is the mirror complete?": (
        "index runs_source_created",
        ["COVERING INDEX runs_source_created"]),
    "README: Fields upstream sent that the mirror could not use":
        "index rowid",
    "README: Runs unfinished for more than a day": "index runs_state",
    "README: When did a run finish?": "index runs_state",
    "README: Success rate by model": "index runs_state",
    "README: Pull requests opened by runs, and those only linked to one":
        "index rowid",
    "README: Time in each state, per source": "index rowid",
    "README: One run's history, without a join": "(no runs)",
    "README: Status transitions per day": "(no runs)",
    "README: Most used Cotool tools": ("index rowid", ["run_tools_name"]),
    "README: Pull requests touched by several runs": "index rowid",
    "README: Sync health, last 24 hours": "(no runs)",
    "agent_runs: one source, last 7 days, newest 100":
        "index runs_source_created",
    "agent_runs: runs per agent, last 7 days": "index runs_created",
    "live_runs: failed per source, last 30 days": "index runs_state",
    "runs_daily: one source, last 30 days": "index runs_source_created",
    "pull_requests_with_runs: one repository": (
        "index rowid", ["pull_requests_repository",
                        "run_pull_requests_pr"]),
    "pull_requests_with_runs: runs of the last 7 days": "index runs_created",
    "source_status": ("index runs_source_created",
                      ["COVERING INDEX runs_source_created"]),
    "daemon: the run of an upsert (ST_SEL_RUN)":
        "index sqlite_autoindex_runs_1",
    "daemon: is a run mirrored (the stop rule, ST_HAS_RUN)":
        "index sqlite_autoindex_runs_1",
    "daemon: unfinished runs to re-check": "index runs_source_created",
    "daemon: live runs from the oldest due one": "index runs_source_created",
    "daemon: live runs of a source (metrics)": (
        "index runs_source_created", ["COVERING INDEX runs_source_created"]),
    "daemon: --status": ("index runs_source_created",
                         ["COVERING INDEX runs_source_created"]),
    "daemon: retired sources' runs (start, reload)":
        "index runs_source_created",
    "daemon: mark runs gone (end of a full walk)": "index runs_source_created",
    "daemon: --forget-source, 1,000 runs":
        "index rowid, runs_source_created",
    "daemon: --rename-source": "index runs_source_created",
    "daemon: --rename-source, the status history": (
        "index runs_source_created", ["run_status_changes_run"]),
    # Walks: GROUP BY a column an index starts with, and a one-sided
    # filter on created_at.  Without statistics SQLite would rather walk
    # that index in order than sort the rows of a created_at range; the
    # filter is checked on the index entries (created_at is in each of
    # these indexes), so only the rows it keeps are read, or none (the
    # count per source is the index's alone).  Measured in README,
    # "Analyst queries at a million runs per source"; a range of
    # runs_created would be faster, but the indexes are there for
    # runs_state's state filters, runs_daily's day and the daemon.
    "agent_runs: runs per state, last 7 days":
        "FULL SCAN of runs, in runs_state order",
    "agent_runs: runs per source, last 7 days":
        "full scan of covering index runs_source_created",
    "agent_runs: runs per day, last 30 days":
        "FULL SCAN of runs, in runs_day order",
}

# Queries that read every run, of a source or of a kind, by nature: no
# index would read fewer rows than the table.
WHOLE = {
    "README: Pull requests per Codegen run": "every Codegen run",
    "README: Failure rate per agent and trigger":
        "agent_outcomes: every run",
    "README: Runs per trigger and month, both APIs":
        "every run, grouped by month",
    "README: Cotool agents by month, with their evaluation score":
        "every Cotool run",
    "README: Median duration per source and kind, from honest finish "
    "times only": "every run with a duration",
    "README: Runs that met an error, by outcome": "every Cotool run",
    "README: Fields only in the upstream JSON": "every live run's JSON",
    "README: Evaluated runs": "every Cotool run",
    "README: Cotool evaluation scores and unmet acceptance criteria by "
    "agent": "every Cotool run",
    "live_runs: count": "counts every live run",
    "agent_outcomes: one source": "every run of the source",
}


def expected(name):
    """(verdict, [names the plan must also hold]) of PLANS[name]."""
    want = PLANS.get(name, "?")
    return (want, []) if isinstance(want, str) else want


class QueryPlanTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="agentsyncd-plans-")
        cls.db = os.path.join(cls.dir, "mirror.db")
        cls.now = time.time()
        try:
            bq.make_schema(cls.db, BIN)
            bq.fill(cls.db, RUNS, cls.now)
        except Exception:
            shutil.rmtree(cls.dir, True)
            raise

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def problems(self, db):
        """{query name: what is wrong, with its plan} on the mirror db."""
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        out = {}
        try:
            for q in bq.queries():
                name = q["name"]
                if name in WHOLE:
                    continue
                lines = bq.plan(con, q["sql"], bq.params_of(q, self.now))
                scans, idx = bq.runs_access(con, q["sql"], lines)
                got = bq.verdict(scans, idx)
                want, also = expected(name)
                text = "\n".join(lines)
                wrong = []
                if any(" USING " not in s for s in scans):
                    wrong.append("reads every row of runs (SCAN without "
                                 "an index)")
                if got != want:
                    wrong.append(f"reads runs as '{got}', not '{want}'")
                wrong += [f"does not use {a}" for a in also
                          if a not in text]
                if wrong:
                    out[name] = (f"{name}: {'; '.join(wrong)}\n"
                                 f"{q['sql']}\nplan:\n{text}")
        finally:
            con.close()
        return out

    def test_no_statistics(self):
        """The plans checked are those without ANALYZE, as the daemon
        leaves every mirror."""
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            stat = con.execute("SELECT name FROM sqlite_schema WHERE name "
                               "LIKE 'sqlite_stat%'").fetchall()
        finally:
            con.close()
        self.assertEqual(stat, [])

    def test_every_query_is_listed(self):
        """A new README query, view query or daemon query must say how it
        reads runs: in PLANS, or in WHOLE with the reason."""
        names = [q["name"] for q in bq.queries()]
        self.assertEqual(len(names), len(set(names)), "names repeat")
        self.assertEqual(sorted(n for n in names
                                if n not in PLANS and n not in WHOLE), [])
        self.assertEqual(sorted(set(PLANS) - set(names)), [],
                         "PLANS names queries that do not exist")
        self.assertEqual(sorted(set(WHOLE) - set(names)), [],
                         "WHOLE names queries that do not exist")
        self.assertEqual(sorted(set(PLANS) & set(WHOLE)), [])

    def test_queries_use_their_index(self):
        bad = self.problems(self.db)
        if bad:
            self.fail(f"{len(bad)} of the queries read runs otherwise than "
                      "PLANS says:\n\n" + "\n\n".join(bad.values()))

    def test_each_index_is_needed(self):
        """Dropped from a copy of the mirror, every index PLANS names
        (but the UNIQUE one, which cannot be) makes some query fail."""
        named = set()
        for name in PLANS:
            want, also = expected(name)
            for part in [want] + also:
                named.update(w for w in part.replace(",", " ").split()
                             if w.startswith(("runs_", "run_",
                                              "pull_requests_")))
        self.assertIn("runs_day", named)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        have = {r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index'")}
        con.close()
        self.assertEqual(sorted(named - have), [],
                         "PLANS names indexes the schema does not have")
        copy = os.path.join(self.dir, "scratch.db")
        missed = []
        for index in sorted(named):
            shutil.copy(self.db, copy)
            con = sqlite3.connect(copy)
            con.execute(f"DROP INDEX {index}")
            con.commit()
            con.close()
            if not self.problems(copy):
                missed.append(index)
        self.assertEqual(missed, [], "no query fails without these")


if __name__ == "__main__":
    unittest.main()
