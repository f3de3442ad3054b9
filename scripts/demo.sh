#!/bin/sh
# SPDX-License-Identifier: ISC
# make demo: start the bundled fake Codegen + Cotool API on loopback, mirror
# it into ./demo.db with the real daemon, let time pass upstream (runs
# finish, some are re-opened, two come back with a bad field), mirror
# again, and answer a few questions in SQL.  DEMO_DB names another file,
# or a PostgreSQL database by its URI (an empty one: then the questions
# are left to psql), and AGENTSYNCD another binary
# (tests/integration/test_readme_cookbook.py).
set -eu
cd "$(dirname "$0")/.."
db=${DEMO_DB:-$(pwd)/demo.db}
daemon=${AGENTSYNCD:-./agentsyncd}
work=$(mktemp -d /tmp/agentsyncd-demo.XXXXXX)
server_pid=""
cleanup() {
	if [ -n "$server_pid" ]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

CODEGEN_RUNS=${CODEGEN_RUNS:-2500}
COTOOL_RUNS=${COTOOL_RUNS:-2500}
python3 tests/fakeapi.py --codegen-runs "$CODEGEN_RUNS" \
    --cotool-runs "$COTOOL_RUNS" --seed 7 --port 0 \
    --port-file "$work/port" --codegen-token demo-codegen-token \
    --cotool-token demo-cotool-token --org-id 42 --recent \
    >"$work/server.log" 2>&1 &
server_pid=$!
i=0
while [ ! -s "$work/port" ]; do
	i=$((i + 1))
	if [ "$i" -gt 100 ] || ! kill -0 "$server_pid" 2>/dev/null; then
		echo "demo: the fake API server did not start:" >&2
		cat "$work/server.log" >&2
		exit 1
	fi
	sleep 0.1
done
port=$(cat "$work/port")
echo "== fake Codegen and Cotool APIs on 127.0.0.1:$port" \
    "($CODEGEN_RUNS + $COTOOL_RUNS runs, and 24 + 24 of the last hour)"

case $db in
postgresql://* | postgres://*) pg=1 ;;
*)
	pg=0
	rm -f "$db" "$db-wal" "$db-shm"
	;;
esac
cat >"$work/agentsyncd.conf" <<CONF
[agentsyncd]
database = $db
log_level = info

[source codegen]
type = codegen
base_url = http://127.0.0.1:$port
org_id = 42
token_env = CODEGEN_API_TOKEN
rate_limit = off

[source cotool]
type = cotool
base_url = http://127.0.0.1:$port
token_env = COTOOL_API_KEY
rate_limit = off
CONF

once() {
	CODEGEN_API_TOKEN=demo-codegen-token COTOOL_API_KEY=demo-cotool-token \
	    "$daemon" -c "$work/agentsyncd.conf" --once
}
echo "== agentsyncd --once"
start=$(date +%s%N)
once
end=$(date +%s%N)
echo "== mirrored in $(( (end - start) / 1000000 )) ms"
echo "== upstream: runs finish, some are re-opened, two get a bad field"
python3 -c 'import sys, urllib.request
r = urllib.request.urlopen(urllib.request.Request(
    "http://127.0.0.1:" + sys.argv[1] + "/_fake/demo-step", data=b"",
    method="POST"), timeout=30)
print("   ", r.read().decode())' "$port"
echo "== agentsyncd --once, again"
once
echo
CODEGEN_API_TOKEN=x COTOOL_API_KEY=x "$daemon" -c "$work/agentsyncd.conf" --status
echo
if [ "$pg" = 1 ]; then
	echo "The mirror is the schema agentsyncd of $db: psql"
	exit 0
fi

q() {
	echo "-- $1"
	sqlite3 -readonly -header -column "$db" "$2"
	echo
}
q "runs per day and state, last 7 days with runs" \
"SELECT day, state, sum(runs) AS runs FROM runs_daily
 WHERE day >= (SELECT date(max(day), '-6 days') FROM runs_daily)
 GROUP BY day, state ORDER BY day DESC, runs DESC LIMIT 20;"
q "both APIs in one view: runs per trigger and state" \
"SELECT trigger, state, count(*) AS runs
 FROM agent_runs GROUP BY trigger, state ORDER BY runs DESC LIMIT 10;"
q "failed today (finished_at: upstream's time, or seen to happen)" \
"SELECT kind, count(*) AS failed_today FROM agent_runs
 WHERE state = 'failed' AND finished_at >= date('now') GROUP BY kind;"
q "pull requests per Codegen run (NULL: upstream sent no list)" \
"SELECT pull_request_count AS pull_requests, count(*) AS runs FROM agent_runs
 WHERE kind = 'codegen' GROUP BY 1 ORDER BY 1;"
q "pull requests per repository" \
"SELECT repository, count(*) AS pull_requests FROM pull_requests
 GROUP BY repository ORDER BY 2 DESC LIMIT 5;"
q "failure rate per agent and trigger (finished runs)" \
"SELECT source, agent, trigger, runs, failed, failure_rate FROM agent_outcomes
 ORDER BY source, failure_rate DESC NULLS LAST LIMIT 12;"
q "is the mirror complete?" \
"SELECT source, live_runs, upstream_total, upstream_total_at FROM source_status;"
q "sync passes" \
"SELECT source, mode, requests, pages, runs_new, outcome FROM sync_runs;"
echo "The mirror is $db: sqlite3 -readonly $db"
