#!/usr/bin/env python3
"""Times ONNX Runtime (CPU execution provider) on a model the way `kiln bench` does: random
inputs (same distribution), warm-up, then latency percentiles and throughput at concurrency 1.
Prints one JSON object. Usage: ort_bench.py MODEL.onnx [--duration-s 3] [--threads N]"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--duration-s", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT's default)")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1234)
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    t_end = time.perf_counter() + 0.2
    while time.perf_counter() < t_end:
        sess.run(None, feeds)
    lat = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < a.duration_s:
        s = time.perf_counter()
        sess.run(None, feeds)
        lat.append((time.perf_counter() - s) * 1e3)
    wall = time.perf_counter() - t0
    lat = np.array(lat)
    print(json.dumps({"model": a.model, "runtime": "onnxruntime " + ort.__version__, "inferences": len(lat),
                      "throughput_per_s": len(lat) / wall,
                      "latency_ms": {"min": float(lat.min()), "mean": float(lat.mean()),
                                     "median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)),
                                     "p99": float(np.percentile(lat, 99)), "max": float(lat.max())}}))


if __name__ == "__main__":
    main()
