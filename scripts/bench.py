#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make bench: agentsyncd's figures, side by side, measured in one run.

    scripts/bench.py BUILD_DIR

Everything runs on this machine against tests/fakeapi.py on loopback with
pages rendered once (the server is not what is measured) and the daemon's
rate limiter off, except the rate-limit row.  Environment:
  BENCH_RUNS=100000         runs per source for the comparison rows
  BENCH_SCALES="10000 100000"  the scale rows (add 1000000 for 1M)
  BENCH_IDLE_SECONDS=60     the idle-CPU measurement
  BENCH_IDLE_BEFORE=83eca89 the binary it is compared with ("" for none):
                            the daemon before the redesign (issue 26), whose
                            idle instructions and backfill runs/s the
                            redesign keeps within 5%
  BENCH_RECHECK_*           see scripts/bench_recheck.py
  BENCH_LATENCY_*, BENCH_ALLOW_*, BENCH_WRITE_RUNS, BENCH_IN_FLIGHT
                            see scripts/bench_latency.py
  BENCH_QUERY_RUNS=1000000  runs per source, scripts/bench_queries.py
The last section, hostile pages, runs alone too:
  python3 scripts/bench_hostile.py BUILD_DIR [MIB]
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import fakeapi  # noqa: E402
import bench_recheck  # noqa: E402  (build_before)

BIN = os.path.join(ROOT, "agentsyncd")
# The daemon before the redesign into writer, verdict, engine (issue 26):
# its backfill and its idle polls are measured beside this binary's.
IDLE_BEFORE = "83eca89"
TOKENS = {"CODEGEN_API_TOKEN": "codegen-test-token",
          "COTOOL_API_KEY": "cotool-test-token"}


