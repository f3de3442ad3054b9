# SPDX-License-Identifier: ISC
"""A BI reader holding a read transaction through 1,000 page writes makes
the WAL grow; once it lets go the daemon's checkpoints shrink it back.
Prints the WAL size before and after."""
import os
import sqlite3
import sys

from tests.integration.harness import DaemonTest


class WalHousekeepingTest(DaemonTest):
    codegen_runs = 0
    cotool_runs = 10000      # 1,000 pages of 10

    def test_wal_shrinks_after_reader_lets_go(self):
        self.write_conf(cotool={"page_size": "10", "poll_interval": "1s"},
                        sources=("cotool",))
        self.once_ok()              # schema exists; first run mirrored
        self.api.add_cotool()
        wal = self.db + "-wal"
        reader = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM runs").fetchall()
        # Rewrite every run: a forced full resync touches all 10,000.
        self.write_conf(cotool={"page_size": "10", "poll_interval": "1s",
                                "full_resync_interval": "1ms"},
                        sources=("cotool",))
        p = self.start()
        self.wait_until(lambda: self.count(
            "SELECT count(*) FROM sync_runs WHERE mode = 'full' AND "
            "outcome = 'succeeded'") >= 1, 120, "the full resync")
        big = os.path.getsize(wal)
        self.assertGreater(big, 1 << 20)
        reader.rollback()
        reader.close()
        self.wait_until(lambda: os.path.getsize(wal) < 64 * 1024, 30,
                        "the WAL to shrink")
        small = os.path.getsize(wal)
        sys.stderr.write(f"\n  WAL with a reader held: {big} bytes; after "
                         f"it let go: {small} bytes\n")
        p.terminate()
        self.assertEqual(p.wait(timeout=5), 0)
        self.assertEqual(self.count("PRAGMA integrity_check"), "ok")
