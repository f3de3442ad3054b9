#!/bin/bash
# SPDX-License-Identifier: ISC
# check.sh: README "Operations", done and checked inside a Debian 12
# container booted with real systemd (tests/systemd/box.sh runs this as
# root after the install).  BOX_MODE=make: the checkout was installed with
# make install + systemd-sysusers + systemd-tmpfiles --create;
# BOX_MODE=deb: with apt-get install of the .deb (in /opt/box/extra).
#
# Every check is one row "| mode | check | PASS/FAIL | seconds | detail |"
# on stdout; the last line is "N passed, N failed".  Exit status 1 on any
# failure.  Each wait is bounded.
set -uo pipefail

MODE=${BOX_MODE:-make}
CONF=/etc/agentsyncd/agentsyncd.conf
DB=/var/lib/agentsyncd/agentsyncd.db
CG_TOKEN=cg-box-token-$RANDOM$RANDOM
CT_TOKEN=ct-box-token-$RANDOM$RANDOM
CODEGEN_RUNS=300 COTOOL_RUNS=200
EXPECTED=$((CODEGEN_RUNS + COTOOL_RUNS))
passed=0 failed=0
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8

now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

# check NAME FUNCTION [ARGS...]: run FUNCTION, time it, print one row.
# FUNCTION prints its detail (one line) on stdout; exit status decides.
check() {
	local name=$1 t out rc
	shift
	t=$(now)
	out=$("$@" 2>&1)
	rc=$?
	out=$(printf '%s' "$out" | tr '\n|' ' /' | cut -c1-160)
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		printf '| %s | %s | PASS | %s | %s |\n' "$MODE" "$name" "$(secs "$t")" "$out"
	else
		failed=$((failed + 1))
		printf '| %s | %s | FAIL | %s | %s |\n' "$MODE" "$name" "$(secs "$t")" "$out"
	fi
}

# wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

prop() { systemctl show -p "$1" --value agentsyncd; }
# As README "Readers" says: read-only, with a busy timeout.
runs_as() { sudo -u "$1" sqlite3 -readonly -cmd '.timeout 5000' "$DB" 'SELECT count(*) FROM runs'; }
all_mirrored() { [ "$(runs_as metabase 2>/dev/null)" = "$EXPECTED" ]; }
expect() {		# expect WHAT GOT WANT
	if [ "$2" = "$3" ]; then echo "$1: $2"; else echo "$1: got '$2', want '$3'"; return 1; fi
}

write_conf() {		# write_conf [EXTRA LINE for [source cotool]]
	cat >"$CONF" <<EOF
; written by tests/systemd/check.sh as an operator would
[agentsyncd]
database = $DB

[source codegen]
type = codegen
base_url = http://127.0.0.1:$PORT
org_id = 42
token_credential = codegen-token
poll_interval = 2s

[source cotool]
type = cotool
base_url = http://127.0.0.1:$PORT
token_credential = cotool-token
poll_interval = 2s
${1:-}
EOF
}

# ---- the checks ---------------------------------------------------------

c_layout() {
	expect "/etc/agentsyncd" "$(stat -c '%U:%G %a' /etc/agentsyncd)" "root:root 755" &&
	expect "conf" "$(stat -c '%U:%G %a' "$CONF")" "agentsyncd:root 600" &&
	expect "/var/lib/agentsyncd" "$(stat -c '%U:%G %a' /var/lib/agentsyncd)" \
	    "agentsyncd:agentsyncd 750"
}

c_fresh_deb() {
	expect "is-enabled" "$(systemctl is-enabled agentsyncd)" enabled &&
	expect "is-active" "$(systemctl is-active agentsyncd)" active &&
	case $(prop StatusText) in
	"idle: no [source NAME]"*) echo "StatusText: $(prop StatusText)" ;;
	*) echo "StatusText: $(prop StatusText)"; return 1 ;;
	esac
}

c_fake_api() {
	# (a description of its own: the default, the command line, would
	# put the tokens in the journal)
	systemd-run --quiet --unit=fakeapi --description="fake API" python3 "$SRC/tests/fakeapi.py" \
	    --codegen-runs $CODEGEN_RUNS --cotool-runs $COTOOL_RUNS --seed 5 \
	    --port 0 --port-file /run/fakeapi.port --org-id 42 \
	    --codegen-token "$CG_TOKEN" --cotool-token "$CT_TOKEN" || return 1
	wait_for 30 test -s /run/fakeapi.port || { echo "no port file"; return 1; }
	echo "fake API on 127.0.0.1:$(cat /run/fakeapi.port)"
}

