# SPDX-License-Identifier: ISC
"""Security: tokens never leak, configuration refuses what is unsafe, TLS
verification stays on, and SQL takes upstream data only through bound
parameters.

Cases (each bounded; every process is ours and killed by pid):

- token_never_appears: a backfill with faults, a failing pass (401 after
  the server rotates the token, 5xx until the retries run out, a 429), a
  daemon run with a SIGHUP, all at log_level = debug; the tokens' bytes,
  whole or any 16-byte window of them, appear in no stderr, in no file of
  the database (db, -wal, -shm; read live, after exit and after a
  checkpoint), in no --status / --check-config / --migrate output.
- token_echoed_by_upstream_never_stored: the same search when the server
  echoes the token in its error bodies (proxies and debug pages do): the
  log redacts, and nothing may carry the token (or a cut piece of it) to
  the database or --status either.
- inline_token_needs_private_config: `token =` refused (exit 78,
  FILE:LINE:) when the file is readable by group or others; accepted at
  0600 / 0400, by --check-config and by a real --once.
- http_only_for_loopback: http:// to anything but 127.0.0.0/8, localhost
  and [::1] is refused with FILE:LINE; loopback accepted; only
  --check-config runs, and (when strace is present) it opens no INET
  socket at all.
- tls_verification_always_on: no config key switches verification off
  (each plausible one is an "unknown key" error), the source never sets
  CURLOPT_SSL_VERIFYPEER/VERIFYHOST to anything but 1L/2L, and (when the
  openssl tool is present) a self-signed https:// fake API is refused
  before any request reaches it.
- sql_only_bound_parameters: a static check of daemon/*.c: every SQL text
  handed to sqlite3_prepare*/sqlite3_exec (directly or through a wrapper,
  found by following parameters) is a string literal, a constant table of
  literals, or an embedded migration; no sqlite3_mprintf & co; SQL built
  with snprintf only where whitelisted below with the reason.
"""
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import string
import subprocess
import sys
import tempfile

from tests.integration.harness import BIN, ROOT, Rig, stop, wait_for

sys.path.insert(0, os.path.join(ROOT, "tests"))
import fakeapi  # noqa: E402

WINDOW = 16          # a leak of any 16 consecutive token bytes counts
_ALNUM = string.ascii_letters + string.digits


# -- helpers ----------------------------------------------------------------

def run_bin(args, env=None, timeout=120, prefix=()):
    """Run the daemon to completion (bounded by timeout)."""
    return subprocess.run([*prefix, BIN, *args], env=env,
                          capture_output=True, text=True, errors="replace",
                          timeout=timeout)


def make_token(tag):
    """Long and distinctive: no 16-byte window of it can occur by chance."""
    return f"agsd-{tag}-" + "".join(secrets.choice(_ALNUM)
                                    for _ in range(72))


def leaks(tokens, places):
    """[(place, token name, what)] for every place holding a token whole
    or any WINDOW-byte piece of it.  places: {name: bytes}."""
    found = []
    for pname, data in places.items():
        for tname, tok in tokens.items():
            tb = tok.encode()
            if tb in data:
                i = data.index(tb)
                found.append((pname, tname, "whole token", i))
                continue
            for k in range(len(tb) - WINDOW + 1):
                piece = tb[k:k + WINDOW]
                if piece in data:
                    n = WINDOW
                    while k + n < len(tb) and tb[k:k + n + 1] in data:
                        n += 1
                    found.append((pname, tname,
                                  f"bytes [{k}:{k + n}] of {len(tb)}",
                                  data.index(tb[k:k + n])))
                    break
    return found


def describe_leaks(found, tokens, places):
    """A summary first (the table cuts the line), then the contexts."""
    by_what = {}
    for p, t, w, _ in found:
        by_what.setdefault(w if w == "whole token" else
                           f"{w.split(' of ')[0]} (a cut piece)", [])
        lst = by_what[w if w == "whole token" else
                      f"{w.split(' of ')[0]} (a cut piece)"]
        if p not in lst:
            lst.append(p)
    summary = "; ".join(f"{w} in {', '.join(ps)}"
                        for w, ps in by_what.items())
    return f"{len(found)} leaks: {summary} | contexts: " + \
        _leak_contexts(found, tokens, places)


def _leak_contexts(found, tokens, places):
    out = []
    for pname, tname, what, i in found[:12]:
        data = places[pname]
        ctx = data[max(0, i - 60):i + 100].decode("utf-8", "replace")
        for tn, tok in tokens.items():
            ctx = ctx.replace(tok, f"<{tn} TOKEN>")
        out.append(f"{pname}: {tname} {what} near: {ctx!r}")
    return "; ".join(out)


def db_files(db):
    return [p for p in (db, db + "-wal", db + "-shm", db + "-journal")
            if os.path.exists(p)]


def read_tree(path, skip=()):
    """{relative name: bytes} of every regular file under path."""
    out = {}
    for dirpath, _, names in os.walk(path):
        for n in names:
            p = os.path.join(dirpath, n)
            if p in skip or not os.path.isfile(p):
                continue
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = f.read()
    return out


def set_conf_value(path, key, value, first_only=False):
    with open(path) as f:
        text = f.read()
    text = re.sub(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", text,
                  count=1 if first_only else 0)
    with open(path, "w") as f:
        f.write(text)


def line_of(path, needle, start=1):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if n >= start and line.strip() == needle:
                return n
    raise AssertionError(f"{needle!r} not in {path}")


