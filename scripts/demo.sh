#!/bin/sh
# The main job: installs what is missing, builds a release build, and runs
# the demo (threads on a lock-free hash map, printing ops/s and memory held).
# Arguments go to the demo, e.g. --threads 8 --seconds 5.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
if [ -d build/release ]; then
	meson setup --reconfigure build/release --buildtype=release >/dev/null
else
	meson setup build/release --buildtype=release >/dev/null
fi
ninja -C build/release >/dev/null
exec build/release/bench/demo "$@"
