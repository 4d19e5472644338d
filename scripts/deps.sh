#!/bin/sh
# Installs the Debian packages the build, tests, benchmarks (and their
# plots) and demo need, when any is missing.  Uses sudo when not root.
set -eu
pkgs="meson ninja-build pkg-config gcc g++ clang libcmocka-dev liburcu-dev libck-dev libbenchmark-dev relacy-dev python3-matplotlib"
# Other allocators for the pool benchmarks (LD_PRELOAD, docs/benchmarks.md).
pkgs="$pkgs libmimalloc-dev libjemalloc-dev"
# Consumer tests (cmake), man page checks (man-db, groff-base), ABI symbol
# check (binutils: nm, readelf).
pkgs="$pkgs cmake man-db groff-base binutils"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
