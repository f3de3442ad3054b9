# SPDX-License-Identifier: ISC
"""What an operator meets outside the sync itself (README "Operations"):
`systemctl reload` answered by the daemon (--reload), a configuration
without sources idling, readers that may not write the directory reading
the mirror after the daemon stopped, and `sudo agentsyncd --migrate`
leaving a database the service's user owns.  make check-systemd does the
same under a real systemd; these run anywhere."""
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration.harness import BIN, DaemonTest


def nobody_ids():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


class ReloadAnswerTest(DaemonTest):
    codegen_runs = 30
    cotool_runs = 20

    def mirrored(self):
        """All runs in (False while the file or its schema is not yet
        there: the daemon creates both after it starts)."""
        try:
            return self.count("SELECT count(*) FROM runs") == 50
        except sqlite3.OperationalError:
            return False

    def reload(self, pid, rundir):
        env = dict(os.environ, MAINPID=str(pid), RUNTIME_DIRECTORY=rundir)
        env.pop("JOURNAL_STREAM", None)
        return subprocess.run([BIN, "--reload"], env=env,
                              capture_output=True, text=True, timeout=90)

    def test_reload_fails_when_the_daemon_refuses(self):
        rundir = os.path.join(self.dir, "run")
        os.mkdir(rundir, 0o700)
        env = dict(self.env(), RUNTIME_DIRECTORY=rundir)
        err = open(os.path.join(self.dir, "daemon.err"), "w+")
        self.addCleanup(err.close)
        p = subprocess.Popen([BIN, "-c", self.conf], env=env,
                             stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.wait_until(self.mirrored, what="the first pass")
        r = self.reload(p.pid, rundir)
        self.assertEqual((r.returncode, r.stdout), (0, "configuration "
                                                        "reloaded\n"),
                         r.stderr)
        # A broken file: refused, the reason on stderr, the daemon goes on.
        with open(self.conf, "a") as f:
            f.write("colour = blue\n")
        r = self.reload(p.pid, rundir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("reload refused: the configuration has errors",
                      r.stderr)
        err.seek(0)
        self.assertRegex(err.read(), self.conf.replace(".", r"\.") +
                         r":\d+: unknown key 'colour'")
        self.assertIsNone(p.poll())
        # What --check-config cannot know: the database may not change.
        self.write_conf(database=os.path.join(self.dir, "other.db"))
        r = self.reload(p.pid, rundir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("database cannot change", r.stderr)
        self.write_conf()
        r = self.reload(p.pid, rundir)
        self.assertEqual(r.returncode, 0, r.stderr)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)

    def test_reload_outside_systemd_is_a_usage_error(self):
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAINPID", "RUNTIME_DIRECTORY")}
        r = subprocess.run([BIN, "--reload"], env=env, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 64)
        self.assertIn("systemctl reload agentsyncd", r.stderr)


class NoSourceTest(DaemonTest):
    def test_idles_and_says_so(self):
        with open(self.conf, "w") as f:
            f.write(f"[agentsyncd]\ndatabase = {self.db}\n")
        r = subprocess.run([BIN, "-c", self.conf, "--check-config"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "configuration OK\n")
        self.assertIn(":0: note: no [source NAME] section", r.stderr)
        self.assertEqual(self.once(), 78)
        self.assertIn("nothing to sync", self.last_stderr)
        p = self.start()
        self.wait_until(lambda: "idling until one is added" in
                        self.stderr_of(p), what="the idle warning")
        self.assertIsNone(p.poll())
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=10), 0)


class ReadersTest(DaemonTest):
    codegen_runs = 40
    cotool_runs = 10

    def test_wal_files_kept_after_a_clean_stop(self):
        self.once_ok()
        for suffix in ("-wal", "-shm"):
            self.assertTrue(os.path.exists(self.db + suffix), suffix)
        self.assertEqual(os.path.getsize(self.db + "-wal"), 0)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv to read as another user")
    def test_reader_who_cannot_write_the_directory(self):
        # The directory and files as the service leaves them, the reader
        # in the group: it may read, not create -shm.
        uid, gid = nobody_ids()
        d = tempfile.mkdtemp(prefix="agentsyncd-readers-")
        self.addCleanup(shutil.rmtree, d, True)
        db = os.path.join(d, "mirror.db")
        self.write_conf(database=db)
        self.once_ok()
        os.chmod(d, 0o750)
        os.chown(d, 0, gid)
        for suffix in ("", "-wal", "-shm"):
            self.assertEqual(os.stat(db + suffix).st_mode & 0o777, 0o640)
            os.chown(db + suffix, 0, gid)
        r = subprocess.run(
            ["setpriv", f"--reuid={uid}", f"--regid={gid}",
             "--clear-groups", "python3", "-c",
             "import sqlite3, sys; c = sqlite3.connect("
             "'file:' + sys.argv[1] + '?mode=ro', uri=True); "
             "print(c.execute('SELECT count(*) FROM runs').fetchone()[0])",
             db], capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "50"),
                         r.stderr)


class RootMigrateTest(unittest.TestCase):
    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_database_given_to_the_directory_owner(self):
        uid, gid = nobody_ids()
        d = tempfile.mkdtemp(prefix="agentsyncd-rootmig-")
        self.addCleanup(shutil.rmtree, d, True)
        state = os.path.join(d, "state")
        os.mkdir(state, 0o750)
        os.chown(state, uid, gid)
        conf = os.path.join(d, "agentsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"[agentsyncd]\ndatabase = {state}/mirror.db\n")
        r = subprocess.run([BIN, "-c", conf, "--migrate"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for suffix in ("", "-wal", "-shm"):
            st = os.stat(f"{state}/mirror.db{suffix}")
            self.assertEqual((st.st_uid, st.st_gid), (uid, gid), suffix)
        con = sqlite3.connect(f"file:{state}/mirror.db?mode=ro", uri=True)
        self.assertGreater(con.execute("PRAGMA user_version").fetchone()[0],
                           0)
        con.close()


if __name__ == "__main__":
    unittest.main()
