# SPDX-License-Identifier: ISC
"""What an analyst meets first (migration 0011): every view column has the
declared type BI tools read, times as TIMESTAMP with the text unchanged;
one spelling of a trigger; finished_at only where it is honest; a status
history that starts with the first sighting and measures time in a
state."""
import ctypes
import ctypes.util
import datetime as dt
import time

from tests.integration.harness import DaemonTest
from tests.integration.test_fidelity import cg_run, ct_run

VIEWS = ("agent_runs", "live_runs", "live_runs_json", "runs_daily",
         "pull_requests_with_runs", "agent_outcomes", "source_status",
         "run_state_spans")
TIMES = {"created_at", "updated_at", "first_seen_at", "last_seen_at",
         "changed_at", "deleted_upstream_at", "finished_seen_at",
         "finished_at", "state_checked_at", "day_start", "pr_created_at",
         "run_created_at", "last_success_at", "last_error_at",
         "next_poll_at", "retired_at", "upstream_total_at", "entered_at",
         "left_at"}
EPOCHS = {"created_epoch", "finished_epoch", "day_epoch"}


def decltypes(path, query):
    """[(column, sqlite3_column_decltype)] of query, as JDBC (Metabase)
    and Grafana's SQLite plugin read them: Python's sqlite3 has no such
    call, so libsqlite3 through ctypes."""
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or
                      "libsqlite3.so.0")
    lib.sqlite3_column_name.restype = ctypes.c_char_p
    lib.sqlite3_column_decltype.restype = ctypes.c_char_p
    db, st = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.sqlite3_open_v2(path.encode(), ctypes.byref(db), 1, None):
        raise AssertionError(f"cannot open {path}")
    try:
        if lib.sqlite3_prepare_v2(db, query.encode(), -1, ctypes.byref(st),
                                  None):
            raise AssertionError(f"cannot prepare {query}")
        out = []
        for i in range(lib.sqlite3_column_count(st)):
            t = lib.sqlite3_column_decltype(st, i)
            out.append((lib.sqlite3_column_name(st, i).decode(),
                        t.decode() if t is not None else None))
        lib.sqlite3_finalize(st)
        return out
    finally:
        lib.sqlite3_close(db)


