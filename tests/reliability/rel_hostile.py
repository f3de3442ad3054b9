# SPDX-License-Identifier: ISC
"""Hostile upstream, careless environment (issue 13): one row per case,
each driving the real binary; each fails on the binary before its fix.

- page_more_items_than_asked: a Cotool page of 11 runs for pageSize=10 is
  a bad page (nothing of it stored), then the mirror comes back exact.
- dense_page_memory: a 30 MB body of 15 million values ("0,") is refused
  before cJSON builds a node; a 30 MB page as dense as the limit allows is
  mirrored.  Peak RSS (ru_maxrss of the --once child) must stay within
  the README's bound, 12 times the body plus 64 MiB.
- env_proxy_ignored: http_proxy, HTTP_PROXY, https_proxy, ALL_PROXY point
  at a recording listener; the daemon mirrors a loopback base_url exactly
  and the listener sees no connection.
- proxy_env_and_url_tunnel: `proxy = env` and `proxy = URL` with an
  https:// base_url send a CONNECT to the proxy (no DNS, no traffic past
  127.0.0.1), and the token is not in anything the proxy receives.
- endless_paging: a server reporting a total of 2^53 - 1 and inventing
  fresh ids on every page: `max_pass_pages = 15` ends the pass with an
  error naming max_pass_pages; at most 15 pages stored.
- terminal_escapes: a Content-Type holding OSC/CSI escapes, C1 controls
  (UTF-8 and raw) on a non-JSON body: no ESC, no C1 in --status or in
  the log.
- ambiguous_page: {"run\\u0073":[A],"runs":[B],...}, a repeated "runs",
  and a "runs\\u0000x" key: refused; A's columns never meet B's bytes.
- careless_files: token_file 0644, configuration 0622, a 1-byte token, a
  300-byte line, a repeat past the 256th section: each refused by
  --check-config with exit 78 and the message README promises; no token
  byte in the output.
- foreign_database: a file with another program's application_id is
  refused with exit 1 and its bytes stay the same.
- slow_drip: a body dripping a byte every 0.3 s (never idle for
  request_timeout) is cut at request_deadline = 3s.
- not_dumpable: the daemon, run as nobody, is not dumpable: its
  /proc/PID files belong to root (needs root; else skipped).
- tls_below_1_2: a loopback TLS server that speaks only TLS 1.1, under an
  OpenSSL configuration that would allow it (Debian's default already
  refuses 1.1; an operator's or a distribution's may not): the daemon's
  handshake stops at the version ("unsupported protocol" on the server's
  side), before any certificate is looked at.
"""
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time

from tests.integration.harness import BIN, Rig, stop
from tests.reliability import Skip
from tests.reliability.rel_faults import (Fault, check, check_exact, once,
                                          passes, start, wait_daemon)

FAST = dict(poll_interval="1s", rate_limit="off", backoff_initial="50ms",
            backoff_max="200ms", max_retries="1")


def rig_for(n_cg=0, n_ct=0, cg=None, ct=None, sources=None):
    rig = Rig(n_cg, n_ct, seed=13)
    rig.write_conf(codegen=dict(FAST, **(cg or {})),
                   cotool=dict(FAST, **(ct or {})),
                   sources=sources or (("codegen",) if n_cg else ()) +
                   (("cotool",) if n_ct else ()))
    return rig


def last_error(rig, api):
    p = passes(rig, api)
    check(p, f"{api}: no pass recorded in sync_runs")
    return p[-1]["error"] or ""


