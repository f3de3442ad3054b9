# SPDX-License-Identifier: ISC
"""Storage faults: the disk fills up under the daemon, and the database
cannot be written at all.

Each case puts the database on a tmpfs it mounts itself (root only) and
always unmounts it.  What must hold:

- disk full: a log line naming the problem ("database or disk is full"),
  no crash, no corruption (PRAGMA integrity_check), the page in flight not
  half-written (the mirror holds exactly the runs the saved cursor says it
  walked, byte for byte), and once space is back the walk completes and the
  mirror is exact;
- a database the daemon cannot write (read-only file system, or a file
  owned by another user): a clear error naming it, the file untouched, and
  an exit with a non-zero status at start-up (systemd's Restart=on-failure
  then retries and `systemctl status` shows the failure), rather than a
  process that reports READY and fails every second without end; once the
  file is writable again, the daemon completes and the mirror is exact.
"""
import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import tempfile
import time

from tests.integration.harness import BIN, Rig
from tests.reliability import Skip, stop, wait_for

FULL_RE = re.compile(r"database or disk is full", re.I)
# What names an unwritable database: SQLite's words or the errno's.
RO_RE = re.compile(r"read-?only|Read-only file system|Permission denied|"
                   r"EROFS|EACCES", re.I)
NOBODY = 65534
START_EXIT_WAIT = 10.0      # seconds a daemon gets to give up at start-up


# -- helpers -----------------------------------------------------------------

def _run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(size_k, mode=0o755):
    """A fresh tmpfs of size_k KiB; always unmounted."""
    if os.geteuid() != 0:
        raise Skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tempfile.mkdtemp(prefix="agentsyncd-rel-tmpfs-")
    _run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k,mode={mode:o}",
          "tmpfs", mnt])
    try:
        yield mnt
    finally:
        err = ""
        for _ in range(20):
            r = subprocess.run(["umount", mnt], capture_output=True,
                               text=True, timeout=30)
            if r.returncode == 0:
                break
            err = r.stderr.strip()
            time.sleep(0.25)
        else:
            subprocess.run(["umount", "-l", mnt], timeout=30)
            raise AssertionError(f"could not unmount {mnt}: {err}")
        os.rmdir(mnt)


def remount(mnt, opts):
    _run(["mount", "-o", f"remount,{opts}", mnt])


def kill(p):
    """SIGKILL a daemon we started (the storage cases end it abruptly)."""
    if p is not None:
        stop(p, expect=None, sig=signal.SIGKILL)


def ro_connect(db):
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def integrity(db):
    con = ro_connect(db)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()[0][0]
    finally:
        con.close()


def digest(paths):
    h = hashlib.sha256()
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                h.update(f.read())
        h.update(b"\0")
    return h.hexdigest()


def db_files(db):
    return [db, db + "-wal", db + "-shm"]


def upstream_order(rig, src):
    """Upstream runs in backfill order (newest created first), as
    (external id, run)."""
    if src == "codegen":
        return [(str(r["id"]), r) for r in rig.api.codegen_sorted()]
    return [(r["id"], r) for r in rig.api.cotool_sorted("createdAt", True)]


