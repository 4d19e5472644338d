#!/bin/sh
# The whole test suite in every build: plain, ThreadSanitizer,
# AddressSanitizer + UndefinedBehaviorSanitizer, and a plain build whose
# sequence starts near UINT64_MAX (stress, client, edges and shared suites, so
# it wraps).
# Installs what is missing first.  Build folders go under build/.
# STRESS_SECONDS (default 10) sets the length of each stress test.
# Prints one closing line, "N passed, N failed", and fails if no test ran.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh

builds="plain tsan asan wrap"
setup() { # name, meson options...
	dir="build/$1"
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}
secs=${STRESS_SECONDS:-10}
setup plain -Dstress_seconds="$secs"
setup tsan -Db_sanitize=thread -Db_lundef=false -Dstress_seconds="$secs"
setup asan -Db_sanitize=address,undefined -Db_lundef=false -Dstress_seconds="$secs"
setup wrap -Dseq_start=near-wrap -Dstress_seconds="$secs"

status=0
for b in $builds; do
	echo "=== build/$b"
	ninja -C "build/$b" >/dev/null
	suites=""
	[ "$b" = wrap ] && suites="--suite stress --suite client --suite edges --suite shared"
	# shellcheck disable=SC2086
	if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		meson test -C "build/$b" --print-errorlogs --num-processes 2 $suites; then
		status=1
	fi
done

# Count results from meson's machine-readable logs.
passed=0 failed=0 skipped=0
for b in $builds; do
	log="build/$b/meson-logs/testlog.json"
	[ -f "$log" ] || continue
	p=$(grep -cE '"result": "(OK|EXPECTEDFAIL)"' "$log" || true)
	f=$(grep -cE '"result": "(FAIL|TIMEOUT|ERROR|UNEXPECTEDPASS)"' "$log" || true)
	s=$(grep -c '"result": "SKIP"' "$log" || true)
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
if [ $((passed + failed)) -eq 0 ]; then
	echo "no tests ran"
	exit 1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
