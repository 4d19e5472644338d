#!/bin/sh
# SPDX-License-Identifier: MIT
# Renders each generated man page with man -l --warnings and with
# groff -ww (every warning), and fails on any diagnostic.  ".so" pages must
# name a page of the set.  Skips (77) when neither man nor groff is there.
# Usage: check_man.sh PAGE...
set -eu
command -v man >/dev/null 2>&1 || command -v groff >/dev/null 2>&1 || {
	echo "neither man nor groff installed (scripts/deps.sh installs them)"
	exit 77
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/man3"
for p in "$@"; do cp "$p" "$tmp/man3/"; done
cd "$tmp"     # .so requests name man3/PAGE, relative to here

export LC_ALL=C MANWIDTH=80 MAN_KEEP_FORMATTING=
status=0 n=0
for p in man3/*; do
	n=$((n + 1))
	first=$(head -n 1 "$p")
	case $first in
	.so\ *)
		target=${first#.so }
		if [ ! -f "$target" ] || [ "$(wc -l <"$p")" -ne 1 ]; then
			echo "$p: bad link: $first"
			status=1
		fi
		continue
		;;
	esac
	for tool in man groff; do
		command -v $tool >/dev/null 2>&1 || continue
		if [ $tool = man ]; then
			man --warnings -l "$p" >out 2>err || echo "man exited $?" >>err
		else
			groff -t -man -ww -z "$p" >out 2>err || echo "groff exited $?" >>err
			[ ! -s out ] || cat out >>err
		fi
		if [ -s err ]; then
			echo "$p ($tool):"
			sed 's/^/    /' err
			status=1
		fi
	done
	# The page must have rendered to something with its NAME section.
	if command -v man >/dev/null 2>&1 && ! man -l "$p" 2>/dev/null | grep -q '^NAME'; then
		echo "$p: no NAME section in the rendered page"
		status=1
	fi
done
echo "$n pages checked"
exit $status
