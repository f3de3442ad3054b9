# SPDX-License-Identifier: ISC
"""Every ```sql block of README.md runs against a demo-like mirror (with
status changes and shared pull requests), and the main ones return rows."""
import os
import re
import sqlite3

from tests.integration.harness import ROOT, DaemonTest


def cookbook():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return re.findall(r"```sql\n(.*?)```", text, re.S)


class CookbookTest(DaemonTest):
    codegen_runs = 600
    cotool_runs = 600

    def test_every_query_runs(self):
        self.once_ok()
        for run in self.api.cotool_sorted("createdAt")[:20]:
            self.api.update_cotool(run["id"], status="error")
        self.once_ok()
        queries = cookbook()
        self.assertGreaterEqual(len(queries), 8)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            results = [con.execute(q).fetchall() for q in queries]
        finally:
            con.close()
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
        complete = [r for q, r in zip(queries, results)
                    if "FROM source_status" in q][0]
        self.assertEqual(sorted((r[0], r[1], r[2], r[3]) for r in complete),
                         [("codegen", 600, 600, 0), ("cotool", 600, 600, 0)])
