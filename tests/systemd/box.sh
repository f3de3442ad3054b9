#!/bin/bash
# SPDX-License-Identifier: ISC
# box.sh: run a checkout's systemd unit under a real systemd 252 (Debian 12
# "bookworm") booted as PID 1 in a systemd-nspawn container; make
# check-systemd (tests/systemd/run.sh) drives it.  Adapted from the
# workplace's systemd-box.sh: each package list gets its own cached root
# (BOX_BASE_PKGS), so the source install and the .deb install keep theirs.
#
# Usage:
#   box.sh [-r] [-k] [-n] CHECKOUT CHECK_SCRIPT [CHECK_ARGS...]
#
#   CHECKOUT      the project tree to install (its tracked + untracked,
#                 non-ignored files are copied when it is a git work tree,
#                 so uncommitted changes are tested; build outputs are not)
#   CHECK_SCRIPT  a bash script run as root INSIDE the booted container
#                 after the install, as a transient systemd service
#                 (systemd-run --wait --pipe); its exit status decides
#                 PASS (0) or FAIL (anything else).  It gets SRC=<copied
#                 checkout>, and every BOX_* variable of the caller.
#   -r            rebuild the cached root (debootstrap) even if it is current
#   -k            keep the run directory (overlay upper dir, journal.txt,
#                 nspawn.log) under $BOX_DIR/runs/ for inspection
#   -n            do not install (boot, copy the checkout, run the check)
#
# Phases (each timed, "[box] <phase> took N.Ns"):
#   root     debootstrap a minimal bookworm into $BOX_DIR/cache/base once
#            (reused while the package list and mirror are unchanged; ~70 s
#            to build, 0 s to reuse); the mirror is the first .../debian
#            URL in the host's /etc/apt/sources.list*
#   stage    overlayfs over the cached root (the cache is never modified),
#            copy CHECKOUT to $BOX_SRC (default /opt/agentsyncd-src)
#   boot     SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -b
#            --register=no --keep-unit, in its own host cgroup
#            (/sys/fs/cgroup/{systemd,unified}/<machine>), until
#            `systemctl is-system-running --wait` says running/degraded
#   install  README "Operations", inside the container, in $BOX_SRC:
#            make; make install PREFIX=/usr SYSCONFDIR=/etc;
#            systemd-sysusers; systemd-tmpfiles --create
#            (override with BOX_INSTALL='shell commands')
#   check    CHECK_SCRIPT
#   teardown journal -> journal.txt, poweroff (SIGRTMIN+4 to the
#            container's PID 1), SIGTERM/SIGKILL fallbacks, umount, remove
#            the cgroups and the run directory.  Runs from an EXIT trap, so
#            it also happens on errors, timeouts and Ctrl-C.
#
# The last line printed is PASS or FAIL.  Exit status 0 / 1 (2: usage).
#
# Environment (defaults):
#   BOX_DIR=/var/tmp/systemd-box  cache and runs live here
#   BOX_EXTRA_DIR=             a host directory copied to /opt/box/extra in the container
#   BOX_MIRROR=<host's>        Debian mirror for debootstrap
#   BOX_EXTRA_PKGS=            more packages for the root (comma-separated)
#   BOX_SRC=/opt/agentsyncd-src
#   BOX_BOOT_TIMEOUT=90 BOX_INSTALL_TIMEOUT=900 BOX_CHECK_TIMEOUT=1200
#                              seconds; install and check run as
#                              transient units with RuntimeMaxSec= set
#                              to these (a hung check is killed, FAIL)
#   BOX_TRACE=1                timestamps on the [box] lines
#   any other BOX_* variable   is passed to the check script
#
# Why this shape (measured on this host: Debian 12, PID 1 is not systemd,
# cgroup v1 hybrid, cgroup2 at /sys/fs/cgroup/unified):
#   * plain `systemd-nspawn -b` and `--register=no` alone fail with
#     "Failed to open system bus: No such file or directory" (no host
#     systemd/D-Bus to create a scope or register with machined);
#     `--keep-unit --register=no` works.
#   * SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 gives the container a pure cgroup2
#     /sys/fs/cgroup like a real Debian 12 host (=0 / default: hybrid, also
#     boots); SYSTEMD_NSPAWN_USE_CGNS=0 fails ("Failed to read link
#     /sys/fs/cgroup/perf_event: No such file or directory").
#   * machinectl / systemctl -M / systemd-run -M need a host systemd and
#     fail; commands enter the container with nsenter -t <PID 1> -a.
#   * The container shares the host network: loopback servers started in
#     the container are reachable from the host and vice versa.
#   * "Attempted to remove disk file system under
#     /run/systemd/nspawn/propagate/<name>" is printed at every exit: /run
#     is not a tmpfs here; harmless, the directory is removed by teardown.
set -Eeuo pipefail

