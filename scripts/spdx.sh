#!/bin/sh
# SPDX-License-Identifier: ISC
# scripts/spdx.sh [--add]: every source file git tracks carries
# "SPDX-License-Identifier: ISC" in its first two lines (after a #! line),
# in the comment syntax of its kind.  Without --add, list the files that
# do not and fail (make lint, tests/integration/test_licence.py); with
# --add, insert the line where it is missing.
#
# Migrations 0001 to 0009 were applied to mirrors before the licence was
# chosen and an applied migration is never edited, not even its comments:
# they stay byte for byte as applied, which migrations/applied.sha256
# holds them to, and debian/copyright and LICENSE cover them.
set -eu
cd "$(dirname "$0")/.."
add=0
[ "${1:-}" = "--add" ] && add=1
tag="SPDX-License-Identifier: ISC"

# The comment that carries the tag in a file of this name, or nothing for
# a file that is not source (data, prose, packaging metadata).
comment_for() {
	case "$1" in
	tests/fixtures/* | tests/fuzz/corpus/* | *.md | *.json) ;;
	debian/changelog | debian/control | debian/copyright | debian/source/*) ;;
	LICENSE | .gitignore | *.sha256) ;;
	*.c | *.h) echo "/* $tag */" ;;
	*.sql) echo "-- $tag" ;;
	*.conf) echo "; $tag" ;;
	doc/*.[1-9]) echo ".\\\" $tag" ;;
	*) echo "# $tag" ;;
	esac
}

bad=0
for f in $(git ls-files); do
	[ -f "$f" ] && [ ! -L "$f" ] || continue
	line=$(comment_for "$f")
	[ -n "$line" ] || continue
	if grep -q "  ${f#migrations/}\$" migrations/applied.sha256 2>/dev/null; then
		continue # checked by its sum below
	fi
	head -n 3 "$f" | grep -q "$tag" && continue
	if [ $add -eq 0 ]; then
		echo "spdx: $f: no '$tag' in its first lines" >&2
		bad=1
		continue
	fi
	if head -n 1 "$f" | grep -q '^#!'; then
		{ head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } > "$f.spdx"
	else
		{ echo "$line"; cat "$f"; } > "$f.spdx"
	fi
	chmod --reference="$f" "$f.spdx"
	mv "$f.spdx" "$f"
	echo "spdx: added to $f"
done
# Applied migrations stay exactly as applied.
if ! (cd migrations && sha256sum --quiet -c applied.sha256 >&2); then
	echo "spdx: an applied migration changed (migrations/applied.sha256): add a new migration instead" >&2
	bad=1
fi
exit $bad
