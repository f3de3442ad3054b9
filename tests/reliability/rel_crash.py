# SPDX-License-Identifier: ISC
"""Crash safety: SIGKILL the real daemon at 50 seeded random instants spread
over three phases, restarting it after each kill, then one --once.

Phases (one Codegen and one Cotool source, page_size 100, rate_limit
1/40ms, i.e. 25 requests/s each without a burst, so that a walk lasts
seconds and a kill lands inside it; poll_interval 10m, so that a living
daemon makes no poll but the one it starts with):

  A  backfill of N_CG Codegen and N_CT Cotool runs;
  B  upstream changes, all made before the phase's first start: U_CT
     Cotool runs updated and A_CT created now, A_CG Codegen runs created
     in the last hour (finished but the newest few), U_CG old Codegen
     runs updated and D_CG / D_CT old runs deleted; one incremental walk
     takes in what it can see (the Codegen updates and the deletions are
     for the full resync: Codegen is walked by creation, deletions are
     only found by a complete walk);
  C  a full resync (full_resync_interval = FULL_EVERY, and the phase waits
     until the last complete walk is that old), no upstream change.

A phase ends when both sources have finished its walk; when its share of
kills is spent first, one more life finishes the walk and ends with
SIGTERM (not counted as a kill).  Kill instants are seeded draws scaled to
what is left of the walk, so that the kills spread over it.  After each
kill: the database passes PRAGMA quick_check, no run is duplicated, no
committed walk offset moved back, the run count never fell.

Pages fetched are every request the fake API logged.  The minimum needed:

  backfill      cg(N_CG) + ct(N_CT)
  changes       ceil(A_CG / 99) + ceil((U_CT + A_CT + 1) / 100)
  full resync   cg(N_CG') + ct(N_CT')     (N' = upstream size in phase C)
  starts        + 1 per source per daemon start (the final --once
                included) that found that source's walk for its phase
                already complete: any start polls each source once

with cg(n) = ceil((n - 1) / 99) (pages overlap by one run) and
ct(n) = ceil(n / 100).  The change walks must take in every changed run
and one run already mirrored, which tells them to stop: A_CG + 1 runs in
Codegen order (overlapping pages), U_CT + A_CT + 1 in Cotool update order.
A kill may cost, per source, what the daemon had not committed: a backfill
or full resync commits its pages in batches of at most 1 s (README "Sync
rules", Batches), 25 pages at this rate, plus the 4 requests in flight
(requests_in_flight): 50 kills may add up to 50 x 2 x 29 requests.  The
case asserts total <= minimum + that (a walk that started over after a
kill would cost 100 pages a source a kill, and fail it), and prints the
ratio.  Before batches and requests in flight a kill cost the page in
flight, and the measured ratio was about 1.3x.
"""
import datetime as dt
import math
import os
import random
import signal
import sqlite3
import time

from tests.integration.harness import Rig

SEED = 20251125
N_CG = 10000
N_CT = 10000
U_CG, U_CT = 300, 1500          # updates: old Codegen, any Cotool
A_CG, A_CT = 2000, 500          # new runs
D_CG, D_CT = 50, 50             # deletions
KILLS = (("backfill", 20), ("changes", 12), ("full", 18))
RATE = 25.0                     # requests/s per source: rate_limit 1/40ms
FULL_EVERY = 45                 # seconds: full_resync_interval in phase C
PHASE_LIMIT = 120.0             # seconds, any phase
CASE_LIMIT = 240.0              # seconds, the whole case

TERMINAL_CG = ["COMPLETE", "FAILED", "CANCELLED", "completed", "ERROR",
               "STOPPED"]
COTOOL_STATUSES = ["done", "error", "running", "waiting", "queued",
                   "interrupted"]


def cg_pages(n):
    return max(1, math.ceil((n - 1) / 99))


def ct_pages(n):
    return max(1, math.ceil(n / 100))


