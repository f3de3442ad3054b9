# SPDX-License-Identifier: ISC
"""How the PostgreSQL engine writes a page (store_pg_page.c), where a
guess could go wrong.  A page of a walk is guessed from the source's last
pages (its runs new, but for those the last pages listed, held as the page
lists them) and written in one round trip behind a gate that opens only
when the mirror holds just what was guessed, byte for byte; a batch's
pages so guessed go ahead of their answers.  When the guess is wrong,
nothing of the page is written and the page (or its batch) is written
again the usual way.

A run that changed upstream between two pages that both list it is the
wrong guess a walk meets: the page before wrote its old bytes, the next
lists its new ones.  Were the gate not to compare the bytes, the run
would be taken as unchanged and its change lost.

A walk that steps back (runs moved under it) lists again runs of pages
further back than those remembered: the page after a step back is not
guessed at.

Skipped where PostgreSQL is not installed (make check-postgres runs it)."""
import json
import unittest

from tests.integration.test_postgresql import WHY, PgTest


@unittest.skipIf(WHY, WHY)
class GuessTest(PgTest):
    codegen_runs = 1200
    cotool_runs = 300

    def test_run_changed_between_two_pages(self):
        changed = {}

        def churn(api):
            # One request at a time: the one about to be served asks for
            # the page that starts with the run the page before ended
            # with (each page after the first starts one run early).
            # That run changes before this page is served.
            skip = int(api.requests("codegen")[-1]["query"]["skip"])
            victim = api.codegen_sorted()[skip]
            new = "ERROR" if victim.get("status") != "ERROR" else "COMPLETE"
            api.update_codegen(victim["id"], status=new)
            changed[str(victim["id"])] = new
        self.write_conf(codegen={"requests_in_flight": "1"})
        self.api.hook("codegen", 5, churn)
        self.once_ok()
        # a wrong guess is no fault: nothing said as an error
        self.assertNotIn(" error: ", self.last_stderr)
        self.assertEqual(len(changed), 1)
        for rid, status in changed.items():
            raw, st = self.sql("SELECT raw_json, status FROM runs WHERE "
                               "source = 'codegen' AND external_id = ?",
                               rid)[0]
            self.assertEqual(json.loads(raw)["status"], status, rid)
            self.assertEqual(st, status, rid)
        self.assert_mirror_exact()
        self.assertEqual(self.duplicated_runs(), [])

    def test_walk_stepped_back_is_not_guessed_at(self):
        # Runs deleted behind the walk move the rest up under it: the
        # walk steps back a page, and the pages it lists again may hold
        # runs of any page before, not only of the last three.  Here,
        # one request at a time: one run deleted behind the walk before
        # the 6th request (a step back), six new at the head before the
        # 8th (the listing moves down), two more deleted before the 9th
        # (a second step back, onto a run the last three pages did not
        # list).  Guessed at, that page would lose its batch: every page
        # written so far fetched again, after the deletions, so that the
        # runs deleted were never mirrored.
        deleted = []

        def delete_behind(n):
            def churn(api):
                skip = int(api.requests("codegen")[-1]["query"]["skip"])
                cg = api.codegen_sorted()
                for i in range(n):
                    victim = cg[skip - 30 - i]
                    deleted.append(str(victim["id"]))
                    api.delete_codegen(victim["id"])
            return churn

        def add_head(api):
            for _ in range(6):
                api.add_codegen_now()
        self.write_conf(codegen={"requests_in_flight": "1"},
                        cotool={"requests_in_flight": "1"})
        self.api.hook("codegen", 6, delete_behind(1))
        self.api.hook("codegen", 8, add_head)
        self.api.hook("codegen", 9, delete_behind(2))
        self.once_ok()
        self.assertEqual(self.last_stderr.count("stepping back"), 2,
                         self.last_stderr[-3000:])
        self.assertNotIn("fetched again", self.last_stderr)
        self.assertNotIn(" error: ", self.last_stderr)
        held = {r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE source = 'codegen'")}
        self.assertEqual(set(deleted) - held, set())
        self.once_ok()          # the runs new at the head
        self.write_conf(codegen={"full_resync_interval": "1ms"})
        self.once_ok()          # a full resync marks the deleted ones
        gone = {r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE source = 'codegen' AND "
            "deleted_upstream_at IS NOT NULL")}
        self.assertEqual(gone, set(deleted))
        self.assert_mirror_exact()
        self.assertEqual(self.duplicated_runs(), [])


if __name__ == "__main__":
    unittest.main()
