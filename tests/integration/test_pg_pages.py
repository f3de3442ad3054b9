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


if __name__ == "__main__":
    unittest.main()
