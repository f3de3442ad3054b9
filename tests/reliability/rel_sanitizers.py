# SPDX-License-Identifier: ISC
"""Sanitizers: the real ./agentsyncd under valgrind memcheck.

- valgrind_backfill_faults_idle: a backfill of a few hundred runs per
  source through a 500 and a 429 on each, then an idle --once, each run
  under valgrind --tool=memcheck --leak-check=full
  --errors-for-leak-kinds=definite --error-exitcode=99.  Zero errors and
  zero definitely-lost bytes, and the mirror equals upstream.

valgrind is a Debian package (valgrind) that scripts/deps.sh does not
install: without it the case fails and says so.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from tests.integration.harness import BIN, ROOT, Rig, wait_for

sys.path.insert(0, os.path.join(ROOT, "tests"))
import fakeapi  # noqa: E402

RUNS = 400              # per source
VALGRIND_TIMEOUT = 150  # seconds per run: bounded even if something hangs


def _num(s):
    return int(s.replace(",", ""))


def parse_valgrind(log):
    """{'errors', 'contexts', 'definitely', 'indirectly', 'possibly',
    'reachable', 'allocs', 'frees', 'bytes'} from a memcheck log."""
    out = {}
    m = re.findall(r"ERROR SUMMARY: ([\d,]+) errors from ([\d,]+) contexts",
                   log)
    if not m:
        raise AssertionError("no ERROR SUMMARY in the valgrind log: " +
                             log[-1500:])
    out["errors"], out["contexts"] = _num(m[-1][0]), _num(m[-1][1])
    for key, label in (("definitely", "definitely lost"),
                       ("indirectly", "indirectly lost"),
                       ("possibly", "possibly lost"),
                       ("reachable", "still reachable")):
        m = re.findall(rf"{label}: ([\d,]+) bytes in ([\d,]+) blocks", log)
        if m:
            out[key] = _num(m[-1][0])
        elif "All heap blocks were freed -- no leaks are possible" in log:
            out[key] = 0
        else:
            raise AssertionError(f"no '{label}:' line and no 'All heap "
                                 f"blocks were freed' in the valgrind log: "
                                 + log[-1500:])
    m = re.findall(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, "
                   r"([\d,]+) bytes allocated", log)
    if m:
        out["allocs"], out["frees"], out["bytes"] = map(_num, m[-1])
    return out


def run_valgrind(rig, tag):
    """--once under memcheck; (exit code, daemon stderr, parsed summary,
    seconds)."""
    vg = shutil.which("valgrind")
    log = os.path.join(rig.dir, f"valgrind.{tag}.log")
    cmd = [vg, "--tool=memcheck", "--leak-check=full",
           "--errors-for-leak-kinds=definite", "--error-exitcode=99",
           "--track-origins=yes", "--num-callers=30", f"--log-file={log}",
           BIN, "-c", rig.conf, "--once"]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, env=rig.env(), capture_output=True,
                           text=True, errors="replace",
                           timeout=VALGRIND_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{tag}: valgrind --once still running "
                             f"after {VALGRIND_TIMEOUT}s (killed)") from e
    dt = time.monotonic() - t0
    with open(log, errors="replace") as f:
        text = f.read()
    if "cannot execute" in text or re.search(r"valgrind: .*No such file",
                                             text):
        raise AssertionError(f"{tag}: valgrind could not start {BIN}: "
                             f"{text[-800:]}")
    return r.returncode, r.stderr, parse_valgrind(text), dt, text


def run_valgrind_daemon(rig, problems):
    """The daemon itself under memcheck: polls, a SIGHUP (configuration
    reloaded), then SIGTERM while a request hangs in flight (the stall
    fault), so that the reload and the abort paths free what they hold."""
    vg = shutil.which("valgrind")
    log = os.path.join(rig.dir, "valgrind.daemon.log")
    errpath = os.path.join(rig.dir, "valgrind.daemon.stderr")
    cmd = [vg, "--tool=memcheck", "--leak-check=full",
           "--errors-for-leak-kinds=definite", "--error-exitcode=99",
           "--num-callers=30", f"--log-file={log}",
           BIN, "-c", rig.conf]
    api = rig.api
    api.add_codegen_now()
    n0 = len(api.requests())
    t0 = time.monotonic()
    with open(errpath, "w+") as err:
        p = subprocess.Popen(cmd, env=rig.env(), stdout=subprocess.DEVNULL,
                             stderr=err)
        try:
            def stderr():
                err.flush()
                with open(errpath, errors="replace") as f:
                    return f.read()

            def wait(cond, what, timeout=60):
                try:
                    wait_for(cond, timeout, what, proc=p, step=0.1)
                    return True
                except AssertionError as e:
                    problems.append(f"daemon: {e}: {stderr()[-800:]}")
                    return False

            c0 = len(api.requests("cotool"))
            g0 = len(api.requests("codegen"))
            # SIGHUP before the handler is installed would kill it
            ok = wait(lambda: " started: " in stderr(), "the start line")
            ok = ok and wait(lambda: len(api.requests("cotool")) >= c0 + 2
                             and len(api.requests("codegen")) >= g0 + 2,
                             "two polls per source")
            if ok:
                p.send_signal(signal.SIGHUP)
                ok = wait(lambda: "configuration reloaded" in stderr(),
                          "the reload")
            if ok:
                # the next cotool request hangs 20 s: SIGTERM meets it
                api.fail("cotool", fakeapi.Fault(kind="stall", seconds=20))
                n1 = len(api.requests("cotool"))
                ok = wait(lambda: len(api.requests("cotool")) > n1,
                          "the stalled request")
            if ok:
                time.sleep(0.5)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                problems.append("daemon: still running 60 s after SIGTERM")
                p.kill()
                p.wait(timeout=10)
                rc = None
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    dt = time.monotonic() - t0
    if rc == 99:
        problems.append("daemon: valgrind reported errors (exit 99)")
    elif rc != 0:
        problems.append(f"daemon: exited {rc} on SIGTERM, expected 0")
    if not os.path.exists(log):
        raise AssertionError("; ".join(problems) + f"; no valgrind log "
                             f"(exit {rc}): {open(errpath).read()[-800:]}")
    with open(log, errors="replace") as f:
        text = f.read()
    return parse_valgrind(text), text, dt, len(api.requests()) - n0


def _first_errors(text, n=3):
    """The first n error reports of a memcheck log, for the message."""
    blocks = re.split(r"==\d+== \n", text)
    errs = [b for b in blocks if re.search(r"==\d+== (Invalid|Conditional|"
                                           r"Use of uninit|Syscall param|"
                                           r"Mismatched|Source and dest|"
                                           r"\S+ bytes in \S+ blocks are "
                                           r"definitely)", b)]
    return " || ".join(re.sub(r"==\d+== ", "", b).strip()[:600]
                       for b in errs[:n])


def valgrind_backfill_faults_idle():
    if shutil.which("valgrind") is None:
        raise AssertionError("valgrind is not installed: apt-get install "
                             "valgrind (Debian package 'valgrind'; "
                             "scripts/deps.sh does not install it)")
    with Rig(RUNS, RUNS, seed=11) as rig:
        conf = dict(page_size="50", max_retries="4", backoff_initial="50ms",
                    backoff_max="200ms", request_timeout="30s")
        rig.write_conf(codegen=conf, cotool=conf)
        api = rig.api
        # the 429s: Retry-After on one, plain backoff on the other
        api.fail("codegen", fakeapi.Fault(status=500),
                 fakeapi.Fault(status=429, headers={"Retry-After": "1"}))
        api.hook("cotool", 3, lambda a: a.fail(
            "cotool", fakeapi.Fault(status=429),
            fakeapi.Fault(status=503)))
        rc, err, s1, t1, log1 = run_valgrind(rig, "backfill")
        problems = []
        if rc == 99:
            problems.append("backfill: valgrind reported errors (exit 99)")
        elif rc != 0:
            problems.append(f"backfill: --once exited {rc}: {err[-800:]}")
        got = {(q["api"], q["status"]) for q in api.requests()}
        for want in (("codegen", 500), ("codegen", 429), ("cotool", 429),
                     ("cotool", 503)):
            if want not in got:
                problems.append(f"backfill: fault {want} never served")
        if rc == 0:
            mp = rig.mirror_problems()
            if mp:
                problems.append("backfill mirror: " + "; ".join(mp[:5]))
        n_before = len(api.requests())
        rc2, err2, s2, t2, log2 = run_valgrind(rig, "idle")
        idle_requests = len(api.requests()) - n_before
        if rc2 == 99:
            problems.append("idle: valgrind reported errors (exit 99)")
        elif rc2 != 0:
            problems.append(f"idle: --once exited {rc2}: {err2[-800:]}")
        s3, log3, t3, d_requests = run_valgrind_daemon(rig, problems)
        for tag, s, log in (("backfill", s1, log1), ("idle", s2, log2),
                            ("daemon", s3, log3)):
            if s["errors"] != 0 or s["definitely"] != 0:
                problems.append(f"{tag}: {s['errors']} errors, "
                                f"{s['definitely']} bytes definitely lost: "
                                f"{_first_errors(log)}")
        if problems:
            raise AssertionError("; ".join(problems))
        return (f"backfill {2 * RUNS} runs ({n_before} "
                f"requests, 500/503/429x2) {t1:.1f}s + idle ({idle_requests} "
                f"requests) {t2:.1f}s + daemon/SIGHUP/SIGTERM-in-flight "
                f"({d_requests} requests) {t3:.1f}s under memcheck: errors "
                f"{s1['errors']}/{s2['errors']}/{s3['errors']}, definitely "
                f"lost {s1['definitely']}/{s2['definitely']}/"
                f"{s3['definitely']} B, indirectly {s1['indirectly']}/"
                f"{s2['indirectly']}/{s3['indirectly']} B, possibly "
                f"{s1['possibly']}/{s2['possibly']}/{s3['possibly']} B")


CASES = [
    ("valgrind_backfill_faults_idle", valgrind_backfill_faults_idle),
]
