# SPDX-License-Identifier: ISC
"""One item out of order cannot stop an incremental walk early (issue 25,
part 3).  Upstream adds 150 runs, and its listing (Cotool by updatedAt,
Codegen by created_at, newest first) carries among them one run an hour
older than the high-water mark: at positions 1, 3, 99, 100 and 101 (the
first, the third, the last two of the first page of 100 and the first of
the second).  After one pass all 151 are mirrored; once the listing is in
order again, the next pass leaves nothing missing.  The same holds when the
run out of order is one the mirror already has.

Before, a walk stopped after the page that held any run older than the
high-water mark: with the run out of order on the first page, the 50 new
runs of the second page stayed out of the mirror until the next full
resync.

The listing out of order is served with the fake's "edit" fault (the spec
orders it; a server whose index lags does not): each request gets the
page of the listing with the run moved to where the test puts it."""
import datetime as dt

from tests import fakeapi
from tests.integration.harness import DaemonTest

NEW = 150
POSITIONS = (0, 2, 98, 99, 100)         # 0-based: 1, 3, 99, 100, 101
EDITS = 40                               # faults queued for one pass


def parse(text):
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def cg_time(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


class OutOfOrderTest(DaemonTest):
    # each scenario makes its own fake API (the rig's serves nothing)

    def listing(self, name):
        return (self.api.codegen_sorted() if name == "codegen" else
                self.api.cotool_sorted("updatedAt"))

    def served(self, name, odd, pos):
        """An edit fault's body: the listing with odd moved to pos."""
        def body(api_name, obj, q):
            if api_name == "cotool" and q.get("sortField") != "updatedAt":
                return obj              # a walk by creation: as it is
            ls = [r for r in self.listing(name) if r["id"] != odd["id"]]
            ls.insert(pos, odd)
            if name == "cotool":
                size = int(q.get("pageSize", "50"))
                skip = int(q.get("page", "0")) * size
                return {"runs": ls[skip:skip + size],
                        "totalCount": len(ls)}
            size = int(q.get("limit", "100"))
            skip = int(q.get("skip", "0"))
            return {"items": ls[skip:skip + size], "total": len(ls),
                    "page": skip // size + 1, "size": size,
                    "pages": -(-len(ls) // size)}
        return body

    def add_new(self, name):
        """NEW runs newer than every mirrored one; their ids."""
        now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
        if name == "codegen":
            # a dated run each (the fake leaves one in a hundred undated,
            # which its listing puts last)
            return [str(self.api.update_codegen(
                self.api.add_codegen()["id"],
                created_at=cg_time(now + dt.timedelta(seconds=i)))["id"])
                for i in range(NEW)]
        return [self.api.add_cotool(t=now + dt.timedelta(seconds=i))["id"]
                for i in range(NEW)]

    def make_odd(self, name, mirrored):
        """The run out of order: an hour older than the high-water mark;
        a new one, or one the mirror has (then moved in time upstream,
        as a server might serve it)."""
        hw = parse(self.sql("SELECT high_water FROM sync_state WHERE "
                            "source = ?", name)[0][0])
        old = hw - dt.timedelta(hours=1)
        if name == "codegen":
            rid = (self.api.codegen_sorted()[150]["id"] if mirrored else
                   self.api.add_codegen()["id"])
            return self.api.update_codegen(rid, created_at=cg_time(old))
        if mirrored:
            odd = self.api.cotool_sorted("updatedAt")[150]
            with self.api.lock:
                odd["updatedAt"] = fakeapi.iso_ms(old)
                self.api.invalidate()
            return odd
        odd = self.api.data.cotool_run(t=old - dt.timedelta(hours=1))
        odd["updatedAt"] = fakeapi.iso_ms(old)
        return self.api.add_cotool(odd)

    def mirrored_ids(self, name):
        return {r[0] for r in self.sql(
            "SELECT external_id FROM runs WHERE source = ?", name)}

    def scenario(self, name, pos, mirrored):
        where = f"{name}, {'mirrored' if mirrored else 'new'} run out of " \
                f"order at {pos}"
        self.api = fakeapi.FakeAPI(
            300 if name == "codegen" else 0,
            300 if name == "cotool" else 0, seed=pos + 7).start()
        self.addCleanup(self.api.stop)
        self.fresh_mirror(f"{name}-{pos}-{int(mirrored)}.db")
        self.write_conf(sources=(name,))
        self.once_ok()                  # the backfill
        odd = self.make_odd(name, mirrored)
        self.assertEqual(str(odd["id"]) in self.mirrored_ids(name),
                         mirrored, where)
        new = self.add_new(name)
        # in order, the run sits past the new ones and the first old one
        self.assertNotIn(odd["id"], [r["id"] for r in
                                     self.listing(name)[:NEW + 1]], where)
        self.api.fail(name, *[fakeapi.Fault("edit", 200, body=self.served(
            name, odd, pos)) for _ in range(EDITS)])
        self.once_ok()
        left = len(self.api.faults[name])
        self.api.faults[name].clear()
        self.assertGreater(left, 0, f"{where}: more requests than faults")
        got = self.mirrored_ids(name)
        missing = [rid for rid in new if str(rid) not in got]
        self.assertEqual(missing, [], f"{where}: {len(missing)} of the "
                                      f"{NEW} new runs missing")
        self.assertIn(str(odd["id"]), got, where)
        # In order again: the next pass leaves nothing missing.
        self.once_ok()
        self.assert_mirror_exact(sources=(name,))

    def every_position(self, name, mirrored):
        for pos in POSITIONS:
            with self.subTest(pos=pos):
                self.scenario(name, pos, mirrored)

    def test_cotool_new_run_out_of_order(self):
        self.every_position("cotool", False)

    def test_cotool_mirrored_run_out_of_order(self):
        self.every_position("cotool", True)

    def test_codegen_new_run_out_of_order(self):
        self.every_position("codegen", False)

    def test_codegen_mirrored_run_out_of_order(self):
        self.every_position("codegen", True)


if __name__ == "__main__":
    import unittest
    unittest.main()