def conf(d, api, extra=""):
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
{extra}
[source cotool]
type = cotool
base_url = {api.url}
token_env = COTOOL_API_KEY
rate_limit = off
{extra}""")
    return path


def vm_hwm(pid):
    """Peak RSS (KiB) of pid's current program.  Unlike ru_maxrss it
    starts again at exec, so the forked Python's pages do not count."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd, env=None):
    """Run to completion; (wall s, cpu s, peak RSS KiB, returncode)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=dict(os.environ, **(env or {})),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rss = 0
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid != 0:
            break
        rss = max(rss, vm_hwm(p.pid))
        time.sleep(0.01)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        sys.stderr.write(err[-2000:])
    return wall, ru.ru_utime + ru.ru_stime, rss, rc


def db_bytes(path):
    return sum(os.path.getsize(p) for p in glob.glob(path + "*"))


def backfill(api, d, binary=BIN, warm=True):
    """Warm the render cache with a throwaway walk, then measure one."""
    if warm:
        scratch = tempfile.mkdtemp(prefix="bench-warm-", dir=d)
        run([binary, "-c", conf(scratch, api), "--once"], TOKENS)
        shutil.rmtree(scratch)
    api.clear_log()
    c = conf(d, api)
    wall, cpu, rss, rc = run([binary, "-c", c, "--once"], TOKENS)
    assert rc == 0, "backfill failed"
    return {"wall": wall, "cpu": cpu, "rss": rss, "requests":
            len(api.requests()), "db": db_bytes(os.path.join(d,
                                                             "mirror.db")),
            "conf": c}


def fmt(x, unit=""):
    if isinstance(x, float):
        return f"{x:,.3f}{unit}" if x < 10 else f"{x:,.1f}{unit}"
    return f"{x:,}{unit}"


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    n = int(os.environ.get("BENCH_RUNS", "100000"))
    scales = [int(x) for x in os.environ.get("BENCH_SCALES",
                                             "10000 100000").split()]
    idle_s = float(os.environ.get("BENCH_IDLE_SECONDS", "60"))
    work = tempfile.mkdtemp(prefix="agentsyncd-bench-")
    rows = []

    def row(name, value, note=""):
        rows.append((name, value, note))
        print(f"  {name:58} {value:>16}  {note}", flush=True)

    print(f"agentsyncd benchmark: {n:,} runs per source, "
          f"{os.cpu_count()} cores", flush=True)
    t0 = time.monotonic()
    api = fakeapi.FakeAPI(n, n, seed=3)
    api.render_cache = {}
    api.start()
    print(f"  (data set generated in {time.monotonic() - t0:.1f} s)")

    # 1. Backfill.
    d = os.path.join(work, "daemon")
    os.makedirs(d)
    b = backfill(api, d)
    total = 2 * n
    row("daemon backfill: wall time", fmt(b["wall"], " s"))
    row("daemon backfill: runs per second", fmt(int(total / b["wall"])))
    row("daemon backfill: requests", fmt(b["requests"]),
        "Codegen pages overlap by one run")
    row("daemon backfill: CPU seconds", fmt(b["cpu"], " s"))
    row("daemon backfill: peak RSS", fmt(b["rss"] // 1024, " MiB"))
    row("daemon backfill: database bytes per 1,000 runs",
        fmt(int(b["db"] / (total / 1000))))

    # 1b. The same backfill by this binary and by the one before the
    # redesign (IDLE_BEFORE, built from git), in turns on fresh mirrors,
    # the pages already rendered: runs per second and peak RSS side by
    # side (the machine's speed drifts; the median of the turns is read).
    before = None
    # the mirror each binary left: the one before reads no newer schema
    mirror_of = {BIN: os.path.join(work, "daemon")}
    rev = os.environ.get("BENCH_IDLE_BEFORE", IDLE_BEFORE).strip()
    if rev:
        before = bench_recheck.build_before(rev, work)
    if before is not None:
        turns = {"": [], " (before)": []}
        for t in range(3):
            for label, binary in (("", BIN), (" (before)", before)):
                td = os.path.join(work, f"turn{t}{label.strip(' ()')}")
                os.makedirs(td)
                turns[label].append(backfill(api, td, binary, warm=False))
                if binary is before and t == 2:
                    mirror_of[before] = td  # for its idle rows (6.)
                else:
                    shutil.rmtree(td)
        med = {k: sorted(v, key=lambda x: x["wall"])[1]
               for k, v in turns.items()}
        for label in ("", " (before)"):
            row(f"backfill{label}, median of 3 turns: runs per second",
                fmt(int(total / med[label]["wall"])))
            row(f"backfill{label}: peak RSS (largest of 3 turns)",
                fmt(max(x["rss"] for x in turns[label]) // 1024, " MiB"),
                "target <= 16 MiB" if not label else "")
        row("backfill runs/s, this binary / before",
            f"{med[' (before)']['wall'] / med['']['wall']:.3f}",
            "target >= 0.95")
    else:
        row("backfill before the redesign", "not built",
            f"git archive {rev} failed")

    # 2. Baseline: sqlite-utils.
    bdir = os.path.join(work, "baseline")
    os.makedirs(bdir)
    bw, bc, brss, rc = run(["/usr/bin/python3",
                            os.path.join(ROOT, "scripts/bench_baseline.py"),
                            str(api.port), os.path.join(bdir, "b.db"),
                            TOKENS["CODEGEN_API_TOKEN"],
                            TOKENS["COTOOL_API_KEY"], str(api.org_id)])
    if rc == 0:
        row("baseline (Python + sqlite-utils): wall time", fmt(bw, " s"))
        row("baseline: peak RSS", fmt(brss // 1024, " MiB"))
        row("daemon speed vs baseline", f"{bw / b['wall']:.1f}x",
            "target >= 5x")
    else:
        row("baseline (Python + sqlite-utils)", "failed")

    # 3. Floor: cJSON alone + SQLite alone over the same pages.
    fdir = os.path.join(work, "floor")
    os.makedirs(fdir)
    args = []
    for i, (path, body) in enumerate(sorted(api.render_cache.items())):
        kind = "codegen" if path.startswith("/v1/") else "cotool"
        if kind == "cotool" and "sortField=createdAt" not in path:
            continue
        f = os.path.join(fdir, f"{i:06d}.json")
        with open(f, "wb") as fh:
            fh.write(body)
        args.append(f"{kind}:{f}")
    out = subprocess.run([os.path.join(build, "floor"),
                          os.path.join(fdir, "floor.db"), *args],
                         capture_output=True, text=True)
    if out.returncode == 0:
        kv = dict(x.split("=") for x in out.stdout.split())
        ps, ins = float(kv["parse_seconds"]), float(kv["insert_seconds"])
        row("floor: cJSON parse of the same pages", fmt(ps, " s"))
        row("floor: SQLite inserts of the same rows", fmt(ins, " s"))
        row("daemon backfill time / floor (parse + insert)",
            f"{b['wall'] / (ps + ins):.2f}x", "target <= 1.5x")
    else:
        row("floor", "failed", out.stderr.strip()[-200:])

    # 4. Incremental.
    api.clear_log()
    w, cpu, _, rc = run([BIN, "-c", b["conf"], "--once"], TOKENS)
    row("idle poll: requests (both sources)", fmt(len(api.requests())),
        "target 1 per source")
    row("idle poll: CPU of a --once process, start-up included",
        fmt(cpu * 1000, " ms"))
    changed = 0
    for run_ in api.cotool_sorted("createdAt")[::100]:
        api.update_cotool(run_["id"], status="error")
        changed += 1
    api.render_cache.clear()
    api.clear_log()
    w, cpu, _, rc = run([BIN, "-c", b["conf"], "--once"], TOKENS)
    row(f"1% changed ({changed:,} Cotool runs): requests",
        fmt(len(api.requests())))
    row("1% changed: wall / CPU", f"{w:.2f} s / {cpu:.2f} s")

    # 5. Scale.
    for scale in scales:
        sapi = api if scale == n else fakeapi.FakeAPI(scale, scale, seed=5)
        if sapi is not api:
            sapi.render_cache = {}
            sapi.start()
        sd = os.path.join(work, f"scale{scale}")
        os.makedirs(sd)
        if sapi is api:
            s = b
        else:
            s = backfill(sapi, sd)
        us = s["cpu"] / (2 * scale) * 1e6
        row(f"scale {scale:,}/source: CPU per run / peak RSS",
            f"{us:.1f} us / {s['rss'] // 1024} MiB")
        if sapi is not api:
            sapi.stop()
            shutil.rmtree(sd)

    # 6. Idle daemon CPU, this binary and the one before the redesign
    # (IDLE_BEFORE, built in 1b), side by side on the same mirror.
    for label, binary in (("", BIN), (" (before)", before)):
        if binary is None:
            continue
        c = conf(mirror_of[binary], api, "poll_interval = 5s\n")
        p = subprocess.Popen([binary, "-c", c],
                             env=dict(os.environ, **TOKENS),
                             stderr=subprocess.DEVNULL)
        time.sleep(3)

        def cpu_seconds():
            # schedstat's first field: nanoseconds on a CPU.  The 10 ms
            # ticks of /proc/PID/stat are too coarse for a figure near 0.1%.
            with open(f"/proc/{p.pid}/schedstat") as f:
                return int(f.read().split()[0]) / 1e9
        t1, c1 = time.monotonic(), cpu_seconds()
        time.sleep(idle_s)
        t2, c2 = time.monotonic(), cpu_seconds()
        p.terminate()
        p.wait(timeout=10)
        polls = 2 * (t2 - t1) / 5.0
        row(f"idle daemon{label}, poll_interval 5s, {idle_s:.0f} s: CPU",
            f"{(c2 - c1) / (t2 - t1) * 100:.3f} %", "target < 0.1%")
        row(f"idle poll inside the daemon{label}: CPU per source-poll",
            fmt((c2 - c1) / polls * 1000, " ms"), "target < 5 ms")
    api.stop()

    # 7. Instructions (callgrind): repeatable where seconds are not.
    if shutil.which("valgrind"):
        capi = fakeapi.FakeAPI(3000, 3000, seed=9)
        capi.start()
        cd = os.path.join(work, "callgrind")
        os.makedirs(cd)
        c = conf(cd, capi)

        def instructions():
            out = subprocess.run(
                ["valgrind", "--tool=callgrind",
                 f"--callgrind-out-file={cd}/cg.out", BIN, "-c", c,
                 "--once"], env=dict(os.environ, **TOKENS),
                capture_output=True, text=True)
            for line in out.stderr.splitlines():
                if "Collected :" in line:
                    return int(line.split(":")[-1])
            return 0
        bf = instructions()
        idle = instructions()
        row("callgrind: instructions per run, 3,000/source backfill",
            fmt(bf // 6000))
        row("callgrind: instructions of an idle --once (start-up incl.)",
            f"{idle / 1e6:.1f} M")
        # The daemon's idle polls alone: what its loop runs (start-up and
        # exit left out), per request (one a source-poll).
        per_poll = {}
        for label, binary in (("", BIN), (" (before)", before)):
            if binary is None:
                continue
            # each binary on a mirror of its own schema, backfilled first
            bd = os.path.join(cd, "before") if binary is before else cd
            os.makedirs(bd, exist_ok=True)
            run([binary, "-c", conf(bd, capi), "--once"], TOKENS)
            c = conf(bd, capi, "poll_interval = 1s\n")
            n0 = len(capi.requests())
            p = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--toggle-collect=ev_run",
                 f"--callgrind-out-file={cd}/cg.idle.out", binary, "-c", c],
                env=dict(os.environ, **TOKENS), stderr=subprocess.PIPE,
                text=True)
            time.sleep(20)
            p.terminate()
            err = p.communicate(timeout=60)[1]
            polls = len(capi.requests()) - n0
            got = [int(line.split(":")[-1].replace(",", ""))
                   for line in err.splitlines() if "Collected :" in line]
            if got and polls > 0:
                per_poll[label] = got[0] // polls
                row(f"callgrind: instructions per idle source-poll{label}",
                    fmt(got[0] // polls), f"{polls} polls, daemon")
        if len(per_poll) == 2:
            row("idle instructions per source-poll, this binary / before",
                f"{per_poll[''] / per_poll[' (before)']:.3f}",
                "target <= 1.05")
        capi.stop()

    # 8. Rate-limited backfill against a server enforcing 60 per 3 s
    # (Codegen's 60/30s scaled down ten times).
    rapi = fakeapi.FakeAPI(0, 18000, seed=7)  # 180 pages: a whole window after the first 60
    rapi.render_cache = {}
    rapi.rate_limit("cotool", 60, 3.0)
    rapi.start()
    rd = os.path.join(work, "rate")
    os.makedirs(rd)
    with open(os.path.join(rd, "agentsyncd.conf"), "w") as f:
        f.write(f"""[agentsyncd]
