# SPDX-License-Identifier: ISC
"""Soak: 10,000 source-polls against ONE daemon process while upstream
changes at random and faults are injected; its resident memory and open
file descriptors stay flat, and afterwards the mirror is exact.

poll_interval has a 1 s minimum, so the config has N_SRC Codegen sources
("cg0".."cg24") and N_SRC Cotool sources ("ct0".."ct24"), every one
pointed at the one fake API, poll_interval 1s, page_size 50 and
full_resync_interval 30s (so full walks, deletions included, run all
along).  Polls are counted as sum(passes) of sync_runs (idle polls fold into one row).

Meanwhile a bounded loop, every STEP seconds, may change upstream (adds,
updates, deletes of both APIs; Codegen runs created now or in the past,
Cotool runs created now) and may queue a fault for one API: HTTP 500 or
503, 429 with Retry-After: 1, a truncated body, a reset connection, a
200 that is not JSON.  Faults are drawn so that about one request in
twenty fails; the daemon retries each.

Flat: VmRSS and the descriptors are sampled at warm-up (WARM_POLLS polls
done and every source through at least one full resync, so that SQLite's
page cache, bounded at 2,000 KiB by default, has seen the whole file),
every 1,000 polls, and after the last poll (the warm-up and end samples
at an instant with no pass running).  The end RSS must be within
RSS_SLACK of the warm-up value: 2 MiB is about what the page cache (its
default bound) plus heap fragmentation could still add after warm-up,
while a leak of 256 bytes a poll over the ~9,000 polls after warm-up
would exceed it.  Descriptors: every descriptor that is not a socket
(database, WAL, shm, epoll, eventfd, stdio) must be the very same set at
warm-up and at the end.  Sockets are counted apart: they are libcurl's
connection cache, whose size follows how many sources happened to poll
at the same instant (4 to 20 in runs of this case, with no trend), so
their number is not a constant of a healthy daemon.  A source has at most
requests_in_flight (4, the default these sources run with) requests in
flight while a pass runs (README "Sync rules"), so more sockets than 4
per source at a sample taken mid-run is a leak, and so is more than one
per source at the warm-up or end sample, taken at an instant with no pass
running (one leaked socket per fault passes the first bound within the
run; one per 200 polls passes the second by the end).  The samples every
1,000 polls are taken at any instant: the one near poll 3,000 falls on
the second wave of full resyncs (full_resync_interval 30s, 50 sources
that started together), where sources have several pages in flight at
once; it has read 7 to 51 sockets in this case's runs.

End: injection stops, queued faults are dropped; every source completes a
full pass begun after that; SIGTERM (exit 0); --once (exit 0); the
mirror of every source equals upstream (deleted runs marked), PRAGMA
integrity_check is ok, no pass is left 'running'.
"""
import datetime as dt
import os
import random
import signal
import sqlite3
import sys
import time

from tests.integration.harness import Rig, fakeapi

SEED = 7
N_SRC = 25                  # sources of each type
POLLS = 10000
WARM_POLLS = 1000
RSS_SLACK = 2 * 1024        # KiB
START_RUNS = 150            # each API
MIN_RUNS, MAX_RUNS = 80, 300
STEP = 0.05                 # seconds a loop turn
MUTATE_P = 0.5              # chance of a change a turn
FAULT_P = 0.2               # chance of a fault a turn (~4 requests)
TIME_LIMIT = 420.0          # seconds to reach POLLS, else fail
QUIET_LIMIT = 120.0         # seconds for the last full passes
IN_FLIGHT = 4               # requests_in_flight's default: a source's
                            # requests at once while a pass runs

COTOOL_STATUSES = ["done", "error", "running", "waiting", "queued",
                   "interrupted"]
CODEGEN_STATUSES = ["COMPLETE", "FAILED", "ACTIVE", "RUNNING", "PAUSED",
                    "CANCELLED", "completed"]


