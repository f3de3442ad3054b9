# SPDX-License-Identifier: ISC
"""A throwaway PostgreSQL cluster for the tests, never the system's.

Cluster() runs initdb into a temporary directory as an unprivileged user
(as root: the system user agentsyncd-pgtest, created with useradd
--system when missing; otherwise the current user), starts postgres on a
free loopback port with its unix socket inside that directory, and stop()
stops it (pg_ctl -m immediate) and removes the directory.  Every wait is
bounded; only the postgres this module started is stopped, by its data
directory's pid.

sql() runs SQL through psql (-A -t -F with a unit separator), so the
tests read the mirror without a Python driver: psycopg is not on Debian
12's default install.  Values come back as psql prints them (booleans
't'/'f', NULL as '\\N' mapped to None)."""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

PGBIN = os.environ.get("AGENTSYNCD_PGBIN", "/usr/lib/postgresql/15/bin")
TEST_USER = "agentsyncd-pgtest"
SEP = "\x1f"
NULL = "\\N"


def available():
    """Why the cluster cannot run here, or None."""
    for b in ("initdb", "pg_ctl", "postgres"):
        if not os.access(os.path.join(PGBIN, b), os.X_OK):
            return f"{PGBIN}/{b} missing (apt-get install postgresql)"
    if shutil.which("psql") is None:
        return "psql missing (apt-get install postgresql-client)"
    return None


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _user():
    """(name, uid, gid) of the user the cluster runs as."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return pw.pw_name, pw.pw_uid, pw.pw_gid
    try:
        pw = pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", TEST_USER],
                       check=True, timeout=30)
        pw = pwd.getpwnam(TEST_USER)
    return pw.pw_name, pw.pw_uid, pw.pw_gid


class Cluster:
    def __init__(self, superuser="agentsyncd_test"):
        why = available()
        if why:
            raise RuntimeError(why)
        self.superuser = superuser
        self.user, self.uid, self.gid = _user()
        self.dir = tempfile.mkdtemp(prefix="agentsyncd-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        os.mkdir(self.sock)
        os.chown(self.dir, self.uid, self.gid)
        os.chown(self.sock, self.uid, self.gid)
        self.port = _free_port()
        self.log = os.path.join(self.dir, "postgres.log")
        self._as_user([os.path.join(PGBIN, "initdb"), "-D", self.data,
                       "-U", superuser, "--auth=trust", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-sync"], timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.sock}'\n"
                    "fsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 50\n")
        self.start()

    def _as_user(self, argv, timeout=60, check=True):
        def demote():
            os.setgid(self.gid)
            os.setuid(self.uid)
        pre = demote if os.geteuid() == 0 else None
        return subprocess.run(argv, preexec_fn=pre, cwd=self.dir,
                              capture_output=True, text=True,
                              timeout=timeout, check=check)

    def pg_ctl(self, *args, timeout=60, check=True):
        return self._as_user([os.path.join(PGBIN, "pg_ctl"), "-D",
                              self.data, "-l", self.log, "-w", "-t", "30",
                              *args], timeout=timeout, check=check)

    def start(self):
        self.pg_ctl("start")

    def restart(self, mode="fast"):
        self.pg_ctl("restart", "-m", mode)

    def stop_server(self, mode="fast"):
        self.pg_ctl("stop", "-m", mode)

    def stop(self):
        """Stop the server (immediately) and remove everything."""
        try:
            if os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self.pg_ctl("stop", "-m", "immediate", check=False)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def uri(self, dbname="postgres", user=None, params=""):
        u = user or self.superuser
        q = f"?{params}" if params else ""
        return f"postgresql://{u}@127.0.0.1:{self.port}/{dbname}{q}"

    def psql(self, sql, dbname="postgres", user=None, check=True,
             timeout=60, env=None):
        argv = ["psql", "-X", "-q", "-A", "-t", "-F", SEP, "-P",
                "null=" + NULL, "-v", "ON_ERROR_STOP=1",
                "-h", "127.0.0.1", "-p", str(self.port),
                "-U", user or self.superuser, "-d", dbname, "-c", sql]
        e = dict(os.environ, PGCONNECT_TIMEOUT="10")
        e.pop("PGPASSWORD", None)
        e.update(env or {})
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, env=e)
        if check and r.returncode != 0:
            raise AssertionError(f"psql failed: {r.stderr.strip()}")
        return r

    def sql(self, sql, dbname="postgres", user=None):
        """Rows of sql as tuples of str (None for NULL)."""
        out = self.psql(sql, dbname, user).stdout
        rows = []
        for line in out.split("\n"):
            if line == "":
                continue
            rows.append(tuple(None if v == NULL else v
                              for v in line.split(SEP)))
        return rows

    def createdb(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return name

    def postmaster_pid(self):
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False
