# SPDX-License-Identifier: ISC
"""The command line: --help, --version, usage errors (64), --check-config
(0 / 78 with FILE:LINE), --migrate (idempotent), --status, a too-new
database refused untouched."""
import os
import re
import sqlite3
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BIN = os.environ.get("AGENTSYNCD_BIN", os.path.join(ROOT, "agentsyncd"))

GOOD = """[agentsyncd]
database = {d}/mirror.db

[source codegen]
type = codegen
org_id = 42
base_url = http://127.0.0.1:9
token_env = CODEGEN_API_TOKEN

[source cotool]
type = cotool
base_url = http://127.0.0.1:9
token_env = COTOOL_API_KEY
"""

BAD = """[agentsyncd]
database = {d}/mirror.db
colour = blue

[source codegen]
type = codegen
base_url = http://example.com
token_env = CODEGEN_API_TOKEN
page_size = 500
poll_interval = soon
"""


class CliTest(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="agentsyncd-cli-")
        self.env = dict(os.environ, CODEGEN_API_TOKEN="cg-secret-token-1",
                        COTOOL_API_KEY="ct-secret-token-2")

    def conf(self, text):
        path = os.path.join(self.d, "agentsyncd.conf")
        with open(path, "w") as f:
            f.write(text.format(d=self.d))
        return path

    def run_bin(self, *args):
        return subprocess.run([BIN, *args], env=self.env,
                              capture_output=True, text=True, timeout=60)

    def test_help_version_usage(self):
        r = self.run_bin("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check-config", r.stdout)
        r = self.run_bin("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^agentsyncd \d+\.\d+\.\d+\n$")
        r = self.run_bin("--frobnicate")
        self.assertEqual(r.returncode, 64)
        self.assertIn("usage:", r.stderr)
        r = self.run_bin("--once", "--migrate")
        self.assertEqual(r.returncode, 64)

    def test_check_config_ok(self):
        path = self.conf(GOOD)
        for flag in ("--check-config", "-t"):
            r = self.run_bin("-c", path, flag)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "configuration OK\n")

    def test_check_config_lists_every_problem(self):
        path = self.conf(BAD)
        r = self.run_bin("-c", path, "--check-config")
        self.assertEqual(r.returncode, 78)
        lines = r.stderr.splitlines()
        for lineno in (3, 7, 9, 10):
            self.assertTrue(any(l.startswith(f"{path}:{lineno}: ")
                                for l in lines),
                            f"no problem reported at line {lineno}: {lines}")
        # codegen without org_id is reported too (at the section)
        self.assertTrue(any("org_id" in l for l in lines), lines)
        self.assertNotIn("configuration OK", r.stdout)

    def test_codegen_page_size_one_refused(self):
        # Each Codegen page repeats the last run of the page before it:
        # a page of 1 would hold only that run and never move on.  Cotool
        # pages do not overlap, so 1 stays allowed there.
        text = GOOD.replace("token_env = CODEGEN_API_TOKEN\n",
                            "token_env = CODEGEN_API_TOKEN\n"
                            "page_size = 1\n", 1)
        text = text.replace("token_env = COTOOL_API_KEY\n",
                            "token_env = COTOOL_API_KEY\npage_size = 1\n")
        path = self.conf(text)
        lineno = text.splitlines().index("page_size = 1") + 1
        for args in (["--check-config"], ["--once"]):
            r = self.run_bin("-c", path, *args)
            self.assertEqual(r.returncode, 78, r.stderr)
            problems = [l for l in r.stderr.splitlines()
                        if f"{path}:" in l]
            self.assertEqual(len(problems), 1, r.stderr)
            self.assertIn(f"{path}:{lineno}: page_size '1' must be an "
                          f"integer from 2 to 100 for codegen sources",
                          problems[0])
        self.assertFalse(os.path.exists(os.path.join(self.d, "mirror.db")))
        r = self.run_bin("-c", self.conf(GOOD.replace(
            "token_env = COTOOL_API_KEY\n",
            "token_env = COTOOL_API_KEY\npage_size = 1\n")),
            "--check-config")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_missing_config_file(self):
        r = self.run_bin("-c", os.path.join(self.d, "nope.conf"), "-t")
        self.assertEqual(r.returncode, 78)
        self.assertIn("nope.conf", r.stderr)

    def test_migrate_twice_and_status(self):
        path = self.conf(GOOD)
        r = self.run_bin("-c", path, "--status")
        self.assertEqual(r.returncode, 3)     # UNKNOWN
        self.assertIn("agentsyncd UNKNOWN - database", r.stdout)
        self.assertIn("does not exist", r.stdout)
        r = self.run_bin("-c", path, "--migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"[1-9]\d* migrations? applied")
        r = self.run_bin("-c", path, "--migrate")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 migrations applied", r.stdout)
        mode = os.stat(os.path.join(self.d, "mirror.db")).st_mode & 0o777
        self.assertEqual(mode & 0o007, 0, oct(mode))
        r = self.run_bin("-c", path, "--status")
        self.assertEqual(r.returncode, 1, r.stderr)   # WARNING
        self.assertIn("has not polled yet", r.stdout)
        for out in (r.stdout, r.stderr):
            self.assertNotIn("cg-secret-token-1", out)
        # An operator's shell has neither the service's token variables
        # nor its credentials: --status and --migrate need no token.
        env = {k: v for k, v in self.env.items()
               if k not in ("CODEGEN_API_TOKEN", "COTOOL_API_KEY")}
        for args, rc in ((["--status"], 1), (["--migrate"], 0)):
            r = subprocess.run([BIN, "-c", path, *args], env=env,
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, rc, r.stderr)
        # --check-config checks what it can reach and says what it cannot
        # (the variable is the service's); the daemon itself refuses.
        r = subprocess.run([BIN, "-c", path, "--check-config"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "configuration OK\n")
        self.assertRegex(r.stderr, re.escape(path) +
                         r":\d+: note: token of \[source \w+\] not checked: "
                         r"environment variable 'CODEGEN_API_TOKEN'")
        r = subprocess.run([BIN, "-c", path, "--once"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 78)
        self.assertIn("CODEGEN_API_TOKEN", r.stderr)

    def test_too_new_database_untouched(self):
        path = self.conf(GOOD)
        db = os.path.join(self.d, "mirror.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA user_version = 4242")
        con.commit()
        con.close()
        with open(db, "rb") as f:
            before = f.read()
        for args in (["--migrate"], ["--once"]):
            r = self.run_bin("-c", path, *args)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("newer", r.stderr)
        with open(db, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertFalse(os.path.exists(db + "-wal"))


if __name__ == "__main__":
    unittest.main()