def ts(t=None):
    """The daemon's timestamp form, for comparisons as text."""
    t = t or dt.datetime.now(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_ts(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=dt.timezone.utc)


class Crash:
    def __init__(self, rig):
        self.rig = rig
        self.rng = random.Random(SEED)
        self.kills = 0
        self.idle_starts = 0        # (start, source) with nothing to do
        self.sigterms = 0
        self.per_phase = []         # kills that landed in each phase
        self.max_runs = 0
        self.offsets = {}           # source -> last committed offset
        self.t0 = time.monotonic()

    # -- reading the mirror ----------------------------------------------
    def state(self):
        if not os.path.exists(self.rig.db):
            return {}               # killed before it created the file
        try:
            self.rig.sql("SELECT 1 FROM sync_state LIMIT 1")
        except sqlite3.OperationalError as e:
            if "no such table" not in str(e):
                raise
            return {}               # killed before the first migration
        rows = self.rig.sql("SELECT source, backfill_done, walk_mode, "
                            "walk_offset, last_success_at, "
                            "last_full_resync_at FROM sync_state")
        return {r[0]: r for r in rows}

    def done(self, phase, since, src):
        st = self.state().get(src)
        if st is None or st[2] is not None:
            return False
        if phase == "backfill":
            return st[1] == 1
        if phase == "changes":
            return (st[4] or "") >= since
        return (st[5] or "") >= since

    def all_done(self, phase, since):
        return all(self.done(phase, since, s) for s in ("codegen", "cotool"))

    def check_after_kill(self, phase):
        rig = self.rig
        if not os.path.exists(rig.db):
            return
        qc = rig.sql("PRAGMA quick_check")
        if qc != [("ok",)]:
            raise AssertionError(f"after kill {self.kills} ({phase}): "
                                 f"quick_check says {qc[:5]}")
        if not rig.sql("SELECT 1 FROM sqlite_master WHERE name = 'runs'"):
            if self.max_runs == 0:
                return              # killed before the first migration
            raise AssertionError(f"after kill {self.kills} ({phase}): "
                                 f"the runs table is gone")
        dups = rig.sql("SELECT source, external_id, count(*) FROM runs "
                       "GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5")
        if dups:
            raise AssertionError(f"after kill {self.kills} ({phase}): "
                                 f"duplicated runs {dups}")
        n = rig.count("SELECT count(*) FROM runs")
        if n < self.max_runs:
            raise AssertionError(f"after kill {self.kills} ({phase}): "
                                 f"runs fell from {self.max_runs} to {n}")
        self.max_runs = n
        for src, st in self.state().items():
            if st[2] is None:
                self.offsets.pop(src, None)
                continue
            prev = self.offsets.get(src)
            if prev is not None and prev[0] == st[2] and st[3] < prev[1]:
                raise AssertionError(
                    f"after kill {self.kills} ({phase}): {src}'s {st[2]} "
                    f"walk went back from offset {prev[1]} to {st[3]}")
            self.offsets[src] = (st[2], st[3])

    # -- lives --------------------------------------------------------------
    def start(self, phase, since):
        for src in ("codegen", "cotool"):
            if self.done(phase, since, src):
                self.idle_starts += 1
        return self.rig.start()

    def alive_or_fail(self, p, what):
        if p.poll() is not None:
            raise AssertionError(f"the daemon exited by itself ({what}, "
                                 f"status {p.returncode}): "
                                 f"{self.rig.stderr_of(p)[-1500:]}")

    def pages_left(self, phase, since, total):
        st = self.state()
        left = 0
        for src in ("codegen", "cotool"):
            if self.done(phase, since, src):
                continue
            s = st.get(src)
            off = s[3] if s is not None and s[2] is not None else 0
            left = max(left, total[src] - (off or 0))
        return max(left, 0) / 100.0

    def phase(self, phase, kills, total, since):
        """kills SIGKILLs at random instants while the phase's walk runs;
        returns the kills not used (the walk ended first)."""
        deadline = time.monotonic() + PHASE_LIMIT
        self.per_phase.append(0)
        self.offsets.clear()
        while kills > 0:
            if time.monotonic() > deadline or \
                    time.monotonic() - self.t0 > CASE_LIMIT:
                raise AssertionError(f"{phase}: out of time after "
                                     f"{self.kills} kills")
            # Aim to use about 3/4 of what is left over the kills left;
            # the draw is uniform over twice that share (and the start).
            share = 0.75 * self.pages_left(phase, since, total) / kills
            life = self.rng.random() * (0.03 + 2 * share / RATE)
            p = self.start(phase, since)
            time.sleep(life)
            self.alive_or_fail(p, f"{phase}, before kill {self.kills + 1}")
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
            self.kills += 1
            self.per_phase[-1] += 1
            kills -= 1
            self.check_after_kill(phase)
            if self.all_done(phase, since):
                return kills
        p = self.start(phase, since)
        while not self.all_done(phase, since):
            if time.monotonic() > deadline:
                p.kill()
                p.wait(timeout=10)
                raise AssertionError(f"{phase}: the walk did not finish "
                                     f"within {PHASE_LIMIT:.0f}s; state "
                                     f"{self.state()}")
            self.alive_or_fail(p, f"{phase}, finishing")
            time.sleep(0.02)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=30)
        self.sigterms += 1
        if rc != 0:
            raise AssertionError(f"{phase}: SIGTERM exit status {rc}: "
                                 f"{self.rig.stderr_of(p)[-1500:]}")
        return 0


def mutate(api, rng):
    """Phase B's upstream changes, spread over time (a burst of updates in
    one millisecond would make ties of updatedAt that no real upstream
    makes)."""
    cg = [r["id"] for r in api.codegen_sorted()]
    ct = [r["id"] for r in api.cotool_sorted()]
    rng.shuffle(cg)
    rng.shuffle(ct)
    for rid in cg[:D_CG]:
        api.delete_codegen(rid)
    for rid in ct[:D_CT]:
        api.delete_cotool(rid)
    for rid in cg[D_CG:D_CG + U_CG]:
        api.update_codegen(rid, status=rng.choice(TERMINAL_CG),
                           summary="changed while the daemon was down")
    for i, rid in enumerate(ct[D_CT:D_CT + U_CT]):
        api.update_cotool(rid, status=rng.choice(COTOOL_STATUSES),
                          runTitle=f"re-opened {i}")
        if i % 5 == 4:
            time.sleep(0.001)
    now = dt.datetime.now(dt.timezone.utc)
    for i in range(A_CT):
        run = api.add_cotool(t=now)
        api.update_cotool(run["id"])        # updatedAt = now
        if i % 5 == 4:
            time.sleep(0.001)
    # Codegen: one a second over the last A_CG seconds; the newest five
    # unfinished (the next polls fetch those again: refresh_window).
    for i in range(A_CG):
        run = api.add_codegen(t=now - dt.timedelta(seconds=A_CG - i))
        status = "ACTIVE" if i >= A_CG - 5 else rng.choice(TERMINAL_CG)
        api.update_codegen(run["id"], status=status)


