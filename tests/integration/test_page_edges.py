# SPDX-License-Identifier: ISC
"""An odd item at the edge of a page is an item like any other for the
walk (issue 25, part 2): a rejected item ("id": null, kept in
rejected_records) or a partial one (a field of the wrong type, stored with
a run_field_problems row) as the first two or the last two items of the
first page, a middle page or the last page costs no extra request, logs no
drift, and a full resync still marks the runs deleted upstream.

Before, a Codegen page that ended with a rejected item made the next page,
asked for one item early to start with the walk's anchor, start with that
item instead of the last run: the walk read offset drift, stepped back
eight times, went on unverified and marked nothing deleted.

Runs are made here with distinct creation times, so that the odd item sits
exactly where the test puts it in the listing (the fake sorts newest
created first)."""
import datetime as dt
import json
import math

from tests.integration.harness import DaemonTest

PAGE = 10
RUNS = 45           # runs upstream at the full resync: 46 items a listing
GONE = 3            # runs deleted upstream between the backfill and it
BASE = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
DRIFT_LINES = ("runs moved upstream during the walk",
               "upstream keeps changing under the walk")


def cg_time(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")     # Codegen's own form


def ct_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse(text):
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


class Api:
    """One API's runs and listing as the full walk sees them."""

    def __init__(self, name, fake):
        self.name, self.fake = name, fake
        self.created = "created_at" if name == "codegen" else "createdAt"
        self.fmt = cg_time if name == "codegen" else ct_time

    def run(self, i, t):
        if self.name == "codegen":
            return {"id": 5000 + i, "organization_id": self.fake.org_id,
                    "status": "COMPLETE", "created_at": self.fmt(t),
                    "web_url": f"https://codegen.com/agent/trace/{i}",
                    "result": None, "summary": None,
                    "source_type": "GITHUB", "github_pull_requests": None,
                    "metadata": None}
        return {"id": f"edge-{i:04d}",
                "agentId": "9b2e7c1a-5d4f-4e3b-8a21-7c6d5e4f3a2b",
                "agentName": "Alert triage", "agentType": "response",
                "runTitle": f"Triage {i}", "createdAt": self.fmt(t),
                "updatedAt": self.fmt(t), "modelAlias": "smart",
                "toolNames": ["okta_lookup"], "totalToolCount": 3,
                "hasError": False, "isStreaming": False, "status": "done"}

    def odd(self, kind):
        """The odd item: "id": null (rejected whole), or a run with one
        field of the wrong type (stored, the field left out)."""
        r = self.run(999, BASE)
        if kind == "rejected":
            r["id"] = None
        elif self.name == "codegen":
            r["summary"] = 42
        else:
            r["totalToolCount"] = 2.5
        return r

    def store(self):
        return self.fake.codegen if self.name == "codegen" else \
            self.fake.cotool

    def add(self, run):
        (self.fake.add_codegen if self.name == "codegen" else
         self.fake.add_cotool)(run)

    def delete(self, rid):
        (self.fake.delete_codegen if self.name == "codegen" else
         self.fake.delete_cotool)(rid)

    def listing(self):
        return (self.fake.codegen_sorted() if self.name == "codegen" else
                self.fake.cotool_sorted("createdAt"))

    def reset(self, n):
        with self.fake.lock:
            self.store().clear()
            self.fake.invalidate()
        for i in range(n):
            self.add(self.run(i, BASE + dt.timedelta(minutes=10 * i)))

    def place(self, odd, pos):
        """Put odd at position pos of the listing (0: newest)."""
        if odd["id"] in self.store():
            self.delete(odd["id"])
        ls = self.listing()
        if pos == 0:
            t = parse(ls[0][self.created]) + dt.timedelta(minutes=5)
        elif pos == len(ls):
            t = parse(ls[-1][self.created]) - dt.timedelta(minutes=5)
        else:
            t = parse(ls[pos][self.created]) + dt.timedelta(minutes=5)
        odd[self.created] = self.fmt(t)
        if self.name == "cotool":
            odd["updatedAt"] = odd["createdAt"]
        self.add(odd)
        assert self.listing()[pos] is odd, (self.name, pos)

    def requests_for(self, items):
        """What a complete walk of items costs (README, Sync rules)."""
        if self.name == "codegen":
            return max(1, math.ceil((items - 1) / (PAGE - 1)))
        return max(1, math.ceil(items / PAGE))

    def edges(self, items):
        """The first two and the last two positions of the first page, a
        middle page and the last page of a listing of items."""
        step = PAGE - 1 if self.name == "codegen" else PAGE
        pages = self.requests_for(items)
        out = set()
        for j in (0, pages // 2, pages - 1):
            start, end = j * step, min(j * step + PAGE, items) - 1
            out |= {start, start + 1, end - 1, end}
        return sorted(out)


class PageEdgesTest(DaemonTest):

    def scenario(self, api, kind, pos):
        """A backfill with the odd item at pos, GONE runs deleted upstream,
        the odd item put at pos again, a full resync."""
        self.fresh_mirror()
        api.reset(RUNS + GONE)
        odd = api.odd(kind)
        api.place(odd, pos)
        where = f"{api.name}, {kind} item at {pos}"
        self.write_conf(sources=(api.name,),
                        **{api.name: {"page_size": str(PAGE)}})
        self.api.clear_log()
        self.once_ok()
        self.check_walk(api, RUNS + GONE + 1, f"backfill, {where}")
        ls = [r for r in api.listing() if r is not odd]
        gone = [ls[5], ls[len(ls) // 2], ls[-4]]
        for r in gone:
            api.delete(r["id"])
        api.place(odd, pos)
        self.write_conf(sources=(api.name,),
                        **{api.name: {"page_size": str(PAGE),
                                      "full_resync_interval": "1ms"}})
        self.api.clear_log()
        self.once_ok()
        self.check_walk(api, RUNS + 1, f"full resync, {where}")
        self.assertEqual(
            {r[0] for r in self.sql(
                "SELECT external_id FROM runs WHERE source = ? AND "
                "deleted_upstream_at IS NOT NULL", api.name)},
            {str(r["id"]) for r in gone}, f"{where}: runs marked gone")
        self.check_odd(api, kind, odd, where)

    def check_walk(self, api, items, where):
        n = len(self.api.requests(api.name))
        self.assertEqual(n, api.requests_for(items),
                         f"{where}: {n} requests for {items} items")
        for line in DRIFT_LINES:
            self.assertNotIn(line, self.last_stderr, where)
        self.assertEqual(self.count(
            "SELECT outcome = 'succeeded' FROM sync_runs WHERE source = ? "
            "ORDER BY id DESC LIMIT 1", api.name), 1, where)

    def check_odd(self, api, kind, odd, where):
        raw = json.dumps(odd)
        if kind == "rejected":
            self.assertEqual(self.count(
                "SELECT count(*) FROM rejected_records WHERE source = ? "
                "AND raw_json = ?", api.name, raw), 1, where)
            return
        field = "summary" if api.name == "codegen" else "totalToolCount"
        self.assertEqual(self.sql(
            "SELECT f.field FROM run_field_problems f JOIN runs r ON "
            "r.id = f.run_id WHERE r.source = ? AND r.external_id = ? AND "
            "r.raw_json = ?", api.name, str(odd["id"]), raw), [(field,)],
            where)

    def every_edge(self, name):
        api = Api(name, self.api)
        positions = api.edges(RUNS + 1)
        self.assertEqual(len(positions), 12, positions)
        for kind in ("rejected", "partial"):
            for pos in positions:
                with self.subTest(kind=kind, pos=pos):
                    self.scenario(api, kind, pos)

    def test_codegen_edges(self):
        self.every_edge("codegen")

    def test_cotool_edges(self):
        self.every_edge("cotool")


if __name__ == "__main__":
    import unittest
    unittest.main()