BOX_DIR=${BOX_DIR:-/var/tmp/systemd-box}
BOX_SRC=${BOX_SRC:-/opt/agentsyncd-src}
BOX_BOOT_TIMEOUT=${BOX_BOOT_TIMEOUT:-90}
BOX_INSTALL_TIMEOUT=${BOX_INSTALL_TIMEOUT:-900}
BOX_CHECK_TIMEOUT=${BOX_CHECK_TIMEOUT:-1200}
BOX_INSTALL=${BOX_INSTALL:-'make && make install PREFIX=/usr SYSCONFDIR=/etc && systemd-sysusers && systemd-tmpfiles --create'}
BASE_PKGS=${BOX_BASE_PKGS:-"systemd,systemd-sysv,dbus,sqlite3,ca-certificates,make,gcc,libc6-dev,pkg-config,libcurl4-openssl-dev,libcjson-dev,libev-dev,libinih-dev,libsqlite3-dev,libpq-dev,libcmocka-dev,python3,git,sudo,procps,iproute2,less"}
PKGS=$BASE_PKGS${BOX_EXTRA_PKGS:+,$BOX_EXTRA_PKGS}

log() { printf "[box] %s%s\n" "${BOX_TRACE:+$(date +%T.%N | cut -c1-12) }" "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '4,17p' "$0" >&2; exit 2; }

rebuild=0 keep=0 install=1
while getopts rkn opt; do
	case $opt in
	r) rebuild=1 ;;
	k) keep=1 ;;
	n) install=0 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