c_tokens_and_conf() {
	# README: root-only token files, handed over with LoadCredential=.
	sudo install -m 0600 /dev/stdin /etc/agentsyncd/codegen.token <<<"$CG_TOKEN" &&
	sudo install -m 0600 /dev/stdin /etc/agentsyncd/cotool.token <<<"$CT_TOKEN" &&
	sudo mkdir -p /etc/systemd/system/agentsyncd.service.d &&
	printf '[Service]\nLoadCredential=codegen-token:/etc/agentsyncd/codegen.token\nLoadCredential=cotool-token:/etc/agentsyncd/cotool.token\n' |
	    sudo tee /etc/systemd/system/agentsyncd.service.d/credentials.conf >/dev/null &&
	sudo systemctl daemon-reload &&
	expect "drop-in" "$(systemctl cat agentsyncd | grep -c '^LoadCredential=')" 2 &&
	write_conf &&
	expect "conf after edit" "$(stat -c '%U:%G %a' "$CONF")" "agentsyncd:root 600"
}

c_check_config_root() {
	local out rc
	out=$(sudo agentsyncd --check-config 2>&1)
	rc=$?
	echo "$out" | grep -q 'configuration OK' || { echo "$out"; return 1; }
	echo "$out" | grep -q 'note: .*CREDENTIALS_DIRECTORY' || { echo "$out"; return 1; }
	expect "exit" "$rc" 0
}

c_check_config_user() {
	local out
	out=$(sudo -u agentsyncd agentsyncd --check-config 2>&1) || { echo "$out"; return 1; }
	echo "$out" | tail -1
}

c_check_config_bad_db() {
	local t out rc
	t=$(mktemp)
	sed "s|^database = .*|database = /nonexistent/dir/x.db|" "$CONF" >"$t"
	out=$(sudo agentsyncd -c "$t" --check-config 2>&1)
	rc=$?
	rm -f "$t"
	echo "$out" | grep -q "directory '/nonexistent/dir': does not exist" ||
	    { echo "$out"; return 1; }
	expect "exit" "$rc" 78
}

c_migrate_root() {
	sudo agentsyncd --migrate || return 1
	expect "db owner" "$(stat -c '%U:%G %a' "$DB")" "agentsyncd:agentsyncd 640"
}

c_enable_now() {
	sudo systemctl enable --now agentsyncd || return 1
	# The package started it idle at install: README says to restart it
	# once credentials and sources are in (a new LoadCredential= needs
	# a restart; a reload would do for sources alone).
	if [ "$MODE" = deb ]; then sudo systemctl restart agentsyncd || return 1; fi
	# Type=notify: "active" means READY=1 arrived.
	expect "is-active" "$(systemctl is-active agentsyncd)" active || return 1
	[ -n "$(prop StatusText)" ] || { echo "no STATUS="; return 1; }
	echo "STATUS=$(prop StatusText)"
}

c_mirrored() {
	wait_for 120 all_mirrored || { echo "runs: $(runs_as root)"; return 1; }
	echo "$EXPECTED runs mirrored; STATUS=$(prop StatusText)"
}

c_status_root() {
	local out
	out=$(sudo agentsyncd --status 2>&1) || { echo "$out"; return 1; }
	echo "$out" | grep -q "codegen" && echo "$out" | grep -q "cotool" || { echo "$out"; return 1; }
	echo "$out" | head -2
}

c_status_service_user() {
	local out
	out=$(sudo -u agentsyncd agentsyncd --status 2>&1) || { echo "$out"; return 1; }
	echo "$out" | grep -q "cotool" || { echo "$out"; return 1; }
	echo "$out" | head -1
}

c_reader() { expect "runs read by group member" "$(runs_as metabase)" "$EXPECTED"; }

c_outsider() {
	local out
	if out=$(runs_as outsider 2>&1); then
		echo "outsider read: $out"
		return 1
	fi
	echo "refused: $out"
}

c_conf_hidden_from_reader() {
	if sudo -u metabase cat "$CONF" >/dev/null 2>&1; then
		echo "a reader can read the configuration"
		return 1
	fi
	echo "reader cannot read $CONF"
}

