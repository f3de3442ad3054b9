# SPDX-License-Identifier: ISC
"""doc/agentsyncd-schema.7 stays in step with the schema the binary makes.

A fresh database is made with the built binary (`agentsyncd --migrate`)
and read back with sqlite3: its tables, views, their columns (PRAGMA
table_info) and its named indexes.  The man page is parsed as roff lines:

  .SH TABLES / .SH VIEWS    one  .SS NAME  per table / view, then
                            .TP
                            .B column
                            description
                            per column;
  .SH INDEXES               .TP / .B index_name / description per index.

Each side must name exactly what the other has: a table, view, column or
index the page lacks fails, and so does a section or entry naming one that
does not exist (renamed, dropped, or a view filed under TABLES).  The page
must also name the schema version it describes, and render without a groff
warning where man(1) or groff(1) is installed."""
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from tests.integration.harness import BIN, ROOT

PAGE = os.path.join(ROOT, "doc", "agentsyncd-schema.7")
REL = os.path.relpath(PAGE, ROOT)
IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
OBJECT_SECTIONS = {"TABLES": "table", "VIEWS": "view"}
# A paragraph macro ends a .TP entry; font and other inline macros do not.
ENDS_ENTRY = {"SH", "SS", "TP", "PP", "P", "LP"}


def unquote(s):
    s = s.strip()
    return s[1:-1] if len(s) >= 2 and s[0] == s[-1] == '"' else s


def parse(text):
    """The page's TABLES, VIEWS and INDEXES as
    ({"TABLES": {obj: {col: [lines]}}, "VIEWS": ..., "INDEXES": {idx:
    [lines]}}, [problem, ...]): every .SS of TABLES/VIEWS is an object,
    every .TP of them and of INDEXES an entry whose tag must be the line
    `.B name`; the lines up to the next paragraph macro are its
    description."""
    doc = {"TABLES": {}, "VIEWS": {}, "INDEXES": {}}
    problems = []
    seen_sh = set()
    sh = obj = None
    entry = None
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        n = i + 1
        i += 1
        if line.startswith(('.\\"', "'\\\"")):
            continue
        m = re.match(r"[.'](\w+)\s*(.*)", line)
        macro, rest = (m.group(1), m.group(2)) if m else (None, line)
        if macro in ENDS_ENTRY:
            entry = None
        if macro == "SH":
            sh, obj = unquote(rest), None
            if sh in doc:
                if sh in seen_sh:
                    problems.append(f"line {n}: a second .SH {sh}")
                seen_sh.add(sh)
        elif macro == "SS" and sh in OBJECT_SECTIONS:
            name = unquote(rest)
            obj = None
            if not re.fullmatch(IDENT, name):
                problems.append(f"line {n}: .SS {rest!r} in {sh} is not a "
                                f"{OBJECT_SECTIONS[sh]} name")
            elif name in doc[sh]:
                problems.append(f"line {n}: a second .SS {name} in {sh}")
            else:
                doc[sh][name] = {}
                obj = name
        elif macro == "TP" and sh in doc:
            tag = lines[i] if i < len(lines) else ""
            i += 1
            m = re.fullmatch(r"\.B (" + IDENT + ")", tag)
            if not m:
                problems.append(f"line {n + 1}: the tag of a .TP in {sh} "
                                f"is not '.B name': {tag!r}")
                continue
            if sh == "INDEXES":
                target, where = doc[sh], "INDEXES"
            elif obj is None:
                problems.append(f"line {n + 1}: .B {m.group(1)} in {sh} "
                                "comes before any .SS")
                continue
            else:
                target, where = doc[sh][obj], f"{sh} {obj}"
            if m.group(1) in target:
                problems.append(f"line {n + 1}: a second entry "
                                f"{m.group(1)} in {where}")
                continue
            entry = target[m.group(1)] = []
        elif entry is not None:
            entry.append(line)
    for sh in doc:
        if sh not in seen_sh:
            problems.append(f"no .SH {sh}")
    return doc, problems


def described(desc):
    """Some words follow the tag: text lines, or macros with arguments."""
    return any(re.sub(r"^[.'](\w+)", "", ln).strip() for ln in desc)


class SchemaDocTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        """The schema a fresh database has at the latest migration."""
        cls.dir = tempfile.mkdtemp(prefix="agentsyncd-schemadoc-")
        db = os.path.join(cls.dir, "mirror.db")
        conf = os.path.join(cls.dir, "agentsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"[agentsyncd]\ndatabase = {db}\n")
        os.chmod(conf, 0o600)
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM",
                            "WATCHDOG_USEC")}
        r = subprocess.run([BIN, "-c", conf, "--migrate"], env=env,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            shutil.rmtree(cls.dir, True)
            raise AssertionError(f"{BIN} --migrate exited {r.returncode}: "
                                 f"{r.stderr[-2000:]}")
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        cls.objects = {"table": {}, "view": {}}
        cls.indexes = set()
        for name, kind, sql in con.execute(
                "SELECT name, type, sql FROM sqlite_schema ORDER BY name"):
            if kind in cls.objects and not name.startswith("sqlite_"):
                cls.objects[kind][name] = [
                    row[1] for row in
                    con.execute("SELECT * FROM pragma_table_info(?)",
                                (name,))]
            elif kind == "index" and sql is not None:
                cls.indexes.add(name)   # not the UNIQUE/PK autoindexes
        cls.version = con.execute("PRAGMA user_version").fetchone()[0]
        con.close()
        shutil.rmtree(cls.dir, True)
        cls.doc = cls.problems = cls.text = None
        if os.path.exists(PAGE):
            with open(PAGE, encoding="utf-8") as f:
                cls.text = f.read()
            cls.doc, cls.problems = parse(cls.text)

    def page(self):
        if self.text is None:
            self.fail(f"{REL} does not exist: the schema "
                      "(agentsyncd-schema(7), which agentsyncd(8) points "
                      "at) is not documented")
        return self.doc

    def test_schema_was_read(self):
        """The fixture itself: a migrated database has tables and views."""
        self.assertIn("runs", self.objects["table"])
        self.assertIn("agent_runs", self.objects["view"])
        self.assertGreater(len(self.objects["table"]["runs"]), 10)

    def test_every_table_and_view_has_a_section(self):
        doc = self.page()
        for sh, kind in OBJECT_SECTIONS.items():
            missing = sorted(set(self.objects[kind]) - set(doc[sh]))
            self.assertEqual(missing, [], f"{kind}s without a .SS in .SH "
                                          f"{sh} of {REL}")

    def test_every_column_has_an_entry(self):
        doc = self.page()
        gaps = []
        for sh, kind in OBJECT_SECTIONS.items():
            for name, cols in sorted(self.objects[kind].items()):
                have = doc[sh].get(name, {})
                gaps += [f"{kind} {name}: column {c}" for c in cols
                         if c not in have]
        self.assertEqual(gaps, [], f"columns without a '.TP / .B column' "
                                   f"entry in their section of {REL}")

    def test_the_page_names_only_what_exists(self):
        """A renamed or dropped table, view or column, or a view filed as
        a table, fails here; so does a malformed or empty entry."""
        doc = self.page()
        wrong = list(self.problems)
        for sh, kind in OBJECT_SECTIONS.items():
            other = "view" if kind == "table" else "table"
            for name, entries in sorted(doc[sh].items()):
                if name not in self.objects[kind]:
                    why = (f"a {other}, not a {kind}"
                           if name in self.objects[other]
                           else f"no such {kind}")
                    wrong.append(f".SH {sh} .SS {name}: {why}")
                    continue
                cols = self.objects[kind][name]
                for col, desc in entries.items():
                    if col not in cols:
                        wrong.append(f"{kind} {name}: no column {col}")
                    elif not described(desc):
                        wrong.append(f"{kind} {name}: column {col} has no "
                                     "description")
        self.assertEqual(wrong, [], f"in {REL}")

    def test_every_index_and_only_those(self):
        doc = self.page()
        have = set(doc["INDEXES"])
        self.assertEqual(sorted(self.indexes - have), [],
                         f"indexes missing from .SH INDEXES of {REL}")
        self.assertEqual(sorted(have - self.indexes), [],
                         f".SH INDEXES of {REL} names indexes the schema "
                         "does not have")
        empty = sorted(n for n, d in doc["INDEXES"].items()
                       if not described(d))
        self.assertEqual(empty, [], "indexes without a description")

    def test_names_the_schema_version_and_readers(self):
        self.page()
        self.assertIn(f"schema version {self.version}", self.text,
                      f"{REL} does not say it describes schema version "
                      f"{self.version} (PRAGMA user_version after the last "
                      "migration): check it against the new migration, then "
                      "update the version it names")
        self.assertIn(r"sqlite3 \-readonly \-cmd '.timeout 5000'",
                      self.text, "readers' command line")
        see_also = self.text.split(".SH SEE ALSO", 1)[-1]
        for ref in (r".BR agentsyncd (8)", r".BR agentsyncd.conf (5)",
                    r".BR sqlite3 (1)"):
            self.assertIn(ref, see_also)

    def test_renders_without_warnings(self):
        self.page()
        env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8",
                   MANPAGER="cat", PAGER="cat")
        if shutil.which("man"):
            # man-db: --warnings=w hands groff -ww (every warning)
            cmd = ["man", "--warnings=w", "-l", PAGE]
        elif shutil.which("groff"):
            cmd = ["groff", "-man", "-Tutf8", "-ww", "-z", PAGE]
        else:
            self.skipTest("neither man(1) nor groff(1) is installed: "
                          f"{REL} is not rendered (apt-get install man-db)")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "",
                         f"{' '.join(cmd[:-1])} {REL} warned")
        if cmd[0] == "man":
            self.assertIn("agentsyncd-schema", r.stdout)


if __name__ == "__main__":
    unittest.main()