CHECKOUT=$(realpath -e "$1") || die "no checkout $1"
CHECK=$(realpath -e "$2") || die "no check script $2"
shift 2
[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in systemd-nspawn debootstrap nsenter flock; do
	command -v $t >/dev/null ||
		die "$t missing: apt-get install -y debootstrap systemd-container"
done

NAME=sdbox-$$
RUN=$BOX_DIR/runs/$NAME
MERGED=$RUN/merged
CG=$NAME
NSPAWN_PID="" LEADER="" mounted=0 verdict=FAIL
declare -A took=()
T0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
phase_start() { PH=$1; PT=$EPOCHREALTIME; log "== $PH"; }
phase_end() {
	took[$PH]=$(since "$PT")
	log "$PH took ${took[$PH]}s"
}

# Run a command in the background and wait for it, so that a SIGTERM or
# Ctrl-C reaches our trap at once (bash runs traps only between commands,
# but `wait` is interruptible); teardown kills $CHILD by its PID.
CHILD=""
bg() {
	local rc=0
	"$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=""
	return "$rc"
}

# Run a command inside the container as a transient service (its own
# cgroup in the container, clean environment, killed after $1 seconds).
box_run() {
	local secs=$1
	shift
	local envs=() v
	for v in $(compgen -e | grep '^BOX_' || true); do
		envs+=(-E "$v=${!v}")
	done
	bg timeout --kill-after=15 $((secs + 30)) \
		nsenter -t "$LEADER" -a \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		systemd-run --quiet --wait --pipe --collect --service-type=exec \
		-p RuntimeMaxSec="$secs" -p WorkingDirectory="$BOX_SRC" \
		-E HOME=/root -E LANG=C.UTF-8 -E SRC="$BOX_SRC" \
		-E SYSTEMD_PAGER= -E SYSTEMD_COLORS=0 "${envs[@]}" \
		"$@" </dev/null
}

# Plain nsenter, for short queries (systemctl is-system-running, journal).
box_enter() {
	nsenter -t "$LEADER" -a env -i \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# An interrupted install/check leaves its host-side client running:
# timeout -> nsenter -> systemd-run, the last one inside the container's
# PID namespace.  Kill only systemd-run, so that nsenter reaps it and
# exits, and timeout reaps nsenter.  (Killing the whole group orphans a
# zombie systemd-run in the container's PID namespace; the container's
# systemd-shutdown then waits 10 s for it before powering off.)
stop_child() {
	[ -n "$CHILD" ] || return 0
	local n k i
	for n in $(pgrep -P "$CHILD" || true); do
		for k in $(pgrep -P "$n" || true); do kill -KILL "$k" 2>/dev/null; done
	done
	for i in $(seq 1 50); do
		kill -0 "$CHILD" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$CHILD" 2>/dev/null && kill -KILL -- "-$CHILD" 2>/dev/null
	wait "$CHILD" 2>/dev/null || true
	CHILD=""
}

teardown() {
	local rc=$? i
	trap - EXIT INT TERM
	set +e
	PH=teardown PT=$EPOCHREALTIME
	log "== teardown"
	stop_child
	if [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then
		timeout 20 nsenter -t "$LEADER" -a journalctl -b -o short-precise \
			--no-pager >"$RUN/journal.txt" 2>&1
		kill -s RTMIN+4 "$LEADER" 2>/dev/null # systemd: poweroff
	fi
	if [ -n "$NSPAWN_PID" ]; then
		for i in $(seq 1 60); do
			kill -0 "$NSPAWN_PID" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$NSPAWN_PID" 2>/dev/null; then
			log "container did not power off in 30s: SIGTERM to nspawn"
			kill -TERM "$NSPAWN_PID" 2>/dev/null
			for i in $(seq 1 20); do
				kill -0 "$NSPAWN_PID" 2>/dev/null || break
				sleep 0.5
			done
		fi
		if kill -0 "$NSPAWN_PID" 2>/dev/null; then
			log "still running: SIGKILL to PID 1 $LEADER and nspawn $NSPAWN_PID"
			[ -n "$LEADER" ] && kill -KILL "$LEADER" 2>/dev/null
			sleep 1
			kill -KILL "$NSPAWN_PID" 2>/dev/null
		fi
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	log "container stopped after $(since "$PT")s"
	if [ "$mounted" = 1 ]; then
		umount "$MERGED" 2>/dev/null || umount -l "$MERGED" ||
			log "cannot unmount $MERGED"
	fi
	for h in systemd unified; do
		[ -d "/sys/fs/cgroup/$h/$CG" ] &&
			find "/sys/fs/cgroup/$h/$CG" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	rm -rf "/run/systemd/nspawn/propagate/$NAME"
	if [ "$keep" = 1 ]; then
		log "kept $RUN (upper/, journal.txt, nspawn.log)"
	elif [ -d "$RUN" ] && ! mountpoint -q "$MERGED"; then
		rm -rf "$RUN"
	fi
	phase_end
	local p line=""
	for p in root stage boot install check teardown; do
		[ -n "${took[$p]:-}" ] && line="$line $p=${took[$p]}s"
	done
	log "timings:$line total=$(since "$T0")s"
	[ "$rc" -ne 0 ] && verdict=FAIL
	echo "$verdict"
	[ "$verdict" = PASS ] && exit 0
	exit 1
}
trap teardown EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND"' ERR
trap 'log "interrupted"; exit 130' INT TERM

# ---- root --------------------------------------------------------------
phase_start root
mirror=${BOX_MIRROR:-$( (grep -hoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' \
	/etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	/etc/apt/sources.list.d/*.sources 2>/dev/null || true) |
	awk '{print $2; exit}')}
[ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources.list*: set BOX_MIRROR"
stamp="bookworm $mirror $PKGS"
mkdir -p "$BOX_DIR/cache" "$BOX_DIR/runs"
exec 9>"$BOX_DIR/cache/.lock"
# Roots of package lists no longer used are removed (a few hundred MB each).
for old in "$BOX_DIR"/cache/base-*.stamp; do
	[ -e "$old" ] || continue
	find "$old" -mtime +30 -exec sh -c 'rm -rf "${1%.stamp}" "$1"' _ {} \;
done
flock -w 900 9 || die "cannot lock $BOX_DIR/cache/.lock"
BASE=$BOX_DIR/cache/base-$(printf '%s' "$stamp" | md5sum | cut -c1-12)
if [ "$rebuild" = 1 ] || [ "$(cat "$BASE.stamp" 2>/dev/null)" != "$stamp" ]; then
	log "debootstrap bookworm from $mirror (log: $BOX_DIR/cache/debootstrap.log)"
	rm -rf "$BASE.new" "$BASE" "$BASE.stamp"
	bg timeout 1800 debootstrap --variant=minbase --include="$PKGS" bookworm \
		"$BASE.new" "$mirror" >"$BOX_DIR/cache/debootstrap.log" 2>&1 ||
		die "debootstrap failed: $(tail -3 "$BOX_DIR/cache/debootstrap.log")"
	echo sdbox >"$BASE.new/etc/hostname"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\tsdbox\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		>"$BASE.new/etc/hosts"
	printf 'APT::Install-Recommends "false";\n' >"$BASE.new/etc/apt/apt.conf.d/90box"
	apt-get clean -o Dir="$BASE.new" 2>/dev/null || true
	rm -rf "$BASE.new"/var/cache/apt/archives/*.deb
	mv "$BASE.new" "$BASE"
	echo "$stamp" >"$BASE.stamp"
else
	log "reusing $BASE"
	touch "$BASE.stamp"
fi
flock -u 9
exec 9>&-
phase_end

# ---- stage -------------------------------------------------------------
phase_start stage
mkdir -p "$RUN/upper" "$RUN/work" "$MERGED"
mount -t overlay overlay \
	-o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$MERGED"
mounted=1
mkdir -p "$MERGED$BOX_SRC" "$MERGED/opt/box"
if git -c safe.directory='*' -C "$CHECKOUT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -c safe.directory='*' -C "$CHECKOUT" ls-files -z -co --exclude-standard |
		tar -C "$CHECKOUT" --null --ignore-failed-read -T - -cf - 2>/dev/null |
		tar -C "$MERGED$BOX_SRC" -xf -
else
	cp -a "$CHECKOUT/." "$MERGED$BOX_SRC/"
fi
install -m 0755 "$CHECK" "$MERGED/opt/box/check.sh"
if [ -n "${BOX_EXTRA_DIR:-}" ]; then
	mkdir -p "$MERGED/opt/box/extra"
	cp -a "$BOX_EXTRA_DIR/." "$MERGED/opt/box/extra/"
fi
log "copied $CHECKOUT -> $BOX_SRC ($(find "$MERGED$BOX_SRC" -type f | wc -l) files)"
phase_end

# ---- boot --------------------------------------------------------------
phase_start boot
for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$CG"; done
(
	echo "$BASHPID" >"/sys/fs/cgroup/systemd/$CG/cgroup.procs"
	echo "$BASHPID" >"/sys/fs/cgroup/unified/$CG/cgroup.procs"
	SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec systemd-nspawn -q -D "$MERGED" \
		-b -M "$NAME" --register=no --keep-unit --console=pipe \
		>"$RUN/nspawn.log" 2>&1 </dev/null
) &
NSPAWN_PID=$!
deadline=$((SECONDS + BOX_BOOT_TIMEOUT))
while :; do
	kill -0 "$NSPAWN_PID" 2>/dev/null ||
		die "systemd-nspawn exited: $(cat "$RUN/nspawn.log")"
	for c in $(pgrep -P "$NSPAWN_PID" || true); do
		[ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && LEADER=$c
	done
	[ -n "$LEADER" ] && break
	[ $SECONDS -lt $deadline ] || die "no container PID 1 after ${BOX_BOOT_TIMEOUT}s"
	sleep 0.2
done
# The manager's socket appears a moment after PID 1 starts: retry until
# is-system-running answers, then --wait blocks until start-up is over.
while :; do
	state=$(timeout $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)) \
		nsenter -t "$LEADER" -a systemctl is-system-running --wait 2>&1) || true
	case $state in
	*"Failed to connect"* | "") ;;
	*) break ;;
	esac
	[ $SECONDS -lt $deadline ] || break
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	sleep 0.2
done
log "container $NAME: PID 1 = host PID $LEADER, is-system-running: $state"
case $state in
running) ;;
degraded) box_enter systemctl --failed --no-pager --no-legend >&2 || true ;;
*) die "boot did not finish: $state" ;;
esac
phase_end

# ---- install -----------------------------------------------------------
if [ "$install" = 1 ]; then
	phase_start install
	log "inside, in $BOX_SRC: $BOX_INSTALL"
	irc=0
	box_run "$BOX_INSTALL_TIMEOUT" /bin/bash -c "$BOX_INSTALL" >&2 || irc=$?
	[ "$irc" -eq 0 ] || die "install failed (exit status $irc)"
	phase_end
fi

# ---- check -------------------------------------------------------------
phase_start check
crc=0
box_run "$BOX_CHECK_TIMEOUT" /bin/bash /opt/box/check.sh "$@" || crc=$?
log "check script exit status: $crc"
awk -v a="$PT" -v b="$EPOCHREALTIME" -v t="$BOX_CHECK_TIMEOUT" 'BEGIN { exit !(b - a >= t) }' &&
	log "check ran into BOX_CHECK_TIMEOUT=${BOX_CHECK_TIMEOUT}s (killed)"
phase_end
[ "$crc" -eq 0 ] && verdict=PASS
exit 0
