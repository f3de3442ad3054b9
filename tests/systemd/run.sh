#!/bin/bash
# SPDX-License-Identifier: ISC
# make check-systemd: README "Operations" under a real systemd 252.
#
# Boots Debian 12 containers (tests/systemd/box.sh, systemd-nspawn) and
# runs tests/systemd/check.sh inside each, twice:
#   make  the checkout installed as README "Operations" says (make install,
#         systemd-sysusers, systemd-tmpfiles --create) in a root with the
#         build dependencies;
#   deb   the .deb of `make deb` installed with apt-get in a root that has
#         only systemd, sqlite3, python3 (for the fake API) and sudo, then
#         purged.
# Prints one table of every check, then how long each phase took.  Needs
# root (nspawn); without root it says SKIPPED and exits 0 (never PASS).
set -uo pipefail
cd "$(dirname "$0")/../.."
here=tests/systemd

if [ "$(id -u)" -ne 0 ]; then
	echo "check-systemd: SKIPPED (needs root for systemd-nspawn)"
	exit 0
fi
deb=$(ls -t build-deb/agentsyncd_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "check-systemd: no .deb in build-deb/ (make deb)" >&2; exit 1; }

log=$(mktemp -d /tmp/agentsyncd-systemd.XXXXXX)
# CHECK_SYSTEMD_KEEP=1 keeps the outputs, and each container's journal
# and files (box.sh -k, under /var/tmp/systemd-box/runs/).
keep=""
if [ -n "${CHECK_SYSTEMD_KEEP:-}" ]; then
	keep=-k
	echo "check-systemd: outputs in $log"
else
	trap 'rm -rf "$log"' EXIT
fi
mkdir -p "$log/extra"
cp "$deb" "$log/extra/"

# CHECK_SYSTEMD_MODES="make" (or "deb") runs one of the two.
modes=${CHECK_SYSTEMD_MODES:-make deb}
rc=0
case " $modes " in *" make "*)
BOX_MODE=make bash $here/box.sh $keep . $here/check.sh >"$log/make.out" 2>"$log/make.err" || rc=1
esac
case " $modes " in *" deb "*)
BOX_MODE=deb BOX_EXTRA_DIR="$log/extra" \
BOX_BASE_PKGS="systemd,systemd-sysv,dbus,sqlite3,ca-certificates,python3,sudo,procps" \
BOX_INSTALL='apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /opt/box/extra/agentsyncd_*.deb' \
	bash $here/box.sh $keep . $here/check.sh >"$log/deb.out" 2>"$log/deb.err" || rc=1
esac

echo "| mode | check | result | seconds | detail |"
echo "|---|---|---|---|---|"
for m in $modes; do grep -h "^| $m |" "$log/$m.out"; done
echo
echo "| mode | phase timings (box.sh) |"
echo "|---|---|"
for m in $modes; do
	printf '| %s | %s |\n' "$m" "$(sed -n 's/^\[box\] timings: *//p' "$log/$m.err")"
done
echo
pass=0 fail=0
for m in $modes; do
	line=$(grep -E "^$m: [0-9]+ passed, [0-9]+ failed$" "$log/$m.out" | tail -1)
	if [ -z "$line" ]; then
		echo "$m: the check did not finish; box.sh said:"
		tail -25 "$log/$m.err"
		rc=1
		fail=$((fail + 1))
		continue
	fi
	p=${line#*: }; p=${p%% passed*}; f=${line##*, }; f=${f%% failed}
	pass=$((pass + p)) fail=$((fail + f))
	if [ "$f" -ne 0 ] || ! grep -q '^PASS$' "$log/$m.out"; then
		rc=1
		echo "$m: failures; the end of box.sh's output:"
		tail -15 "$log/$m.err"
	fi
done
# CI shows only the end of the output: the failed rows again, last.
if [ "$fail" -ne 0 ]; then
	echo "failed checks:"
	for m in $modes; do grep -h "^| $m | .* | FAIL |" "$log/$m.out"; done
fi
echo "check-systemd: $pass passed, $fail failed"
exit $rc