def ts(t=None):
    t = t or dt.datetime.now(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def fds(pid):
    """(sockets, sorted list of what every other descriptor points at)."""
    sockets, other = 0, []
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            target = os.readlink(os.path.join(d, name))
        except FileNotFoundError:
            continue                # closed while we looked
        if target.startswith("socket:"):
            sockets += 1
        else:
            other.append(target)
    return sockets, sorted(other)


class Soak:
    def __init__(self, rig):
        self.rig = rig
        self.api = rig.api
        self.rng = random.Random(SEED)
        self.faults = 0
        self.changes = {"add": 0, "update": 0, "delete": 0}
        self.requests = 0

    def mutate(self):
        api, r = self.api, self.rng
        kind = r.choice(["codegen", "cotool"])
        runs = api.codegen if kind == "codegen" else api.cotool
        n = len(runs)
        op = r.choice(["add", "update", "update", "delete"])
        if n < MIN_RUNS:
            op = "add"
        elif n > MAX_RUNS and op == "add":
            op = "delete"
        rid = r.choice(list(runs)) if n else None
        if op == "add":
            if kind == "codegen":
                if r.random() < 0.7:
                    run = api.add_codegen_now()
                else:       # created in the past: found by a full resync
                    run = api.add_codegen(t=dt.datetime.now(
                        dt.timezone.utc) - dt.timedelta(
                            days=r.uniform(3, 30)))
                api.update_codegen(run["id"],
                                   status=r.choice(CODEGEN_STATUSES))
            else:
                run = api.add_cotool(t=dt.datetime.now(dt.timezone.utc))
                api.update_cotool(run["id"])     # updatedAt: now
        elif op == "update":
            if kind == "codegen":
                api.update_codegen(rid, status=r.choice(CODEGEN_STATUSES),
                                   summary=f"soak {self.changes['update']}")
            else:
                api.update_cotool(rid, status=r.choice(COTOOL_STATUSES),
                                  runTitle=f"soak {self.changes['update']}")
        else:
            (api.delete_codegen if kind == "codegen" else
             api.delete_cotool)(rid)
        self.changes[op] += 1

    def fault(self):
        r = self.rng
        f = r.choice([
            fakeapi.Fault("status", 500),
            fakeapi.Fault("status", 503),
            fakeapi.Fault("status", 429, headers={"Retry-After": "1"}),
            fakeapi.Fault("truncate"),
            fakeapi.Fault("reset"),
            fakeapi.Fault("raw", 200, body=b"<html>Bad gateway</html>",
                          headers={"Content-Type": "text/html"}),
        ])
        self.api.fail(r.choice(["codegen", "cotool"]), f)
        self.faults += 1

    def drop_faults(self):
        with self.api.lock:
            for q in self.api.faults.values():
                self.faults -= len(q)       # never served
                q.clear()

    def count_log(self):
        """Count and forget the request log (the fake scans it on every
        request, and it would grow for minutes)."""
        with self.api.lock:
            self.requests += len(self.api.log)
            self.api.log.clear()


def idle_sample(p, rig, limit=10.0):
    """RSS and fds at an instant when no pass runs: nothing in flight, no
    connection mid-handshake (sync_runs shows no 'running' pass twice in a
    row around the sample)."""
    deadline = time.monotonic() + limit
    best = None
    while time.monotonic() < deadline:
        q = "SELECT count(*) FROM sync_runs WHERE outcome = 'running'"
        if rig.count(q) == 0:
            rss, f = rss_kib(p.pid), fds(p.pid)
            if rig.count(q) == 0:
                return rss, f
            best = (rss, f)
        time.sleep(0.003)
    if best is None:
        raise AssertionError("never saw the daemon between passes")
    return best


def soak_case():
    t_start = time.monotonic()
    with Rig(START_RUNS, START_RUNS, seed=SEED) as rig:
        api = rig.api
        api.server.handle_error = lambda request, client_address: None
        names = [f"cg{i}" for i in range(N_SRC)] + \
            [f"ct{i}" for i in range(N_SRC)]
        kinds = {n: "codegen" if n.startswith("cg") else "cotool"
                 for n in names}
        common = dict(poll_interval="1s", page_size="50",
                      full_resync_interval="30s", rate_limit="20/1s",
                      backoff_initial="50ms", backoff_max="1s")
        rig.write_conf(codegen=common, cotool=common,
                       sources=[f"{kinds[n]}:{n}" for n in names])
        s = Soak(rig)
        p = rig.start()

        def migrated():
            try:
                return rig.count("SELECT count(*) FROM sqlite_master "
                                 "WHERE name = 'sync_runs'") == 1
            except sqlite3.OperationalError:
                return False        # the file is not there yet
        rig.wait_until(migrated, timeout=30, what="the database")
        warm = None
        samples = []                # (polls, RSS KiB, sockets, other fds)
        polls = 0
        deadline = time.monotonic() + TIME_LIMIT
        next_count = 0.0
        turns = 0
        max_turns = int(TIME_LIMIT / STEP) + 1
        while turns < max_turns:
            turns += 1
            if p.poll() is not None:
                raise AssertionError(f"the daemon exited ({p.returncode}) "
                                     f"after {polls} polls: "
                                     f"{rig.stderr_of(p)[-2000:]}")
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"only {polls} polls in "
                                     f"{TIME_LIMIT:.0f}s")
            if now >= next_count:
                next_count = now + 1.0
                # idle polls fold into one row: count passes
                polls = rig.count("SELECT sum(passes) FROM sync_runs")
                if len(api.log) > 2000:
                    s.count_log()
                if warm is None and polls >= WARM_POLLS and rig.count(
                        "SELECT count(DISTINCT source) FROM sync_runs "
                        "WHERE mode = 'full' AND outcome = 'succeeded'"
                        ) == len(names):
                    warm = (polls,) + idle_sample(p, rig)
                if polls >= len(samples) * 1000 + 1000:
                    rss, (sock, other) = rss_kib(p.pid), fds(p.pid)
                    samples.append((polls, rss, sock, len(other)))
                    if os.environ.get("SOAK_DEBUG"):
                        print(f"soak: {samples[-1]} {other}",
                              file=sys.stderr, flush=True)
                if polls >= POLLS:
                    break
            if s.rng.random() < MUTATE_P:
                s.mutate()
            if s.rng.random() < FAULT_P:
                s.fault()
            time.sleep(STEP)
        else:
            raise AssertionError(f"loop bound hit after {polls} polls")
        if warm is None:
            raise AssertionError("no warm-up sample: some source never "
                                 "completed a full resync")
        end = (polls,) + idle_sample(p, rig)
        soak_s = time.monotonic() - t_start

        # Quiet: no more faults or changes; every source does one more
        # full pass, which also marks what was deleted upstream.
        s.drop_faults()
        quiet = ts()
        q_deadline = time.monotonic() + QUIET_LIMIT
        while True:
            done = rig.count("SELECT count(DISTINCT source) FROM sync_runs "
                             "WHERE mode = 'full' AND outcome = "
                             "'succeeded' AND started_at >= ?", quiet)
            if done == len(names):
                break
            if p.poll() is not None:
                raise AssertionError(f"the daemon exited ({p.returncode})"
                                     f": {rig.stderr_of(p)[-2000:]}")
            if time.monotonic() > q_deadline:
                raise AssertionError(f"only {done} of {len(names)} sources "
                                     f"completed a full pass within "
                                     f"{QUIET_LIMIT:.0f}s of quiet")
            time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        if rc != 0:
            raise AssertionError(f"SIGTERM: exit status {rc}: "
                                 f"{rig.stderr_of(p)[-2000:]}")
        s.count_log()
        problems = rig.settled_problems(names, kinds)
        if problems:
            raise AssertionError(f"{len(problems)} problems: " +
                                 "; ".join(problems[:10]))
        running = rig.count("SELECT count(*) FROM sync_runs "
                            "WHERE outcome = 'running'")
        if running:
            raise AssertionError(f"{running} passes left 'running'")
        failed, retries, throttled = rig.sql(
            "SELECT sum(outcome = 'failed'), sum(retries), sum(http_429) "
            "FROM sync_runs")[0]
        if not retries or not throttled:
            raise AssertionError(f"the faults did not reach the daemon: "
                                 f"{retries} retries, {throttled} 429s")

        w_polls, w_rss, (w_sock, w_other) = warm
        e_polls, e_rss, (e_sock, e_other) = end
        socks = [x[2] for x in samples] + [w_sock, e_sock]
        figures = (f"{e_polls} polls in {soak_s:.0f}s; RSS {w_rss} KiB "
                   f"at poll {w_polls} -> {e_rss} KiB "
                   f"({e_rss - w_rss:+d}); fds {len(w_other) + w_sock} "
                   f"({w_sock} sockets) -> {len(e_other) + e_sock} "
                   f"({e_sock} sockets), non-socket {len(w_other)} -> "
                   f"{len(e_other)}, sockets {min(socks)}..{max(socks)} "
                   f"over {len(samples)} samples; {s.faults} faults "
                   f"served ({retries} retries, {throttled} 429s), "
                   f"{sum(s.changes.values())} changes, {failed} passes "
                   f"failed, {s.requests} requests; mirror exact")
        if e_rss - w_rss > RSS_SLACK:
            raise AssertionError(f"RSS grew by {e_rss - w_rss} KiB "
                                 f"(> {RSS_SLACK}): {figures}")
        if w_other != e_other:
            raise AssertionError(f"descriptors changed: {w_other} -> "
                                 f"{e_other}; samples (polls, RSS, "
                                 f"sockets, other fds): {samples}")
        if max(w_sock, e_sock) > len(names):
            raise AssertionError(f"sockets {w_sock} at warm-up, {e_sock} "
                                 f"at the end, with no pass running: more "
                                 f"than one per source; samples (polls, "
                                 f"RSS, sockets, other fds): {samples}")
        if max(socks) > IN_FLIGHT * len(names):
            raise AssertionError(f"sockets up to {max(socks)}: more than "
                                 f"{IN_FLIGHT} per source; samples (polls, "
                                 f"RSS, sockets, other fds): {samples}")
    return figures


CASES = [("10,000 polls, one process: RSS and fds flat", soak_case)]
