#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The inline qsbr_quiescent, compiled into a consumer, calls nothing but its
slow path, whatever the consumer's NDEBUG, in C and in C++ (also included
inside extern "C" { }), with every compiler given; and with QSBR_DEBUG it
calls the owner check as well (so the check looks at what it should).

Usage: fastpath_check.py --include DIR --objdump OBJDUMP COMPILER...
Prints one line per build and "N passed, N failed"; exits 1 on a failure,
77 when no compiler could be run."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

C_TU = """#include <qsbr.h>
void consumer_quiescent(qsbr_thread *t) { qsbr_quiescent(t); }
"""
CXX_TU = """%s
extern "C" void consumer_quiescent(qsbr_thread *t) { qsbr_quiescent(t); }
"""


def calls_in(objdump, obj):
    """Symbols that consumer_quiescent calls or jumps to (relocations)."""
    out = subprocess.run([objdump, "-dr", "--no-show-raw-insn", obj], check=True,
                         capture_output=True, text=True).stdout
    body = out.split("<consumer_quiescent>:", 1)[1]
    body = re.split(r"\n\n", body, 1)[0]
    return sorted(set(re.findall(r"R_\w+\s+([A-Za-z_][\w.]*)", body)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--include", required=True)
    ap.add_argument("--objdump", default="objdump")
    ap.add_argument("compilers", nargs="+")
    a = ap.parse_args()
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for cc in a.compilers:
            if shutil.which(cc) is None:
                print("skip %s: not installed" % cc)
                continue
            cxx = "++" in cc
            variants = [("plain", "#include <qsbr.h>")]
            if cxx:
                variants.append(("extern-C", 'extern "C" {\n#include <qsbr.h>\n}'))
            for name, include in variants:
                src = os.path.join(tmp, "tu.cpp" if cxx else "tu.c")
                with open(src, "w") as f:
                    f.write(CXX_TU % include if cxx else C_TU)
                for flags, want in (([], {"qsbr__quiescent_slow"}),
                                    (["-DNDEBUG"], {"qsbr__quiescent_slow"}),
                                    (["-DQSBR_DEBUG"], {"qsbr__quiescent_slow", "qsbr__check_owner"})):
                    obj = os.path.join(tmp, "tu.o")
                    std = ["-std=c++11"] if cxx else ["-std=c11"]
                    cmd = [cc, "-O2", "-c", "-pedantic-errors", "-Wall", "-Werror", "-I", a.include,
                           src, "-o", obj] + std + flags
                    what = "%s %s %s" % (cc, name, " ".join(flags) or "(no NDEBUG)")
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    if r.returncode != 0:
                        print("FAIL %s: does not compile:\n%s" % (what, r.stderr))
                        failed += 1
                        continue
                    got = set(calls_in(a.objdump, obj))
                    if got != want:
                        print("FAIL %s: calls %s, want %s" % (what, sorted(got), sorted(want)))
                        failed += 1
                    else:
                        print("ok   %s: calls %s" % (what, ", ".join(sorted(got))))
                        passed += 1
    print("%d passed, %d failed" % (passed, failed))
    if passed + failed == 0:
        return 77
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