class TypesTest(DaemonTest):
    codegen_runs = 40
    cotool_runs = 40

    def test_every_view_column_has_its_type(self):
        self.once_ok()
        for view in VIEWS:
            info = self.sql(f"SELECT name, type FROM pragma_table_info("
                            f"'{view}')")
            self.assertTrue(info, view)
            # what a sync reads (PRAGMA) and what a query's result says
            # (sqlite3_column_decltype) agree, and neither is empty
            self.assertEqual(decltypes(self.db, f"SELECT * FROM {view}"),
                             info, view)
            for name, typ in info:
                self.assertIn(typ, ("TIMESTAMP", "INTEGER", "REAL", "TEXT"),
                              f"{view}.{name}")
                if name in TIMES:
                    self.assertEqual(typ, "TIMESTAMP", f"{view}.{name}")
                if name in EPOCHS or name.endswith("_count") or \
                        name in ("runs", "run_id", "live_runs"):
                    self.assertEqual(typ, "INTEGER", f"{view}.{name}")
        # the text of a time is unchanged (TIMESTAMP's affinity leaves
        # ISO 8601 as text), its epoch an integer of the same instant
        rows = self.sql("SELECT typeof(created_at), created_at, "
                        "typeof(created_epoch), created_epoch, "
                        "typeof(finished_at) FROM agent_runs WHERE "
                        "kind = 'cotool' AND state = 'succeeded'")
        self.assertTrue(rows)
        for t, created, te, epoch, tf in rows:
            self.assertEqual((t, te, tf), ("text", "integer", "text"))
            self.assertRegex(created,
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertEqual(epoch, int(dt.datetime.fromisoformat(
                created.replace("Z", "+00:00")).timestamp()))
        self.assertEqual(self.sql("SELECT count(*) FROM view_types"), [(0,)])
        for table in ("runs", "pull_requests", "run_status_changes",
                      "sync_runs"):
            for name, typ in self.sql(f"SELECT name, type FROM "
                                      f"pragma_table_info('{table}')"):
                if name.endswith("_at"):
                    self.assertEqual(typ, "TIMESTAMP", f"{table}.{name}")


class VocabularyTest(DaemonTest):
    codegen_runs = 300
    cotool_runs = 300

    def test_one_spelling_of_a_trigger(self):
        self.once_ok()
        # Codegen sends SLACK, Cotool slack: one value in the views, the
        # raw one kept in runs
        both = {r[0] for r in self.sql(
            "SELECT trigger FROM agent_runs WHERE trigger IS NOT NULL "
            "GROUP BY trigger HAVING count(DISTINCT kind) = 2")}
        self.assertTrue({"slack", "jira", "api", "linear"} <= both, both)
        self.assertEqual(self.sql(
            "SELECT count(*) FROM agent_runs WHERE trigger <> "
            "lower(trigger)"), [(0,)])
        self.assertEqual(self.sql(
            "SELECT count(*) FROM agent_outcomes WHERE trigger <> "
            "lower(trigger)"), [(0,)])
        self.assertGreater(self.count(
            "SELECT count(*) FROM runs WHERE source_type = 'SLACK'"), 0)


class FinishedAtTest(DaemonTest):
    def test_finished_at_only_where_it_is_honest(self):
        api = self.api
        now = dt.datetime.now(dt.timezone.utc)
        form = "%Y-%m-%dT%H:%M:%SZ"
        api.add_codegen(cg_run(api, 9201, status="RUNNING",
                               created_at=now.strftime(form)))
        api.add_codegen(cg_run(api, 9200, status="FAILED",
                               created_at=(now - dt.timedelta(seconds=5))
                               .strftime(form)))
        api.add_cotool(ct_run("c-done", status="done",
                              createdAt="2025-06-17T12:00:00.000Z",
                              updatedAt="2025-06-17T12:10:00.500Z"))
        api.add_cotool(ct_run("c-run", status="running",
                              createdAt="2025-06-17T12:01:00.000Z",
                              updatedAt="2025-06-17T12:11:00.000Z"))
        self.once_ok()
        time.sleep(0.05)
        api.update_codegen(9201, status="FAILED")
        self.once_ok()
        got = {r[0]: r[1:] for r in self.sql(
            "SELECT external_id, finished_at, finished_at_exact, "
            "duration_seconds, finished_at IS finished_seen_at, "
            "finished_epoch IS unixepoch(finished_at) FROM agent_runs")}
        # Cotool: upstream's updatedAt of a finished run, exact
        self.assertEqual(got["c-done"],
                         ("2025-06-17T12:10:00.500Z", 1, 600.5, 0, 1))
        self.assertEqual(got["c-run"], (None, None, None, 1, 1))
        # Codegen first seen finished: when it finished is unknown
        self.assertEqual(got["9200"], (None, None, None, 0, 1))
        # Codegen seen to finish: the sighting, an upper bound
        fin, exact, secs, same, epoch = got["9201"]
        self.assertIsNotNone(fin)
        self.assertEqual((exact, same, epoch), (0, 1, 1))
        self.assertGreater(secs, 0)
        # "failed today" counts the run seen to fail, not the one first
        # seen failed
        self.assertEqual(self.sql(
            "SELECT external_id FROM agent_runs WHERE state = 'failed' "
            "AND finished_at >= date('now')"), [("9201",)])


class HistoryTest(DaemonTest):
    cotool_runs = 30

    def test_first_sighting_and_time_in_a_state(self):
        self.once_ok()
        first = self.sql(
            "SELECT c.source, c.external_id, c.observed_at, c.new_status, "
            "c.new_state, c.updated_at FROM run_status_changes c "
            "WHERE c.old_state IS NULL AND c.old_status IS NULL "
            "ORDER BY 1, 2")
        runs = self.sql("SELECT source, external_id, first_seen_at, status, "
                        "state, updated_at FROM runs ORDER BY 1, 2")
        self.assertEqual(first, runs)
        self.assertEqual(self.count("SELECT count(*) FROM "
                                    "run_status_changes"), 30)
        run = self.api.cotool_sorted("createdAt")[0]
        old = self.sql("SELECT status, state FROM runs WHERE "
                       "external_id = ?", run["id"])[0]
        new = "error" if run.get("status") != "error" else "done"
        time.sleep(0.05)
        changed = self.api.update_cotool(run["id"], status=new)
        self.once_ok()
        rows = self.sql(
            "SELECT old_status, new_status, old_state, updated_at FROM "
            "run_status_changes WHERE source = 'cotool' AND external_id = "
            "? ORDER BY observed_at, id", run["id"])
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[0][:3], (None, old[0], None))
        self.assertEqual(rows[1], (old[0], new, old[1],
                                   changed["updatedAt"]))
        spans = self.sql(
            "SELECT state, first_sighting, entered_at = (SELECT "
            "first_seen_at FROM runs WHERE external_id = ?1), "
            "left_at IS NOT NULL, seconds > 0 FROM run_state_spans WHERE "
            "external_id = ?1 ORDER BY entered_at", run["id"])
        self.assertEqual(spans, [(old[1], 1, 1, 1, 1),
                                 (spans[1][0], 0, 0, 0, None)])
