#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""Backfills over a slow network (requests_in_flight): before and after,
side by side, measured in one run:

    scripts/bench_latency.py BUILD_DIR

Everything runs on 127.0.0.1 against tests/fakeapi.py with pages rendered
once (rendered up front, so the server is not what is measured); every
answer is delayed by api.latency (a round trip; the fake serves requests
concurrently).  "Before" is the daemon of BEFORE (923fe99, the serial walk),
built from git into a scratch directory as scripts/bench_recheck.py does;
"after" is ./agentsyncd with its default requests_in_flight (the key is not
written), plus an "after, requests_in_flight = N" row when BENCH_IN_FLIGHT
is set; "baseline" is scripts/bench_baseline.py (one request at a time,
one source after the other, over one connection).

1. Latency table: a backfill of BENCH_LATENCY_RUNS Codegen + as many Cotool
   runs at 0, 100 and 1,000 ms (rate limits off): wall seconds of the
   baseline, before and after, the speed-ups, and the most requests of one
   source the server saw in flight at once (from the log's time/done).
   At 1,000 ms and above BENCH_LATENCY_SLOW_RUNS runs per source are used.
   Then where the wall time of each client goes at 100 ms.
2. Allowance: Codegen only, the fake enforcing Codegen's documented 60
   requests / 30 s, 1 s latency, the daemon with Codegen's default
   rate_limit; the share of the allowance used over whole windows after
   the first 60 requests (60m requests from request 60 to request 60+60m,
   against 60 per 30 s) and the 429s earned.  About 150 requests: the
   serial walk takes ~155 s a binary, one that fills the allowance ~75 s.
3. Bytes written: a backfill of BENCH_WRITE_RUNS runs per source at 0 ms:
   write_bytes of the daemon from /proc/PID/io read as it exits (a zombie,
   reaped only after the read; /proc/self/io from the shim below when that
   cannot be read), the database + WAL size after it, and the number of
   write transactions committed (a small LD_PRELOAD shim, compiled with cc
   at run time, puts a commit hook on every connection; "n/a" without cc).
   write_bytes counts only on a disk-backed TMPDIR (not tmpfs).

A daemon or baseline run that fails (exit status, timeout, fewer runs in
its database than upstream has) is reported as "failed", with its stderr's
tail on stderr.

Environment:
  BENCH_LATENCY_RUNS=10000        runs per source, part 1
  BENCH_LATENCY_SLOW_RUNS=2000    runs per source at >= 1,000 ms, part 1
  BENCH_LATENCY_MS="0 100 1000"   latencies of part 1
  BENCH_IN_FLIGHT=N               also an "after" with requests_in_flight = N
  BENCH_ALLOW_RUNS=15000          Codegen runs, part 2 (152 requests)
  BENCH_ALLOW_LATENCY_MS=1000     latency, part 2
  BENCH_ALLOW_LIMIT=60/30         the fake's limit (N/SECONDS); anything but
                                  60/30 is also written as the daemon's
                                  rate_limit (scaled-down runs)
  BENCH_WRITE_RUNS=50000          runs per source, part 3
  BENCH_LATENCY_PARTS="1 2 3"     which parts to run
  BENCH_LATENCY_BEFORE=923fe99    the "before" commit
"""
import glob
import http.client
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fakeapi  # noqa: E402
import bench_recheck  # noqa: E402  (build_before)

BEFORE = "923fe99"
BIN = os.path.join(ROOT, "agentsyncd")
BASELINE = os.path.join(ROOT, "scripts", "bench_baseline.py")
PYTHON = "/usr/bin/python3"      # Debian's, with sqlite-utils (as bench.py)
TOKENS = {"CODEGEN_API_TOKEN": "codegen-test-token",
          "COTOOL_API_KEY": "cotool-test-token"}
SOURCES = ("codegen", "cotool")
PAGE = 100

# LD_PRELOAD: a commit hook on every connection the daemon opens; at exit
# the count and /proc/self/io go to $BENCH_TXN_OUT.
SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>

static unsigned long commits;

static int
hook(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&commits, 1, __ATOMIC_RELAXED);
	return 0;
}

int
sqlite3_open_v2(const char *name, sqlite3 **db, int flags, const char *vfs)
{
	static int (*real)(const char *, sqlite3 **, int, const char *);
	int rc;

	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "sqlite3_open_v2");
	rc = real(name, db, flags, vfs);
	if (*db != NULL)
		sqlite3_commit_hook(*db, hook, NULL);
	return rc;
}

__attribute__((destructor)) static void
report(void)
{
	const char *out = getenv("BENCH_TXN_OUT");
	char line[256];
	FILE *f, *io;

	if (out == NULL || (f = fopen(out, "w")) == NULL)
		return;
	fprintf(f, "commits: %lu\n", commits);
	if ((io = fopen("/proc/self/io", "r")) != NULL) {
		while (fgets(line, sizeof(line), io) != NULL)
			fputs(line, f);
		fclose(io);
	}
	fclose(f);
}
"""


def env_int(name, default):
    v = os.environ.get(name, "").strip()
    return int(v) if v else default


def build_shim(work):
    """The commit-counting LD_PRELOAD library, or None."""
    src = os.path.join(work, "txncount.c")
    so = os.path.join(work, "txncount.so")
    with open(src, "w") as f:
        f.write(SHIM)
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", so, src,
                        "-ldl", "-lsqlite3"], check=True,
                       capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    return so


