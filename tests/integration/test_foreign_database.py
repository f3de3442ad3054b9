# SPDX-License-Identifier: ISC
"""A database that is not agentsyncd's is refused untouched (issue 13,
item 7): another program's tables without our schema version, a negative
or garbage user_version, a schema version without our tables, another
program's application_id.  "Untouched" is byte for byte, and no -wal is
made (the journal mode is not switched).  A symbolic link at the database
path is refused too: through it SQLite would create the target with the
process's default mode."""
import hashlib
import os
import sqlite3
import subprocess

from tests.integration.harness import BIN, DaemonTest


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class ForeignDatabaseTest(DaemonTest):
    def foreign(self, name, setup):
        db = os.path.join(self.dir, name)
        con = sqlite3.connect(db)
        setup(con)
        con.commit()
        con.close()
        return db

    def refused(self, db, why):
        self.write_conf(database=db)
        before = digest(db)
        for args in (["--once"], ["--migrate"], ["--status"]):
            r = subprocess.run([BIN, "-c", self.conf, *args],
                               env=self.env(), capture_output=True,
                               text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn("is not an agentsyncd mirror", r.stderr, args)
            self.assertIn(why, r.stderr, args)
            self.assertNotIn("--migrate", r.stderr.split("mirror")[-1])
            self.assertEqual(digest(db), before, args)
            self.assertFalse(os.path.exists(db + "-wal"), args)

    def test_another_programs_tables(self):
        db = self.foreign("app.db", lambda c: c.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)"))
        self.refused(db, "no agentsyncd schema version")

    def test_negative_user_version(self):
        db = self.foreign("neg.db", lambda c: (
            c.execute("CREATE TABLE t (x)"),
            c.execute("PRAGMA user_version = -7")))
        self.refused(db, "its user_version is -7")

    def test_version_without_our_tables(self):
        db = self.foreign("v2.db", lambda c: (
            c.execute("CREATE TABLE t (x)"),
            c.execute("PRAGMA user_version = 2")))
        self.refused(db, "without agentsyncd's tables")

    def test_another_application_id(self):
        db = self.foreign("appid.db", lambda c: (
            c.execute("PRAGMA application_id = 12345"),
            c.execute("CREATE TABLE t (x)")))
        self.refused(db, "its application_id is 12345")

    def test_ours_is_marked(self):
        self.once_ok()
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        app = con.execute("PRAGMA application_id").fetchone()[0]
        con.close()
        self.assertEqual(app, 0x61677379)

    def test_symlink_refused(self):
        target = os.path.join(self.dir, "target.db")
        link = os.path.join(self.dir, "link.db")
        os.symlink(target, link)           # dangling
        self.write_conf(database=link)
        r = subprocess.run([BIN, "-c", self.conf, "--once"], env=self.env(),
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is a symbolic link", r.stderr)
        self.assertFalse(os.path.exists(target))
