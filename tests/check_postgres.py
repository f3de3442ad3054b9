#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make check-postgres: the core integration tests on both engines, the
PostgreSQL engine's own tests, and the SQL checker over libpq's calls,
against a throwaway cluster (tests/pgcluster.py; never the system's).
Prints one row per check and a summary; exits 1 on any failure.

usage: check_postgres.py [-k SUBSTRING]"""
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The core scenarios, each run unchanged on SQLite then on PostgreSQL
# (AGENTSYNCD_TEST_ENGINE): what they prove.
CORE = [
    ("test_backfill", "backfill: mirror equals upstream, minimal requests"),
    ("test_updates", "updates and their status history"),
    ("test_idle_poll", "idle polls: one request, nothing rewritten"),
    ("test_drift", "offset drift: inserts and deletions mid-walk"),
    ("test_page_edges", "page edges: rejects, deletions upstream, resync"),
    ("test_out_of_order", "runs out of order in the listing"),
    ("test_faults", "upstream faults retried, malformed items kept aside"),
    ("test_resume_after_kill", "SIGKILL mid-backfill, resumed"),
    ("test_fidelity", "field problems, child rows, positions"),
    ("test_sources.SourcesTest", "sources retired, --rename-source "
     "(stopped and running), --forget-source while a reader reads"),
]
OWN = ("test_postgresql", "PostgreSQL: same rows as SQLite, NOTIFY, idle "
       "writes nothing, read-only role, refusals, password, claims, faults "
       "(restart, dropped connection, down at start, read-only, permission, "
       "statement_timeout)")
PAGES = ("test_pg_pages", "a page guessed new and sent ahead of its "
         "answer, one of its runs changed since the page before: nothing "
         "of it written, its batch rolled back and fetched again, no "
         "error said; a walk stepped back twice is not guessed at (no "
         "batch lost, the runs deleted behind it mirrored and marked); "
         "the mirror exact")
COOKBOOK = ("test_readme_cookbook.CookbookPgTest", "README's cookbook on "
            "the demo mirrored into PostgreSQL: every query (its "
            "PostgreSQL version where one is given) answers")
FAILOVER = ("test_failover", "fail-over, two daemons: concurrent start "
            "migrates once; SIGKILL, SIGTERM, a cut connection and a "
            "terminated session of the holder: taken over < 30 s, exact, "
            "nothing counted twice")


def run(module, engine):
    env = dict(os.environ, AGENTSYNCD_TEST_ENGINE=engine,
               AGENTSYNCD_PG_TESTS="1")
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "unittest",
                        f"tests.integration.{module}"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    out = p.stdout + p.stderr
    m = re.search(r"Ran (\d+) tests?", out)
    n = int(m.group(1)) if m else 0
    skipped = re.search(r"skipped=(\d+)", out)
    return p.returncode == 0, n, time.monotonic() - t0, out, \
        int(skipped.group(1)) if skipped else 0


def main():
    pick = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "-k" \
        else None
    rows, failed = [], 0
    jobs = [(m, e, what) for m, what in CORE
            for e in ("sqlite", "postgresql")]
    jobs.append((OWN[0], "postgresql", OWN[1]))
    jobs.append((PAGES[0], "postgresql", PAGES[1]))
    jobs.append((COOKBOOK[0], "postgresql", COOKBOOK[1]))
    jobs.append((FAILOVER[0], "postgresql", FAILOVER[1]))
    w = max(len(m) for m, _, _ in jobs)
    print(f"{'check':<{w}} {'engine':<11} {'tests':>5} {'s':>6}  result  "
          "what it proves")
    for module, engine, what in jobs:
        if pick and pick not in module:
            continue
        ok, n, secs, out, skipped = run(module, engine)
        res = "ok" if ok and not skipped else (
            "SKIP" if ok else "FAIL")
        if not ok or skipped:
            failed += 1
        print(f"{module:<{w}} {engine:<11} {n:>5} {secs:>6.1f}  {res:<6}  "
              f"{what}", flush=True)
        if not ok or skipped:
            print("\n".join("    " + ln for ln in out.splitlines()[-25:]))
        rows.append(res)
    from tests.reliability import rel_security
    try:
        msg, ok = rel_security.sql_only_bound_parameters(), True
    except AssertionError as e:
        msg, ok = str(e), False
    failed += not ok
    print(f"{'sql_only_bound_params':<{w}} {'both':<11} {'':>5} {'':>6}  "
          f"{'ok' if ok else 'FAIL':<6}  {msg}")
    print(f"{len(rows) + 1 - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
