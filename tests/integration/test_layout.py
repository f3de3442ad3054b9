# SPDX-License-Identifier: ISC
"""The shape the redesign (issue 26) gave daemon/, held: no file over 800
lines, no function over 60 (from its return type's line to its closing
brace, as style(9) lays a function out), struct src at most 15 members,
and no log or problem message cut in two string literals (clang-format
has BreakStringLiterals: false, so a message stays one literal that grep
finds).  A change that grows past these says so here, and is split
instead."""
import glob
import os
import re
import unittest

from tests.integration.harness import ROOT

MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 60
MAX_SRC_MEMBERS = 15
FUNC_NAME = re.compile(r"^([A-Za-z_]\w*)\(")
MESSAGE_CALL = re.compile(
    r"\b(log_(?:error|warnx|warn|info|debug)|problem|conf_problem|"
    r"conf_note)\s*\(")
SPLIT_LITERAL = re.compile(r'"\s*\n\s*"')


def read(path):
    with open(path) as f:
        return f.read()


def c_files():
    return sorted(glob.glob(os.path.join(ROOT, "daemon", "*.c")))


def functions(path):
    """(name, first line, lines) of each function defined in path."""
    lines = read(path).split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FUNC_NAME.match(lines[i])
        j = i
        while m and j < len(lines) and lines[j] != "{" and \
                not lines[j].rstrip().endswith(";"):
            j += 1
        if m and j < len(lines) and lines[j] == "{":
            k = j + 1
            while k < len(lines) and lines[k] != "}":
                k += 1
            prev = lines[i - 1] if i > 0 else ""
            start = i - 1 if prev and prev[0] not in " \t/*#}" else i
            out.append((m.group(1), start + 1, k - start + 1))
            i = k
        i += 1
    return out


def call_args(text, start):
    """The text of the call whose '(' is at start, to its ')'."""
    depth, i, quote = 0, start, False
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            quote = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start:i + 1]
        i += 1
    return text[start:]


class LayoutTest(unittest.TestCase):
    def test_no_file_over_800_lines(self):
        big = ["%s: %d lines" % (os.path.relpath(p, ROOT), n)
               for p in c_files()
               if (n := read(p).count("\n")) > MAX_FILE_LINES]
        self.assertEqual(big, [])

    def test_no_function_over_60_lines(self):
        found = functions(os.path.join(ROOT, "daemon", "walk.c"))
        self.assertIn("walk_page", [f[0] for f in found], "reader broken")
        long_ = ["%s:%d: %s, %d lines" % (os.path.relpath(p, ROOT), line,
                                          name, n)
                 for p in c_files() for name, line, n in functions(p)
                 if n > MAX_FUNCTION_LINES]
        self.assertEqual(long_, [])

    def test_struct_src_is_small(self):
        text = "".join(read(p) for p in
                       glob.glob(os.path.join(ROOT, "daemon", "*.[ch]")))
        m = re.search(r"^struct src \{\n(.*?)^\};", text, re.S | re.M)
        self.assertIsNotNone(m, "struct src not found")
        body = re.sub(r"/\*.*?\*/", "", m.group(1), flags=re.S)
        members = [ln for ln in body.split("\n") if ln.strip().endswith(";")]
        self.assertLessEqual(len(members), MAX_SRC_MEMBERS, members)

    def test_messages_are_one_literal(self):
        cut = []
        for p in c_files():
            text = read(p)
            for m in MESSAGE_CALL.finditer(text):
                args = call_args(text, m.end() - 1)
                if SPLIT_LITERAL.search(args):
                    line = text.count("\n", 0, m.start()) + 1
                    cut.append("%s:%d: %s" % (os.path.relpath(p, ROOT),
                                              line, m.group(1)))
        self.assertEqual(cut, [])
