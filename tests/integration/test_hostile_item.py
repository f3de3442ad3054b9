# SPDX-License-Identifier: ISC
"""One source served a hostile run (issue 25, part 4): a Codegen run of
tens of thousands of odd members, legal JSON the spec's items allow (an
object with an id, unknown members kept in raw_json), does not stop the
other source's polls, and is stored with its problems: the first 64 and
one row that counts the rest.

In 83eca89 the loops after the parse were quadratic in the members of one
run: this page took about half a minute to parse, every poll (it is over
the 1 MiB a kept first page may be), and the event loop with it: Cotool's
polls stopped for as long."""
import json
import sqlite3
import time

from tests.integration.harness import DaemonTest, stop

ESCAPES = 50000         # members "kN": "\u0000" or "\udc00", ~1 MB
NUMBERS = 20000         # github_pull_requests elements that are numbers
POLL = 1.0              # both sources' poll_interval (the harness's)
MAX_GAP = 3 * POLL      # the bound on Cotool's gaps


def hostile_run(api):
    run = {"id": 990001, "organization_id": api.org_id, "status": "COMPLETE",
           "created_at": "2025-06-21 11:20:04.338398",
           "web_url": "https://codegen.com/agent/trace/990001",
           "result": None, "summary": "odd", "source_type": "API",
           "metadata": None,
           # numbers where pull requests belong: one problem each
           "github_pull_requests": list(range(100000000,
                                              100000000 + NUMBERS))}
    for i in range(ESCAPES):
        run[f"k{i}"] = "\x00" if i % 2 == 0 else "\udc00"
    return run


class HostileItemTest(DaemonTest):
    codegen_runs = 5
    cotool_runs = 5

    def test_other_source_keeps_polling(self):
        api = self.api
        run = hostile_run(api)
        api.add_codegen(run)
        t0 = time.monotonic()
        p = self.start()
        rid = str(run["id"])
        def stored():
            try:
                return self.count("SELECT count(*) FROM runs WHERE "
                                  "external_id = ?", rid) == 1
            except sqlite3.Error:
                return False    # not created, or not migrated, yet
        self.wait_until(stored, 90, "the hostile run stored")
        # a few more polls of each: every Codegen poll parses the page
        # again (over 1 MiB, it is not kept parsed)
        n_cg = len(api.requests("codegen"))
        n_ct = len(api.requests("cotool"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
                len(api.requests("codegen")) < n_cg + 3 or
                len(api.requests("cotool")) < n_ct + 4):
            time.sleep(0.1)
        # (83eca89 finishes the parse under way before it stops)
        stop(p, timeout=120, log=lambda: self.stderr_of(p))
        t1 = time.monotonic()

        times = [t0] + [r["time"] for r in api.requests("cotool")] + [t1]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLess(max(gaps), MAX_GAP,
                        f"Cotool waited {max(gaps):.1f} s between requests "
                        f"(poll_interval {POLL:g} s) while Codegen's page "
                        f"was parsed")
        self.assertGreaterEqual(len(api.requests("codegen")), n_cg + 3)
        self.assertGreaterEqual(len(api.requests("cotool")), n_ct + 4)

        # stored with raw_json as served, its problems capped; the other
        # runs of both sources too (mirror_problems() reads Codegen's
        # pull requests as objects: that source by hand)
        self.assert_mirror_exact(sources=("cotool",))
        mirror = {r[0]: json.loads(r[1]) for r in self.sql(
            "SELECT external_id, raw_json FROM runs WHERE source = "
            "'codegen'")}
        self.assertEqual(mirror, {str(r["id"]): r
                                  for r in api.codegen_sorted()})
        rows = self.sql(
            "SELECT f.position, f.field, f.problem, f.value "
            "FROM run_field_problems f JOIN runs r ON r.id = f.run_id "
            "WHERE r.external_id = ? ORDER BY f.position", rid)
        self.assertEqual(len(rows), 65)
        # drop_ambiguous() finds the escapes before codegen_run() reads
        self.assertEqual(rows[0][1:3], ("k0", "holds \\u0000"))
        self.assertEqual(rows[1][1:3],
                         ("k1", "holds a lone UTF-16 surrogate escape"))
        self.assertEqual(rows[63][1], "k63")
        more = ESCAPES + NUMBERS - 64
        self.assertEqual(rows[64][1:], (
            "(more)", f"and {more} more problems not recorded (a run "
            "keeps its first 64)", str(more)))
        self.assertEqual(self.sql(
            "SELECT pull_request_count, field_problems FROM agent_runs "
            "WHERE external_id = ?", rid), [(0, 65)])
        self.assertEqual(self.sql(
            "SELECT summary FROM runs WHERE external_id = ?", rid),
            [("odd",)])
        self.assertIn("stored with fields left out", self.stderr_of(p))
