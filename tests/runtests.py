#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""The one runner of agentsyncd's tests; ends with one summary line.

usage: runtests.py BUILD_DIR [unit|integration|all] [-k PATTERN]
       runtests.py BUILD_DIR reliability [-k SUBSTRING]... [--list]

Unit tests are the cmocka binaries BUILD_DIR/tests/test_*; integration
tests are the unittest modules tests/integration/test_*.py, which drive the
real binary ($AGENTSYNCD_BIN, default ./agentsyncd) against the fake API
server on loopback; reliability cases (make check-reliability) are
tests/reliability/rel_*.py, one row of figures each.  The last line is
"N passed, N failed[, N skipped]".
"""
import os
import re
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run_unit(build):
    passed = failed = 0
    bindir = os.path.join(build, "tests")
    names = sorted(n for n in os.listdir(bindir) if n.startswith("test_")) \
        if os.path.isdir(bindir) else []
    for name in names:
        path = os.path.join(bindir, name)
        if not os.access(path, os.X_OK):
            continue
        t0 = time.monotonic()
        try:
            proc = subprocess.run([path], cwd=ROOT, capture_output=True,
                                  text=True, timeout=300)
            out = proc.stdout + proc.stderr
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timed out after 300 s\n", -1
        ok = sum(int(n) for n in re.findall(r"\[  PASSED  \] (\d+) test", out))
        bad = sum(int(n) for n in re.findall(r"\[  FAILED  \] (\d+) test", out))
        if rc != 0 and bad == 0:
            bad = 1         # crashed or aborted: count it, show it
        passed += ok
        failed += bad
        status = "ok" if rc == 0 else "FAIL"
        print(f"unit  {name:32} {ok:4} passed {bad:3} failed  "
              f"{time.monotonic() - t0:6.2f}s  {status}", flush=True)
        if rc != 0:
            sys.stdout.write(out[-6000:])
    return passed, failed, 0


def run_integration(pattern):
    loader = unittest.TestLoader()
    if pattern:
        loader.testNamePatterns = [pattern]
    suite = loader.discover(os.path.join(ROOT, "tests", "integration"),
                            pattern="test_*.py",
                            top_level_dir=ROOT)
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    res = runner.run(suite)
    failed = len(res.failures) + len(res.errors) + \
        len(res.unexpectedSuccesses)
    skipped = len(res.skipped)
    passed = res.testsRun - failed - skipped
    return passed, failed, skipped


def main():
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 64
    build = args[0]
    what = "all"
    patterns = []
    listing = False
    rest = args[1:]
    while rest:
        a = rest.pop(0)
        if a in ("unit", "integration", "all", "reliability"):
            what = a
        elif a == "-k" and rest:
            patterns.append(rest.pop(0))
        elif a == "--list":
            listing = True
    os.chdir(ROOT)
    os.environ.setdefault("AGENTSYNCD_BIN", os.path.join(ROOT, "agentsyncd"))
    p = f = s = 0
    if what in ("all", "unit"):
        a, b, c = run_unit(build)
        p, f, s = p + a, f + b, s + c
    if what in ("all", "integration"):
        a, b, c = run_integration(patterns[0] if patterns else None)
        p, f, s = p + a, f + b, s + c
    if what == "reliability":
        from tests.reliability import run as reliability
        p, f, s = reliability.run(patterns, listing)
        if listing:
            return 0
    line = f"{p} passed, {f} failed"
    if s:
        line += f", {s} skipped"
    print(line)
    return 1 if f or p == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
