#!/bin/sh
# SPDX-License-Identifier: ISC
# Install the Debian packages agentsyncd needs to build, test and demo.
# As root: apt-get update, then apt-get install -y.  Otherwise print the
# exact command and fail, so nothing is ever half-installed silently.
# Arguments name extra packages (make bench adds sqlite-utils).
set -eu
PKGS="build-essential pkg-config libcurl4-openssl-dev libcjson-dev \
libsqlite3-dev libev-dev libinih-dev libpq-dev libcmocka-dev python3 sqlite3 clang \
faketime openssl prometheus-node-exporter \
$*"
missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	*"install ok installed"*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	# shellcheck disable=SC2086
	apt-get install -y --no-install-recommends $missing
else
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
