#!/usr/bin/env python3
"""Which all-MiniLM-L6-v2 layers lose accuracy under kiln's INT8 scheme (a diagnostic, not a test).

    .venv/bin/python tests/accuracy/minilm_int8_emulation.py --kiln build/kiln [--work DIR]

Takes kiln's own calibration ranges (kiln build --precision int8 --calib-cache, same samples
as minilm_accuracy.py) and emulates its scheme in the numpy forward pass: activations
symmetric per tensor (scale = range / 127), weights symmetric per output channel, and each
integer MatMul's output requantized to int8 with its own range. Prints the min/mean cosine to
FP32 with the scheme applied to each group of linear layers alone, to the layers
minilm_accuracy.py --no-smooth-quant runs in INT8, to all of them, and to all without the output
requantization (the emulation has no SmoothQuant).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import minilm_accuracy as acc  # noqa: E402
from accuracy_lib import print_table  # noqa: E402
from export_minilm import LAYERS, float_linear, numpy_forward  # noqa: E402

KINDS = ("query", "key", "value", "attn_out", "inter", "ffn_out")


def read_cache(path):
    """{tensor: range} from a kiln calibration cache ("AMAX CLIPPED NAME" lines, hex floats)."""
    ranges = {}
    with open(path) as f:
        for line in f.read().splitlines()[2:-1]:
            if line.startswith("channels "):  # per-channel maxima (--smooth-quant builds)
                continue
            amax, _, name = line.split(" ", 2)
            ranges[name] = float.fromhex(amax)
    return ranges


def quantize(x, amax):
    scale = amax / 127
    return np.clip(np.round(x / scale), -127, 127) * scale


def int8_linear(ranges, kinds, requantize_output):
    def linear(x, w_t, b, in_name, out_name):
        if not any(out_name.endswith(f"_{k}_mm") for k in kinds):
            return float_linear(x, w_t, b, in_name, out_name)
        w_scale = np.abs(w_t).max(0, keepdims=True) / 127
        y = quantize(x, ranges[in_name]) @ (np.round(w_t / np.maximum(w_scale, 1e-30)) * w_scale)
        return (quantize(y, ranges[out_name]) if requantize_output else y) + b
    return linear


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--work", default=None)
    ap.add_argument("--calibrator", default="entropy")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="kiln-minilm-emulation-")
    os.makedirs(work, exist_ok=True)
    weights, tok, sentences, ids, mask = acc.load_inputs()
    model = acc.export_model(weights, work)
    calib_dir = acc.write_calibration(tok, len(sentences), work)
    cache = os.path.join(work, f"ranges.{args.calibrator}")
    if os.path.exists(cache):
        os.remove(cache)  # kiln reuses a cache; these ranges must come from these samples
    cmd = [args.kiln, "build", model, "-o", os.path.join(work, "int8.plan"), "--device", "cpu",
           "--precision", "int8", "--calib", calib_dir, "--calibrator", args.calibrator, "--calib-cache", cache,
           "--shapes", f"input_ids={ids.shape[0]}x{ids.shape[1]}",
           "--shapes", f"attention_mask={mask.shape[0]}x{mask.shape[1]}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"minilm_int8_emulation: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    ranges = read_cache(cache)

    ref = numpy_forward(weights, ids, mask)
    int8_kinds = [k for k in KINDS if not any(n.endswith(f"_{k}_mm") for n in acc.KEEP_FP32["int8"])]
    cases = [([k], True) for k in KINDS] + [(int8_kinds, True), (list(KINDS), True), (list(KINDS), False)]
    rows = []
    for kinds, requant in cases:
        emb = numpy_forward(weights, ids, mask, int8_linear(ranges, kinds, requant))
        cos = acc.cosine(emb, ref)
        label = "all" if len(kinds) == len(KINDS) else "+".join(kinds)
        rows.append([f"{label} x {LAYERS} layers", "yes" if requant else "no", f"{cos.min():.4f}", f"{cos.mean():.4f}"])
        print(".", end="", flush=True)
    print(f"\nkiln INT8 scheme emulated in numpy ({args.calibrator} ranges from kiln), "
          f"{len(sentences)} sentences, cosine to FP32")
    print_table(["linear layers in int8", "output requantized", "min cosine", "mean cosine"], rows)


if __name__ == "__main__":
    main()
