# SPDX-License-Identifier: ISC
"""401/403 (Codegen's other org, Cotool's key without permissions): one
clear log line naming the source; the other source goes on; --once exits
75."""
from tests.integration.harness import DaemonTest


class AuthTest(DaemonTest):
    codegen_runs = 150
    cotool_runs = 150

    def test_bad_token_and_wrong_org(self):
        self.api.cotool_token = "rotated"
        self.write_conf(codegen={"org_id": "7"})
        rc = self.once()
        self.assertEqual(rc, 75)
        err = self.last_stderr.splitlines()
        ct = [l for l in err if "'cotool'" in l and "401" in l]
        cg = [l for l in err if "'codegen'" in l and "403" in l]
        self.assertEqual(len(ct), 1, err)
        self.assertEqual(len(cg), 1, err)
        self.assertIn("token", ct[0])
        self.assertIn("this pass fails", ct[0])    # --once: no retry
        self.assertNotIn("cotool-test-token", self.last_stderr)
        self.assertEqual(self.count("SELECT count(*) FROM runs"), 0)

    def test_other_source_goes_on(self):
        self.api.cotool_token = "rotated"
        rc = self.once()
        self.assertEqual(rc, 75)
        self.assert_mirror_exact(sources=("codegen",))
        self.assertEqual(self.count(
            "SELECT outcome FROM sync_runs WHERE source = 'cotool'"),
            "failed")

    def test_cotool_403_missing_perms(self):
        # A valid Cotool key whose user lacks permissions: the spec's 403
        # {"error", "missingPerms"}; one line, this pass fails, Codegen
        # goes on.
        self.api.forbid_cotool(missing_perms=["agent_runs:read"])
        rc = self.once()
        self.assertEqual(rc, 75)
        err = self.last_stderr.splitlines()
        ct = [l for l in err if "'cotool'" in l and "403" in l]
        self.assertEqual(len(ct), 1, err)
        self.assertIn("access denied", ct[0])
        self.assertIn("this pass fails", ct[0])
        self.assertNotIn("cotool-test-token", self.last_stderr)
        # one request, answered 403 (the log's status is set just after
        # the answer is sent, hence the wait)
        self.assertEqual(len(self.api.requests("cotool")), 1)
        self.wait_until(lambda: len(self.api.requests("cotool", 403)) == 1,
                        5, "the 403 in the fake's log")
        self.assert_mirror_exact(sources=("codegen",))
        self.assertEqual(self.count(
            "SELECT count(*) FROM runs WHERE source = 'cotool'"), 0)
        self.assertEqual(self.count(
            "SELECT outcome FROM sync_runs WHERE source = 'cotool'"),
            "failed")
        # permissions granted: the next pass mirrors Cotool
        self.api.allow_cotool()
        self.once_ok()
        self.assert_mirror_exact()


class StatusAfterAuthTest(DaemonTest):
    codegen_runs = 150
    cotool_runs = 150

    def test_status_shows_progress_and_error_without_token(self):
        import subprocess
        from tests.integration.harness import BIN
        self.api.cotool_token = "rotated"
        self.assertEqual(self.once(), 75)
        r = subprocess.run([BIN, "-c", self.conf, "--status"],
                           env=self.env(), capture_output=True, text=True,
                           timeout=30)
        # monitoring-plugin codes: cotool never succeeded and its last
        # pass failed: CRITICAL (2), named on the first line
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stdout.splitlines()[0],
                         r"^agentsyncd CRITICAL - source 'cotool': last pass "
                         r"failed, no success yet: HTTP 401")
        out = r.stdout
        cg = out[out.index("\nsource 'codegen'"):
                 out.index("\nsource 'cotool'")]
        ct = out[out.index("\nsource 'cotool'"):]
        self.assertIn("runs mirrored:   150", cg)
        self.assertIn("backfill:        complete", cg)
        self.assertIn("last error:      none", cg)
        self.assertRegex(ct, r"backfill:        (not started|in progress)")
        self.assertRegex(ct, r"last error:      \d{4}-.*HTTP 401")
        for secret in self.tokens:
            self.assertNotIn(secret, out + r.stderr)
        # nor anywhere in the database files
        import os
        for path in (self.db, self.db + "-wal"):
            if os.path.exists(path):
                with open(path, "rb") as f:
                    data = f.read()
                for secret in self.tokens:
                    self.assertNotIn(secret.encode(), data)
