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
        # per-PR, per-agent and transition queries see data
        self.assertTrue(results[1], queries[1])
        self.assertTrue(results[2], queries[2])
        self.assertTrue(any("run_status_changes" in q and r
                            for q, r in zip(queries, results)))