def checkpoint(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        con.close()


# -- token_never_appears ----------------------------------------------------

def _tokened_rig(nruns, **conf):
    rig = Rig(nruns, nruns, seed=7)
    toks = {"codegen": make_token("cg"), "cotool": make_token("ct")}
    rig.api.codegen_token = toks["codegen"]
    rig.api.cotool_token = toks["cotool"]
    rig.tokens = (toks["codegen"], toks["cotool"])
    rig.write_conf(codegen=dict(conf), cotool=dict(conf))
    set_conf_value(rig.conf, "log_level", "debug")
    return rig, toks


def token_never_appears():
    rig, toks = _tokened_rig(300, page_size="50", max_retries="2",
                             backoff_initial="50ms", backoff_max="200ms")
    try:
        api = rig.api
        texts = {}          # place -> bytes, besides files
        # 1. backfill through a 500 and a 429 on each source
        api.fail("codegen", fakeapi.Fault(status=500),
                 fakeapi.Fault(status=429, headers={"Retry-After": "0"}))
        api.fail("cotool", fakeapi.Fault(status=429),
                 fakeapi.Fault(status=503))
        rc = rig.once()
        texts["stderr of backfill --once"] = rig.last_stderr.encode()
        if rc != 0:
            raise AssertionError(f"backfill --once exited {rc}: "
                                 f"{rig.last_stderr[-2000:]}")
        if " debug: " not in rig.last_stderr:
            raise AssertionError("log_level = debug gave no debug line")
        rig.assert_mirror_exact()
        # 2. a failing pass: codegen's token rotated server-side (401),
        # cotool answers 500 past max_retries, after a 429
        api.codegen_token = make_token("rotated")
        api.add_cotool()
        api.fail("cotool", fakeapi.Fault(status=429),
                 *[fakeapi.Fault(status=500) for _ in range(3)])
        rc = rig.once()
        texts["stderr of failing --once"] = rig.last_stderr.encode()
        if rc != 75:
            raise AssertionError(f"failing pass exited {rc}, expected 75: "
                                 f"{rig.last_stderr[-2000:]}")
        if "401" not in rig.last_stderr or "500" not in rig.last_stderr:
            raise AssertionError("failing pass: no 401 or no 500 logged: "
                                 f"{rig.last_stderr[-2000:]}")
        errors = rig.sql("SELECT source, last_error FROM sync_state")
        if sum(1 for _, e in errors if e) != 2:
            raise AssertionError(f"expected a last_error per source, got "
                                 f"{errors}")
        # 3. the daemon itself: 401 on codegen, idle polls on cotool, a
        # SIGHUP (secrets re-registered), the files read while it runs
        p = rig.start()
        wait_for(lambda: "401" in rig.stderr_of(p), 30,
                   "the daemon's 401 line")
        n0 = len(api.requests("cotool"))
        wait_for(lambda: len(api.requests("cotool")) >= n0 + 2, 30,
                   "two idle cotool polls")
        p.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in rig.stderr_of(p), 30,
                   "the reload line")
        n1 = len(api.requests("cotool"))
        wait_for(lambda: len(api.requests("cotool")) >= n1 + 2, 30,
                   "two cotool polls after SIGHUP")
        live = {f"live {os.path.basename(f)}": open(f, "rb").read()
                for f in db_files(rig.db)}
        rc = stop(p, expect=None)
        if rc != 0:
            raise AssertionError(f"daemon exited {rc} on SIGTERM")
        texts["stderr of daemon"] = rig.stderr_of(p).encode()
        # 4. every read-only view of the state
        for mode in ("--status", "--check-config", "--migrate"):
            r = run_bin(["-c", rig.conf, mode], env=rig.env(), timeout=60)
            # --status answers with monitoring-plugin codes: a source
            # whose last pass failed is WARNING (1) or CRITICAL (2)
            if r.returncode != 0 and not (mode == "--status" and
                                          r.returncode in (1, 2)):
                raise AssertionError(f"{mode} exited {r.returncode}: "
                                     f"{r.stderr[-1000:]}")
            texts[f"{mode} output"] = (r.stdout + r.stderr).encode()
        if "HTTP 401" not in texts["--status output"].decode():
            raise AssertionError("--status shows no last error")
        after_exit = {f"after exit {os.path.basename(f)}":
                      open(f, "rb").read() for f in db_files(rig.db)}
        checkpoint(rig.db)
        after_ckpt = {f"after checkpoint {os.path.basename(f)}":
                      open(f, "rb").read() for f in db_files(rig.db)}
        tree = {f"file {k}": v for k, v in read_tree(rig.dir).items()}
        places = {**texts, **live, **after_exit, **after_ckpt, **tree}
        # the daemon did send the tokens (else the search proves nothing)
        sent = {n: sum(1 for q in api.requests(n)
                       if q["auth"] == f"Bearer {toks[n]}")
                for n in ("codegen", "cotool")}
        if min(sent.values()) == 0:
            raise AssertionError(f"requests carrying the tokens: {sent}")
        found = leaks(toks, places)
        if found:
            raise AssertionError("token bytes found: " +
                                 describe_leaks(found, toks, places))
        nbytes = sum(len(v) for v in places.values())
        lines = sum(v.count(b"\n") for k, v in texts.items()
                    if k.startswith("stderr"))
        dbf = sum(1 for k in places if k.startswith(("live", "after")))
        return (f"{len(places)} places ({dbf} db-file snapshots, {lines} "
                f"stderr lines), {nbytes / 1e6:.1f} MB searched for 2 "
                f"tokens + {len(toks['codegen']) - WINDOW + 1} windows "
                f"each: 0 hits; {sum(sent.values())} requests carried them")
    finally:
        rig.close()


def token_echoed_by_upstream_never_stored():
    """The server echoes the token in error bodies: whole, and cut by the
    daemon's 120-byte body excerpt (the token starts at byte 80)."""
    rig, toks = _tokened_rig(120, max_retries="3", backoff_initial="20ms",
                             backoff_max="50ms")
    try:
        api = rig.api
        cg, ct = toks["codegen"], toks["cotool"]

        def cut(tok):       # JSON whose token begins at byte 80
            pre = '{"message": "Invalid credentials, Authorization: Bearer '
            return {"message": pre[13:] + " " * (80 - len(pre) - 1) + tok}

        api.fail("codegen",
                 fakeapi.Fault(status=500, body={"message":
                                                 f"Bearer {cg} failed"}),
                 fakeapi.Fault(status=503, body=cut(cg)),
                 fakeapi.Fault(kind="raw", status=200,
                               body=f"<html>token={cg}</html>".encode(),
                               headers={"Content-Type": "text/html"}),
                 fakeapi.Fault(status=500, body={"message":
                                                 f"token {cg} rejected"}))
        api.fail("cotool",
                 fakeapi.Fault(status=502, body=cut(ct)),
                 fakeapi.Fault(status=400, body={"error":
                                                 f"bad key {ct}"}))
        rc = rig.once()
        stderr = rig.last_stderr
        if rc != 75:
            raise AssertionError(f"--once exited {rc}, expected 75: "
                                 f"{stderr[-2000:]}")
        if stderr.count("[REDACTED]") < 3:
            raise AssertionError("the echoed tokens were not redacted in "
                                 f"the log: {stderr[-2000:]}")
        r = run_bin(["-c", rig.conf, "--status"], env=rig.env(), timeout=60)
        places = {"stderr of --once": stderr.encode(),
                  "--status output": (r.stdout + r.stderr).encode()}
        for f in db_files(rig.db):
            places[f"after exit {os.path.basename(f)}"] = open(f,
                                                              "rb").read()
        checkpoint(rig.db)
        for f in db_files(rig.db):
            places[f"after checkpoint {os.path.basename(f)}"] = \
                open(f, "rb").read()
        stored = rig.sql("SELECT 'sync_runs.error', error FROM sync_runs "
                         "UNION ALL SELECT 'sync_state.last_error', "
                         "last_error FROM sync_state")
        for col, v in stored:
            if v:
                places[f"column {col}"] = v.encode()
        found = leaks(toks, places)
        if found:
            raise AssertionError("token bytes echoed by upstream got "
                                 "through: " +
                                 describe_leaks(found, toks, places))
        return (f"{len(places)} places searched after 6 echoing bodies "
                f"(500/502/503/400/200-html): 0 hits, "
                f"{stderr.count('[REDACTED]')} redactions in the log")
    finally:
        rig.close()