def crash_case():
    t_start = time.monotonic()
    with Rig(N_CG, N_CT, seed=SEED) as rig:
        api = rig.api
        # A kill resets the connection under a server thread; that is the
        # point here, not worth a traceback on stderr.
        api.server.handle_error = lambda request, client_address: None
        common = dict(rate_limit="1/40ms", poll_interval="10m",
                      backoff_initial="50ms", backoff_max="1s")
        rig.write_conf(codegen=dict(common, full_resync_interval="1d"),
                       cotool=dict(common, full_resync_interval="1d"))
        c = Crash(rig)
        minimum = {"codegen": 0, "cotool": 0}
        carry = 0
        for phase, share in KILLS:
            kills = share + carry
            if phase == "changes":
                mutate(api, random.Random(SEED + 1))
                minimum["codegen"] += math.ceil(A_CG / 99)
                minimum["cotool"] += math.ceil((U_CT + A_CT + 1) / 100)
                total = {"codegen": A_CG + 1, "cotool": U_CT + A_CT + 1}
            else:
                n_cg, n_ct = len(api.codegen), len(api.cotool)
                minimum["codegen"] += cg_pages(n_cg)
                minimum["cotool"] += ct_pages(n_ct)
                total = {"codegen": n_cg, "cotool": n_ct}
            if phase == "full":
                # Due when the last complete walk is FULL_EVERY old; not
                # again before the phase ends (it takes far less).
                st = c.state()
                last = max(parse_ts(st[s][5]) for s in st)
                wait = (last + dt.timedelta(seconds=FULL_EVERY + 1) -
                        dt.datetime.now(dt.timezone.utc)).total_seconds()
                if wait > 0:
                    time.sleep(wait)
                rig.write_conf(
                    codegen=dict(common,
                                 full_resync_interval=f"{FULL_EVERY}s"),
                    cotool=dict(common,
                                full_resync_interval=f"{FULL_EVERY}s"))
            since = ts()
            carry = c.phase(phase, kills, total, since)
        # The final pass: nothing to resume, nothing new.
        c.idle_starts += 2
        problems = rig.settled_problems()
        if problems:
            raise AssertionError("after the final --once: " +
                                 "; ".join(problems[:10]))
        running = rig.count("SELECT count(*) FROM sync_runs "
                            "WHERE outcome = 'running'")
        if running:
            raise AssertionError(f"{running} passes still 'running'")
        gone = rig.count("SELECT count(*) FROM runs WHERE "
                         "deleted_upstream_at IS NOT NULL")
        if gone != D_CG + D_CT:
            raise AssertionError(f"{gone} runs marked gone upstream, "
                                 f"want {D_CG + D_CT}")
        if c.kills != sum(k for _, k in KILLS):
            raise AssertionError(f"only {c.kills} kills landed before the "
                                 f"walks ended")
        fetched = {a: len(api.requests(a)) for a in minimum}
        least = sum(minimum.values()) + c.idle_starts
        total = sum(fetched.values())
        ratio = total / least
        per_kill = 2 * (RATE * 1.0 + 4)     # a batch and what is in flight
        if total > least + c.kills * per_kill:
            raise AssertionError(
                f"{total} pages fetched for a minimum of {least} plus "
                f"{c.kills} kills x {per_kill:.0f} "
                f"({ratio:.2f}x; codegen {fetched['codegen']} / "
                f"{minimum['codegen']}, cotool {fetched['cotool']} / "
                f"{minimum['cotool']}, idle starts {c.idle_starts})")
        # None: the answer could not be written, its reader was killed.
        bad = [r for r in api.requests() if r["status"] not in (200, None)]
        if bad:
            raise AssertionError(f"{len(bad)} requests answered "
                                 f"{bad[0]['status']}")
    return (f"{c.kills} kills ({'/'.join(map(str, c.per_phase))}; "
            f"+{c.sigterms} SIGTERM), pages {total} vs "
            f"minimum {least} = {ratio:.2f}x (cg {fetched['codegen']}/"
            f"{minimum['codegen']}, ct {fetched['cotool']}/"
            f"{minimum['cotool']}, +{c.idle_starts} start polls), "
            f"integrity ok, 0 dups, {time.monotonic() - t_start:.0f}s")


CASES = [("kill -9 at 50 instants: backfill, changes, full resync",
          crash_case)]
