# SPDX-License-Identifier: ISC
"""Shared pieces of the integration and reliability tests: a fake API in a
thread, a config file, the daemon as a subprocess (always with a timeout,
killed by pid), and a row-by-row comparison of the mirror with upstream.

Rig holds all of it and works outside unittest (tests/reliability uses it
bare); DaemonTest is the same rig as a unittest.TestCase."""
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import fakeapi  # noqa: E402

BIN = os.environ.get("AGENTSYNCD_BIN", os.path.join(ROOT, "agentsyncd"))
# The engine the mirror is in: "sqlite" (a file, the default) or
# "postgresql" (a database of the throwaway cluster of tests/pgcluster.py,
# one per test): make check-postgres runs the core tests with both.
ENGINE = os.environ.get("AGENTSYNCD_TEST_ENGINE", "sqlite")
_cluster = None
_databases = 0


def pg_cluster():
    """The one throwaway cluster of this process, started on first use
    and stopped (and removed) at exit."""
    global _cluster
    if _cluster is None:
        import atexit
        import pgcluster
        _cluster = pgcluster.Cluster()
        atexit.register(_cluster.stop)
    return _cluster


def pg_database():
    """(cluster, name, URI) of a new empty database."""
    global _databases
    c = pg_cluster()
    _databases += 1
    name = c.createdb(f"t{os.getpid()}_{_databases}")
    return c, name, c.uri(name)


def _pg_literal(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return "E'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _pg_sql(query, args):
    """SQLite's dialect of the tests' SQL as PostgreSQL's: "a IS NOT b"
    (b not NULL) is IS DISTINCT FROM, "a IS b" IS NOT DISTINCT FROM; the
    ? placeholders filled with literals of the test's own values."""
    query = re.sub(r"\bIS NOT (?!NULL\b)", "IS DISTINCT FROM ", query)
    query = re.sub(r"\bIS (?!NOT\b|NULL\b|TRUE\b|FALSE\b|DISTINCT\b)",
                   "IS NOT DISTINCT FROM ", query)
    parts = query.split("?")
    if len(parts) - 1 != len(args):
        raise AssertionError(f"{len(args)} arguments for {query!r}")
    return parts[0] + "".join(_pg_literal(a) + p for a, p in
                              zip(args, parts[1:]))


def pg_rows(cluster, dbname, query, args=()):
    """query (SQLite's ? placeholders, filled with literals of the test's
    own values) on PostgreSQL, rows as tuples: numbers as numbers,
    booleans as True/False (== 1/0), times as PostgreSQL's text."""
    q = _pg_sql(query, args)
    out = cluster.psql("SELECT coalesce(json_agg(row_to_json(t)), '[]') "
                       f"FROM ({q}) t", dbname,
                       env={"PGOPTIONS": "-c search_path=agentsyncd"}
                       ).stdout.strip()
    return [tuple(_pg_value(v) for _, v in pairs) for pairs in
            json.loads(out, object_pairs_hook=list)]


_PG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?\+00:00$")


def _pg_value(v):
    """A timestamptz as JSON gives it (2025-06-21T11:20:04.338+00:00) in
    the mirror's text form (2025-06-21T11:20:04.338Z): the same instant."""
    if isinstance(v, str):
        m = _PG_TIME.match(v)
        if m:
            frac = (m.group(2) or ".")[1:4].ljust(3, "0")
            return f"{m.group(1)}.{frac}Z"
    return v


def wait_for(cond, timeout, what, proc=None, log=None, step=0.05):
    """The one wait of the test suites: poll cond() until true, at most
    timeout seconds; fail early when proc (a daemon) has exited.  log()
    gives a log tail for the message.  Raises AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"daemon exited {proc.returncode} while waiting for {what}"
                + (f"; log tail: {log()[-1200:]}" if log else ""))
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f"; log tail: {log()[-1200:]}" if log else ""))


def stop(proc, timeout=20, log=None, expect=0, sig=signal.SIGTERM):
    """The one stop of the test suites: send sig (SIGTERM) to a daemon we
    started, wait at most timeout seconds (then SIGKILL it and fail), and
    return its exit status; with expect not None, fail unless it is that.
    A daemon already gone is reaped.  Raises AssertionError."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(f"daemon pid {proc.pid} did not stop "
                                 f"within {timeout}s of signal {sig}")
    if expect is not None and proc.returncode != expect:
        raise AssertionError(f"daemon exited {proc.returncode}, not "
                             f"{expect}" + (f": {log()[-1500:]}" if log
                                            else ""))
    return proc.returncode