def prefix_problems(rig, sources=("codegen", "cotool")):
    """In one read transaction: each source's mirror holds exactly the runs
    its saved cursor says the backfill walked (the first walk_offset runs
    upstream, newest first), each byte for byte, with its pull request
    links.  A half-written page would show as runs beyond the cursor, a
    cursor beyond the runs, or a run without its links.  Returns
    (problems, {source: walk offset or 'done'})."""
    con = ro_connect(rig.db)
    problems, where = [], {}
    try:
        con.execute("BEGIN")
        for src in sources:
            st = con.execute("SELECT walk_mode, walk_offset, backfill_done "
                             "FROM sync_state WHERE source = ?",
                             (src,)).fetchall()
            up = upstream_order(rig, src)
            if not st or (st[0][0] is None and not st[0][2]):
                n = 0
            elif st[0][2] and st[0][0] is None:
                n = len(up)
            elif st[0][0] == "backfill":
                n = st[0][1]
            else:
                problems.append(f"{src}: unexpected walk {st[0]}")
                continue
            where[src] = "done" if n == len(up) else n
            want = dict(up[:n])
            rows = con.execute("SELECT external_id, raw_json FROM runs "
                               "WHERE source = ?", (src,)).fetchall()
            have = {r[0]: r[1] for r in rows}
            if len(have) != len(rows):
                problems.append(f"{src}: duplicated external ids")
            if set(have) - set(want):
                problems.append(f"{src}: {len(set(have) - set(want))} runs "
                                f"beyond the cursor ({n})")
            if set(want) - set(have):
                problems.append(f"{src}: {len(set(want) - set(have))} runs "
                                f"before the cursor ({n}) missing")
            bad = [k for k in want if k in have and
                   json.loads(have[k]) != want[k]]
            if bad:
                problems.append(f"{src}: {len(bad)} runs differ "
                                f"(first {bad[0]})")
            if src == "codegen":
                links = set(con.execute(
                    "SELECT r.external_id, p.external_id FROM "
                    "run_pull_requests l JOIN runs r ON r.id = l.run_id "
                    "JOIN pull_requests p ON p.id = l.pull_request_id "
                    "WHERE r.source = 'codegen'").fetchall())
                wl = {(k, str(p["id"])) for k, r in want.items()
                      for p in (r.get("github_pull_requests") or [])}
                if links != wl:
                    problems.append("codegen: pull request links do not "
                                    "match the runs mirrored")
        con.rollback()
    finally:
        con.close()
    return problems, where


def count_lines(text, rx):
    return sum(1 for line in text.splitlines() if rx.search(line))


def fill(path, free_left):
    """Write a filler file until the file system has about free_left bytes
    free (0: until it is full)."""
    st = os.statvfs(os.path.dirname(path))
    want = max(st.f_bavail * st.f_frsize - free_left, 0)
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        try:
            while want > 0:
                n = min(len(chunk), want)
                f.write(chunk[:n])
                want -= n
            if free_left == 0:
                while True:
                    f.write(chunk[:4096])
        except OSError:
            pass


def add_new(rig, n):
    """n runs per source created now: the next poll must fetch them.  (A
    Codegen run without created_at sorts oldest, where an incremental poll
    rightly never looks: give it one.)"""
    now = datetime.datetime.now(datetime.timezone.utc)
    for _ in range(n):
        rig.api.add_cotool(t=now)
        r = rig.api.add_codegen_now()
        if not r.get("created_at"):
            rig.api.update_codegen(r["id"], created_at=now.strftime(
                "%Y-%m-%dT%H:%M:%SZ"))


def status_of(rig):
    return {r[0]: r[1:] for r in rig.sql(
        "SELECT source, backfill_done, walk_mode, walk_offset FROM "
        "sync_state")} if os.path.exists(rig.db) else {}


# -- disk full --------------------------------------------------------------

