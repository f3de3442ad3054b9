# SPDX-License-Identifier: ISC
"""Log lines carry journald priority prefixes exactly when JOURNAL_STREAM
names stderr, and timestamps otherwise; log_level is honoured."""
import os
import re
import subprocess
import tempfile
import unittest

from tests.integration.harness import BIN, closed_port


class JournalPrefixTest(unittest.TestCase):
    def once(self, journal, level):
        d = tempfile.mkdtemp(prefix="agentsyncd-journal-")
        conf = os.path.join(d, "agentsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"""[agentsyncd]
database = {d}/mirror.db
log_level = {level}

[source cg]
type = codegen
org_id = 1
base_url = http://127.0.0.1:{closed_port()}
token_env = CODEGEN_API_TOKEN
max_retries = 1
backoff_initial = 100ms
""")
        errpath = os.path.join(d, "stderr")
        with open(errpath, "w") as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, CODEGEN_API_TOKEN="tok-journal-123456")
            env.pop("NOTIFY_SOCKET", None)
            if journal:
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            else:
                env.pop("JOURNAL_STREAM", None)
            rc = subprocess.run([BIN, "-c", conf, "--once"], env=env,
                                stderr=err, timeout=60).returncode
        self.assertEqual(rc, 75)        # the source failed: EX_TEMPFAIL
        with open(errpath) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertNotIn("tok-journal-123456", line)
        return lines

    def test_journal(self):
        lines = self.once(True, "debug")
        for line in lines:
            self.assertRegex(line, r"^<[3-7]>[^<]")
            self.assertIsNone(re.match(r"^<\d>\d{4}-\d\d-\d\dT", line))
        self.assertTrue(any(line.startswith("<7>") for line in lines))
        self.assertTrue(any(line.startswith("<3>") and "'cg'" in line
                            for line in lines))

    def test_plain(self):
        lines = self.once(False, "warning")
        for line in lines:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                             r"(error|warning): ")


if __name__ == "__main__":
    unittest.main()
