#!/bin/sh
# SPDX-License-Identifier: MIT
# pool_runs.sh BUILD OUT [REPS]: the pool benchmarks of docs/benchmarks.md
# ("pools"), REPS times (default 5), each time under glibc, mimalloc and
# jemalloc in turn (LD_PRELOAD), so that every allocator sees the machine
# in the same state; one JSON file per program, allocator and repetition
# in OUT.  Then: /usr/bin/python3 bench/plot_pool.py OUT --out docs/bench
set -eu
build=$1
out=$2
reps=${3:-5}
mkdir -p "$out"
for rep in $(seq 1 "$reps"); do
	for alloc in glibc mimalloc jemalloc; do
		case $alloc in
		glibc) pre= ;;
		*) pre=$(ldconfig -p | awk -v n="lib$alloc.so" '$1 == n { print $NF; exit }')
		   if [ -z "$pre" ]; then echo "no lib$alloc.so: skipped" >&2; continue; fi ;;
		esac
		for prog in pool-stack pool-hashset; do
			LD_PRELOAD=$pre "$build/bench/$prog" \
				--benchmark_out="$out/$prog-$alloc-$rep.json" \
				--benchmark_out_format=json \
				--benchmark_context=allocator=$alloc >/dev/null
		done
		echo "rep $rep $alloc done" >&2
	done
done
