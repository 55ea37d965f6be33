#!/usr/bin/env python3
"""A `kiln build --tuning-cache` file as a readable table: per layer, every timed kernel choice
fastest first, with its time relative to the fastest.

Usage: tuning_table.py CACHE [--top N] [--grep TEXT]
"""
import argparse
import collections


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--grep", default="")
    a = ap.parse_args()
    layers = collections.OrderedDict()
    with open(a.cache) as f:
        header = f.readline().strip()
        if not header.startswith("kiln tuning cache"):
            raise SystemExit(f"{a.cache}: not a kiln tuning cache")
        for line in f:
            us, key = line.rstrip("\n").split("\t", 1)
            device, driver, layer, choice = key.split("\t")
            layers.setdefault((device, layer), []).append((float(us), choice or "portable"))
    for (device, layer), rows in layers.items():
        if a.grep and a.grep not in layer:
            continue
        rows.sort()
        best = rows[0][0]
        print(f"\n{layer}  [{device}]")
        for us, choice in rows[: a.top]:
            print(f"  {us:10.1f} us  {us / best:5.2f}x  {choice}")
        # The portable kernel as the baseline, where it fell outside the top N.
        portable = [us for us, c in rows[a.top:] if c == "portable"]
        if portable:
            print(f"  {portable[0]:10.1f} us  {portable[0] / best:5.2f}x  portable")


if __name__ == "__main__":
    main()
