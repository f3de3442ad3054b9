# SPDX-License-Identifier: ISC
"""Every ```sql block of README.md runs against the mirror `make demo`
makes (scripts/demo.sh with the built binary, into a temporary file: two
passes with runs finishing, re-opened and a bad field between them) and
answers: an error or an empty answer fails, as a newcomer would read it as
broken.  CookbookPgTest (make check-postgres) mirrors the same demo into
PostgreSQL and runs each query there: its "```sql postgresql" version
where one follows it, else the query as written."""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration import harness
from tests.integration.harness import BIN, ROOT
from tests.integration.test_postgresql import WHY


def cookbook():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


def cookbook_pg():
    """Each query as PostgreSQL runs it: the "```sql postgresql" block
    that follows a query replaces it."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    queries = []
    for pg, q in re.findall(r"```sql( postgresql)?\n(.*?)```", text, re.S):
        if pg:
            if not queries or queries[-1][1]:
                raise AssertionError("README: a PostgreSQL version that "
                                     f"follows no query:\n{q}")
            queries[-1] = (q, True)
        else:
            queries.append((q, False))
    return [q for q, _ in queries]


def run_demo(testcase, db):
    env = dict(os.environ, DEMO_DB=db, AGENTSYNCD=BIN)
    for size in ("CODEGEN_RUNS", "COTOOL_RUNS"):   # the demo's own
        env.pop(size, None)
    r = subprocess.run(["sh", os.path.join(ROOT, "scripts", "demo.sh")],
                       cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    testcase.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
    return r.stdout


def check_answers(tc, queries, results, mirror):
    """What the demo's mirror answers (tc: the test case): every query
    something, and the right things."""
    empty = [q for q, r in zip(queries, results) if not r]
    tc.assertEqual(empty, [], f"README queries with no answer on {mirror}")
    # the per-PR, per-agent, per-repository, both-APIs, completeness
    # and transition queries see data
    for needle in ("pull_request_count AS pull_requests",
                   "FROM agent_outcomes", "GROUP BY repository",
                   "FROM agent_runs\nGROUP BY month",
                   "FROM source_status", "eval_bullet_count = 0",
                   "FROM run_status_changes\nGROUP BY"):
        hits = [(q, r) for q, r in zip(queries, results) if needle in q]
        tc.assertEqual(len(hits), 1, needle)
        tc.assertTrue(hits[0][1], hits[0][0])
    # the demo's 2,500 runs of each API and 24 recent ones, all there
    complete = [r for q, r in zip(queries, results)
                if "FROM source_status" in q][0]
    tc.assertEqual(sorted((r[0], r[1], r[2], r[3]) for r in complete),
                   [("codegen", 2524, 2524, 0), ("cotool", 2524, 2524, 0)])
    # "failed today" counts runs of both APIs, each with a finish time
    failed = [r for q, r in zip(queries, results) if "failed_today" in q][0]
    tc.assertEqual({r[0] for r in failed}, {"codegen", "cotool"})


class CookbookTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="agentsyncd-cookbook-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "demo.db")
        self.demo_output = run_demo(self, self.db)

    def test_every_query_answers_on_the_demo(self):
        queries = cookbook()
        self.assertGreaterEqual(len(queries), 20)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        results = []
        try:
            for q in queries:
                try:
                    results.append(con.execute(q).fetchall())
                except sqlite3.Error as e:
                    self.fail(f"README query fails on the demo: {e}\n{q}")
        finally:
            con.close()
        check_answers(self, queries, results, "the demo mirror")
        self.assertIn("failed today", self.demo_output)


@unittest.skipIf(WHY, WHY)
class CookbookPgTest(unittest.TestCase):
    """The cookbook on the demo mirrored into PostgreSQL."""
    maxDiff = None

    def test_every_query_answers_on_the_demo_in_postgresql(self):
        self.pg, self.pg_db, uri = harness.pg_database()
        run_demo(self, uri)
        queries = cookbook_pg()
        self.assertEqual(len(queries), len(cookbook()))
        results = []
        for q in queries:
            # as written: not through the tests' own dialect (pg_rows)
            r = self.pg.psql("SELECT coalesce(json_agg(row_to_json(t)), "
                             f"'[]') FROM ({q.strip().rstrip(';')}) t",
                             self.pg_db, check=False, env={
                                 "PGOPTIONS": "-c search_path=agentsyncd"})
            if r.returncode != 0:
                self.fail("README query fails on PostgreSQL: "
                          f"{r.stderr.strip()}\n{q}")
            results.append(json.loads(r.stdout, object_pairs_hook=lambda
                                      pairs: tuple(v for _, v in pairs)))
        check_answers(self, queries, results,
                      "the demo mirrored into PostgreSQL")


if __name__ == "__main__":
    unittest.main()
