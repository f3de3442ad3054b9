#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""The baseline of `make bench`: what a user might write instead of
agentsyncd, with the sqlite-utils library (Debian package sqlite-utils).

    bench_baseline.py PORT DB CODEGEN_TOKEN COTOOL_TOKEN ORG_ID

Walks the same pages as the daemon's backfill (Codegen by skip/limit,
Cotool by page, newest created first), over one keep-alive connection,
and upserts the same rows: runs (normalized columns and raw_json), pull
requests and their links, Cotool tools, criteria and bullets.
"""
import http.client
import json
import sys

import sqlite_utils

STATES = {"pending": "pending", "active": "running", "running": "running",
          "evaluation": "running", "paused": "waiting",
          "complete": "succeeded", "completed": "succeeded",
          "failed": "failed", "error": "failed", "timeout": "failed",
          "max_iterations_reached": "failed", "out_of_tokens": "failed",
          "cancelled": "cancelled", "stopped": "cancelled",
          "queued": "pending", "waiting": "waiting", "done": "succeeded",
          "interrupted": "cancelled"}


def get(conn, path, token):
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise SystemExit(f"HTTP {resp.status} for {path}")
    return json.loads(body)


def main():
    port, dbpath, cg_token, ct_token, org = sys.argv[1:6]
    db = sqlite_utils.Database(dbpath)
    db.execute("PRAGMA journal_mode = WAL")
    conn = http.client.HTTPConnection("127.0.0.1", int(port))
    runs, prs, links = db["runs"], db["pull_requests"], db["run_prs"]
    tools, crit = db["run_tools"], db["run_criteria"]
    # Codegen: skip/limit until total.
    skip = 0
    while True:
        page = get(conn, f"/v1/organizations/{org}/agent/runs?skip={skip}"
                         f"&limit=100", cg_token)
        rows, prow, lrow = [], [], []
        for it in page["items"]:
            rows.append({"source": "codegen", "external_id": str(it["id"]),
                         "kind": "codegen", "status": it.get("status"),
                         "state": STATES.get((it.get("status") or "")
                                             .lower(), "unknown"),
                         "created_at": it.get("created_at"),
                         "web_url": it.get("web_url"),
                         "summary": it.get("summary"),
                         "raw_json": json.dumps(it)})
            for pr in it.get("github_pull_requests") or []:
                prow.append({"source": "codegen", "external_id":
                             str(pr["id"]), "title": pr.get("title"),
                             "url": pr.get("url"),
                             "created_at": pr.get("created_at")})
                lrow.append({"run": str(it["id"]), "pr": str(pr["id"])})
        with db.conn:
            runs.upsert_all(rows, pk=("source", "external_id"), alter=True)
            if prow:
                prs.upsert_all(prow, pk=("source", "external_id"), alter=True)
                links.upsert_all(lrow, pk=("run", "pr"), alter=True)
        skip += len(page["items"])
        if not page["items"] or skip >= page["total"]:
            break
    # Cotool: page numbers, newest created first.
    n = 0
    while True:
        page = get(conn, f"/api/agent-runs?page={n}&pageSize=100"
                         f"&sortField=createdAt&sortDirection=desc", ct_token)
        rows, trow, crow = [], [], []
        for it in page["runs"]:
            rows.append({"source": "cotool", "external_id": it["id"],
                         "kind": "cotool", "status": it.get("status"),
                         "state": STATES.get((it.get("status") or "")
                                             .lower(), "unknown"),
                         "title": it.get("runTitle"),
                         "created_at": it.get("createdAt"),
                         "updated_at": it.get("updatedAt"),
                         "agent_name": it.get("agentName"),
                         "eval_score": it.get("evalScore"),
                         "raw_json": json.dumps(it)})
            for i, t in enumerate(it.get("toolNames") or []):
                trow.append({"run": it["id"], "position": i, "name": t})
            for i, c in enumerate(it.get("acceptanceCriteriaResults") or []):
                crow.append({"run": it["id"], "position": i,
                             "criterion": c.get("criterion"),
                             "met": c.get("met")})
        with db.conn:
            runs.upsert_all(rows, pk=("source", "external_id"), alter=True)
            if trow:
                tools.upsert_all(trow, pk=("run", "position"), alter=True)
            if crow:
                crit.upsert_all(crow, pk=("run", "position"), alter=True)
        n += 1
        if not page["runs"] or n * 100 >= page["totalCount"]:
            break


if __name__ == "__main__":
    main()
