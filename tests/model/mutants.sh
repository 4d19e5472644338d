#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Runs every weakened build of lib/protocol.h (the QSBR_MODEL_* macros)
# against every scenario of the model and prints, per mutation, the
# scenarios that find a violation and the iteration of the first one: the
# table of docs/design.md section 8.  Not part of the test suite (about
# 14 builds); tests/model/meson.build keeps one must-fail test per rule.
#
# Usage: tests/model/mutants.sh [ITERATIONS] (default 300000 per scenario)
# Needs a C++ compiler ($CXX, default c++) and relacy-dev.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
iterations=${1:-300000}
cxx=${CXX:-c++}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

mutations="
QSBR_MODEL_RELAXED_R1
QSBR_MODEL_WEAK_R2
QSBR_MODEL_RELAXED_R2_LOAD
QSBR_MODEL_RELAXED_R3
QSBR_MODEL_RELAXED_ADVANCE_TO
QSBR_MODEL_WEAK_R4
QSBR_MODEL_WEAK_R5
QSBR_MODEL_LATE_R5_LOAD
QSBR_MODEL_RELAXED_R5_LOAD
QSBR_MODEL_RELAXED_SEQ
QSBR_MODEL_RELAXED_SKIP
QSBR_MODEL_RELAXED_RD
QSBR_MODEL_RELAXED_CAS_SUCCESS
QSBR_MODEL_RELAXED_CAS_FAILURE
QSBR_MODEL_RELAXED_DETACH
QSBR_MODEL_LATE_ATTACH_BITS
"

one() {
	m=$1
	"$cxx" -std=c++11 -O1 -w -DRL_DO_ASSERT=1 "-D$m" -I"$here/../../lib" "$here/model.cpp" -o "$out/$m"
	"$out/$m" all "$iterations" >"$out/$m.log" 2>&1 || true
	found=$(awk '
		/^model: [a-z_0-9]+, / { name = $2; sub(",", "", name) }
		/^iteration: / { it = $2 }
		/^model: [a-z_0-9]+: FAILED/ { printf "%s%s@%s", sep, name, it; sep = " " }
	' "$out/$m.log")
	echo "$m: ${found:-not caught}"
}

jobs=$(nproc 2>/dev/null || echo 2)
for m in $mutations; do echo "$m"; done | {
	# Run $jobs builds at a time, in the order of the list.
	n=0
	while read -r m; do
		one "$m" >"$out/$m.line" &
		n=$((n + 1))
		if [ "$n" -ge "$jobs" ]; then
			wait
			n=0
		fi
	done
	wait
}
for m in $mutations; do cat "$out/$m.line"; done