# -- inline_token_needs_private_config --------------------------------------

def inline_token_needs_private_config():
    rig = Rig(20, 20, seed=3)
    try:
        toks = {"codegen": make_token("cgi"), "cotool": make_token("cti")}
        rig.api.codegen_token = toks["codegen"]
        rig.api.cotool_token = toks["cotool"]
        rig.write_conf()
        with open(rig.conf) as f:
            text = f.read()
        text = text.replace("token_env = CODEGEN_API_TOKEN",
                            f"token = {toks['codegen']}")
        text = text.replace("token_env = COTOOL_API_KEY",
                            f"token = {toks['cotool']}")
        with open(rig.conf, "w") as f:
            f.write(text)
        lines = [n for n, l in enumerate(text.splitlines(), 1)
                 if l.startswith("token = ")]
        if len(lines) != 2:
            raise AssertionError(f"config rewrite failed: {text}")
        env = {k: v for k, v in rig.env().items()
               if k not in ("CODEGEN_API_TOKEN", "COTOOL_API_KEY")}
        refused, accepted = [0o640, 0o604, 0o644, 0o660, 0o606], \
            [0o600, 0o400]
        for mode in refused:
            os.chmod(rig.conf, mode)
            for flag in ("--check-config", "--once"):
                r = run_bin(["-c", rig.conf, flag], env=env, timeout=60)
                what = f"mode {mode:04o} {flag}"
                if r.returncode != 78:
                    raise AssertionError(f"{what}: exit {r.returncode}, "
                                         f"expected 78: {r.stderr[-800:]}")
                for n in lines:
                    pat = rf"(?m)^{re.escape(rig.conf)}:{n}: .*inline token"
                    if not re.search(pat, r.stderr):
                        raise AssertionError(f"{what}: no '{rig.conf}:{n}:"
                                             f" ... inline token' line: "
                                             f"{r.stderr!r}")
                if any(t in r.stdout + r.stderr for t in toks.values()):
                    raise AssertionError(f"{what}: message shows the token")
        if rig.api.requests():
            raise AssertionError(f"a refused config still sent "
                                 f"{len(rig.api.requests())} requests")
        if os.path.exists(rig.db):
            raise AssertionError("a refused config still created the "
                                 "database")
        for mode in accepted:
            os.chmod(rig.conf, mode)
            r = run_bin(["-c", rig.conf, "--check-config"], env=env,
                        timeout=60)
            if r.returncode != 0 or "configuration OK" not in r.stdout:
                raise AssertionError(f"mode {mode:04o} --check-config: "
                                     f"exit {r.returncode}: {r.stderr}")
        os.chmod(rig.conf, 0o600)
        r = run_bin(["-c", rig.conf, "--once"], env=env, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"mode 0600 --once: exit {r.returncode}: "
                                 f"{r.stderr[-1500:]}")
        rig.assert_mirror_exact()
        sent = sum(1 for q in rig.api.requests()
                   if q["auth"] in (f"Bearer {t}" for t in toks.values()))
        if any(t in r.stderr for t in toks.values()):
            raise AssertionError("--once stderr shows an inline token")
        return (f"refused at {', '.join(f'{m:04o}' for m in refused)} "
                f"(78, FILE:LINE x2, check-config and --once, 0 requests);"
                f" accepted at {', '.join(f'{m:04o}' for m in accepted)};"
                f" 0600 --once mirrored {rig.count('SELECT count(*) FROM runs')}"
                f" runs with {sent} requests")
    finally:
        rig.close()


# -- http_only_for_loopback -------------------------------------------------

def _strace_inet(path):
    """INET/INET6 sockets opened, from an strace -o file."""
    with open(path) as f:
        return [l.strip() for l in f
                if re.search(r"socket\(AF_INET6?\b|connect\(.*AF_INET", l)]


def _check_config(rig, strace, tmp, tag):
    prefix = ()
    out = None
    if strace:
        out = os.path.join(tmp, f"strace.{tag}")
        prefix = (strace, "-f", "-qq", "-o", out, "-e",
                  "trace=socket,connect,sendto,sendmsg")
    r = run_bin(["-c", rig.conf, "--check-config"], env=rig.env(),
                timeout=60, prefix=prefix)
    inet = _strace_inet(out) if out else []
    return r, inet


