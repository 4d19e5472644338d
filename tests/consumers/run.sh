#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the downstream program consumer.c against this source tree the way
# users consume libqsbr, linked shared and static, checks the linkage and
# runs both programs.
#
#   subproject  a meson project whose subprojects/qsbr links to this tree;
#               dependency('qsbr') resolved through override_dependency
#   pkg-config  meson install into a temporary prefix, then plain cc with
#               pkg-config's flags (also checks what the install holds)
#   cmake       meson install into a temporary prefix, then CMake with
#               pkg_check_modules(IMPORTED_TARGET)
#
# Usage: run.sh MODE SOURCE_ROOT WORK_DIR.  WORK_DIR is emptied first and kept
# afterwards for inspection.  Exits 77 (skip) when a tool is missing
# (scripts/deps.sh installs them all).  Never uses the network.
set -eu
mode=$1
src=$(cd "$2" && pwd)
work=$3
here=$src/tests/consumers
MESON=${MESON:-meson}

need() {
	for tool; do
		command -v "$tool" >/dev/null 2>&1 || {
			echo "$tool not found, skipping (scripts/deps.sh installs it)"
			exit 77
		}
	done
}

# Runs a command with its output in a log, shown only when it fails.
quiet() {
	log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		echo "FAILED: $*"
		tail -n 60 "$log"
		exit 1
	fi
}

major=$(sed -n 's/^#define QSBR_VERSION_MAJOR \([0-9][0-9]*\)$/\1/p' "$src/include/qsbr.h")
[ -n "$major" ] || { echo "no QSBR_VERSION_MAJOR in qsbr.h"; exit 1; }

# check BINARY static | check BINARY shared LIBDIR: linkage as asked (a
# shared one must load libqsbr from LIBDIR, through its rpath), then it runs.
check() {
	if readelf -d "$1" | grep -q "NEEDED.*\[libqsbr\.so\.$major\]"; then
		got=shared
	elif readelf -d "$1" | grep -q 'NEEDED.*libqsbr'; then
		got="shared, but not on libqsbr.so.$major"
	else
		got=static
	fi
	if [ "$got" != "$2" ]; then
		echo "FAIL $1: linked $got, want $2"
		exit 1
	fi
	if [ "$2" = shared ]; then
		loaded=$(ldd "$1" | sed -n "s/^[[:space:]]*libqsbr\.so\.$major => \([^ ]*\) .*/\1/p")
		if [ -z "$loaded" ] ||
			[ "$(dirname "$(readlink -f "$loaded")")" != "$(readlink -f "$3")" ]; then
			echo "FAIL $1 loads libqsbr from '${loaded:-nowhere}', want $3"
			exit 1
		fi
	fi
	printf '%s (%s): ' "$1" "$2"
	"$1"
}

# Installs this tree into $work/prefix; sets pcdir.
install_prefix() {
	quiet setup.log "$MESON" setup "$work/build" "$src" --prefix="$work/prefix" \
		--wrap-mode=nodownload -Dtests=disabled -Dbench=disabled -Dexamples=disabled
	quiet compile.log "$MESON" compile -C "$work/build"
	quiet install.log "$MESON" install -C "$work/build"
	pc=$(find "$work/prefix" -name qsbr.pc)
	[ -n "$pc" ] || { echo "FAIL no qsbr.pc installed"; exit 1; }
	pcdir=$(dirname "$pc")
}

# meson test points LD_LIBRARY_PATH at the build under test; the consumers
# must find the library they were linked with on their own.
unset LD_LIBRARY_PATH
rm -rf "$work"
mkdir -p "$work"
cd "$work"
need "$MESON" readelf ldd

case $mode in
subproject)
	mkdir -p project/subprojects
	cp "$here/meson/meson.build" "$here/consumer.c" project/
	ln -s "$src" project/subprojects/qsbr
	# force-fallback: a libqsbr installed on this machine must not answer.
	quiet setup.log "$MESON" setup build project --wrap-mode=nodownload \
		--force-fallback-for=qsbr
	quiet compile.log "$MESON" compile -C build
	# Loading the subproject's library proves the override answered.
	check build/consumer-shared shared build/subprojects/qsbr
	check build/consumer-static static
	;;
pkg-config)
	need pkg-config cc
	install_prefix
	export PKG_CONFIG_PATH="$pcdir"
	libdir=$(pkg-config --variable=libdir qsbr)
	prefix=$(pkg-config --variable=prefix qsbr)
	# What the install must hold: header, both libraries with the soname,
	# pkg-config file, one man page per call (.so links resolving).
	for f in "$prefix/include/qsbr.h" "$libdir/libqsbr.so.$major" "$libdir/libqsbr.a" \
		"$prefix/share/man/man3/qsbr.3" "$prefix/share/man/man3/qsbr_register.3" \
		"$prefix/share/man/man3/qsbr_retire_sized.3"; do
		[ -e "$f" ] || { echo "FAIL not installed: $f"; exit 1; }
	done
	if command -v man >/dev/null 2>&1; then
		MANPAGER=cat LC_ALL=C man -M "$prefix/share/man" 3 qsbr_retire_sized 2>&1 |
			grep -q 'qsbr_retire, qsbr_retire_sized' || {
			echo "FAIL man -M PREFIX/share/man qsbr_retire_sized does not show the page"
			exit 1
		}
	fi

	warn="-std=c11 -Wall -Wextra -pedantic -Werror"
	# shellcheck disable=SC2046,SC2086
	quiet cc-shared.log cc $warn $(pkg-config --cflags qsbr) "$here/consumer.c" \
		-o consumer-shared $(pkg-config --libs qsbr) -Wl,-rpath,"$libdir"
	# Static: the archive, then what pkg-config --static adds (-pthread).
	# shellcheck disable=SC2046,SC2086
	quiet cc-static.log cc $warn $(pkg-config --cflags --static qsbr) "$here/consumer.c" \
		-o consumer-static $(pkg-config --libs-only-L qsbr) \
		-Wl,-Bstatic $(pkg-config --static --libs-only-l qsbr) -Wl,-Bdynamic \
		$(pkg-config --static --libs-only-other qsbr)
	check ./consumer-shared shared "$libdir"
	check ./consumer-static static
	;;
cmake)
	need cmake pkg-config ninja
	install_prefix
	# Found the way a CMake user points at an install: CMAKE_PREFIX_PATH.
	quiet cmake.log cmake -S "$here/cmake" -B cmake-build -G Ninja \
		-DCMAKE_PREFIX_PATH="$work/prefix"
	quiet cmake-build.log cmake --build cmake-build
	check cmake-build/consumer-shared shared "$(dirname "$pcdir")"
	check cmake-build/consumer-static static
	;;
*)
	echo "usage: run.sh subproject|pkg-config|cmake SOURCE_ROOT WORK_DIR"
	exit 2
	;;
esac
