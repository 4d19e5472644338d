#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The exported symbols of libqsbr.so are the documented API (docs/abi.md).

Checks, naming what differs:
  1. dynamic symbols of the shared library == QSBR_API declarations in the
     headers given (qsbr.h, qsbr/*.h)
  2. QSBR_API declarations == calls documented in docs/api.md (and the other
     API documents given, docs/ds.md), less the headers' static inline ones,
     plus the internals listed in docs/abi.md
  3. each exported symbol has a QSBR_<major> version node
  4. the soname is libqsbr.so.<QSBR_VERSION_MAJOR>
  5. every external name defined in libqsbr.a has the qsbr_ prefix

Usage: check_symbols.py --shared libqsbr.so --static libqsbr.a
                        --header qsbr.h [--header qsbr/stack.h ...]
                        --api api.md [--api ds.md ...] --abi abi.md
Exits 77 (skip) when nm or readelf is missing.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

CALL_RE = re.compile(r"\b(qsbr_\w+)\s*\(")


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env=dict(os.environ, LC_ALL="C")).stdout


def header_decls(text):
    """(exported, inline, major): names declared QSBR_API, names of the static
    inline functions, and QSBR_VERSION_MAJOR."""
    body = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    body = re.sub(r"/\*.*?\*/", " ", body, flags=re.S)
    exported = {CALL_RE.search(m.group(1)).group(1)
                for m in re.finditer(r"QSBR_API\s+([^;{}]*?\))\s*;", body, flags=re.S)}
    inline = {CALL_RE.search(m.group(1)).group(1)
              for m in re.finditer(r"static\s+inline\s+([^;{}]*?\))\s*\{", body, flags=re.S)}
    major = re.search(r"^#define QSBR_VERSION_MAJOR (\d+)", text, flags=re.M)
    return exported, inline, int(major.group(1)) if major else None


def documented_calls(api):
    return {n for line in api.splitlines() if line.startswith("### ")
            for n in CALL_RE.findall(line)}


def documented_internals(abi):
    """The qsbr__ names in the first column of docs/abi.md's tables."""
    return set(re.findall(r"^\|\s*`(qsbr__\w+)`\s*\|", abi, flags=re.M))


def dynamic_symbols(lib):
    """{name: version} of the defined dynamic symbols, version nodes left out."""
    syms = {}
    for line in run("nm", "-D", "--defined-only", lib).splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[1] == "A":  # A: a version node's own symbol
            continue
        name, _, version = parts[2].partition("@")
        syms[name] = version.lstrip("@")
    return syms


def soname(lib):
    m = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", run("readelf", "-d", lib))
    return m.group(1) if m else None


def static_externals(archive):
    return {line.split()[-1] for line in run("nm", "-g", "--defined-only", archive).splitlines()
            if len(line.split()) >= 3}


def diff(what, a_name, a, b_name, b):
    if a == b:
        return []
    return ["%s: only in %s: %s; only in %s: %s" % (what, a_name, sorted(a - b) or "-",
                                                   b_name, sorted(b - a) or "-")]


def main():
    ap = argparse.ArgumentParser()
    for opt in ("shared", "static", "abi"):
        ap.add_argument("--" + opt, required=True)
    for opt in ("header", "api"):  # repeatable: qsbr.h and docs/api.md first
        ap.add_argument("--" + opt, required=True, action="append")
    a = ap.parse_args()
    if not (shutil.which("nm") and shutil.which("readelf")):
        print("nm or readelf missing (binutils; scripts/deps.sh installs it)")
        return 77

    exported, inline, calls, major = set(), set(), set(), None
    for path in a.header:
        with open(path, encoding="utf-8") as f:
            e, i, m = header_decls(f.read())
        exported, inline, major = exported | e, inline | i, major if m is None else m
    for path in a.api:
        with open(path, encoding="utf-8") as f:
            calls |= documented_calls(f.read())
    with open(a.abi, encoding="utf-8") as f:
        internals = documented_internals(f.read())
    dyn = dynamic_symbols(a.shared)

    errors = []
    errors += diff("exported vs declared", "libqsbr.so", set(dyn), "headers' QSBR_API", exported)
    expected = (calls - inline) | internals
    errors += diff("declared vs documented", "headers' QSBR_API", exported,
                   "API docs + docs/abi.md", expected)
    for name, version in sorted(dyn.items()):
        if not re.fullmatch(r"QSBR_%d(\.\d+)?" % major, version):
            errors.append("%s has version node %r, want QSBR_%d[.MINOR] (lib/qsbr.map)"
                          % (name, version or "none", major))
    want_soname = "libqsbr.so.%d" % major
    got = soname(a.shared)
    if got != want_soname:
        errors.append("soname is %s, want %s (from QSBR_VERSION_MAJOR)" % (got, want_soname))
    unprefixed = {s for s in static_externals(a.static) if not s.startswith("qsbr_")}
    if unprefixed:
        errors.append("libqsbr.a defines external names without the qsbr_ prefix: %s"
                      % sorted(unprefixed))

    print("libqsbr.so exports %d symbols (%d public calls, %d internals); soname %s"
          % (len(dyn), len(set(dyn) - internals), len(set(dyn) & internals), got))
    for e in errors:
        print("FAIL " + e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
