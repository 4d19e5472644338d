#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Plots and tables from the pool benchmarks' JSON (bench/pool_runs.sh).

    /usr/bin/python3 bench/plot_pool.py DIR [--out docs/bench]

DIR holds PROGRAM-ALLOCATOR-REP.json files (pool-stack, pool-hashset; glibc,
mimalloc, jemalloc).  Every number is the median over the repetitions of
the "ops" counter (operations per wall-clock second, all threads).  Writes
PROGRAM.png into --out (Mops/s against threads, one panel per allocator)
and pool.json (the medians and the runs' context), and prints Markdown
tables: medians with the spread (min-max), and the ratios the targets of
issue #13 name.  Needs Debian's python3-matplotlib.
"""
import argparse
import glob
import json
import os
import re
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ALLOCATORS = ["glibc", "mimalloc", "jemalloc"]
PROGRAMS = {
    "pool-stack": ["malloc-free-now", "retire-free", "pool", "ds-stack", "ck", "urcu"],
    "pool-hashset": ["malloc-free-now", "malloc-wide", "retire-free", "pool"],
}
LABEL = {
    "malloc-free-now": "malloc + free at once (1 thread)",
    "retire-free": "retire + free callback",
    "pool": "pool (qsbr_pool_alloc / qsbr_pool_retire)",
    "ds-stack": "qsbr_stack (its own pool)",
    "malloc-wide": "malloc + free at once, +40 B a node (1 thread)",
    "ck": "ck_epoch, call + poll",
    "urcu": "liburcu-qsbr call_rcu",
}
STYLE = {
    "malloc-free-now": dict(color="black", marker="s", linestyle="none"),
    "retire-free": dict(color="tab:blue", marker="o"),
    "pool": dict(color="tab:red", marker="o", linewidth=2.2),
    "ds-stack": dict(color="tab:orange", marker="^", linestyle="--"),
    "malloc-wide": dict(color="gray", marker="x", linestyle="none"),
    "ck": dict(color="tab:green", marker="v", linestyle=":"),
    "urcu": dict(color="tab:purple", marker="D", linestyle=":"),
}
NAME = re.compile(r"^(pool-\w+)/([\w-]+)/.*threads:(\d+)$")


def load(directory):
    """{(program, allocator, variant, threads): [Mops/s per repetition]}."""
    runs, context = {}, None
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        context = context or data["context"]
        alloc = data["context"].get("allocator", "glibc")
        for e in data["benchmarks"]:
            m = NAME.match(e["name"])
            if not m or e.get("error_occurred") or "ops" not in e:
                continue
            key = (m.group(1), alloc, m.group(2), int(m.group(3)))
            runs.setdefault(key, []).append(e["ops"] / 1e6)
    return context, runs


def med(runs, *key):
    v = runs.get(key)
    return statistics.median(v) if v else None


def cell(runs, key):
    v = runs.get(key)
    if not v:
        return "-"
    return f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def tables(runs):
    out = []
    for prog, variants in PROGRAMS.items():
        out.append(f"#### `{prog}`: Mops/s, median (min-max) of {reps(runs, prog)} runs\n")
        out.append("| allocator | variant | 1 thread | 2 threads | 4 threads |")
        out.append("| --- | --- | ---: | ---: | ---: |")
        for alloc in ALLOCATORS:
            for var in variants:
                cells = [cell(runs, (prog, alloc, var, th)) for th in (1, 2, 4)]
                if all(c == "-" for c in cells):
                    continue
                out.append(f"| {alloc} | {var} | " + " | ".join(cells) + " |")
        out.append("")
        out.append("| ratio of medians | " + " | ".join(ALLOCATORS) + " |")
        out.append("| --- | " + " | ".join("---:" for _ in ALLOCATORS) + " |")
        rows = [("pool / malloc + free at once, 1 thread", "pool", "malloc-free-now", 1, 1)]
        if "malloc-wide" in variants:
            rows += [("pool / malloc + free at once with the pool's footprint, 1 thread", "pool",
                      "malloc-wide", 1, 1)]
        rows += [(f"pool / retire + free, {th} thread{'s' if th > 1 else ''}", "pool",
                  "retire-free", th, th) for th in (1, 2, 4)]
        if "ds-stack" in variants:
            rows += [(f"qsbr_stack / retire + free, {th} thread{'s' if th > 1 else ''}",
                      "ds-stack", "retire-free", th, th) for th in (1, 2, 4)]
        for peer in ("ck", "urcu"):
            if peer in variants:
                rows += [(f"pool / {peer}, {th} thread{'s' if th > 1 else ''}", "pool", peer,
                          th, th) for th in (1, 2, 4)]
        for label, a, b, ta, tb in rows:
            out.append(f"| {label} | " + " | ".join(
                ratio(med(runs, prog, al, a, ta), med(runs, prog, al, b, tb))
                for al in ALLOCATORS) + " |")
        out.append("")
    return "\n".join(out)


def reps(runs, prog):
    counts = [len(v) for k, v in runs.items() if k[0] == prog]
    return min(counts) if counts else 0


def plot(runs, prog, out):
    fig, axes = plt.subplots(1, len(ALLOCATORS), figsize=(13, 4.2), sharey=True)
    for ax, alloc in zip(axes, ALLOCATORS):
        for var in PROGRAMS[prog]:
            pts = [(th, med(runs, prog, alloc, var, th)) for th in (1, 2, 4)]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], label=LABEL[var],
                        **STYLE[var])
        ax.set_title(alloc)
        ax.set_xlabel("threads (2 vCPUs)")
        ax.set_xticks([1, 2, 4])
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    axes[0].set_ylabel("Mops/s, all threads (median)")
    axes[-1].legend(fontsize=8, loc="best")
    fig.suptitle(f"{prog}: a node's life, pools against malloc")
    fig.tight_layout()
    path = os.path.join(out, f"{prog}.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--out", default="docs/bench")
    args = ap.parse_args()
    context, runs = load(args.dir)
    if not runs:
        raise SystemExit(f"no pool benchmark results in {args.dir}")
    os.makedirs(args.out, exist_ok=True)
    for prog in PROGRAMS:
        if any(k[0] == prog for k in runs):
            plot(runs, prog, args.out)
    medians = {"/".join(map(str, k)): statistics.median(v) for k, v in sorted(runs.items())}
    context = {k: v for k, v in context.items() if k != "executable"}  # a machine path
    with open(os.path.join(args.out, "pool.json"), "w") as f:
        json.dump({"context": context, "medians_mops": medians}, f, indent=1)
    print(tables(runs))


if __name__ == "__main__":
    main()
