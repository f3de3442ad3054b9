#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make bench, section 13: the same backfill of N + N runs (default
100,000 + 100,000) into SQLite, into PostgreSQL on loopback, and into
PostgreSQL through scripts/pgproxy.py, which adds RTT ms to every round
trip (a server on another host), side by side in one run: wall and CPU
time, runs per second, peak RSS of the daemon.

Targets (issue 28): PostgreSQL on loopback within 1.5x of SQLite's time,
+5 ms within 1.5x of loopback; peak RSS at most 16 MiB.

The cluster is tests/pgcluster.py's throwaway one (never the system's).
Run it alone with: python3 scripts/bench_postgresql.py build [N] [RTT_MS]"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fakeapi  # noqa: E402
import pgcluster  # noqa: E402

import bench  # noqa: E402


def _conf(d, api, database):
    c = bench.conf(d, api)
    with open(c) as f:
        text = f.read()
    with open(c, "w") as f:
        f.write(text.replace(f"database = {d}/mirror.db",
                             f"database = {database}"))
    return c


def _backfill(api, d, database, binary):
    api.clear_log()
    c = _conf(d, api, database)
    wall, cpu, rss, rc = bench.run([binary, "-c", c, "--once"],
                                   bench.TOKENS)
    if rc != 0:
        raise AssertionError(f"backfill into {database} failed ({rc})")
    return {"wall": wall, "cpu": cpu, "rss": rss,
            "requests": len(api.requests())}


def main(build, out=print, n=100000, rtt_ms=5.0):
    binary = os.path.join(ROOT, "agentsyncd")
    why = pgcluster.available()
    if why:
        out(f"  PostgreSQL: skipped ({why})")
        return None
    out(f"13. PostgreSQL: backfill of {n:,} + {n:,} runs, SQLite vs "
        f"PostgreSQL on loopback vs PostgreSQL +{rtt_ms:g} ms a round trip")
    d = tempfile.mkdtemp(prefix="bench-pg-")
    cluster = pgcluster.Cluster()
    proxy = None
    try:
        t0 = time.monotonic()
        api = fakeapi.FakeAPI(n, n, seed=3).start()
        out(f"  (data set generated in {time.monotonic() - t0:.1f} s)")
        warm = tempfile.mkdtemp(dir=d)
        _backfill(api, warm, os.path.join(warm, "warm.db"), binary)
        res = {}
        lite = tempfile.mkdtemp(dir=d)
        res["sqlite"] = _backfill(api, lite, os.path.join(lite, "m.db"),
                                  binary)
        cluster.createdb("loop")
        res["postgresql"] = _backfill(api, tempfile.mkdtemp(dir=d),
                                      cluster.uri("loop"), binary)
        port = pgcluster._free_port()
        proxy = subprocess.Popen([sys.executable,
                                  os.path.join(ROOT, "scripts",
                                               "pgproxy.py"),
                                  str(port), str(cluster.port),
                                  str(rtt_ms)])
        if not pgcluster.wait_port(port):
            raise AssertionError("the proxy did not listen")
        cluster.createdb("far")
        far = cluster.uri("far").replace(f":{cluster.port}/", f":{port}/")
        res["remote"] = _backfill(api, tempfile.mkdtemp(dir=d), far, binary)
        label = {"sqlite": "SQLite", "postgresql": "PostgreSQL loopback",
                 "remote": f"PostgreSQL +{rtt_ms:g} ms"}
        for k, r in res.items():
            out(f"  backfill {label[k]:<22} {r['wall']:8.1f} s wall "
                f"{r['cpu']:7.1f} s CPU {2 * n / r['wall']:9,.0f} runs/s "
                f"peak RSS {r['rss'] / 1024:5.1f} MiB "
                f"({r['requests']:,} requests)")
        lo = res["postgresql"]["wall"] / res["sqlite"]["wall"]
        far_x = res["remote"]["wall"] / res["postgresql"]["wall"]
        out(f"  loopback / SQLite: {lo:.2f}x (target 1.5x); "
            f"+{rtt_ms:g} ms / loopback: {far_x:.2f}x (target 1.5x)")
        api.stop()
        return res
    finally:
        if proxy is not None:
            proxy.kill()
            proxy.wait(10)
        cluster.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build",
         n=int(sys.argv[2]) if len(sys.argv) > 2 else 100000,
         rtt_ms=float(sys.argv[3]) if len(sys.argv) > 3 else 5.0)