# README "Backup": a group member copies the live mirror.
c_backup() {
	local b=/tmp/agentsyncd-backup.db
	rm -f "$b"
	sudo -u metabase sqlite3 -readonly -cmd '.timeout 5000' "$DB" ".backup $b" || return 1
	expect "backup integrity" "$(sqlite3 -readonly "$b" 'PRAGMA integrity_check')" ok &&
	expect "runs in the backup" "$(sqlite3 -readonly "$b" 'SELECT count(*) FROM runs')" "$EXPECTED"
}

c_reload_good() {
	local pid
	pid=$(prop MainPID)
	write_conf "request_timeout = 30s"
	sudo systemctl reload agentsyncd || return 1
	wait_for 10 sh -c "journalctl -u agentsyncd --since=-60s | grep -q 'configuration reloaded'" ||
	    { echo "no 'configuration reloaded' line"; return 1; }
	expect "MainPID kept" "$(prop MainPID)" "$pid" &&
	expect "is-active" "$(systemctl is-active agentsyncd)" active
}

c_reload_bad() {
	local pid out
	pid=$(prop MainPID)
	write_conf "colour = blue"
	if sudo systemctl reload agentsyncd 2>/dev/null; then
		echo "systemctl reload succeeded on a broken file"
		return 1
	fi
	out=$(journalctl -u agentsyncd -p err --since=-60s --no-pager -o cat)
	echo "$out" | grep -q "$CONF:[0-9]*: unknown key 'colour'" &&
	echo "$out" | grep -q "reload refused" ||
	    { echo "journalctl -p err: $out"; return 1; }
	expect "MainPID kept" "$(prop MainPID)" "$pid" || return 1
	expect "is-active" "$(systemctl is-active agentsyncd)" active || return 1
	write_conf
	sudo systemctl reload agentsyncd || return 1
	echo "refused, reason at err: $(echo "$out" | grep colour | tail -1)"
}

# A reader reading over and over while the service restarts: never fails.
c_restart_with_reader() {
	local bad=0 n=0 pid
	(
		for i in $(seq 1 40); do
			[ "$(runs_as metabase 2>&1)" = "$EXPECTED" ] || exit 1
			sleep 0.1
		done
	) &
	pid=$!
	sudo systemctl restart agentsyncd || bad=1
	wait "$pid" || { echo "a read failed during restart"; return 1; }
	[ "$bad" = 0 ] || return 1
	expect "is-active" "$(systemctl is-active agentsyncd)" active
}

c_stopped_reader() {
	sudo systemctl stop agentsyncd || return 1
	expect "is-active" "$(systemctl is-active agentsyncd)" inactive || return 1
	expect "runs read while stopped" "$(runs_as metabase)" "$EXPECTED" || return 1
	sudo agentsyncd --status >/dev/null || return 1
	sudo -u agentsyncd agentsyncd --status >/dev/null || return 1
	echo "and --status as root and as agentsyncd"
}

c_crash_reader() {
	local n0
	sudo systemctl start agentsyncd || return 1
	n0=$(prop NRestarts)
	systemctl kill -s SIGKILL agentsyncd
	wait_for 5 sh -c '[ "$(systemctl show -p SubState --value agentsyncd)" = auto-restart ]' ||
	    { echo "SubState $(prop SubState)"; return 1; }
	expect "runs read after a crash" "$(runs_as metabase)" "$EXPECTED" || return 1
	wait_for 20 sh -c '[ "$(systemctl is-active agentsyncd)" = active ]' ||
	    { echo "not restarted: $(prop SubState)"; return 1; }
	expect "NRestarts" "$(prop NRestarts)" "$((n0 + 1))"
}

c_config_error_stops() {
	local out
	write_conf "page_size = 500"
	if sudo systemctl restart agentsyncd 2>/dev/null; then
		echo "started with a broken file"
		return 1
	fi
	sleep 1
	expect "SubState" "$(prop SubState)" failed || return 1
	expect "ExecMainStatus" "$(prop ExecMainStatus)" 78 || return 1
	out=$(journalctl -u agentsyncd -p err --since=-60s --no-pager -o cat)
	echo "$out" | grep -q "$CONF:[0-9]*: .*page_size" || { echo "journal: $out"; return 1; }
	# (systemctl status exits 3 for a failed unit: read its output)
	out=$(systemctl status agentsyncd --no-pager -l -n 20)
	echo "$out" | grep -q "$CONF:[0-9]*: .*page_size" ||
	    { echo "systemctl status -l does not show why: $out"; return 1; }
	write_conf
	sudo systemctl start agentsyncd || return 1
	echo "stopped with exit 78, cause in journalctl -p err and systemctl status"
}

