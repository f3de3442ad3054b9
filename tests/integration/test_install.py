# SPDX-License-Identifier: ISC
"""make install DESTDIR=... lays out the expected tree and keeps an existing
configuration; make uninstall removes it; the man pages render without
warnings; systemd-analyze verifies the unit and rates its exposure <= 2.0
(where those tools exist)."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.harness import ROOT

EXPECTED = [
    "usr/sbin/agentsyncd",
    "usr/share/man/man8/agentsyncd.8",
    "usr/share/man/man5/agentsyncd.conf.5",
    "usr/share/man/man7/agentsyncd-schema.7",
    "usr/lib/systemd/system/agentsyncd.service",
    "usr/lib/sysusers.d/agentsyncd.conf",
    "usr/lib/tmpfiles.d/agentsyncd.conf",
    "etc/agentsyncd/agentsyncd.conf",
]


def make(*args):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


class InstallTest(unittest.TestCase):
    def test_install_uninstall(self):
        dest = tempfile.mkdtemp(prefix="agentsyncd-dest-")
        args = [f"DESTDIR={dest}", "PREFIX=/usr", "SYSCONFDIR=/etc"]
        r = make("install", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for p in EXPECTED:
            self.assertTrue(os.path.isfile(os.path.join(dest, p)), p)
        unit_path = "usr/lib/systemd/system/agentsyncd.service"
        with open(os.path.join(dest, unit_path)) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/sbin/agentsyncd ", unit)
        self.assertNotIn("@SBINDIR@", unit)
        conf = os.path.join(dest, EXPECTED[-1])
        self.assertEqual(os.stat(conf).st_mode & 0o777, 0o600)
        with open(conf, "a") as f:
            f.write("; edited by the operator\n")
        r = make("install", *args)
        self.assertEqual(r.returncode, 0)
        with open(conf) as f:
            self.assertIn("edited by the operator", f.read())
        r = make("uninstall", *args)
        self.assertEqual(r.returncode, 0)
        for p in EXPECTED[:-1]:
            self.assertFalse(os.path.exists(os.path.join(dest, p)), p)
        self.assertTrue(os.path.exists(conf))
        shutil.rmtree(dest)

    @unittest.skipUnless(shutil.which("man"), "man not installed")
    def test_man_pages_render_cleanly(self):
        for page in ("doc/agentsyncd.8", "doc/agentsyncd.conf.5",
                     "doc/agentsyncd-schema.7"):
            r = subprocess.run(["man", "--warnings", "-l", page], cwd=ROOT,
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, MANWIDTH="80",
                                        LC_ALL="C.UTF-8", MANPAGER="cat",
                                        PAGER="cat"))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", page)
            self.assertIn("agentsyncd", r.stdout)

    @unittest.skipUnless(shutil.which("systemd-analyze"),
                         "systemd-analyze not installed")
    def test_unit_verifies_and_is_hardened(self):
        d = tempfile.mkdtemp(prefix="agentsyncd-unit-")
        unit = os.path.join(d, "agentsyncd.service")
        with open(os.path.join(ROOT, "contrib/systemd/agentsyncd.service")) \
                as f:
            text = f.read().replace("@SBINDIR@", ROOT)
        # verify looks the man pages up; they are not installed here
        text = text.replace("Documentation=", "#Documentation=")
        with open(unit, "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", unit],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run(["systemd-analyze", "security",
                            "--offline=true", unit],
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)",
                      r.stdout)
        self.assertIsNotNone(m, r.stdout[-500:] + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0)
        shutil.rmtree(d)
