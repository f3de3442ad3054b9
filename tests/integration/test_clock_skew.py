# SPDX-License-Identifier: ISC
"""A host clock that is off never costs an update (issue 19).

The daemon runs under libfaketime (Debian's faketime) with its wall clock
10 minutes, 2 hours or a day ahead of upstream's, or a day behind; the fake
API keeps the true time and sends a correct Date header.

Cotool: during a backfill, upstream updates runs the walk has already
passed and runs it has yet to reach; the next incremental poll must bring
every update into the mirror.  (With the walk's start read from the local
clock, a fast clock made the updates seen during the walk count as the
high-water mark, and the poll stopped short of the earlier ones.)

Codegen: unfinished runs created just now, more than a page of them, finish
between two polls; the next poll must see them all (the refresh window is
upstream's "now" less refresh_window, not the host's).

Idle polls stay one request per source whatever the skew."""
import os
import subprocess
import unittest

from tests.integration.harness import BIN, DaemonTest

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def asan_binary():
    """BIN built with AddressSanitizer: its start-up and libfaketime's
    LD_PRELOAD deadlock (seen: the daemon never gets past its first
    clock call), so make check-asan leaves this file to make test."""
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


@unittest.skipUnless(os.path.exists(LIBFAKETIME),
                     "libfaketime not installed (apt-get install faketime)")
@unittest.skipIf(asan_binary(), "libfaketime cannot preload into ASan")
class ClockSkewTest(DaemonTest):
    codegen_runs = 300
    cotool_runs = 600

    def once_at(self, offset):
        env = dict(self.env(), LD_PRELOAD=LIBFAKETIME, FAKETIME=offset,
                   FAKETIME_DONT_FAKE_MONOTONIC="1", FAKETIME_NO_CACHE="1")
        r = subprocess.run([BIN, "-c", self.conf, "--once"], env=env,
                           capture_output=True, text=True, timeout=120)
        self.last_stderr = r.stderr
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        return r.stderr

    def skewed(self, offset):
        self.write_conf(cotool={"page_size": "20"},
                        codegen={"page_size": "50"})
        # Codegen: 80 unfinished runs created now (more than a page).
        fresh = [self.api.add_codegen_now() for _ in range(80)]
        for run in fresh:
            self.api.update_codegen(run["id"], status="ACTIVE")
        # Cotool: while the backfill walks 30 pages, update 10 runs at
        # every 5th request, newest-created (walked) and oldest (not yet).
        by_created = self.api.cotool_sorted("createdAt")
        updated = []

        def update(batch):
            def fn(api):
                for run in batch:
                    api.update_cotool(run["id"], status="interrupted")
                    updated.append(run["id"])
            return fn
        for k, n in enumerate((5, 10, 15, 20, 25)):
            batch = by_created[k * 5:k * 5 + 5] + \
                by_created[-(k * 5 + 5):len(by_created) - k * 5]
            self.api.hook("cotool", n, update(batch))
        self.first_stderr = self.once_at(offset)
        self.assertEqual(len(updated), 50)
        # Between the polls: the Codegen runs finish.
        for run in fresh:
            self.api.update_codegen(run["id"], status="COMPLETE")
        self.once_at(offset)
        self.assert_mirror_exact()
        # Idle: one request per source.
        self.api.clear_log()
        self.once_at(offset)
        self.assertEqual(len(self.api.requests("codegen")), 1)
        self.assertEqual(len(self.api.requests("cotool")), 1)
        return self.last_stderr

    def test_ten_minutes_ahead(self):
        self.skewed("+10m")
        self.assertRegex(self.first_stderr, "this host's clock is (599|600|"
                         "601) s ahead of upstream's")

    def test_two_hours_ahead(self):
        self.skewed("+2h")

    def test_a_day_ahead(self):
        self.skewed("+1d")

    def test_a_day_behind(self):
        self.skewed("-1d")
        self.assertRegex(self.first_stderr, "this host's clock is (86399|"
                         "86400|86401) s behind upstream's")

    def test_correct_clock(self):
        self.skewed("+0")
        self.assertNotIn("this host's clock", self.first_stderr)