def conf(d, api, sources=SOURCES, extra="", rate_limit="off"):
    """bench.py's conf(): log_level warning, tokens from the environment;
    rate_limit None leaves the adapter's default."""
    rl = f"rate_limit = {rate_limit}\n" if rate_limit else ""
    text = f"""[agentsyncd]
database = {d}/mirror.db
log_level = warning
"""
    if "codegen" in sources:
        text += f"""
[source codegen]
type = codegen
base_url = {api.url}
org_id = {api.org_id}
token_env = CODEGEN_API_TOKEN
{rl}{extra}"""
    if "cotool" in sources:
        text += f"""
[source cotool]
type = cotool
base_url = {api.url}
token_env = COTOOL_API_KEY
{rl}{extra}"""
    path = os.path.join(d, "agentsyncd.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def read_io(pid):
    """/proc/PID/io as a dict, or None (gone, or not ours to read: the
    daemon makes itself non-dumpable, which hides it from non-root)."""
    try:
        with open(f"/proc/{pid}/io") as f:
            return {k.strip(): int(v) for k, v in
                    (line.split(":") for line in f if ":" in line)}
    except (OSError, ValueError):
        return None


def run_proc(cmd, d, timeout, env=None):
    """Run cmd to completion, killing it after timeout seconds.  Returns
    {t0, t_exit, wall, cpu, rc ("timeout" when killed), io, err}: io is
    /proc/PID/io read once the process has exited but before it is reaped
    (its final counters), else the largest values polled while it ran."""
    errpath = os.path.join(d, "stderr.log")
    with open(errpath, "wb") as errf:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, env=dict(os.environ, **(env or {})),
                             stdout=subprocess.DEVNULL, stderr=errf, cwd=d)
    io, exited, killed = None, False, False
    try:
        while True:
            info = os.waitid(os.P_PID, p.pid,
                             os.WEXITED | os.WNOHANG | os.WNOWAIT)
            now = time.monotonic()
            cur = read_io(p.pid)
            if cur is not None:
                io = cur if io is None else {
                    k: max(v, io.get(k, 0)) for k, v in cur.items()}
            if info is not None:
                exited = True
                break
            if now - t0 > timeout:
                break
            time.sleep(0.01)
    finally:
        if not exited:
            p.kill()
            killed = True
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    with open(errpath, "rb") as f:
        err = f.read()[-2000:].decode(errors="replace")
    return {"t0": t0, "t_exit": now, "wall": now - t0,
            "cpu": ru.ru_utime + ru.ru_stime,
            "rc": "timeout" if killed else p.returncode, "io": io,
            "err": err}


