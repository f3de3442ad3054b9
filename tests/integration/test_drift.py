# SPDX-License-Identifier: ISC
"""Runs inserted at the head and deleted behind the cursor while a walk is
under way: nothing missed, nothing duplicated.  Runs created during the
walk sit at the head, behind it: the next poll brings them."""
import datetime as dt

from tests.integration.harness import DaemonTest


class DriftTest(DaemonTest):
    codegen_runs = 1500
    cotool_runs = 1500

    def churn(self, api, deleted):
        # Three new runs at the head of each listing, and two runs
        # already walked past deleted (their successors slide up).
        for _ in range(3):
            api.add_codegen_now()
            api.add_cotool(t=dt.datetime.now(dt.timezone.utc))
        cg = api.codegen_sorted()
        ct = api.cotool_sorted("createdAt")
        for victim in (cg[150], cg[160]):
            deleted.append(("codegen", str(victim["id"])))
            api.delete_codegen(victim["id"])
        for victim in (ct[150], ct[160]):
            deleted.append(("cotool", victim["id"]))
            api.delete_cotool(victim["id"])

    def test_drift_during_backfill(self):
        deleted = []
        for n in (3, 6, 9):
            self.api.hook("codegen", n, lambda api: self.churn(api, deleted))
        self.once_ok()
        self.once_ok()          # the next poll: the new head runs
        # Every run upstream now is mirrored (deleted ones may linger,
        # to be marked by the next full resync).
        up_cg = {str(r["id"]) for r in self.api.codegen_sorted()}
        up_ct = {r["id"] for r in self.api.cotool_sorted()}
        got_cg = {r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE source = 'codegen'")}
        got_ct = {r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE source = 'cotool'")}
        self.assertEqual(up_cg - got_cg, set())
        self.assertEqual(up_ct - got_ct, set())
        self.assertEqual(self.duplicated_runs(), [])
        # A forced full resync marks the deleted ones, keeps their rows.
        self.write_conf(codegen={"full_resync_interval": "1ms"},
                        cotool={"full_resync_interval": "1ms"})
        self.once_ok()
        gone = set(self.sql("SELECT source, external_id FROM runs WHERE "
                            "deleted_upstream_at IS NOT NULL"))
        held = set(self.sql("SELECT source, external_id FROM runs"))
        self.assertTrue(set(deleted) & held)
        self.assertEqual(gone, set(deleted) & held)
        self.assert_mirror_exact()
