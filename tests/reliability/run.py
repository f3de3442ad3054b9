#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make check-reliability: crashes, faults, bad input, concurrency and
security, each case driving the real binary against tests/fakeapi.py on
loopback, one row of figures each.  Run through the one test runner:

usage: tests/runtests.py BUILD reliability [-k SUBSTRING]... [--list]

Cases live in tests/reliability/rel_*.py: each module has
CASES = [(name, function), ...].  A function takes no argument, returns the
figure to print (a string), and raises (AssertionError or anything else)
when the case fails: any loss, crash or wrong answer.  A case that cannot
run here (it needs root to mount a tmpfs) raises Skip, and is counted and
shown as skipped, never as passed.  Every case is bounded in time and stops
by itself.  The last line is "N passed, N failed[, N skipped]"; the exit
code is 1 when a case failed.
"""
import importlib
import os
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
from tests.reliability import Skip  # noqa: E402


def cases():
    here = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(here)):
        if name.startswith("rel_") and name.endswith(".py"):
            mod = importlib.import_module("tests.reliability." + name[:-3])
            for case_name, fn in mod.CASES:
                yield name[4:-3], case_name, fn


def run(wanted=(), listing=False):
    """Run the cases whose group/name holds one of wanted (all when
    empty), printing the table; returns (passed, failed, skipped)."""
    os.chdir(ROOT)
    os.environ.setdefault("AGENTSYNCD_BIN", os.path.join(ROOT, "agentsyncd"))
    rows = []
    failures = []
    print(f"{'group':12} {'case':46} {'result':6} {'time':>7}  figures",
          flush=True)
    for group, name, fn in cases():
        if wanted and not any(w in f"{group}/{name}" for w in wanted):
            continue
        if listing:
            print(f"{group:12} {name}")
            continue
        t0 = time.monotonic()
        try:
            figure = fn()
            ok = True
        except Skip as e:
            ok = None
            figure = f"skipped: {e}"
        except Exception as e:  # noqa: BLE001 -- a case fails, we go on
            ok = False
            figure = f"{type(e).__name__}: {e}".replace("\n", " ")[:300]
            failures.append((group, name, traceback.format_exc()))
        dt = time.monotonic() - t0
        rows.append((group, name, ok))
        word = {True: "ok", False: "FAIL", None: "skip"}[ok]
        print(f"{group:12} {name:46} {word:6} "
              f"{dt:6.1f}s  {figure}", flush=True)
    for group, name, tb in failures:
        print(f"\n--- {group}/{name} ---\n{tb}", end="")
    passed = sum(1 for r in rows if r[2] is True)
    skipped = sum(1 for r in rows if r[2] is None)
    return passed, len(failures), skipped