def settle(api, timeout=2.0):
    """The request log once every answer has ended: "done" is stamped
    just after the answer is written, maybe after the client read it."""
    end = time.monotonic() + timeout
    while True:
        reqs = api.requests()
        if all("done" in r for r in reqs) or time.monotonic() > end:
            return reqs
        time.sleep(0.01)


def timeline(reqs):
    """{n, peak, busy, first, last}: requests, most in flight at once,
    seconds with at least one in flight, first arrival, last answer."""
    ev = []
    for r in reqs:
        ev.append((r["time"], 1))
        ev.append((r.get("done", r["time"]), -1))
    ev.sort()                   # at a tie an end (-1) comes before a start
    cur = peak = 0
    busy, since = 0.0, None
    for t, d in ev:
        cur += d
        if cur == 1 and d == 1:
            since = t
        elif cur == 0 and since is not None:
            busy += t - since
            since = None
        peak = max(peak, cur)
    return {"n": len(reqs), "peak": peak, "busy": busy,
            "first": ev[0][0] if ev else None,
            "last": ev[-1][0] if ev else None}


def count_runs(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM runs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return None


def warm(api, sources):
    """Render once every page the daemons and the baseline ask for
    (Codegen: the daemon's pages overlap by one run, the baseline's do
    not), with no latency, and forget the requests."""
    lat, api.latency = api.latency, 0.0
    paths = []
    if "codegen" in sources:
        n = len(api.codegen)
        skips = sorted(set(range(0, n, PAGE - 1)) | set(range(0, n, PAGE)))
        paths += [(f"/v1/organizations/{api.org_id}/agent/runs?skip={s}"
                   f"&limit={PAGE}", TOKENS["CODEGEN_API_TOKEN"])
                  for s in skips]
    if "cotool" in sources:
        pages = (len(api.cotool) + PAGE - 1) // PAGE
        paths += [(f"/api/agent-runs?page={p}&pageSize={PAGE}"
                   f"&sortField=createdAt&sortDirection=desc",
                   TOKENS["COTOOL_API_KEY"]) for p in range(pages + 1)]
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        for path, token in paths:
            conn.request("GET", path,
                         headers={"Authorization": f"Bearer {token}"})
            conn.getresponse().read()
    finally:
        conn.close()
    api.latency = lat
    api.clear_log()


def run_client(kind, binary, api, work, timeout, sources=SOURCES, extra="",
               rate_limit="off", shim=None):
    """One backfill into a fresh database: run_proc's dict plus log (the
    fake's requests), runs, ok, why, db_bytes, commits, io_shim."""
    d = tempfile.mkdtemp(prefix=f"{kind}-", dir=work)
    api.clear_log()
    env = dict(TOKENS)
    if kind == "baseline":
        db = os.path.join(d, "b.db")
        cmd = [PYTHON, BASELINE, str(api.port), db,
               TOKENS["CODEGEN_API_TOKEN"], TOKENS["COTOOL_API_KEY"],
               str(api.org_id)]
    else:
        db = os.path.join(d, "mirror.db")
        cmd = [binary, "-c", conf(d, api, sources, extra, rate_limit),
               "--once"]
        if shim:
            env["LD_PRELOAD"] = shim
            env["BENCH_TXN_OUT"] = os.path.join(d, "txn.out")
    try:
        res = run_proc(cmd, d, timeout, env)
    except OSError as e:
        res = {"rc": f"cannot start: {e}", "err": "", "wall": 0.0,
               "cpu": 0.0, "io": None, "t0": 0, "t_exit": 0}
    res["log"] = settle(api)
    res["runs"] = count_runs(db)
    expected = sum(len(getattr(api, s)) for s in sources)
    res["ok"] = res["rc"] == 0 and res["runs"] == expected
    res["why"] = "" if res["ok"] else (
        f"exit {res['rc']}" if res["rc"] != 0 else
        f"{res['runs']} of {expected} runs in its database")
    res["db_bytes"] = sum(os.path.getsize(p) for p in glob.glob(db + "*"))
    res["commits"], res["io_shim"] = None, None
    txn = os.path.join(d, "txn.out")
    if os.path.exists(txn):
        with open(txn) as f:
            kv = {k.strip(): int(v) for k, v in
                  (line.split(":") for line in f if ":" in line)}
        res["commits"] = kv.pop("commits", None)
        res["io_shim"] = kv or None
    if not res["ok"]:
        sys.stderr.write(f"bench_latency: {kind} failed ({res['why']}); "
                         f"stderr ends:\n{res['err'][-1500:]}\n")
    shutil.rmtree(d, True)
    return res


def fmt_s(r):
    return f"{r['wall']:.2f}" if r and r["ok"] else (
        "failed" if r else "-")


def ratio(a, b):
    """a's wall / b's wall as '2.1x', or '-'."""
    if a and b and a["ok"] and b["ok"] and b["wall"] > 0:
        return f"{a['wall'] / b['wall']:.2f}x"
    return "-"


def peaks(r):
    """Most requests in flight at once, per source: 'codegen/cotool'."""
    if not r or not r["log"]:
        return "-"
    return "/".join(str(timeline([x for x in r["log"]
                                  if x["api"] == s])["peak"])
                    for s in SOURCES)


def where(name, r, out):
    """Where a client's wall time went: per source, requests, seconds with
    a request in flight and without, between its first request and last
    answer; start-up (to the first request) and the end (after the last
    answer); CPU."""
    if not r or not r["ok"]:
        return
    parts, firsts, lasts = [], [], []
    for s in SOURCES:
        t = timeline([x for x in r["log"] if x["api"] == s])
        if not t["n"]:
            continue
        firsts.append(t["first"])
        lasts.append(t["last"])
        parts.append(f"{s} {t['n']} req {t['busy']:.2f} s waiting "
                     f"{t['last'] - t['first'] - t['busy']:.2f} s not")
    if not parts:
        return
    out(f"    {name:<10} {r['wall']:6.2f} s = start {min(firsts) - r['t0']:.2f}"
        f" + requests {max(lasts) - min(firsts):.2f} + end "
        f"{r['t_exit'] - max(lasts):.2f};  " + ";  ".join(parts) +
        f";  CPU {r['cpu']:.2f} s")


def part_latency(old, work, in_flight, out):
    runs = env_int("BENCH_LATENCY_RUNS", 10000)
    slow = env_int("BENCH_LATENCY_SLOW_RUNS", 2000)
    lats = [int(x) for x in os.environ.get("BENCH_LATENCY_MS",
                                           "0 100 1000").split()]
    out(f"1. Backfill of N Codegen + N Cotool runs by round-trip latency "
        f"(rate limits off; before: {BEFORE if old else 'not built'}; "
        f"after: ./agentsyncd, default requests_in_flight)")
    out(f"  {'latency':>8} {'runs/src':>9} {'baseline s':>11} "
        f"{'before s':>9} {'after s':>9} {'after/base':>11} "
        f"{'after/before':>13}   in flight cg/ct: {'base':>5} "
        f"{'before':>6} {'after':>6}")
    apis, rows = {}, {}
    for ms in lats:
        n = runs if ms < 1000 else slow
        if n not in apis:
            for a in apis.values():
                a.stop()
            apis.clear()
            api = fakeapi.FakeAPI(n, n, seed=21)
            api.render_cache = {}
            api.quiet_log = False
            api.start()
            warm(api, SOURCES)
            apis[n] = api
        api = apis[n]
        api.latency = ms / 1000.0
        # a generous bound: every request serial, three times over
        timeout = 300 + 3 * (2 * n / PAGE + 4) * (ms / 1000.0 + 0.05)
        row = {"base": run_client("baseline", None, api, work, timeout)}
        row["before"] = run_client("before", old, api, work, timeout) \
            if old else None
        row["after"] = run_client("after", BIN, api, work, timeout)
        if in_flight is not None:
            row["afterN"] = run_client(
                "after", BIN, api, work, timeout,
                extra=f"requests_in_flight = {in_flight}\n")
        rows[ms] = row
        b, o, a = row["base"], row["before"], row["after"]
        out(f"  {ms:>5} ms {n:>9,} {fmt_s(b):>11} {fmt_s(o):>9} "
            f"{fmt_s(a):>9} {ratio(b, a):>11} {ratio(o, a):>13}   "
            f"{'':>16} {peaks(b):>5} {peaks(o):>6} {peaks(a):>6}")
        if in_flight is not None:
            x = row["afterN"]
            out(f"  {ms:>5} ms {n:>9,} {'':>11} {'':>9} {fmt_s(x):>9} "
                f"{ratio(b, x):>11} {ratio(o, x):>13}   {'':>16} {'':>5} "
                f"{'':>6} {peaks(x):>6}  (requests_in_flight = "
                f"{in_flight})")
    for a in apis.values():
        a.stop()
    pick = 100 if 100 in rows else (lats[1] if len(lats) > 1 else None)
    if pick is not None and pick in rows:
        out(f"  where the wall time goes at {pick} ms (per source: "
            f"requests, seconds with one in flight / with none, first "
            f"request to last answer):")
        row = rows[pick]
        where("baseline", row["base"], out)
        where("before", row["before"], out)
        where("after", row["after"], out)
        if "afterN" in row:
            where(f"after({in_flight})", row["afterN"], out)
    return rows


def part_allowance(old, work, out):
    n = env_int("BENCH_ALLOW_RUNS", 15000)
    ms = env_int("BENCH_ALLOW_LATENCY_MS", 1000)
    lim = os.environ.get("BENCH_ALLOW_LIMIT", "60/30").strip() or "60/30"
    k, w = lim.split("/")
    k, w = int(k), float(w.rstrip("s"))
    default = (k, w) == (60, 30.0)
    api = fakeapi.FakeAPI(n, 0, seed=23)
    api.render_cache = {}
    api.quiet_log = False
    api.start()
    warm(api, ("codegen",))
    api.latency = ms / 1000.0
    out(f"2. Codegen allowance at {ms} ms latency: {n:,} runs, the fake "
        f"enforcing {k}/{w:g}s, the daemon's rate_limit "
        f"{'left at its default (60/30s)' if default else f'= {k}/{w:g}s'}")
    out(f"  {'binary':<8} {'requests':>9} {'wall s':>8} "
        f"{f'allowance used (whole windows after {k})':>38} {'429s':>6} "
        f"{'in flight':>10}")
    res = {}
    for name, binary in (("before", old), ("after", BIN)):
        if not binary:
            out(f"  {name:<8} {'not built':>9}")
            continue
        api.rate_limit("codegen", k, w)      # a fresh window each run
        api.rejected_429["codegen"] = 0
        reqs_needed = n / (PAGE - 1) + 2
        timeout = 300 + 3 * reqs_needed * max(ms / 1000.0, w / k)
        r = run_client(name, binary, api, work, timeout,
                       sources=("codegen",),
                       rate_limit=None if default else f"{k}/{w:g}s")
        times = sorted(x["time"] for x in r["log"] if x["api"] == "codegen")
        # Whole windows after the first k requests: requests k..k+k*m-1
        # over the time from request k to request k+k*m (a partial last
        # window would count the burst's gap against the rate).
        m = (len(times) - k - 1) // k
        used = k * m / (times[k + k * m] - times[k]) * w / k \
            if m >= 1 and times[k + k * m] > times[k] else None
        r["used"], r["r429"] = used, api.rejected_429["codegen"]
        res[name] = r
        out(f"  {name:<8} {len(times):>9,} {fmt_s(r):>8} "
            f"{(f'{used:.1%}' if used is not None else '-'):>38} "
            f"{r['r429']:>6} {peaks(r).split('/')[0]:>10}")
    out(f"  target: >= 95% with 0 429s")
    api.stop()
    return res


def part_writes(old, work, shim, in_flight, out):
    n = env_int("BENCH_WRITE_RUNS", 50000)
    api = fakeapi.FakeAPI(n, n, seed=25)
    api.render_cache = {}
    api.quiet_log = False
    api.start()
    warm(api, SOURCES)
    out(f"3. Bytes written by a backfill of {n:,} runs per source at 0 ms "
        f"(rate limits off; write_bytes of /proc/PID/io as the daemon "
        f"exits)")
    out(f"  {'binary':<10} {'wall s':>8} {'written MB':>11} "
        f"{'bytes/run':>10} {'cancelled MB':>13} {'db+WAL MB':>10} "
        f"{'transactions':>13}")
    timeout = 600 + 2 * n / 1000
    res = {}
    todo = [("before", old, ""), ("after", BIN, "")]
    if in_flight is not None:
        todo.append((f"after({in_flight})", BIN,
                     f"requests_in_flight = {in_flight}\n"))
    for name, binary, extra in todo:
        if not binary:
            out(f"  {name:<10} {'not built':>8}")
            continue
        r = run_client("before" if name == "before" else "after", binary,
                       api, work, timeout, extra=extra, shim=shim)
        io = r["io"] if r["io"] else r["io_shim"]
        res[name] = r
        if not r["ok"] or not io:
            out(f"  {name:<10} {fmt_s(r):>8} "
                f"{'n/a (no /proc/PID/io)' if r['ok'] else ''}")
            continue
        wb = io.get("write_bytes", 0)
        r["per_run"] = wb / (2 * n)
        txn = f"{r['commits']:,}" if r["commits"] is not None else "n/a"
        out(f"  {name:<10} {r['wall']:>8.2f} {wb / 1e6:>11.1f} "
            f"{wb / (2 * n):>10,.0f} "
            f"{io.get('cancelled_write_bytes', 0) / 1e6:>13.1f} "
            f"{r['db_bytes'] / 1e6:>10.1f} {txn:>13}")
        if wb == 0 and io.get("wchar", 0) > 0:
            out("    (write_bytes 0: is TMPDIR on tmpfs? wchar "
                f"{io['wchar'] / 1e6:.1f} MB)")
    api.stop()
    return res


def main(build="build", out=print):
    global BEFORE
    BEFORE = os.environ.get("BENCH_LATENCY_BEFORE", "").strip() or BEFORE
    parts = os.environ.get("BENCH_LATENCY_PARTS", "1 2 3").split()
    fl = os.environ.get("BENCH_IN_FLIGHT", "").strip()
    in_flight = int(fl) if fl else None
    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix="agentsyncd-bench-latency-")
    try:
        old = bench_recheck.build_before(BEFORE, work)
        shim = build_shim(work) if "3" in parts else None
        out(f"agentsyncd latency benchmark, {os.cpu_count()} cores; before: "
            f"{BEFORE + ' (built from git)' if old else 'not built'}; "
            f"after: {BIN}"
            + (f"; BENCH_IN_FLIGHT={in_flight}" if in_flight else ""))
        lat = part_latency(old, work, in_flight, out) if "1" in parts \
            else {}
        allow = part_allowance(old, work, out) if "2" in parts else {}
        writes = part_writes(old, work, shim, in_flight, out) \
            if "3" in parts else {}
        summary = []
        if 100 in lat:
            r = lat[100]
            summary.append(f"100 ms: after {ratio(r['base'], r['after'])} "
                           f"the baseline (target >= 5x), "
                           f"{ratio(r['before'], r['after'])} before")
        for name in ("before", "after"):
            r = allow.get(name)
            if r is not None:
                u = f"{r['used']:.1%}" if r["used"] is not None else "-"
                summary.append(f"allowance {name} {u}/{r['r429']} 429s")
        if writes:
            summary.append("bytes/run " + ", ".join(
                f"{k} {v['per_run']:,.0f}" for k, v in writes.items()
                if v.get("per_run") is not None))
        out("summary: " + "; ".join(summary) +
            f" (target: >= 5x at 100 ms, >= 95% with 0 429s); "
            f"{time.monotonic() - t_start:.0f} s")
    finally:
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build",
         out=lambda line: print(line, flush=True))