c_watchdog() {
	local t0 t1
	# WatchdogSec=60s: WATCHDOG=1 every 30 s, each moving the timestamp.
	t0=$(prop WatchdogTimestampMonotonic)
	wait_for 40 sh -c "[ \"\$(systemctl show -p WatchdogTimestampMonotonic --value agentsyncd)\" != '$t0' ]" ||
	    { echo "no WATCHDOG=1 in 40 s: $t0 $(prop WatchdogTimestampMonotonic), $(prop ActiveState)/$(prop SubState) since $(prop ActiveEnterTimestamp), MainPID $(prop MainPID)"; return 1; }
	t1=$(prop WatchdogTimestampMonotonic)
	echo "watchdog timestamp moved by $(( (t1 - t0) / 1000 )) ms (MainPID $(prop MainPID))"
}

c_security() {
	local score
	score=$(systemd-analyze security agentsyncd --no-pager 2>&1 |
	    sed -n 's/.*Overall exposure level for agentsyncd.service: \([0-9.]*\).*/\1/p')
	[ -n "$score" ] || return 1
	echo "exposure $score (limit 1.5)"
	awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'
}

# No core file, no ptrace or /proc/PID/mem reader: LimitCORE=0 and the
# daemon's prctl(PR_SET_DUMPABLE, 0), which makes its /proc files root's.
c_not_dumpable() {
	local pid
	pid=$(prop MainPID)
	expect "LimitCORE" "$(prop LimitCORE)" 0 &&
	expect "MemoryMax" "$(prop MemoryMax)" 1073741824 &&
	expect "MainPID user" "$(ps -o user= -p "$pid")" agentsyncd &&
	expect "/proc/MainPID/environ owner" "$(stat -c %U /proc/"$pid"/environ)" root
}

c_no_token_leak() {
	local t
	for t in "$CG_TOKEN" "$CT_TOKEN"; do
		if journalctl -b --no-pager | grep -qF "$t"; then echo "token in the journal"; return 1; fi
		if grep -qF "$t" "$DB" "$DB-wal" 2>/dev/null; then echo "token in the database"; return 1; fi
	done
	echo "no token in the journal or the database"
}

c_err_priority() {
	# Each start-up error line of the daemon has a priority: the ones
	# above were found by journalctl -p err; none is left at info.
	local lines
	lines=$(journalctl -u agentsyncd -p info..info --no-pager -o cat | grep -c ': unknown key\|page_size' || true)
	expect "config problems logged at info" "$lines" 0
}

# README "Rename or retire a source", word for word, with the service
# running: no second backfill, nothing left under the old name.
q() { sqlite3 -readonly -cmd '.timeout 5000' "$DB" "$1"; }
ct2_polled() {
	[ "$(q "SELECT count(*) FROM sync_runs WHERE source = 'ct2' AND outcome = 'succeeded' AND finished_at > '$RENAME_T0'")" -ge 1 ]
}
c_rename_source() {
	local bf
	bf=$(q "SELECT count(*) FROM sync_runs WHERE mode = 'backfill'")
	RENAME_T0=$(date -u +%Y-%m-%dT%H:%M:%S)
	sudo sed -i 's/^\[source cotool\]$/[source ct2]/' /etc/agentsyncd/agentsyncd.conf || return 1
	sudo agentsyncd --rename-source cotool ct2 >/dev/null || return 1
	sudo systemctl reload agentsyncd || return 1
	wait_for 30 ct2_polled || { echo "no pass of ct2 after the reload"; return 1; }
	expect "conf" "$(stat -c '%U:%G %a' "$CONF")" "agentsyncd:root 600" &&
	expect "runs of ct2" "$(q "SELECT count(*) FROM runs WHERE source = 'ct2'")" "$COTOOL_RUNS" &&
	expect "rows under cotool" "$(q "SELECT (SELECT count(*) FROM runs WHERE source = 'cotool') + (SELECT count(*) FROM sync_state WHERE source = 'cotool')")" 0 &&
	expect "backfills" "$(q "SELECT count(*) FROM sync_runs WHERE mode = 'backfill'")" "$bf" &&
	expect "live_runs" "$(q "SELECT count(*) FROM live_runs")" "$EXPECTED"
}

