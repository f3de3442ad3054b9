# SPDX-License-Identifier: ISC
"""5xx, truncated, malformed, HTML and cut-off bodies: the daemon writes
nothing from a bad body, records the failure in sync_runs, and a later
poll completes the mirror exactly."""
from tests import fakeapi
from tests.integration.harness import DaemonTest

BAD = [
    fakeapi.Fault("status", 500),
    fakeapi.Fault("status", 502),
    fakeapi.Fault("status", 503),
    fakeapi.Fault("status", 504),
    fakeapi.Fault("truncate"),
    fakeapi.Fault("raw", 200, b'{"items": [{"id": 1,]}'),
    fakeapi.Fault("raw", 200, b"<html><body>Bad gateway</body></html>",
                  headers={"Content-Type": "text/html"}),
    fakeapi.Fault("raw", 200, b""),
    fakeapi.Fault("reset"),
    fakeapi.Fault("raw", 200, b'{"items": "nope", "total": 3}'),
    fakeapi.Fault("deep", size=10000),
]


class FaultsTest(DaemonTest):
    codegen_runs = 250
    cotool_runs = 250

    def test_each_fault_retried_then_exact(self):
        # max_retries 5 < 11 faults: the first pass fails, the next one
        # finishes the job from where it stopped.
        self.api.fail("codegen", *BAD)
        self.api.fail("cotool", *BAD)
        rc = self.once()
        self.assertEqual(rc, 75, self.last_stderr[-2000:])
        self.assertEqual(self.count("SELECT count(*) FROM runs"), 0)
        self.assertEqual(self.count(
            "SELECT count(*) FROM sync_runs WHERE outcome = 'failed' AND "
            "error IS NOT NULL"), 2)
        self.assertIn("'codegen'", self.last_stderr)
        self.assertNotIn(self.api.codegen_token, self.last_stderr)
        rc = self.once()
        self.assertEqual(rc, 0, self.last_stderr[-2000:])
        self.assert_mirror_exact()
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "rejected_records"), 0)

    def test_malformed_item_is_kept_aside(self):
        runs = self.api.codegen_sorted()
        bad = dict(runs[5])
        self.api.delete_codegen(bad["id"])
        bad["id"] = 12.5
        self.api.add_codegen(bad)
        self.once_ok()
        self.assertEqual(self.count("SELECT count(*) FROM runs WHERE "
                                    "source = 'codegen'"), 249)
        rows = self.sql("SELECT reason, raw_json FROM rejected_records")
        self.assertEqual(len(rows), 1)
        self.assertIn('"id"', rows[0][0])
        self.assertIn("12.5", rows[0][1])

    def test_stalled_body_aborted(self):
        self.write_conf(codegen={"request_timeout": "1s"},
                        sources=("codegen",))
        self.api.fail("codegen", fakeapi.Fault("stall", seconds=4))
        self.once_ok(timeout=60)
        self.assert_mirror_exact(sources=("codegen",))
        self.assertEqual(self.count("SELECT retries FROM sync_runs"), 1)
