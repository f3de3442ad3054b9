# SPDX-License-Identifier: ISC
"""The licence is said everywhere it must be: LICENSE holds the ISC text,
debian/copyright names ISC for every file in DEP-5 form, every source
file carries the SPDX line (scripts/spdx.sh, which make lint runs too),
and the applied migrations are still byte for byte as applied."""
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.integration.harness import ROOT


class LicenceTest(unittest.TestCase):
    def test_licence_file_is_isc(self):
        with open(os.path.join(ROOT, "LICENSE")) as f:
            text = f.read()
        self.assertTrue(text.startswith("ISC License"))
        self.assertIn("Copyright (c) 2026 The agentsyncd authors", text)
        self.assertIn("Permission to use, copy, modify, and/or distribute",
                      text)

    def test_debian_copyright_is_dep5_isc(self):
        with open(os.path.join(ROOT, "debian", "copyright")) as f:
            text = f.read()
        paras = [p for p in text.split("\n\n") if p.strip()]
        self.assertTrue(paras[0].startswith(
            "Format: https://www.debian.org/doc/packaging-manuals/"
            "copyright-format/1.0/"))
        files = [p for p in paras if p.startswith("Files:")]
        self.assertEqual(len(files), 1)
        self.assertIn("Files: *\n", files[0] + "\n")
        self.assertIn("License: ISC", files[0])
        standalone = [p for p in paras if p.startswith("License: ISC\n")]
        self.assertEqual(len(standalone), 1, "the ISC text as a stand-alone "
                         "License paragraph")

    def test_every_source_file_has_spdx(self):
        if not os.path.isdir(os.path.join(ROOT, ".git")) and \
                not os.path.isfile(os.path.join(ROOT, ".git")):
            self.skipTest("not a git checkout")
        p = subprocess.run(["sh", "scripts/spdx.sh"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_applied_migrations_are_held_to_their_sums(self):
        """The guard that keeps 0001..0009 as applied fires on an edit."""
        mig = os.path.join(ROOT, "migrations")
        with open(os.path.join(mig, "applied.sha256")) as f:
            names = [line.split()[1] for line in f if line.strip()]
        self.assertEqual(len(names), 9)
        tmp = tempfile.mkdtemp(prefix="agentsyncd-licence-")
        self.addCleanup(shutil.rmtree, tmp)
        for n in names + ["applied.sha256"]:
            shutil.copy(os.path.join(mig, n), tmp)
        check = ["sha256sum", "--quiet", "-c", "applied.sha256"]
        self.assertEqual(subprocess.run(check, cwd=tmp, capture_output=True,
                                        timeout=30).returncode, 0)
        with open(os.path.join(tmp, names[0]), "a") as f:
            f.write("-- SPDX-License-Identifier: ISC\n")
        self.assertNotEqual(subprocess.run(check, cwd=tmp,
                                           capture_output=True,
                                           timeout=30).returncode, 0)