def http_only_for_loopback():
    rig = Rig(0, 0)
    tmp = tempfile.mkdtemp(prefix="agentsyncd-rel-sec-")
    try:
        strace = shutil.which("strace")
        port = rig.api.port
        refused = [
            "http://10.0.0.1", "http://192.168.1.10:8080", "http://8.8.8.8/",
            "http://0.0.0.0:%d" % port, "http://example.com",
            "http://api.codegen.com", "HTTP://APP.COTOOL.AI",
            "http://127.0.0.1.nip.io", "http://localhost.example.com",
            "http://[::2]", "http://[2001:db8::1]:%d" % port,
            "http://127.0.0.1@evil.example", "http://user@127.0.0.1",
            "http://127.0.0.1:80@evil.example/",
            "http://evil.example#@127.0.0.1", "ftp://127.0.0.1",
            "127.0.0.1:%d" % port,
        ]
        accepted = [
            "http://127.0.0.1:%d" % port, "http://127.0.0.1",
            "http://127.1.2.3:%d" % port, "http://localhost:%d" % port,
            "http://LOCALHOST:%d/" % port, "http://[::1]:%d" % port,
            "https://api.codegen.com", "https://10.0.0.1:8443",
        ]
        inet_all = []
        for i, url in enumerate(refused):
            rig.write_conf(codegen={"base_url": url})
            line = line_of(rig.conf, f"base_url = {url}")
            r, inet = _check_config(rig, strace, tmp, f"r{i}")
            inet_all += inet
            if r.returncode != 78:
                raise AssertionError(f"base_url {url}: exit {r.returncode}"
                                     f", expected 78: {r.stdout}{r.stderr}")
            if not re.search(rf"(?m)^{re.escape(rig.conf)}:{line}: "
                             r".*base_url", r.stderr):
                raise AssertionError(f"base_url {url}: no "
                                     f"'{rig.conf}:{line}: ...' line: "
                                     f"{r.stderr!r}")
        for i, url in enumerate(accepted):
            rig.write_conf(codegen={"base_url": url},
                           cotool={"base_url": url})
            r, inet = _check_config(rig, strace, tmp, f"a{i}")
            inet_all += inet
            if r.returncode != 0 or "configuration OK" not in r.stdout:
                raise AssertionError(f"base_url {url}: exit {r.returncode}"
                                     f", expected 0: {r.stderr}")
        if inet_all:
            raise AssertionError(f"--check-config opened INET sockets: "
                                 f"{inet_all[:5]}")
        if strace:
            # control: the same tracing does see a real --once connect
            rig.write_conf()
            out = os.path.join(tmp, "strace.control")
            r = run_bin(["-c", rig.conf, "--once"], env=rig.env(),
                        timeout=60, prefix=(strace, "-f", "-qq", "-o", out,
                                            "-e", "trace=socket,connect,"
                                            "sendto,sendmsg"))
            if r.returncode != 0 or not _strace_inet(out):
                raise AssertionError(f"strace control: exit {r.returncode},"
                                     f" {len(_strace_inet(out))} INET "
                                     f"sockets seen for a real --once")
            rig.api.clear_log()
        if rig.api.requests():
            raise AssertionError("--check-config sent requests to the "
                                 "fake API")
        traced = (f"strace: 0 INET sockets in {len(refused) + len(accepted)}"
                  f" runs" if strace else "strace absent: not traced")
        return (f"{len(refused)} non-loopback/odd URLs refused (78, "
                f"FILE:LINE), {len(accepted)} loopback/https accepted; "
                f"{traced}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        rig.close()


# -- tls_verification_always_on ---------------------------------------------

INSECURE_KEYS = [
    ("ssl_verify", "0"), ("insecure", "1"), ("tls_verify", "no"),
    ("verify_ssl", "false"), ("ssl_verifypeer", "0"),
    ("ssl_verifyhost", "0"), ("tls_insecure", "true"),
    ("insecure_skip_verify", "true"), ("verify", "off"),
    ("ssl_no_verify", "1"), ("tls_skip_verify", "yes"),
    ("verify_tls", "0"), ("ca_file", "/dev/null"), ("cacert", "none"),
    ("ssl", "off"), ("k", "1"),
]

VERIFY_OPTS = {
    "CURLOPT_SSL_VERIFYPEER": {"1L", "1"},
    "CURLOPT_SSL_VERIFYHOST": {"2L", "2"},
    "CURLOPT_PROXY_SSL_VERIFYPEER": {"1L", "1"},
    "CURLOPT_PROXY_SSL_VERIFYHOST": {"2L", "2"},
}


def _static_tls():
    """{option: [(file:line, value)]} of every setting; raises on a bad one
    or on any option that could weaken verification."""
    settings = {k: [] for k in VERIFY_OPTS}
    weakening = ("CURLOPT_SSL_OPTIONS", "CURLOPT_PROXY_SSL_OPTIONS",
                 "CURLOPT_CAINFO", "CURLOPT_CAPATH", "CURLOPT_PINNEDPUBLICKEY",
                 "CURLSSLOPT_NO_REVOKE", "CURLOPT_SSL_CTX_FUNCTION")
    bad = []
    for cf in sorted(_c_files()):
        toks = tokenize_c(cf)[0]
        name = os.path.relpath(cf, ROOT)
        for i, (kind, text, line) in enumerate(toks):
            if kind != "id":
                continue
            if text in weakening:
                bad.append(f"{name}:{line}: {text} is used")
            if text not in VERIFY_OPTS:
                continue
            # the value: the argument after this one in the enclosing call
            if i + 1 >= len(toks) or toks[i + 1][1] != ",":
                bad.append(f"{name}:{line}: {text} not used as a setopt "
                           f"argument")
                continue
            j, depth, val = i + 2, 0, []
            while j < len(toks):
                t = toks[j][1]
                if t in "([{":
                    depth += 1
                elif t in ")]}":
                    if depth == 0:
                        break
                    depth -= 1
                elif t == "," and depth == 0:
                    break
                val.append(t)
                j += 1
            v = "".join(val)
            settings[text].append((f"{name}:{line}", v))
            if v not in VERIFY_OPTS[text]:
                bad.append(f"{name}:{line}: {text} set to {v!r}")
    if bad:
        raise AssertionError("TLS verification can be weakened: " +
                             "; ".join(bad))
    return settings


def _self_signed(tmp):
    key, crt = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"openssl req failed: {r.stderr[-500:]}")
    return key, crt


