#!/usr/bin/env python3
"""Before/after of the attention fusion with `kiln profile`: builds MODEL with two kiln binaries
(before: without fuse_attention, after: with it), profiles both plans alternately ROUNDS times
(so a busy shared machine slows both alike) and prints a Markdown table of the medians over the
rounds (and the minimum): OpenCL nodes per run, per-run time, and the time of the attention nodes (in the before
plan: every node the after plan's Attention nodes fused).

usage: attention_profile.py BEFORE_KILN AFTER_KILN MODEL [--shapes NAME=DIMS ...] [--input NAME=FILE ...] [--precision P]
                            [--device D] [--rounds N] [--iterations N] [--work DIR]

Both plans run on AFTER_KILN's runtime. BEFORE_KILN: e.g. this tree built with the run_fuse_attention line of compiler/compiler.cpp
removed (the runtime is the same; only the pass differs).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile


def call(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def fused_names(kiln, plan):
    """Names of the ONNX nodes folded into each Attention node of `plan` (kiln inspect)."""
    names, in_attention = set(), False
    for line in call([kiln, "inspect", plan]).splitlines():
        if re.match(r"\s+\[\d+\] ", line):
            in_attention = "op=Attention" in line
        elif in_attention and line.strip().startswith("fused:"):
            names.update(n.strip() for n in line.split(":", 1)[1].split("+"))
    return names


def profile(kiln, plan, device, iterations, inputs):
    """{node: (op, backend, mean ms)} and the per-run total from one `kiln profile`."""
    out = call([kiln, "profile", plan, "--device", device, "--iterations", str(iterations),
                *[x for i in inputs for x in ("-i", i)]])
    rows, total = {}, None
    for line in out.splitlines():
        m = re.match(r"(.+?)\s+(\S+)\s+(opencl|cpu)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+[\d.]+%", line)
        if m and m.group(2) != "transfer":
            rows[m.group(1).strip()] = (m.group(2), m.group(3), float(m.group(6)))
        t = re.match(r"total [\d.]+ ms over \d+ runs \(([\d.]+) ms per run\)", line)
        if t:
            total = float(t.group(1))
    return rows, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("model")
    ap.add_argument("--shapes", action="append", default=[])
    ap.add_argument("--input", action="append", default=[], help="NAME=FILE.npy for kiln profile (default random)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default="opencl")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp()
    os.makedirs(work, exist_ok=True)
    plans = {}
    for tag, kiln in (("before", a.before), ("after", a.after)):
        plans[tag] = os.path.join(work, f"{tag}.plan")
        call([kiln, "build", a.model, "-o", plans[tag], "--device", a.device, "--precision", a.precision,
              *[x for s in a.shapes for x in ("--shapes", s)]])
    attention = fused_names(a.after, plans["after"])
    samples = {tag: {"total": [], "attention": [], "nodes": 0, "launching": 0} for tag in plans}
    for _ in range(a.rounds):
        for tag in ("before", "after"):
            rows, total = profile(a.after, plans[tag], a.device, a.iterations, a.input)
            s = samples[tag]
            s["total"].append(total)
            s["attention"].append(sum(ms for name, (op, _, ms) in rows.items()
                                      if op == "Attention" or (tag == "before" and name in attention)))
            cl = [(name, op) for name, (op, backend, _) in rows.items() if backend == "opencl"]
            s["nodes"] = len(cl)
            # Reshapes run in place here (a view, no launch).
            s["launching"] = sum(1 for _, op in cl if op != "Reshape")
    print(f"| plan | OpenCL nodes | nodes that launch (not in-place Reshape) | ms per run, median (min) of {a.rounds} "
          f"| attention ms per run, median (min) |")
    print("|---|---|---|---|---|")
    for tag in ("before", "after"):
        s = samples[tag]
        print(f"| {tag} | {s['nodes']} | {s['launching']} | {statistics.median(s['total']):.3f} ({min(s['total']):.3f}) "
              f"| {statistics.median(s['attention']):.3f} ({min(s['attention']):.3f}) |")
    print(f"\nper-round ms per run: before {samples['before']['total']}, after {samples['after']['total']}")
    print(f"per-round attention ms: before {[round(x, 3) for x in samples['before']['attention']]}, "
          f"after {[round(x, 3) for x in samples['after']['attention']]}")


if __name__ == "__main__":
    main()
