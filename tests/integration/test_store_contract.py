# SPDX-License-Identifier: ISC
"""The store is a contract that an engine implements (issue 26): store.h
and store_engine.h name no SQLite type, only the SQLite engine's files
(daemon/store_sqlite*) know SQLite, and the store's files stay within
the sizes the issue sets (no file over 800 lines, no function over 60)
with each log message whole on one line of source.  A grep, as
test_writer_owns_writes.py is."""
import glob
import os
import re
import unittest

from tests.integration.harness import ROOT

MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 60


def strip_comments(text):
    """text without its comments, line numbers kept."""
    return re.sub(r"/\*.*?\*/|//[^\n]*",
                  lambda m: "\n" * m.group().count("\n"), text, flags=re.S)


def read(path):
    with open(path) as f:
        return f.read()


def daemon(pattern):
    return sorted(glob.glob(os.path.join(ROOT, "daemon", pattern)))


def rel(path):
    return os.path.relpath(path, ROOT)


def functions(text):
    """(name, lines) of each function defined at the start of a line."""
    out, name, start = [], None, 0
    for n, line in enumerate(text.split("\n"), 1):
        m = re.match(r"([a-z_][a-z0-9_]*)\(", line)
        if m:
            name, start = m.group(1), n
        elif line == "}" and name is not None:
            out.append((name, n - start + 1))
            name = None
    return out


class StoreContractTest(unittest.TestCase):
    def test_the_contract_names_no_engine_type(self):
        found = []
        for path in daemon("store.h") + daemon("store_engine.h") + \
                daemon("store.c") + daemon("store_rules.c"):
            code = strip_comments(read(path))
            for m in re.finditer(r"\bsqlite3\w*|<sqlite3\.h>", code):
                found.append("%s: %s" % (rel(path), m.group()))
        self.assertEqual(found, [])

    def test_only_the_sqlite_engine_knows_sqlite(self):
        engine = set(daemon("store_sqlite*"))
        self.assertTrue(engine, "no daemon/store_sqlite* files")
        found = []
        for path in daemon("*.[ch]"):
            if path in engine:
                continue
            code = strip_comments(read(path))
            for m in re.finditer(r"\bsqlite3_\w+|<sqlite3\.h>", code):
                line = code.count("\n", 0, m.start()) + 1
                found.append("%s:%d: %s" % (rel(path), line, m.group()))
        self.assertEqual(found, [])

    def test_store_files_within_limits(self):
        found = []
        for path in daemon("store*.[ch]"):
            text = read(path)
            n = text.count("\n")
            if n > MAX_FILE_LINES:
                found.append("%s: %d lines" % (rel(path), n))
            for name, lines in functions(text):
                if lines > MAX_FUNCTION_LINES:
                    found.append("%s: %s() %d lines" % (rel(path), name,
                                                         lines))
        self.assertEqual(found, [])

    def test_store_log_messages_on_one_line(self):
        split = re.compile(r'\blog_\w+\(\s*"(?:[^"\\\n]|\\.)*"\s*\n\s*"')
        found = []
        for path in daemon("store*.c"):
            code = strip_comments(read(path))
            for m in split.finditer(code):
                line = code.count("\n", 0, m.start()) + 1
                found.append("%s:%d" % (rel(path), line))
        self.assertEqual(found, [], "log messages cut across lines")


if __name__ == "__main__":
    unittest.main()
