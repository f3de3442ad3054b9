#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Codegen's poll cost at a busy organization (issue 18), before and after
the re-check schedule, side by side:

    scripts/bench_recheck.py BUILD_DIR      (make bench runs it too)

For 300, 3,000, 10,000 and 30,000 runs a day: the fake API holds two days
of Codegen runs (a third of the last 24 hours' runs unfinished); a running
daemon (poll_interval 2s, refresh_max_interval 30s, no rate limit)
backfills, then its requests are counted for BENCH_RECHECK_SECONDS (45) after 32 s of warm-up:
list requests per poll and the share of Codegen's allowance (60 per 30 s)
they would use.  Then, at 10,000 a day, unfinished runs of several ages
finish upstream at once and the time each takes to reach the mirror is
measured.  "Before" is the daemon of BENCH_RECHECK_BEFORE (default: the
commit before the schedule, c038e88), built from git into a scratch
directory; without git the column is left out.

Environment: BENCH_RECHECK_RATES="300 3000 10000 30000",
BENCH_RECHECK_SECONDS=45, BENCH_RECHECK_BEFORE=c038e88.
"""
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import fakeapi  # noqa: E402

TOKEN = "codegen-test-token"
AGES = [("1 min", 60), ("10 min", 600), ("1 h", 3600), ("6 h", 6 * 3600),
        ("20 h", 20 * 3600)]


def build_before(rev, work):
    """The daemon at rev, built in work; its path, or None."""
    if shutil.which("git") is None:
        return None
    src = os.path.join(work, "before-src")
    os.makedirs(src)
    try:
        arch = subprocess.run(["git", "-C", ROOT, "archive", rev],
                              capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", src], input=arch, check=True)
        subprocess.run(["make", "-C", src, "agentsyncd"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.CalledProcessError, OSError):
        return None
    return os.path.join(src, "agentsyncd")


def dataset(api, per_day, now):
    """Two days of runs, oldest first; a third of the last day's
    unfinished.  Returns the unfinished ones as (id, created)."""
    n = 2 * per_day
    step = 2 * 86400.0 / n
    unfinished = []
    for i in range(n):
        t = now - dt.timedelta(seconds=2 * 86400 - step * (i + 0.5))
        r = api.data.codegen_run(t=t, org_id=api.org_id)
        young = (now - t).total_seconds() < 86400
        r["status"] = "RUNNING" if young and i % 3 == 0 else "COMPLETE"
        r["created_at"] = t.strftime("%Y-%m-%d %H:%M:%S.%f")
        api.codegen[r["id"]] = r
        if r["status"] == "RUNNING":
            unfinished.append((r["id"], t))
    api.sorted_cache.clear()
    return unfinished


def conf(d, api, new):
    path = os.path.join(d, "agentsyncd.conf")
    with open(path, "w") as f:
        f.write(f"""[agentsyncd]
database = {d}/mirror.db
log_level = warning

[source codegen]
type = codegen
base_url = {api.url}
org_id = {api.org_id}
token_env = CODEGEN_API_TOKEN
rate_limit = off
poll_interval = 2s
full_resync_interval = 0
{"refresh_max_interval = 30s" if new else ""}
""")
    return path


def q(db, sql, *args):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def wait(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def measure(binary, per_day, seconds, new, latency, work):
    """(requests a poll, share of the allowance, {age: seconds})"""
    now = dt.datetime.now(dt.timezone.utc)
    api = fakeapi.FakeAPI(0, 0, seed=11)
    api.codegen_token = TOKEN
    unfinished = dataset(api, per_day, now)
    api.start()
    d = tempfile.mkdtemp(prefix="recheck-", dir=work)
    db = os.path.join(d, "mirror.db")
    p = subprocess.Popen([binary, "-c", conf(d, api, new)],
                         env=dict(os.environ, CODEGEN_API_TOKEN=TOKEN),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not wait(lambda: q(db, "SELECT backfill_done FROM sync_state")
                    == [(1,)], 300):
            raise RuntimeError("the backfill did not finish")
        # past the first re-check interval of every run (30 s), so that
        # what is counted is the steady state
        time.sleep(32.0)
        api.clear_log()
        time.sleep(seconds)
        reqs = api.requests("codegen")
        polls = sum(1 for r in reqs if r["query"].get("skip") == "0")
        per_poll = len(reqs) / polls if polls else 0.0
        share = len(reqs) / seconds * 30 / 60
        lat = {}
        if latency:
            t_now = time.time()
            picks = {}
            for name, age in AGES:
                best = min(unfinished, key=lambda u: abs(
                    t_now - u[1].timestamp() - age))
                picks[name] = best[0]
            for rid in picks.values():
                api.update_codegen(rid, status="COMPLETE")
            t0 = time.monotonic()
            left = dict(picks)
            while left and time.monotonic() - t0 < 90:
                for name, rid in list(left.items()):
                    if q(db, "SELECT status FROM runs WHERE external_id = "
                         "?", str(rid)) == [("COMPLETE",)]:
                        lat[name] = time.monotonic() - t0
                        del left[name]
                time.sleep(0.05)
        return per_poll, share, lat
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stderr.close()
        api.stop()
        shutil.rmtree(d, True)


def main(build="build", out=print):
    rates = [int(x) for x in os.environ.get(
        "BENCH_RECHECK_RATES", "300 3000 10000 30000").split()]
    seconds = float(os.environ.get("BENCH_RECHECK_SECONDS", "45"))
    rev = os.environ.get("BENCH_RECHECK_BEFORE", "c038e88")
    work = tempfile.mkdtemp(prefix="agentsyncd-bench-recheck-")
    new = os.path.join(ROOT, "agentsyncd")
    old = build_before(rev, work)
    out(f"Codegen poll cost, two days of runs, a third of the last 24 h "
        f"unfinished; poll_interval 2s, refresh_max_interval 30s; "
        f"{seconds:.0f} s counted (before: {rev if old else 'not built'})")
    out(f"  {'runs/day':>9} {'before req/poll':>16} {'after req/poll':>15} "
        f"{'before allowance':>17} {'after allowance':>16}")
    lat = {}
    for r in rates:
        b = measure(old, r, seconds, False, r == 10000, work) if old \
            else None
        a = measure(new, r, seconds, True, r == 10000, work)
        if r == 10000:
            lat = {"before": b[2] if b else {}, "after": a[2]}
        out(f"  {r:>9,} {b[0] if b else float('nan'):>16.1f} "
            f"{a[0]:>15.2f} {b[1] if b else float('nan'):>16.0%} "
            f"{a[1]:>16.0%}")
    if lat:
        out("  a status change reaching the mirror at 10,000 runs/day "
            "(seconds, by the run's age):")
        out(f"  {'age':>9} {'before':>8} {'after':>8}")
        for name, _ in AGES:
            def f(x):
                return f"{x:8.1f}" if x is not None else "   >90.0"
            out(f"  {name:>9} {f(lat['before'].get(name)) if lat['before'] else '       -'}"
                f" {f(lat['after'].get(name))}")
    shutil.rmtree(work, True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build")