def disk_full_daemon_recovers():
    """The running daemon fills a 3 MiB tmpfs part-way through two
    backfills, goes on retrying, and completes when the file system is
    grown (mount -o remount,size=...)."""
    with tmpfs(3072) as mnt, Rig(3000, 3000, seed=11) as rig:
        db = os.path.join(mnt, "mirror.db")
        rig.write_conf(database=db)
        rig.db = db
        p = rig.start()
        log = lambda: rig.stderr_of(p)  # noqa: E731
        wait_for(lambda: FULL_RE.search(log()), 60,
                 "the disk-full error in the log", p, log)
        t_full = time.monotonic()
        # Let it retry, give up on the pass and come back a few times.
        wait_for(lambda: "giving up on this pass" in log() and
                 time.monotonic() - t_full > 4, 30,
                 "the pass to be given up", p, log)
        if p.poll() is not None:
            raise AssertionError(f"daemon exited {p.returncode} on a full "
                                 f"disk: {log()[-800:]}")
        ic = integrity(db)
        if ic != "ok":
            raise AssertionError(f"integrity_check while full: {ic}")
        problems, where = prefix_problems(rig)
        if problems:
            raise AssertionError("mirror inconsistent with its cursor "
                                 "while full: " + "; ".join(problems))
        if all(v == "done" for v in where.values()):
            raise AssertionError(f"the disk did not fill part-way: {where}")
        full_lines = count_lines(log(), FULL_RE)
        remount(mnt, "size=65536k")
        t0 = time.monotonic()
        wait_for(lambda: all(v[0] == 1 and v[1] is None
                             for v in status_of(rig).values()) and
                 len(status_of(rig)) == 2, 60,
                 "both backfills to complete after the remount", p, log)
        t_rec = time.monotonic() - t0
        # A pass after the backfill ends cleanly too.
        n_ok = rig.count("SELECT sum(passes) FROM sync_runs WHERE "
                         "outcome = 'succeeded'")
        wait_for(lambda: rig.count("SELECT sum(passes) FROM sync_runs WHERE "
                                   "outcome = 'succeeded'") >= n_ok + 2,
                 20, "incremental passes after recovery", p, log)
        problems = rig.mirror_problems()
        if problems:
            raise AssertionError("mirror not exact after recovery: "
                                 + "; ".join(problems[:5]))
        # How the episode is recorded: a pass that gave up while the disk
        # was full could not always write its outcome; the next pass then
        # closes it as 'interrupted', without the error.
        outcomes = dict(rig.sql("SELECT outcome, count(*) FROM sync_runs "
                                "WHERE outcome NOT IN ('succeeded') "
                                "GROUP BY outcome"))
        p.terminate()
        rc = p.wait(timeout=10)
        if rc != 0:
            raise AssertionError(f"daemon exited {rc} on SIGTERM")
        ic = integrity(db)
        if ic != "ok":
            raise AssertionError(f"integrity_check at the end: {ic}")
        # SQLite rolls back by itself on SQLITE_FULL: a second ROLLBACK
        # only logged a misleading error (27 such lines before the fix).
        rollback_noise = log().count("cannot rollback - no transaction")
        if rollback_noise:
            raise AssertionError(f"{rollback_noise} misleading 'cannot "
                                 f"rollback' lines after disk-full writes")
        return (f"full at codegen {where['codegen']}/3000, cotool "
                f"{where['cotool']}/3000 runs; {full_lines} 'disk is full' "
                f"lines ({rollback_noise} 'cannot rollback' lines); "
                f"passes not succeeded {outcomes}; complete {t_rec:.1f}s "
                f"after remount; mirror exact")


def disk_full_once_then_rerun():
    """--once on a file system with ~2.5 MiB left (a filler file takes the
    rest) exits 75 with the error logged; after the filler is deleted a
    second --once completes."""
    with tmpfs(65536) as mnt, Rig(3000, 3000, seed=12) as rig:
        db = os.path.join(mnt, "mirror.db")
        rig.write_conf(database=db)
        rig.db = db
        filler = os.path.join(mnt, "filler")
        fill(filler, 2560 * 1024)
        t0 = time.monotonic()
        rc = rig.once(timeout=120)
        dt1 = time.monotonic() - t0
        err = rig.last_stderr
        if rc != 75:
            raise AssertionError(f"--once on a full disk exited {rc}, want "
                                 f"75: {err[-800:]}")
        if not FULL_RE.search(err):
            raise AssertionError(f"no disk-full error in the log: "
                                 f"{err[-800:]}")
        ic = integrity(db)
        if ic != "ok":
            raise AssertionError(f"integrity_check after the failed --once: "
                                 f"{ic}")
        problems, where = prefix_problems(rig)
        if problems:
            raise AssertionError("mirror inconsistent with its cursor: "
                                 + "; ".join(problems))
        if all(v == "done" for v in where.values()):
            raise AssertionError(f"the disk did not fill part-way: {where}")
        os.unlink(filler)
        rc = rig.once(timeout=120)
        if rc != 0:
            raise AssertionError(f"--once after freeing space exited {rc}: "
                                 f"{rig.last_stderr[-800:]}")
        resumed = "resuming backfill walk" in rig.last_stderr
        problems = rig.mirror_problems()
        if problems:
            raise AssertionError("mirror not exact: " + "; ".join(problems))
        ic = integrity(db)
        if ic != "ok":
            raise AssertionError(f"integrity_check at the end: {ic}")
        return (f"--once exit 75 after {dt1:.1f}s at codegen "
                f"{where['codegen']}, cotool {where['cotool']}; rerun exit 0"
                f"{', resumed' if resumed else ''}; mirror exact")


