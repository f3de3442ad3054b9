# SPDX-License-Identifier: ISC
"""The writer (daemon/writer.c) is the daemon's only caller of the store's
writes: the batch it owns is committed before any other write only if
nothing else writes behind its back.  A grep over daemon/ holds that: no
file but store.c and writer.c names a write of store.h.  (store_open()
migrates a database it opens; opening is the daemon's start, before any
batch, and stays main.c's.)"""
import glob
import os
import re
import unittest

from tests.integration.harness import ROOT

WRITES = (
    "store_page", "store_pass_begin", "store_pass_end", "store_batch_begin",
    "store_batch_commit", "store_set_next_poll", "store_prune_history",
    "store_checkpoint", "store_checkpoint_over", "store_sources_sync",
    "store_state_load", "store_rename_source", "store_forget_source",
    "store_migrate", "store_claim", "store_release",
)
ALLOWED = {"store.c", "writer.c"}


def strip_comments(text):
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)


class WriterOwnsWritesTest(unittest.TestCase):
    def test_store_writes_only_from_the_writer(self):
        header = open(os.path.join(ROOT, "daemon", "store.h")).read()
        for name in WRITES:
            self.assertRegex(header, r"\b%s\(" % name,
                             "%s is no longer in store.h: update WRITES" % name)
        calls = re.compile(r"\b(%s)\s*\(" % "|".join(WRITES))
        found = []
        for path in sorted(glob.glob(os.path.join(ROOT, "daemon", "*.c"))):
            if os.path.basename(path) in ALLOWED:
                continue
            text = strip_comments(open(path).read())
            for m in calls.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append("%s:%d: %s" % (os.path.relpath(path, ROOT),
                                            line, m.group(1)))
        self.assertEqual(found, [], "store writes outside the writer")

    def test_no_batch_hook_nor_sticky_failures(self):
        found = []
        for path in sorted(glob.glob(os.path.join(ROOT, "daemon", "*.[ch]"))):
            text = open(path).read()
            for name in ("batch_hook", "give_up", "store_last_busy",
                         "store_last_gone", "store_batch_lost"):
                if re.search(r"\b%s\b" % name, text):
                    found.append("%s: %s" % (os.path.relpath(path, ROOT),
                                             name))
        self.assertEqual(found, [])