database = {rd}/mirror.db
log_level = warning
[source cotool]
type = cotool
base_url = {rapi.url}
token_env = COTOOL_API_KEY
rate_limit = 60/3s
""")
    run([BIN, "-c", os.path.join(rd, "agentsyncd.conf"), "--once"], TOKENS)
    times = [r["time"] for r in rapi.requests("cotool")]
    # whole windows after the first 60 requests (bench_latency.py)
    m = (len(times) - 61) // 60
    used = 60 * m / (times[60 + 60 * m] - times[60]) * 3.0 / 60 \
        if m >= 1 else 0
    row("rate-limited backfill (60/3s): allowance used", f"{used:.1%}",
        "target >= 95%")
    row("rate-limited backfill: 429s earned", fmt(rapi.rejected_429["cotool"]),
        "target 0")
    rapi.stop()
    shutil.rmtree(work)

    # 9. Codegen at a busy organization: requests per poll before and
    # after the re-check schedule (scripts/bench_recheck.py).
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    bench_recheck.main(build, out=lambda line: print(line, flush=True))

    # 10. Latency, the allowance at 1 s a request, bytes written per run:
    # before (a commit built from git) and after (scripts/bench_latency.py).
    import bench_latency  # noqa: E402
    bench_latency.main(build, out=lambda line: print(line, flush=True))

    # 11. The analyst's queries and the views at 1M runs per source
    # (scripts/bench_queries.py).
    import bench_queries  # noqa: E402
    bench_queries.main(build, out=lambda line: print(line, flush=True))

    # 12. Hostile pages: the densest legal page of each shape that was
    # once quadratic in one run's members (scripts/bench_hostile.py; run
    # it alone with: python3 scripts/bench_hostile.py build).
    import bench_hostile  # noqa: E402
    bench_hostile.main(build, out=lambda line: print(line, flush=True))

    # 13. The mirror in PostgreSQL: the same backfill into SQLite, into
    # PostgreSQL on loopback and through a proxy adding 5 ms a round trip
    # (scripts/bench_postgresql.py; a throwaway cluster).
    import bench_postgresql  # noqa: E402
    bench_postgresql.main(build, out=lambda line: print(line, flush=True),
                          n=int(os.environ.get("BENCH_PG_RUNS", "100000")))
    print("done.")


if __name__ == "__main__":
    main()