def run_once(rig, env=None, timeout=120):
    """--once as a child of ours: (exit status, stderr, peak RSS MiB)."""
    p = subprocess.Popen([BIN, "-c", rig.conf, "--once"],
                         env=env or rig.env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    out = []
    t = threading.Thread(target=lambda: out.append(p.stderr.read()))
    t.start()
    deadline = time.monotonic() + timeout
    while True:
        pid, st, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            p.kill()
            os.wait4(p.pid, 0)
            t.join(10)
            raise AssertionError(f"--once still running after {timeout}s")
        time.sleep(0.05)
    t.join(10)
    p.returncode = os.waitstatus_to_exitcode(st)
    return (p.returncode, out[0].decode(errors="replace") if out else "",
            ru.ru_maxrss / 1024)


# -- 1: page bounds ---------------------------------------------------------

def page_more_items_than_asked():
    with rig_for(n_ct=30, ct=dict(page_size="10")) as rig:
        def eleven(api, obj, query):
            obj["runs"] = obj["runs"] + [dict(obj["runs"][0],
                                              id="intruder-11")]
            return obj
        rig.api.fail("cotool", Fault("edit", 200, body=eleven),
                     Fault("edit", 200, body=eleven))
        rc, err, _ = run_once(rig)
        check(rc != 0, f"--once exited {rc} with the bad pages")
        e = last_error(rig, "cotool")
        check("11 items, more than the 10 asked for" in e, f"error: {e}")
        n = rig.count("SELECT count(*) FROM runs")
        check(n == 0, f"{n} runs stored from a refused page")
        rc, err, _ = run_once(rig)
        check(rc == 0, f"recovery --once exited {rc}: {err[-300:]}")
        check_exact(rig, "after recovery")
        return "11 items for pageSize=10 refused, 0 rows; then exact"


def dense_page_memory():
    body_mib = 30
    size = body_mib * 1024 * 1024
    figures = []
    with rig_for(n_ct=5, ct=dict(max_retries="0")) as rig:
        head, tail = b'{"runs": [', b'], "totalCount": 1}'
        n = (size - len(head) - len(tail)) // 2
        dense = head + b"0," * (n - 1) + b"0" + tail
        rig.api.fail("cotool", Fault("raw", 200, dense))
        rc, err, rss = run_once(rig)
        e = last_error(rig, "cotool")
        check(rc != 0 and "too dense" in e, f"rc {rc}, error {e[:200]}")
        bound = 12 * body_mib + 64
        check(rss < bound, f"peak RSS {rss:.0f} MiB for a refused "
                           f"{body_mib} MiB body (bound {bound})")
        figures.append(f"[0,0,...] {body_mib} MiB: refused, "
                       f"peak {rss:.0f} MiB")
        del dense
    with rig_for(n_ct=5) as rig:
        # As dense as allowed: 100 runs whose "padding" holds strings
        # of 8 letters, one value per 11 bytes.
        base = rig.api.cotool_sorted()[0]
        per = (size // 100) // 11
        pad = '"abcdefgh",' * (per - 1) + '"abcdefgh"'
        items = []
        for i in range(100):
            r = dict(base, id=f"dense-{i}")
            items.append(json.dumps(r)[:-1] + ', "padding": [' + pad +
                         "]}")
        body = ('{"runs": [' + ",".join(items) +
                '], "totalCount": 100}').encode()
        real = len(body) / (1024 * 1024)
        rig.api.fail("cotool", Fault("raw", 200, body))
        rc, err, rss = run_once(rig)
        check(rc == 0, f"--once exited {rc}: {err[-300:]}")
        got = rig.count("SELECT count(*) FROM runs WHERE external_id "
                        "LIKE 'dense-%'")
        check(got == 100, f"{got} of the 100 dense runs stored")
        bound = 12 * real + 64
        check(rss < bound, f"peak RSS {rss:.0f} MiB for an accepted "
                           f"{real:.0f} MiB page (bound {bound:.0f})")
        figures.append(f"densest allowed {real:.0f} MiB: 100 runs stored, "
                       f"peak {rss:.0f} MiB (bound 12x+64 = "
                       f"{bound:.0f})")
    return "; ".join(figures)


# -- 2: proxies -------------------------------------------------------------

class Recorder:
    """A listener on 127.0.0.1 that keeps what each connection sends
    (up to 64 KiB) and answers 502."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.done = False
        self.t = threading.Thread(target=self.loop)
        self.t.start()

    def loop(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            c.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data and len(data) < 65536:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                c.sendall(b"HTTP/1.1 502 Bad Gateway\r\n"
                          b"Content-Length: 0\r\n\r\n")
            except OSError:
                pass
            c.close()
            self.got.append(data)

    def close(self):
        self.done = True
        self.t.join(5)
        self.sock.close()


def proxy_env(rig, url):
    env = rig.env()
    for k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
              "ALL_PROXY", "all_proxy"):
        env[k] = url
    for k in ("NO_PROXY", "no_proxy"):
        env.pop(k, None)
    return env


def env_proxy_ignored():
    rec = Recorder()
    try:
        with rig_for(n_cg=40, n_ct=40) as rig:
            rc, err, _ = run_once(rig, env=proxy_env(
                rig, f"http://127.0.0.1:{rec.port}"))
            check(rc == 0, f"--once exited {rc}: {err[-300:]}")
            check_exact(rig, "with proxy variables set")
    finally:
        rec.close()
    check(rec.got == [], f"the proxy got {len(rec.got)} connections: "
                         f"{rec.got[:1]}")
    return "4 proxy variables set: 0 connections to the proxy, mirror exact"


def proxy_env_and_url_tunnel():
    rec = Recorder()
    seen = []
    try:
        for mode in ("env", "url"):
            with rig_for(n_ct=1) as rig:
                proxy = ("env" if mode == "env" else
                         f"http://127.0.0.1:{rec.port}")
                rig.write_conf(cotool=dict(
                    FAST, base_url="https://api.example.invalid",
                    proxy=proxy, max_retries="0"), sources=("cotool",))
                env = (proxy_env(rig, f"http://127.0.0.1:{rec.port}")
                       if mode == "env" else rig.env())
                n0 = len(rec.got)
                rc, err, _ = run_once(rig, env=env, timeout=60)
                check(rc != 0, f"{mode}: --once succeeded through a 502")
                got = rec.got[n0:]
                check(got, f"proxy = {proxy}: no connection to the proxy")
                first = got[0].split(b"\r\n")[0]
                check(first.startswith(b"CONNECT api.example.invalid:443"),
                      f"{mode}: the proxy got {first!r}")
                tok = rig.tokens[1].encode()
                check(all(tok not in g for g in got),
                      f"{mode}: the token went to the proxy")
                seen.append(f"{mode}: {first.decode()[:40]}")
    finally:
        rec.close()
    return "; ".join(seen) + "; no token at the proxy"


# -- 3: a pass the server cannot stretch -------------------------------------

def endless_paging():
    with rig_for(n_ct=3, ct=dict(page_size="20", max_pass_pages="15")) as rig:
        rig.api.fail("cotool", *[Fault("endless") for _ in range(200)])
        t0 = time.monotonic()
        rc, err, _ = run_once(rig, timeout=90)
        took = time.monotonic() - t0
        check(rc != 0, f"--once exited {rc}")
        e = last_error(rig, "cotool")
        check("max_pass_pages (15)" in e, f"error: {e}")
        check("max_pass_pages" in err, "not in the log")
        reqs = len(rig.api.requests("cotool"))
        n = rig.count("SELECT count(*) FROM runs")
        check(reqs == 15 and n <= 15 * 20,
              f"{reqs} requests, {n} runs stored")
        return (f"total 2^53-1, fresh ids: stopped after {reqs} pages "
                f"({n} runs) in {took:.1f}s, error names max_pass_pages")


# -- 4: terminal escapes ------------------------------------------------------

BAD_BYTES = (b"\x1b", b"\xc2\x9b", b"\xc2\x85", b"\x9b", b"\x07")


def terminal_escapes():
    with rig_for(n_ct=3, ct=dict(max_retries="0")) as rig:
        ctype = "text/html\x1b]0;pwned\x07\x1b[31m\xc2\x9b31m"
        rig.api.fail("cotool", Fault("raw", 200, b"<html>\x1b[2J\x9b</html>",
                                     headers={"Content-Type": ctype}))
        rc, err, _ = run_once(rig)
        check(rc != 0, "--once succeeded on a non-JSON body")
        st = subprocess.run([BIN, "-c", rig.conf, "--status"],
                            capture_output=True, timeout=30, env=rig.env())
        check(st.returncode == 0 or st.stdout, "no --status output")
        e = last_error(rig, "cotool")
        check("text/html" in e, f"stored error: {e[:200]}")
        out = st.stdout + st.stderr
        bad = [b for b in BAD_BYTES if b in out or b in err.encode(
            "utf-8", "surrogateescape")]
        check(not bad, f"{bad} reached --status or the log")
        shown = re.search(rb"text/html[^)]*", out)
        return ("content type as --status shows it: " +
                (shown.group(0).decode() if shown else "?"))


# -- 5: ambiguous pages -------------------------------------------------------

def ambiguous_page():
    rows = []
    with rig_for(n_ct=4, ct=dict(max_retries="0")) as rig:
        runs = rig.api.cotool_sorted()
        a = dict(runs[0], id="A-run", status="FAILED")
        b = dict(runs[1], id="B-run", status="COMPLETED")
        bodies = {
            "escaped key": '{"run\\u0073": [%s], "runs": [%s], '
                           '"totalCount": 1}',
            "repeated key": '{"runs": [%s], "runs": [%s], '
                            '"totalCount": 1}',
            "NUL in key": '{"runs\\u0000x": [%s], "runs": [%s], '
                          '"totalCount": 1}',
        }
        for what, fmt in bodies.items():
            body = (fmt % (json.dumps(a), json.dumps(b))).encode()
            rig.api.fail("cotool", Fault("raw", 200, body))
            rc, err, _ = run_once(rig)
            e = last_error(rig, "cotool")
            check(rc != 0 and "ambiguous page" in e,
                  f"{what}: rc {rc}, error {e[:160]}")
            n = rig.count("SELECT count(*) FROM runs WHERE external_id IN "
                          "('A-run', 'B-run')")
            check(n == 0, f"{what}: {n} rows stored")
            rows.append(what)
        rc, err, _ = run_once(rig)
        check(rc == 0, f"--once after: {err[-200:]}")
        check_exact(rig, "after the ambiguous pages")
    return "refused: " + ", ".join(rows) + "; then exact"


# -- 6: careless files ---------------------------------------------------------

def careless_files():
    out = []
    d = tempfile.mkdtemp(prefix="agentsyncd-hostile-")
    try:
        conf = os.path.join(d, "a.conf")
        tokf = os.path.join(d, "token")
        secret = "hostile-token-" + "x" * 30
        with open(tokf, "w") as f:
            f.write(secret + "\n")

        def check_config(text, mode, env=None):
            with open(conf, "w") as f:
                f.write(text)
            os.chmod(conf, mode)
            r = subprocess.run([BIN, "-c", conf, "--check-config"],
                               capture_output=True, text=True, timeout=30,
                               env=dict(os.environ, **(env or {})))
            check(secret not in r.stdout + r.stderr, "token echoed")
            return r.returncode, r.stderr

        head = f"[agentsyncd]\ndatabase = {d}/m.db\n[source c]\n" \
               f"type = cotool\nbase_url = http://127.0.0.1:9\n"
        os.chmod(tokf, 0o644)
        rc, e = check_config(head + f"token_file = {tokf}\n", 0o600)
        check(rc == 78 and f"(run: chmod 600 {tokf})" in e,
              f"token_file 0644: {rc} {e}")
        out.append("token_file 0644")
        os.chmod(tokf, 0o600)
        rc, e = check_config(head + f"token_file = {tokf}\n", 0o622)
        check(rc == 78 and "lets group or others write it" in e,
              f"conf 0622: {rc} {e}")
        out.append("conf 0622")
        rc, e = check_config(head + "token_env = T1\n", 0o600,
                             {"T1": "d"})
        check(rc == 78 and "shorter than 16 bytes" in e,
              f"1-byte token: {rc} {e}")
        out.append("1-byte token")
        rc, e = check_config(head + "token = " + secret + "y" * 260 +
                             "\n", 0o600)
        check(rc == 78 and ":6: line too long (" in e and
              "unknown key" not in e, f"long line: {rc} {e}")
        out.append("300-byte line")
        sections = "".join(f"[source s{i}]\n" for i in range(300))
        rc, e = check_config(head + f"token_file = {tokf}\n" + sections +
                             "[source s3]\n", 0o600)
        check(rc == 78 and "[source s3] repeats the one at line" in e,
              f"section 302: {rc} {e[-300:]}")
        out.append("repeat at section 302")
        rc, e = check_config(head + f"token_file = {tokf}\n", 0o600)
        check(rc == 0, f"the careful file: {rc} {e}")
    finally:
        subprocess.run(["rm", "-rf", d], check=False)
    return "exit 78: " + ", ".join(out) + "; careful file OK"


# -- 7: foreign databases -------------------------------------------------------

def foreign_database():
    with rig_for(n_ct=3) as rig:
        con = sqlite3.connect(rig.db)
        con.execute("PRAGMA application_id = 1234")
        con.execute("CREATE TABLE notes(x)")
        con.commit()
        con.close()
        before = open(rig.db, "rb").read()
        rc, err, _ = run_once(rig)
        check(rc == 1 and "application_id" in err, f"rc {rc}: {err[-300:]}")
        check(open(rig.db, "rb").read() == before, "the file changed")
        check(not os.path.exists(rig.db + "-wal"), "a -wal appeared")
        return "application_id 1234: exit 1, file byte-for-byte unchanged"


# -- 8: slow drips ------------------------------------------------------------

def slow_drip():
    with rig_for(n_ct=3, ct=dict(max_retries="0", request_timeout="2s",
                                 request_deadline="3s")) as rig:
        rig.api.fail("cotool", Fault("drip", seconds=0.3, size=400))
        t0 = time.monotonic()
        rc, err, _ = run_once(rig, timeout=60)
        took = time.monotonic() - t0
        e = last_error(rig, "cotool")
        check(rc != 0 and "request_deadline" in e, f"rc {rc}: {e[:200]}")
        check(took < 20, f"took {took:.1f}s")
        return f"1 byte/0.3 s: cut after {took:.1f}s: {e[-60:]}"


# -- 9: the process ---------------------------------------------------------------

def not_dumpable():
    if os.geteuid() != 0:
        raise Skip("needs root to run the daemon as another user")
    with rig_for(n_ct=3) as rig:
        os.chmod(rig.dir, 0o777)
        os.chmod(rig.conf, 0o644)
        env = rig.env()
        p = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup",
                              "--clear-groups", BIN, "-c", rig.conf],
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(rig.db) and time.monotonic() < deadline:
                time.sleep(0.1)
            st = os.stat(f"/proc/{p.pid}/status")
            uid = int(re.search(r"^Uid:\s+(\d+)", open(
                f"/proc/{p.pid}/status").read(), re.M).group(1))
            owner = os.stat(f"/proc/{p.pid}/environ").st_uid
            check(uid != 0, f"daemon uid {uid}")
            check(owner == 0, f"/proc/PID/environ owned by {owner}: the "
                              f"process is dumpable")
        finally:
            stop(p, expect=None)
        del st
        return (f"runs as uid {uid}; /proc/PID/environ owned by root: "
                f"not dumpable")


# -- 9: TLS 1.2 at least ----------------------------------------------------------

WEAK_OPENSSL = """openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = sys
[sys]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
"""

TLS11_SERVER = r"""
import socket, ssl, sys, warnings
warnings.simplefilter("ignore")
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
ctx.set_ciphers("DEFAULT@SECLEVEL=0")
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
s.settimeout(30)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
try:
    ctx.wrap_socket(c, server_side=True)
    print("handshake ok", flush=True)
except Exception as e:
    print("refused:", e, flush=True)
"""


def tls_below_1_2():
    if not shutil.which("openssl"):
        raise Skip("the openssl tool is absent (scripts/deps.sh installs it)")
    d = tempfile.mkdtemp(prefix="agentsyncd-tls-")
    try:
        key, crt, cnf = (os.path.join(d, n) for n in ("k.pem", "c.pem",
                                                       "weak.cnf"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=127.0.0.1"], check=True,
                       capture_output=True, timeout=60)
        with open(cnf, "w") as f:
            f.write(WEAK_OPENSSL)
        env = dict(os.environ, OPENSSL_CONF=cnf)
        srv = subprocess.Popen(["python3", "-c", TLS11_SERVER, crt, key],
                               env=env, stdout=subprocess.PIPE, text=True)
        try:
            port = int(srv.stdout.readline())
            with rig_for(n_ct=1) as rig:
                rig.write_conf(cotool=dict(
                    FAST, base_url=f"https://127.0.0.1:{port}",
                    max_retries="0"), sources=("cotool",))
                renv = dict(rig.env(), OPENSSL_CONF=cnf)
                rc, err, _ = run_once(rig, env=renv, timeout=60)
                e = last_error(rig, "cotool")
            said = srv.stdout.readline().strip()
        finally:
            srv.kill()
            srv.wait(10)
    finally:
        shutil.rmtree(d, True)
    check(rc != 0, "--once succeeded against a TLS 1.1 server")
    check("handshake ok" not in said and "UNSUPPORTED_PROTOCOL" in said,
          f"server: {said}; daemon: {e[-160:]}")
    check("certificate" not in e.lower(), f"got as far as the "
                                          f"certificate: {e[-160:]}")
    return f"TLS 1.1 only server: {said[:60]}"


CASES = [
    ("page with more items than asked", page_more_items_than_asked),
    ("dense 30 MiB page: memory bound", dense_page_memory),
    ("proxy variables in the environment", env_proxy_ignored),
    ("proxy = env / URL: tunnel, no token", proxy_env_and_url_tunnel),
    ("endless paging, total 2^53-1", endless_paging),
    ("terminal escapes from upstream", terminal_escapes),
    ("ambiguous pages", ambiguous_page),
    ("careless files", careless_files),
    ("foreign database", foreign_database),
    ("slow drip: request_deadline", slow_drip),
    ("not dumpable", not_dumpable),
    ("TLS 1.1 server refused", tls_below_1_2),
]