def _tls_refused(tmp):
    """A fake API behind a self-signed certificate: the daemon must fail
    the handshake and send it no request (so no token)."""
    key, crt = _self_signed(tmp)
    api = fakeapi.FakeAPI(30, 0, codegen_token=make_token("tls"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    api.server.socket = ctx.wrap_socket(api.server.socket, server_side=True)
    api.start()
    rig = Rig(0, 0)
    try:
        # control: the TLS server works for a client that trusts it
        cctx = ssl.create_default_context(cafile=crt)
        with socket.create_connection(("127.0.0.1", api.port), 10) as s, \
                cctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            head = t.recv(100)
        if not head.startswith(b"HTTP/1.1 404"):
            raise AssertionError(f"TLS control request: {head!r}")
        rig.tokens = (api.codegen_token, rig.tokens[1])
        rig.write_conf(codegen={"base_url": f"https://127.0.0.1:{api.port}",
                                "org_id": str(api.org_id),
                                "max_retries": "1",
                                "backoff_initial": "10ms"},
                       sources=("codegen",))
        r = run_bin(["-c", rig.conf, "--once"], env=rig.env(), timeout=120)
        if r.returncode != 75:
            raise AssertionError(f"self-signed https: --once exit "
                                 f"{r.returncode}, expected 75: "
                                 f"{r.stderr[-1500:]}")
        if not re.search(r"(?i)certificate|SSL", r.stderr):
            raise AssertionError("self-signed https: no certificate error "
                                 f"logged: {r.stderr[-1500:]}")
        if api.requests():
            raise AssertionError("self-signed https: the fake API got "
                                 f"{len(api.requests())} requests")
        if rig.count("SELECT count(*) FROM runs") != 0:
            raise AssertionError("self-signed https: runs were mirrored")
        m = re.search(r"(?i)(SSL certificate problem[^;\"]*)", r.stderr)
        return m.group(1).strip() if m else "certificate refused"
    finally:
        rig.close()
        api.stop()


def tls_verification_always_on():
    rig = Rig(0, 0)
    tmp = tempfile.mkdtemp(prefix="agentsyncd-rel-tls-")
    try:
        n = 0
        for key, val in INSECURE_KEYS:
            for where in ("source", "agentsyncd"):
                rig.write_conf(codegen={key: val} if where == "source"
                               else None)
                if where == "agentsyncd":
                    with open(rig.conf) as f:
                        text = f.read()
                    text = text.replace("[agentsyncd]\n",
                                        f"[agentsyncd]\n{key} = {val}\n", 1)
                    with open(rig.conf, "w") as f:
                        f.write(text)
                line = line_of(rig.conf, f"{key} = {val}")
                r = run_bin(["-c", rig.conf, "--check-config"],
                            env=rig.env(), timeout=60)
                pat = (rf"(?m)^{re.escape(rig.conf)}:{line}: unknown key "
                       rf"'{re.escape(key)}'")
                if r.returncode != 78 or not re.search(pat, r.stderr):
                    raise AssertionError(
                        f"'{key} = {val}' in [{where}]: exit "
                        f"{r.returncode}, expected 78 with '{rig.conf}:"
                        f"{line}: unknown key': {r.stdout}{r.stderr}")
                n += 1
        settings = _static_tls()
        peer = settings["CURLOPT_SSL_VERIFYPEER"]
        host = settings["CURLOPT_SSL_VERIFYHOST"]
        static = (f"VERIFYPEER {','.join(v for _, v in peer) or 'unset'}"
                  f" VERIFYHOST {','.join(v for _, v in host) or 'unset'}")
        if shutil.which("openssl"):
            live = "self-signed https refused, 0 requests: " + \
                _tls_refused(tmp)[:60]
        else:
            live = "openssl absent: live TLS check skipped"
        return f"{n} insecure keys refused as unknown; {static}; {live}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        rig.close()


# -- sql_only_bound_parameters ----------------------------------------------

_TOKEN_RE = re.compile(r"""
  (?P<pp>^[ \t]*\#(?:\\\n|/\*.*?\*/|[^\n])*)
| (?P<nl>\n)
| (?P<ws>[ \t\r\f\v]+)
| (?P<comment>//[^\n]*|/\*.*?\*/)
| (?P<str>(?:u8|u|U|L)?"(?:\\.|[^"\\\n])*")
| (?P<chr>(?:u8|u|U|L)?'(?:\\.|[^'\\\n])*')
| (?P<id>[A-Za-z_]\w*)
| (?P<num>\.?\d(?:[eEpP][+-]|[\w.])*)
| (?P<op>\.\.\.|->|\+\+|--|<<=|>>=|<<|>>|&&|\|\||[-+*/%&|^!=<>]=|[-+*/%&|^!=<>()\[\]{},;:.?~\#\\])
""", re.S | re.X | re.M)


def _c_files():
    d = os.path.join(ROOT, "daemon")
    return [os.path.join(d, n) for n in os.listdir(d) if n.endswith(".c")]


def tokenize_c(path):
    """(tokens, object-like macros, function-like macro bodies): tokens are
    (kind, text, line); comments and whitespace dropped."""
    with open(path) as f:
        src = f.read()
    toks, macros, fmacros = [], {}, {}
    pos, line = 0, 1
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if m is None:
            raise AssertionError(f"{path}:{line}: cannot tokenize "
                                 f"{src[pos:pos + 20]!r}")
        kind, text = m.lastgroup, m.group()
        if kind == "pp":
            d = re.match(r"[ \t]*#[ \t]*define[ \t]+(\w+)(\(?)(.*)", text,
                         re.S)
            if d:
                body = d.group(3).replace("\\\n", " ")
                if d.group(2):
                    body = body.split(")", 1)[1] if ")" in body else body
                btoks = []
                bpos = 0
                while bpos < len(body):
                    bm = _TOKEN_RE.match(body, bpos)
                    if bm is None:
                        break
                    if bm.lastgroup not in ("ws", "comment", "nl"):
                        btoks.append((bm.lastgroup, bm.group(), line))
                    bpos = bm.end()
                (fmacros if d.group(2) else macros)[d.group(1)] = btoks
        elif kind not in ("ws", "comment", "nl"):
            toks.append((kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return toks, macros, fmacros


def _match(toks, i):
    """Index of the bracket closing the one at i."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    op, cl = toks[i][1], pairs[toks[i][1]]
    depth = 0
    for j in range(i, len(toks)):
        if toks[j][1] == op:
            depth += 1
        elif toks[j][1] == cl:
            depth -= 1
            if depth == 0:
                return j
    raise AssertionError(f"unbalanced {op} at line {toks[i][2]}")


def _split_args(toks, i):
    """Arguments of the call whose '(' is at i: [token lists]."""
    end = _match(toks, i)
    args, cur, depth = [], [], 0
    for j in range(i + 1, end):
        t = toks[j][1]
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == "," and depth == 0:
            args.append(cur)
            cur = []
        else:
            cur.append(toks[j])
    if cur or args:
        args.append(cur)
    return args, end


class _Unit:
    def __init__(self, path):
        self.path = path
        self.name = "daemon/" + os.path.basename(path)
        self.toks, self.macros, self.fmacros = tokenize_c(path)
        # a string macro of daemon/*.h is as constant as the file's own
        self.macros = {**_header_macros(), **self.macros}
        self.funcs = {}     # name -> (params, body start, body end)
        self.tables = {}    # name -> entry count (static const char *const)
        i, depth = 0, 0
        toks = self.toks
        while i < len(toks):
            t = toks[i][1]
            if t == "{" and depth == 0:
                end = _match(toks, i)
                if i > 0 and toks[i - 1][1] == ")":
                    # find the '(' of the parameter list
                    d, k = 0, i - 1
                    while k >= 0:
                        if toks[k][1] == ")":
                            d += 1
                        elif toks[k][1] == "(":
                            d -= 1
                            if d == 0:
                                break
                        k -= 1
                    fname = toks[k - 1][1]
                    params = []
                    for a in _split_args(toks, k)[0]:
                        ids = [x[1] for x in a if x[0] == "id"]
                        if "[" in [x[1] for x in a]:
                            cut = [x[1] for x in a].index("[")
                            ids = [x[1] for x in a[:cut] if x[0] == "id"]
                        params.append(ids[-1] if ids and
                                      ids != ["void"] else None)
                    self.funcs[fname] = (params, i, end)
                elif i > 0 and toks[i - 1][1] == "=":
                    self._table(i, end)
                i = end + 1
                continue
            i += 1

    def is_const_str(self, a, seen=()):
        """a (token list) is string literals and string-constant macros."""
        a = [x for x in a if x[1] not in "()"]
        if not a:
            return False
        for kind, text, _ in a:
            if kind == "str":
                continue
            if kind == "id" and text in self.macros and text not in seen \
                    and self.is_const_str(self.macros[text], seen + (text,)):
                continue
            return False
        return True

    def _table(self, lbrace, rbrace):
        # static const char *const NAME[...] = {
        k = lbrace - 1      # '='
        j = k - 1
        if self.toks[j][1] == "]":
            d = 0
            while j >= 0:
                if self.toks[j][1] == "]":
                    d += 1
                elif self.toks[j][1] == "[":
                    d -= 1
                    if d == 0:
                        break
                j -= 1
            j -= 1
        else:
            return
        name = self.toks[j][1]
        decl = [x[1] for x in self.toks[max(0, j - 6):j]]
        if decl[-4:] != ["const", "char", "*", "const"]:
            return
        entries, cur, depth = [], [], 0
        for x in self.toks[lbrace + 1:rbrace]:
            if x[1] in "([{":
                depth += 1
            elif x[1] in ")]}":
                depth -= 1
            if x[1] == "," and depth == 0:
                entries.append(cur)
                cur = []
            else:
                cur.append(x)
        if cur:
            entries.append(cur)
        n = 0
        for e in entries:
            # optional designator [ID] =
            if len(e) >= 4 and e[0][1] == "[" and e[2][1] == "]" and \
                    e[3][1] == "=":
                e = e[4:]
            if not self.is_const_str(e):
                self.tables[name] = None     # not all constant
                return
            n += 1
        self.tables[name] = n

    def func_at(self, i):
        for name, (params, s, e) in self.funcs.items():
            if s <= i <= e:
                return name, params, s, e
        return None, None, None, None


SQL_SINKS = {"sqlite3_prepare": 1, "sqlite3_prepare_v2": 1,
             "sqlite3_prepare_v3": 1, "sqlite3_prepare16": 1,
             "sqlite3_prepare16_v2": 1, "sqlite3_prepare16_v3": 1,
             "sqlite3_exec": 1, "sqlite3_get_table": 1,
             # libpq (store_pg*.c): every call that takes SQL text; the
             # values go as parameters (PQexecPrepared and
             # PQsendQueryPrepared take a prepared statement's name)
             "PQexec": 1, "PQexecParams": 1, "PQprepare": 2,
             "PQsendQuery": 1, "PQsendQueryParams": 1, "PQsendPrepare": 2}
SQL_BUILDERS = ("sqlite3_mprintf", "sqlite3_vmprintf", "sqlite3_snprintf",
                "sqlite3_vsnprintf", "sqlite3_str_new", "sqlite3_str_appendf",
                "sqlite3_str_vappendf", "sqlite3_str_append",
                "sqlite3_str_appendall", "sqlite3_str_finish")
# SQL built at run time, by (file, function, variable), with the reason.
# Each entry names the only expressions allowed as its printf arguments.
SQL_WHITELIST = {
    ("daemon/store.c", "store_migrate_from", "sql"): (
        "PRAGMA user_version = %d: a PRAGMA takes no bound parameter; the "
        "number is migrations[i].version, a compile-time integer of the "
        "embedded migration table",
        {"migrations[i].version"}),
}
# SQL built when the store opens from the names the adapters declare (their
# typed columns and child tables), by (file, function, variable) of the
# text handed to the sink: (reason, appender, names).  In that file every
# call of the appender adds a constant string (literals and string macros
# of the file or of daemon/*.h) or one of the names listed, which
# columns_load() (store_columns.c) checked to be identifiers; the file
# calls buf_add() only inside the appender, and builds no text with a
# printf.  columns_names() and columns_params() add the checked column
# names and "?N" numbers.
PG_RUNS_NAMES = {"f->table", "f->items[k].column", "cs->cols[c].name"}
SQL_BUILT = {
    ("daemon/store_sqlite_runs.c", "prepare_built", "sql"): (
        "the insert and update of runs and the child tables' statements "
        "name what the adapters declare; each name is of a const table "
        "compiled in, checked to be an identifier before it is used",
        "add", {"f->table", "f->items[k].column"}),
    ("daemon/store_pg_runs.c", "prepare_built", "sql"): (
        "PostgreSQL's insert and update of runs and its child tables' "
        "statements, built as SQLite's from the names the adapters "
        "declare, checked to be identifiers", "add", PG_RUNS_NAMES),
    # ... and the same texts, kept by prepare_built(), sent by a page
    ("daemon/store_pg_runs.c", "pg_send_run_rows", "sql"): (
        "the insert or update of runs prepare_built() kept (built in "
        "this file from literals and checked names)", "add",
        PG_RUNS_NAMES),
    ("daemon/store_pg_runs.c", "send_child_rows", "sql"): (
        "a child table's insert prepare_built() kept (built in this "
        "file from literals and checked names)", "add", PG_RUNS_NAMES),
    ("daemon/store_pg_runs.c", "pg_send_child_deletes", "sql"): (
        "a child table's delete prepare_built() kept (built in this "
        "file from literals and checked names)", "add", PG_RUNS_NAMES),
    ("daemon/store_pg.c", "create_schema", "sql"): (
        "CREATE SCHEMA takes no parameter: the name is database_schema, "
        "checked to be an identifier (columns_identifier()) when the "
        "configuration is read and again when the store opens",
        "add", {"store->schema"}),
}
SQL_KEYWORDS = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|"
                          r"PRAGMA|CREATE|DROP|ALTER|ATTACH|DETACH|WITH|"
                          r"BEGIN|COMMIT|ROLLBACK|VACUUM|SAVEPOINT)\b")


def _whitelisted_var(unit, fname, var, body, sinks, problems):
    key = (unit.name, fname, var)
    reason, allowed = SQL_WHITELIST[key]
    s, e = body
    toks = unit.toks
    prints = 0
    for i in range(s, e):
        if toks[i][1] != var or toks[i][0] != "id":
            continue
        prev = toks[i - 1][1]
        if prev in (".", "->"):
            continue                            # a member of that name
        nxt = toks[i + 1][1]
        if prev == "char" and nxt == "[":
            continue                            # the declaration
        if prev == "(" and toks[i - 2][1] == "sizeof":
            continue
        if prev == "(" and toks[i - 2][1] in ("snprintf", "sprintf"):
            args, _ = _split_args(toks, i - 1)
            fmt = args[2] if toks[i - 2][1] == "snprintf" else args[1]
            rest = args[3:] if toks[i - 2][1] == "snprintf" else args[2:]
            if not all(x[0] == "str" for x in fmt):
                problems.append(f"{unit.name}:{toks[i][2]}: {var}: format "
                                f"is not a literal")
                continue
            ftext = "".join(x[1][1:-1] for x in fmt)
            convs = re.findall(r"%[-+ #0-9.]*[a-zA-Z%]", ftext)
            if any(c not in ("%d", "%%") for c in convs):
                problems.append(f"{unit.name}:{toks[i][2]}: {var}: format "
                                f"{ftext!r} has non-integer conversions")
            for a in rest:
                expr = "".join(x[1] for x in a)
                if expr not in allowed:
                    problems.append(f"{unit.name}:{toks[i][2]}: {var}: "
                                    f"argument {expr!r} not whitelisted")
            prints += 1
            continue
        if prev == "(" or prev == ",":          # passed to some call
            # only the sink call itself may receive it
            continue_ok = False
            j = i - 1
            while j > s and toks[j][1] != "(":
                j -= 1
            callee = toks[j - 1][1] if j > s else ""
            if callee in sinks:
                continue_ok = True
            if continue_ok:
                continue
        problems.append(f"{unit.name}:{toks[i][2]}: whitelisted {var} used "
                        f"in an unexpected way")
    if prints != 1:
        problems.append(f"{unit.name}:{fname}: {var} is written {prints} "
                        f"times (expected one snprintf)")
    return reason


def _header_macros():
    """The string macros of daemon/*.h, by name."""
    out = {}
    d = os.path.join(ROOT, "daemon")
    for n in sorted(os.listdir(d)):
        if n.endswith(".h"):
            out.update(tokenize_c(os.path.join(d, n))[1])
    return out


def _built_var(unit, fname, var, problems):
    """The reason SQL_BUILT gives, after checking every append of the
    file that builds var."""
    reason, appender, names = SQL_BUILT[(unit.name, fname, var)]
    saved = unit.macros
    unit.macros = {**_header_macros(), **saved}
    toks = unit.toks
    for i, (kind, text, line) in enumerate(toks):
        if kind != "id" or i + 1 >= len(toks) or toks[i + 1][1] != "(":
            continue
        owner = unit.func_at(i)[0]
        if text in ("snprintf", "sprintf", "vsnprintf") + SQL_BUILDERS:
            problems.append(f"{unit.name}:{line}: {text}() in a file that "
                            f"builds SQL")
        elif text == "buf_add" and owner != appender:
            problems.append(f"{unit.name}:{line}: buf_add() outside "
                            f"{appender}() in a file that builds SQL")
        elif text == appender and owner is not None:
            args, _ = _split_args(toks, i + 1)
            a = args[1] if len(args) > 1 else []
            expr = "".join(x[1] for x in a)
            if not unit.is_const_str(a) and expr not in names:
                problems.append(f"{unit.name}:{line}: {appender}() adds "
                                f"{expr!r}: not a constant or a checked "
                                f"name")
    unit.macros = saved
    return reason


def _sql_check(paths):
    """(checked, problems, whitelisted) for the C files in paths."""
    units = [_Unit(p) for p in sorted(paths)]
    migrations = sorted(n for n in os.listdir(os.path.join(ROOT,
                                                           "migrations"))
                        if re.match(r"\d{4}_.*\.sql$", n))
    problems, checked, whitelisted = [], [], []
    sinks = dict(SQL_SINKS)             # callee -> SQL argument index
    done_sites = set()
    changed = True
    rounds = 0
    while changed and rounds < 20:      # wrappers of wrappers, bounded
        changed = False
        rounds += 1
        for u in units:
            toks = u.toks
            for i, (kind, text, line) in enumerate(toks):
                if kind != "id" or text not in sinks:
                    continue
                site = (u.name, i)
                if site in done_sites:
                    continue
                fname, params, s, e = u.func_at(i)
                nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
                if fname is None:
                    continue        # prototype or definition: file scope
                if nxt != "(":
                    problems.append(f"{u.name}:{line}: {text} used other "
                                    f"than as a call (pointer taken?)")
                    done_sites.add(site)
                    continue
                args, _ = _split_args(toks, i + 1)
                idx = sinks[text]
                if idx >= len(args):
                    problems.append(f"{u.name}:{line}: {text}: too few "
                                    f"arguments")
                    done_sites.add(site)
                    continue
                a = args[idx]
                expr = "".join(x[1] for x in a)
                done_sites.add(site)
                if u.is_const_str(a):
                    text_sql = "".join(x[1][1:-1] if x[0] == "str"
                                       else f"<{x[1]}>" for x in a
                                       if x[1] not in "()")
                    if "%" in text_sql.replace("%'", ""):
                        problems.append(f"{u.name}:{line}: literal SQL "
                                        f"with a % (a format?): "
                                        f"{text_sql[:60]!r}")
                    checked.append((f"{u.name}:{line}", "literal",
                                    text_sql[:50]))
                    continue
                if len(a) == 1 and a[0][0] == "id" and params and \
                        a[0][1] in params:
                    # a wrapper: its callers must pass constant SQL
                    pidx = params.index(a[0][1])
                    if sinks.get(fname) != pidx:
                        sinks[fname] = pidx
                        changed = True
                    checked.append((f"{u.name}:{line}", "wrapper",
                                    f"{fname}() argument {pidx + 1}"))
                    continue
                if len(a) >= 4 and a[0][0] == "id" and a[1][1] == "[" and \
                        a[-1][1] == "]" and a[0][1] in u.tables:
                    n = u.tables[a[0][1]]
                    if n is None:
                        problems.append(f"{u.name}:{line}: table "
                                        f"{a[0][1]} is not all literals")
                    else:
                        checked.append((f"{u.name}:{line}",
                                        f"table {a[0][1]}", n))
                    continue
                if expr.startswith("pg_migrations[") and \
                        expr.endswith("].sql"):
                    if '#include "pg_migrations.h"' not in \
                            open(u.path).read():
                        problems.append(f"{u.name}:{line}: migrations "
                                        f"table not the embedded one")
                    checked.append((f"{u.name}:{line}", "migrations",
                                    len(os.listdir(os.path.join(
                                        ROOT, "migrations", "postgresql")))))
                    continue
                if expr.startswith("migrations[") and expr.endswith("].sql"):
                    if '#include "migrations.h"' not in open(u.path).read():
                        problems.append(f"{u.name}:{line}: migrations "
                                        f"table not the embedded one")
                    checked.append((f"{u.name}:{line}", "migrations",
                                    len(migrations)))
                    continue
                if len(a) == 1 and (u.name, fname, a[0][1]) in SQL_BUILT:
                    reason = _built_var(u, fname, a[0][1], problems)
                    whitelisted.append(f"{u.name}:{line} {fname}() "
                                       f"{a[0][1]}: {reason}")
                    checked.append((f"{u.name}:{line}", "built", 1))
                    continue
                if len(a) == 1 and (u.name, fname, a[0][1]) in \
                        SQL_WHITELIST:
                    reason = _whitelisted_var(u, fname, a[0][1], (s, e),
                                              sinks, problems)
                    whitelisted.append(f"{u.name}:{line} {fname}() "
                                       f"{a[0][1]}: {reason}")
                    checked.append((f"{u.name}:{line}", "whitelisted", 1))
                    continue
                problems.append(f"{u.name}:{line}: {text}() gets SQL "
                                f"{expr!r}, not a literal, constant table, "
                                f"migration or whitelisted text")
        # a sink name inside a function-like macro would hide call sites
        for u in units:
            for mname, body in u.fmacros.items():
                for x in body:
                    if x[1] in sinks and (u.name, "macro", mname) not in \
                            done_sites:
                        done_sites.add((u.name, "macro", mname))
                        problems.append(f"{u.name}: macro {mname} calls "
                                        f"{x[1]}")
    # no SQL formatting helpers, and no printf-built text that looks like
    # SQL outside the whitelist
    for u in units:
        for i, (kind, text, line) in enumerate(u.toks):
            if kind == "id" and text in SQL_BUILDERS:
                problems.append(f"{u.name}:{line}: {text} builds SQL text")
            if kind == "id" and text in ("snprintf", "sprintf", "asprintf",
                                         "vsnprintf", "vasprintf") and \
                    u.toks[i + 1][1] == "(":
                args, _ = _split_args(u.toks, i + 1)
                fa = 2 if text in ("snprintf", "vsnprintf") else 1
                if len(args) <= fa:
                    continue
                fmt = "".join(x[1][1:-1] for x in args[fa]
                              if x[0] == "str")
                if SQL_KEYWORDS.match(fmt):
                    fname = u.func_at(i)[0]
                    var = "".join(x[1] for x in args[0])
                    if (u.name, fname, var) not in SQL_WHITELIST:
                        problems.append(f"{u.name}:{line}: {text} builds "
                                        f"SQL-like text {fmt[:40]!r} into "
                                        f"{var} (not whitelisted)")
    return checked, problems, whitelisted


# Code a careless change could add, appended to a copy of store.c: the
# checker must flag each (its own regression test).
SQL_MUTANTS = {
    "snprintf-built SQL": """
static int mut_a(struct store *store, const char *src)
{
	char q[256];
	snprintf(q, sizeof(q), "DELETE FROM runs WHERE source = '%s'", src);
	return store_exec(store, q);
}""",
    "sqlite3_mprintf": """
static int mut_b(struct store *store, const char *src)
{
	char *q = sqlite3_mprintf("DELETE FROM runs WHERE source = %Q", src);
	int rc = sqlite3_exec(store->db, q, NULL, NULL, NULL);
	sqlite3_free(q);
	return rc;
}""",
    "data through a wrapper of a wrapper": """
static int mut_c(struct store *store, const char *text)
{
	return exec_bound(store, "x", text, 0);
}
static int mut_c2(struct store *store, const struct run *r)
{
	return mut_c(store, r->title);
}""",
    "libpq: SQL text from data": """
static int mut_e(PGconn *conn, const struct run *r)
{
	PGresult *res = PQexecParams(conn, r->title, 0, NULL, NULL, NULL,
	    NULL, 0);
	PQclear(res);
	return 0;
}""",
    "libpq: a wrapper given data": """
static int mut_f(struct pg_store *store, const struct run *r)
{
	return pg_exec(store, "x", r->title);
}""",
    "a local pointer to data": """
static int mut_d(struct store *store, sqlite3_stmt **st, const char *id)
{
	const char *sql = id;
	return sqlite3_prepare_v2(store->db, sql, -1, st, NULL);
}""",
}


def _mutants_caught():
    tmp = tempfile.mkdtemp(prefix="agentsyncd-rel-sql-")
    try:
        caught, missed = 0, []
        muts = dict(SQL_MUTANTS)
        with open(os.path.join(ROOT, "daemon", "store.c")) as f:
            store_c = f.read()
        # the whitelisted snprintf given another argument
        alt, n = re.subn(r"migrations\[i\]\.version\)", "v)", store_c,
                         count=1)
        variants = {k: ("store.c", store_c + v) for k, v in muts.items()}
        if n:
            variants["whitelisted format with another argument"] = (
                "store.c", alt)
        with open(os.path.join(ROOT, "daemon",
                               "store_sqlite_runs.c")) as f:
            runs_c = f.read()
        # the built SQL given a name nothing checked, or bytes past add()
        for what, old, new in (
                ("built SQL adds an unchecked name", "add(&b, f->table)",
                 "add(&b, f->path)"),
                ("built SQL adds bytes past its appender",
                 "add(&b, \" WHERE run_id = ?1\")",
                 "buf_add(&b, f->path, 1)")):
            if old in runs_c:
                variants[what] = ("store_sqlite_runs.c",
                                  runs_c.replace(old, new, 1))
        for what, (name, text) in variants.items():
            paths = []
            for src in _c_files():
                dst = os.path.join(tmp, os.path.basename(src))
                if os.path.basename(src) == name:
                    with open(dst, "w") as f:
                        f.write(text)
                else:
                    shutil.copy(src, dst)
                paths.append(dst)
            if _sql_check(paths)[1]:
                caught += 1
            else:
                missed.append(what)
        if missed:
            raise AssertionError(f"the SQL checker missed: {missed}")
        return caught, len(variants)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sql_only_bound_parameters():
    checked, problems, whitelisted = _sql_check(_c_files())
    if problems:
        raise AssertionError("; ".join(problems[:12]))
    caught, nmut = _mutants_caught()
    statements = 0
    sites = 0
    for _, kind, n in checked:
        if kind == "wrapper":
            continue
        sites += 1
        statements += n if isinstance(n, int) else 1
    kinds = {}
    for _, kind, n in checked:
        k = kind.split()[0]
        kinds[k] = kinds.get(k, 0) + (n if isinstance(n, int) else 1)
    wrappers = sorted({v for _, k, v in checked if k == "wrapper"})
    if statements < 10:
        raise AssertionError(f"only {statements} SQL statements found: the "
                             f"checker is not seeing the code")
    return (f"{statements} SQL texts at {sites} sites ok: "
            f"{kinds.get('literal', 0)} literal, "
            f"{kinds.get('table', 0)} from stmt table, "
            f"{kinds.get('migrations', 0)} migration, "
            f"{kinds.get('whitelisted', 0)} whitelisted (user_version), "
            f"{kinds.get('built', 0)} built from checked names; "
            f"via {len(wrappers)} wrappers; self-test {caught}/{nmut} "
            f"mutants caught")


CASES = [
    ("token_never_appears", token_never_appears),
    ("token_echoed_by_upstream_never_stored",
     token_echoed_by_upstream_never_stored),
    ("inline_token_needs_private_config", inline_token_needs_private_config),
    ("http_only_for_loopback", http_only_for_loopback),
    ("tls_verification_always_on", tls_verification_always_on),
    ("sql_only_bound_parameters", sql_only_bound_parameters),
]