# README "Monitoring", word for word: node_exporter reads the metrics file.
metrics_up() { curl -sf localhost:9100/metrics | grep -q '^agentsyncd_runs{'; }
c_metrics() {
	local out
	apt-get update -qq >/tmp/apt.log 2>&1 || { tail -3 /tmp/apt.log; return 1; }
	sudo DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus-node-exporter acl curl >/tmp/apt.log 2>&1 ||
	    { tail -3 /tmp/apt.log; return 1; }
	sudo setfacl -m u:agentsyncd:rwx /var/lib/prometheus/node-exporter || return 1
	printf '[Service]\nReadWritePaths=/var/lib/prometheus/node-exporter\n' |
	    sudo tee /etc/systemd/system/agentsyncd.service.d/metrics.conf >/dev/null || return 1
	sudo sed -i '/^\[agentsyncd\]$/a metrics_file = /var/lib/prometheus/node-exporter/agentsyncd.prom' /etc/agentsyncd/agentsyncd.conf || return 1
	sudo systemctl daemon-reload && sudo systemctl restart agentsyncd || return 1
	wait_for 60 metrics_up || { echo "no agentsyncd_ series: $(journalctl -u agentsyncd -p warning --since=-60s -o cat | tail -2)"; return 1; }
	out=$(curl -s localhost:9100/metrics)
	expect "scrape error" "$(echo "$out" | sed -n 's/^node_textfile_scrape_error //p')" 0 &&
	expect "codegen runs" "$(echo "$out" | sed -n 's/^agentsyncd_runs{kind="codegen",source="codegen"} //p')" "$CODEGEN_RUNS" &&
	expect "file" "$(stat -c '%U %a' /var/lib/prometheus/node-exporter/agentsyncd.prom)" "agentsyncd 644"
}

c_purge() {
	sudo systemctl stop agentsyncd
	DEBIAN_FRONTEND=noninteractive apt-get purge -y agentsyncd >/tmp/purge.log 2>&1 ||
	    { tail -5 /tmp/purge.log; return 1; }
	[ ! -e /usr/sbin/agentsyncd ] || { echo "binary left"; return 1; }
	[ ! -e "$CONF" ] || { echo "conffile left"; return 1; }
	[ -e "$DB" ] || { echo "mirror removed"; return 1; }
	systemctl cat agentsyncd >/dev/null 2>&1 && { echo "unit left"; return 1; }
	echo "left: $(cd / && ls -d var/lib/agentsyncd/agentsyncd.db etc/agentsyncd/*.token 2>/dev/null | tr '\n' ' ')user $(id -un agentsyncd)"
}

# ---- run -----------------------------------------------------------------

useradd -m -G agentsyncd metabase
useradd -m outsider
echo "| mode | check | result | seconds | detail |"
echo "|---|---|---|---|---|"
check "install layout and modes" c_layout
[ "$MODE" = deb ] && check "fresh .deb: enabled, active, idle" c_fresh_deb
check "fake API started on loopback" c_fake_api
PORT=$(cat /run/fakeapi.port 2>/dev/null || echo 1)
check "tokens as credentials, config written" c_tokens_and_conf
check "sudo agentsyncd --check-config" c_check_config_root
check "--check-config as agentsyncd" c_check_config_user
check "--check-config: missing database dir" c_check_config_bad_db
check "sudo agentsyncd --migrate before start" c_migrate_root
check "systemctl enable --now: READY, STATUS" c_enable_now
check "runs mirrored" c_mirrored
check "--status as root" c_status_root
check "--status as agentsyncd" c_status_service_user
check "group member reads while running" c_reader
check "non-member refused" c_outsider
check "config hidden from readers" c_conf_hidden_from_reader
check "backup of the live mirror by a reader" c_backup
check "reload, good file" c_reload_good
check "reload, broken file: fails, kept" c_reload_bad
check "restart with a reader reading" c_restart_with_reader
check "stopped: reader reads, --status" c_stopped_reader
check "SIGKILL: reader reads, restarted" c_crash_reader
check "config error stops the unit (78)" c_config_error_stops
check "WATCHDOG=1 arrives" c_watchdog
check "systemd-analyze security <= 1.5" c_security
check "not dumpable, LimitCORE=0, MemoryMax" c_not_dumpable
check "no token in journal or database" c_no_token_leak
check "config problems not at info" c_err_priority
check "rename a source (README), service running" c_rename_source
check "metrics read by node_exporter (README)" c_metrics
[ "$MODE" = deb ] && check "apt purge" c_purge
echo "$MODE: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