def disk_full_at_start():
    """No space at all when the database is created: the daemon exits 1
    naming the problem, leaves no half-migrated schema, and starts cleanly
    once there is space."""
    with tmpfs(8192) as mnt, Rig(200, 200, seed=13) as rig:
        db = os.path.join(mnt, "mirror.db")
        rig.write_conf(database=db)
        rig.db = db
        filler = os.path.join(mnt, "filler")
        fill(filler, 0)
        p = rig.start()
        try:
            rc = p.wait(timeout=START_EXIT_WAIT)
        except subprocess.TimeoutExpired:
            rc = None
        log = rig.stderr_of(p)
        kill(p)
        if rc is None:
            raise AssertionError(f"daemon still running {START_EXIT_WAIT}s "
                                 f"after starting on a full disk: "
                                 f"{log[-600:]}")
        if rc == 0 or not FULL_RE.search(log):
            raise AssertionError(f"exit {rc} on a full disk, log: "
                                 f"{log[-600:]}")
        version, tables = None, None
        if os.path.exists(db) and os.path.getsize(db) > 0:
            con = ro_connect(db)
            try:
                version = con.execute("PRAGMA user_version").fetchone()[0]
                tables = con.execute("SELECT count(*) FROM sqlite_master "
                                     "WHERE type = 'table'").fetchone()[0]
            finally:
                con.close()
            if version == 0 and tables:
                raise AssertionError(f"half-migrated schema left behind: "
                                     f"{tables} tables at user_version 0")
        os.unlink(filler)
        rc2 = rig.once(timeout=60)
        if rc2 != 0:
            raise AssertionError(f"--once after freeing space exited {rc2}: "
                                 f"{rig.last_stderr[-800:]}")
        problems = rig.mirror_problems()
        if problems:
            raise AssertionError("mirror not exact: " + "; ".join(problems))
        ic = integrity(db)
        if ic != "ok":
            raise AssertionError(f"integrity_check: {ic}")
        first = next((line for line in log.splitlines()
                      if FULL_RE.search(line)), "")
        first = _msg([first])
        return (f"exit {rc} at start ('{first}'); schema left: "
                f"{tables or 0} tables; after freeing: exit 0, mirror exact")


# -- read-only --------------------------------------------------------------

def _start_exit(start, log):
    """Start a daemon that should refuse an unwritable database.  Returns
    (exit code or None when it kept running, seconds, log text)."""
    t0 = time.monotonic()
    p = start()
    try:
        rc = p.wait(timeout=START_EXIT_WAIT)
    except subprocess.TimeoutExpired:
        rc = None
    return p, rc, time.monotonic() - t0, log(p)


def _verdict(rc, text, what):
    """The complaint about start-up on an unwritable database, or None."""
    errs = [line for line in text.splitlines() if " error: " in line]
    if rc is None:
        return (f"{what}: still running after {START_EXIT_WAIT:.0f}s "
                f"(started, READY), {len(errs)} errors like '{_msg(errs)}'")
    if rc == 0:
        return f"{what}: the daemon exited 0"
    if not RO_RE.search(text):
        return (f"{what}: exit {rc} (good) but the log does not say the "
                f"file is not writable: '{_msg(errs)}'")
    return None


def _refused(rc, text, what, fix, recovered_live):
    """Fail unless the daemon refused at start (see _verdict); a daemon
    that kept running was watched while the fault was cleared, and the
    message says whether it recovered then."""
    complaint = _verdict(rc, text, what)
    if complaint:
        if recovered_live is not None:
            complaint += (f"; {fix} it " +
                          ("recovered" if recovered_live else
                           "never recovers (read-only descriptor)"))
        raise AssertionError(complaint)