def closed_port():
    """A loopback port nobody listens on (connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RigMixin:
    """The rig's state and verbs.  A user sets codegen_runs, cotool_runs
    and seed, provides addCleanup() and fail(), and calls rig_setup()."""
    codegen_runs = 0
    cotool_runs = 0
    seed = 1

    def rig_setup(self):
        self.api = fakeapi.FakeAPI(self.codegen_runs, self.cotool_runs,
                                   seed=self.seed).start()
        self.addCleanup(self.api.stop)
        # What the daemon is given; a test may rotate the server's side.
        self.tokens = (self.api.codegen_token, self.api.cotool_token)
        self.dir = tempfile.mkdtemp(prefix="agentsyncd-it-")
        # Registered first, so it runs last: after the daemons are reaped.
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.engine = ENGINE
        self.db = os.path.join(self.dir, "mirror.db")
        if self.engine == "postgresql":
            self.pg, self.pg_db, self.db = pg_database()
        self.procs = []
        self.addCleanup(self.reap)
        self.write_conf()

    def fresh_mirror(self, name=None):
        """Start over with an empty mirror: SQLite's file removed (or, with
        name, a new file of that name in the test's directory); on
        PostgreSQL a new empty database."""
        if self.engine == "postgresql":
            self.pg, self.pg_db, self.db = pg_database()
            return
        if name is not None:
            self.db = os.path.join(self.dir, name)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)

    def write_conf(self, codegen=None, cotool=None, sources=("codegen",
                                                             "cotool"),
                   database=None):
        """One section per name in sources: "codegen", "cotool", or
        "codegen:NAME" / "cotool:NAME" for more sources of a type."""
        base = dict(poll_interval="1s", page_size="100", rate_limit="off",
                    backoff_initial="50ms", backoff_max="1s")
        parts = [f"[agentsyncd]\ndatabase = {database or self.db}\n"
                 f"log_level = info\n"]
        for spec in sources:
            kind, _, name = spec.partition(":")
            name = name or kind
            if kind == "codegen":
                o = dict(base, type="codegen", base_url=self.api.url,
                         org_id=str(self.api.org_id),
                         token_env="CODEGEN_API_TOKEN")
                o.update(codegen or {})
            else:
                o = dict(base, type="cotool", base_url=self.api.url,
                         token_env="COTOOL_API_KEY")
                o.update(cotool or {})
            parts.append(f"[source {name}]\n" +
                         "".join(f"{k} = {v}\n" for k, v in o.items()))
        self.conf = os.path.join(self.dir, "agentsyncd.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(parts))

    def env(self):
        env = dict(os.environ, CODEGEN_API_TOKEN=self.tokens[0],
                   COTOOL_API_KEY=self.tokens[1])
        for k in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC"):
            env.pop(k, None)
        return env

    def once(self, timeout=120, args=()):
        r = subprocess.run([BIN, "-c", self.conf, "--once", *args],
                           env=self.env(), capture_output=True, text=True,
                           timeout=timeout)
        self.last_stderr = r.stderr
        return r.returncode

    def once_ok(self, timeout=120):
        rc = self.once(timeout)
        if rc != 0:
            self.fail(f"--once exited {rc}: {self.last_stderr[-3000:]}")

    def start(self, args=()):
        err = open(os.path.join(self.dir, f"stderr.{len(self.procs)}"),
                   "w+")
        p = subprocess.Popen([BIN, "-c", self.conf, *args], env=self.env(),
                             stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append((p, err))
        return p

    def stderr_of(self, p):
        for q, err in self.procs:
            if q is p:
                err.flush()
                err.seek(0)
                return err.read()
        return ""

    def reap(self):
        for p, err in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            err.close()
        self.procs = []

    def wait_until(self, cond, timeout=30.0, what="condition"):
        def ready():
            try:
                return cond()
            except AssertionError:
                # PostgreSQL: the schema is not there before the daemon
                # migrated it (SQLite's file reads as empty)
                if self.engine == "postgresql":
                    return False
                raise
        try:
            wait_for(ready, timeout, what)
        except AssertionError as e:
            self.fail(str(e))

    def sql(self, query, *args):
        if self.engine == "postgresql":
            return pg_rows(self.pg, self.pg_db, query, args)
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True,
                              timeout=10)
        try:
            return con.execute(query, args).fetchall()
        finally:
            con.close()

    def write_sql(self, query, *args):
        """Change the mirror behind the daemon's back (a test's fault)."""
        if self.engine == "postgresql":
            self.pg.psql(_pg_sql(query, args), self.pg_db, env={
                "PGOPTIONS": "-c search_path=agentsyncd"})
            return
        con = sqlite3.connect(self.db, timeout=30)
        try:
            with con:
                con.execute(query, args)
        finally:
            con.close()

    def count(self, query, *args):
        return self.sql(query, *args)[0][0]

    def mirror_problems(self, sources=("codegen", "cotool"), kinds=None):
        """What differs between upstream and the mirror, as sentences;
        [] when every upstream run is in the mirror with byte-for-byte
        equal JSON and its status, and nothing else is (except rows
        marked gone upstream).  A source's kind is its name, unless
        kinds maps the name to "codegen" or "cotool" (several sources
        of one type, all pointed at the one fake API)."""
        problems = []
        for src in sources:
            kind = (kinds or {}).get(src, src)
            up = ({str(r["id"]): r for r in self.api.codegen_sorted()}
                  if kind == "codegen" else
                  {r["id"]: r for r in self.api.cotool_sorted()})
            rows = self.sql("SELECT external_id, raw_json, status, state "
                            "FROM runs WHERE source = ? AND "
                            "deleted_upstream_at IS NULL", src)
            mirror = {r[0]: r for r in rows}
            if len(mirror) != len(rows):
                problems.append(f"{src}: duplicated external ids")
            missing = set(up) - set(mirror)
            extra = set(mirror) - set(up)
            if missing:
                problems.append(f"{src}: {len(missing)} runs missing")
            if extra:
                problems.append(f"{src}: {len(extra)} runs extra")
            for rid, run in up.items():
                if rid not in mirror:
                    continue
                if json.loads(mirror[rid][1]) != run:
                    problems.append(f"{src} run {rid} differs")
                elif mirror[rid][2] != run.get("status"):
                    problems.append(f"{src} run {rid}: status differs")
            if kind == "codegen":
                links = self.sql(
                    "SELECT r.external_id, p.external_id FROM "
                    "run_pull_requests l JOIN runs r ON r.id = l.run_id "
                    "JOIN pull_requests p ON p.id = l.pull_request_id "
                    "WHERE r.source = ? AND "
                    "r.deleted_upstream_at IS NULL", src)
                want = {(str(r["id"]), str(p["id"])) for r in up.values()
                        for p in (r.get("github_pull_requests") or [])}
                if set(links) != want:
                    problems.append(f"{src}: pull request links differ")
        return problems

    def settled_problems(self, sources=("codegen", "cotool"), kinds=None,
                         timeout=120):
        """Run a final --once and say what is wrong after it: its exit
        status, the mirror against upstream, PRAGMA integrity_check and
        duplicated (source, external_id) rows; [] when all is well."""
        rc = self.once(timeout)
        if rc != 0:
            return [f"final --once exited {rc}: {self.last_stderr[-2000:]}"]
        problems = self.mirror_problems(sources, kinds)
        integrity = (self.sql("PRAGMA integrity_check")
                     if self.engine == "sqlite" else [("ok",)])
        if integrity != [("ok",)]:
            problems.append(f"integrity_check: {integrity[:5]}")
        dups = self.duplicated_runs()
        if dups:
            problems.append(f"duplicated runs: {dups[:5]}")
        return problems

    def duplicated_runs(self):
        """(source, external_id, rows) of every run held more than once."""
        return self.sql("SELECT source, external_id, count(*) FROM runs "
                        "GROUP BY 1, 2 HAVING count(*) > 1")

    def assert_mirror_exact(self, sources=("codegen", "cotool"), kinds=None):
        problems = self.mirror_problems(sources, kinds)
        if problems:
            self.fail("; ".join(problems[:10]))


class Rig(RigMixin):
    """The rig outside unittest: rig.close() undoes everything."""

    def __init__(self, codegen_runs=0, cotool_runs=0, seed=1):
        self.codegen_runs = codegen_runs
        self.cotool_runs = cotool_runs
        self.seed = seed
        self._cleanups = []
        self.rig_setup()

    def addCleanup(self, fn, *args):
        self._cleanups.append((fn, args))

    def fail(self, msg):
        raise AssertionError(msg)

    def close(self):
        while self._cleanups:
            fn, args = self._cleanups.pop()
            fn(*args)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DaemonTest(RigMixin, unittest.TestCase):
    def setUp(self):
        self.rig_setup()
