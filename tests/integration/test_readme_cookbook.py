# SPDX-License-Identifier: ISC
"""Every ```sql block of README.md runs against the mirror `make demo`
makes (scripts/demo.sh with the built binary, into a temporary file: two
passes with runs finishing, re-opened and a bad field between them) and
answers: an error or an empty answer fails, as a newcomer would read it as
broken."""
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration.harness import BIN, ROOT


def cookbook():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


class CookbookTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="agentsyncd-cookbook-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.db = os.path.join(self.dir, "demo.db")
        env = dict(os.environ, DEMO_DB=self.db, AGENTSYNCD=BIN)
        for size in ("CODEGEN_RUNS", "COTOOL_RUNS"):   # the demo's own
            env.pop(size, None)
        r = subprocess.run(["sh", os.path.join(ROOT, "scripts", "demo.sh")],
                           cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr)
        self.demo_output = r.stdout

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
        empty = [q for q, r in zip(queries, results) if not r]
        self.assertEqual(empty, [], "README queries with no answer on the "
                         "demo mirror")
        # the per-PR, per-agent, per-repository, both-APIs, completeness
        # and transition queries see data
        for needle in ("pull_request_count AS pull_requests",
                       "FROM agent_outcomes", "GROUP BY repository",
                       "FROM agent_runs\nGROUP BY month",
                       "FROM source_status", "eval_bullet_count = 0",
                       "FROM run_status_changes\nGROUP BY"):
            hits = [(q, r) for q, r in zip(queries, results) if needle in q]
            self.assertEqual(len(hits), 1, needle)
            self.assertTrue(hits[0][1], hits[0][0])
        # the demo's 2,500 runs of each API and 24 recent ones, all there
        complete = [r for q, r in zip(queries, results)
                    if "FROM source_status" in q][0]
        self.assertEqual(sorted((r[0], r[1], r[2], r[3]) for r in complete),
                         [("codegen", 2524, 2524, 0),
                          ("cotool", 2524, 2524, 0)])
        # "failed today" counts runs of both APIs, each with a finish time
        failed = [r for q, r in zip(queries, results)
                  if "failed_today" in q][0]
        self.assertEqual({r[0] for r in failed}, {"codegen", "cotool"})
        self.assertIn("failed today", self.demo_output)


if __name__ == "__main__":
    unittest.main()