def _msg(errs):
    """The first error line without timestamp and database path."""
    if not errs:
        return "no error line"
    m = errs[0].split(" error: ", 1)[-1]
    m = re.sub(r"^database '[^']*': ", "", m)
    return m[:90]


def readonly_fs_at_start():
    """A mirror on a file system remounted read-only after a clean stop:
    the daemon must refuse to start with a message naming the problem, not
    touch the file, and work once the file system is writable again."""
    with tmpfs(65536) as mnt, Rig(500, 500, seed=21) as rig:
        db = os.path.join(mnt, "mirror.db")
        rig.write_conf(database=db)
        rig.db = db
        if rig.once() != 0:
            raise AssertionError(f"first --once failed: "
                                 f"{rig.last_stderr[-500:]}")
        add_new(rig, 50)
        before = digest(db_files(db))
        remount(mnt, "ro")
        try:
            p, rc, dt, text = _start_exit(rig.start, rig.stderr_of)
            kill(p)
            orc = rig.once(timeout=30)
            otext = rig.last_stderr
        finally:
            remount(mnt, "rw")
        if digest(db_files(db)) != before:
            raise AssertionError("the database changed on a read-only "
                                 "file system")
        ic = integrity(db)
        if rig.once() != 0:
            raise AssertionError(f"--once after remount rw failed: "
                                 f"{rig.last_stderr[-500:]}")
        problems = rig.mirror_problems()
        if problems or ic != "ok":
            raise AssertionError(f"after recovery: integrity {ic}; "
                                 + "; ".join(problems))
        complaint = (_verdict(rc, text, "ro fs") or
                     _verdict(orc, otext, "--once, ro fs"))
        if complaint:
            raise AssertionError(complaint)
        return (f"exit {rc} in {dt:.2f}s ('{_msg(text.splitlines())}'); "
                f"--once exit {orc}; file untouched; recovered, mirror exact")


def readonly_fs_after_crash():
    """The same after an unclean stop (SIGKILL mid-backfill leaves the
    -wal and -shm files): SQLite can then open the file read-only, so the
    daemon gets further.  It must still refuse to run."""
    with tmpfs(65536) as mnt, Rig(3000, 3000, seed=22) as rig:
        db = os.path.join(mnt, "mirror.db")
        rig.write_conf(database=db)
        rig.db = db
        # A round trip slow enough that the backfill spans several batches
        # (a batch commits after 1 s): on a fast machine the whole 3000 +
        # 3000 fit in one, and no saved cursor is ever seen mid-walk.
        rig.api.latency = 0.2
        p = rig.start()
        wait_for(lambda: os.path.exists(db) and
                 any((v[2] or 0) >= 500 for v in status_of(rig).values()),
                 60, "a batch of the backfill to be committed", p)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        at = status_of(rig)
        if all(v[0] == 1 for v in at.values()):
            raise AssertionError(f"the kill came after the backfill: {at}")
        at = ", ".join(f"{k} {v[2] or 0}" for k, v in sorted(at.items()))
        if not os.path.exists(db + "-wal"):
            raise AssertionError("no -wal file left by the kill")
        before = digest(db_files(db))
        remount(mnt, "ro")
        p = None
        try:
            p, rc, dt, text = _start_exit(rig.start, rig.stderr_of)
            recovered_live = None
            if rc is None:
                # It kept running: does it recover by itself once the file
                # system is writable again?
                remount(mnt, "rw")
                n0 = rig.count("SELECT count(*) FROM runs")
                time.sleep(4)
                recovered_live = rig.count("SELECT count(*) FROM runs") > n0
                text = rig.stderr_of(p)
            kill(p)
        finally:
            kill(p)
            subprocess.run(["mount", "-o", "remount,rw", mnt],
                           capture_output=True, timeout=30)
        if rc is not None and digest(db_files(db)) != before:
            raise AssertionError("the database changed on a read-only "
                                 "file system")
        ic = integrity(db)
        if rig.once(timeout=120) != 0:
            raise AssertionError(f"--once after remount rw failed: "
                                 f"{rig.last_stderr[-500:]}")
        problems = rig.mirror_problems()
        if problems or ic != "ok":
            raise AssertionError(f"after recovery: integrity {ic}; "
                                 + "; ".join(problems))
        _refused(rc, text, "ro fs + leftover WAL", "after remount rw",
                 recovered_live)
        return (f"killed at {at} of 3000; exit {rc} in {dt:.2f}s "
                f"('{_msg(text.splitlines())}'); "
                f"file untouched; recovered, mirror exact")


def readonly_file_as_nobody():
    """The service user cannot write the file (a root-owned 0644 mirror,
    e.g. left by `sudo agentsyncd --once`), in a directory it owns.  The
    daemon (run as nobody with setpriv) must refuse to start, naming the
    problem; once the file is chowned, it completes."""
    p = None
    with tmpfs(65536) as mnt, Rig(500, 500, seed=23) as rig:
        db = os.path.join(mnt, "mirror.db")
        rig.write_conf(database=db)
        rig.db = db
        if rig.once() != 0:
            raise AssertionError(f"first --once failed: "
                                 f"{rig.last_stderr[-500:]}")
        add_new(rig, 50)
        os.chmod(db, 0o644)
        os.chown(mnt, NOBODY, NOBODY)
        conf = os.path.join(mnt, "agentsyncd.conf")
        with open(rig.conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o644)
        logs = []

        def start():
            err = tempfile.TemporaryFile("w+")
            logs.append(err)
            return subprocess.Popen(
                ["setpriv", "--reuid=nobody", "--regid=nogroup",
                 "--clear-groups", BIN, "-c", conf], env=rig.env(),
                stdout=subprocess.DEVNULL, stderr=err, cwd="/")

        def log_of(_p):
            logs[-1].flush()
            logs[-1].seek(0)
            return logs[-1].read()

        try:
            before = digest([db])
            p, rc, dt, out = _start_exit(start, log_of)
            recovered_live = None
            if rc is None:
                os.chown(db, NOBODY, NOBODY)
                n0 = rig.count("SELECT count(*) FROM runs")
                time.sleep(4)
                recovered_live = rig.count("SELECT count(*) FROM runs") > n0
                out = log_of(p)
                kill(p)
            elif digest([db]) != before:
                raise AssertionError("the database changed although the "
                                     "daemon could not write it")
            ic = integrity(db)
            # Recovery: the file belongs to the service user; --once as it.
            for f in db_files(db):
                if os.path.exists(f):
                    os.chown(f, NOBODY, NOBODY)
            r = subprocess.run(
                ["setpriv", "--reuid=nobody", "--regid=nogroup",
                 "--clear-groups", BIN, "-c", conf, "--once"],
                env=rig.env(), capture_output=True, text=True, timeout=60,
                cwd="/")
            if r.returncode != 0:
                raise AssertionError(f"--once as the owner exited "
                                     f"{r.returncode}: {r.stderr[-500:]}")
            problems = rig.mirror_problems()
            if problems or ic != "ok":
                raise AssertionError(f"after recovery: integrity {ic}; "
                                     + "; ".join(problems))
        finally:
            kill(p)
            for f in logs:
                f.close()
        _refused(rc, out, "db not writable by the user", "after chown",
                 recovered_live)
        return (f"exit {rc} in {dt:.2f}s ('{_msg(out.splitlines())}'); "
                f"file untouched; after chown: --once exit 0, mirror exact")


CASES = [
    ("disk full mid-backfill, daemon recovers", disk_full_daemon_recovers),
    ("disk full, --once exits 75, rerun completes", disk_full_once_then_rerun),
    ("disk full at start-up", disk_full_at_start),
    ("read-only file system at start-up", readonly_fs_at_start),
    ("read-only file system after a crash (WAL left)",
     readonly_fs_after_crash),
    ("database not writable by the service user", readonly_file_as_nobody),
]
