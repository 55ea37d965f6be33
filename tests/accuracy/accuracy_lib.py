"""What the accuracy tests share: the thresholds per precision, and kiln build/run through the CLI.

Precisions are plain `kiln build --precision` names, so a precision kiln gains (fp16, fp8) is
tested by naming it (ctest: the CMake cache variable KILN_ACCURACY_PRECISIONS) once it has a
threshold below. A precision without one is an error, never silently untested.
"""
import os
import subprocess
import sys
import time

import numpy as np

# Fashion-MNIST CNN: top-1 on the 10,000 test images may drop at most this many points vs FP32.
FASHION_MAX_DROP = {"fp32": 0.0, "fp16": 0.1, "int8": 0.5, "fp8": 0.5}

# all-MiniLM-L6-v2: every sentence embedding's cosine similarity to kiln's FP32 embedding (for
# fp32: to onnxruntime's) must be at least this.
MINILM_MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "int8": 0.99, "fp8": 0.99}

# Precisions that quantize activations and so need --calib samples.
CALIBRATED = {"int8", "fp8", "fp8-e5m2"}


def int8_weights_nearest(w):
    """`w` [out, ...] as kiln quantizes a layer's weights, back in float: per output channel,
    symmetric, scale max|w| / 127, rounded to nearest (an all-zero channel stays zero)."""
    s = np.abs(w).reshape(w.shape[0], -1).max(1) / 127
    s[s == 0] = 1
    s = s.reshape(-1, *[1] * (w.ndim - 1))
    return np.clip(np.round(w / s), -127, 127) * s


def parse_precisions(text, table, what):
    precisions = text.replace(",", " ").split()
    if not precisions or precisions[0] != "fp32":
        sys.exit(f"{what}: the precision list must start with fp32 (the reference), got '{text}'")
    unknown = [p for p in precisions if p not in table]
    if unknown:
        sys.exit(f"{what}: no threshold for precision(s) {', '.join(unknown)}; "
                 f"add them to the table in {__file__} (known: {', '.join(table)})")
    return precisions


class Kiln:
    def __init__(self, exe, device, work):
        self.exe, self.device, self.work = exe, device, work
        os.makedirs(work, exist_ok=True)

    def _call(self, args, what, log=None):
        t0 = time.time()
        proc = subprocess.run([self.exe] + args, capture_output=True, text=True)
        if log:  # the build's report (calibration table, layer decisions), kept next to the plan
            with open(log, "w") as f:
                f.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            sys.exit(f"{what} failed (exit {proc.returncode}):\n  {' '.join([self.exe] + args)}\n"
                     f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        return time.time() - t0

    def build(self, model, plan, precision, shapes, calib_dir=None, extra=()):
        args = ["build", model, "-o", plan, "--device", self.device, "--precision", precision]
        for name, dims in shapes.items():
            args += ["--shapes", f"{name}={'x'.join(map(str, dims))}"]
        if precision in CALIBRATED:
            args += ["--calib", calib_dir]
        return self._call(args + list(extra), f"kiln build --precision {precision}", log=plan + ".log")

    def run(self, plan, inputs, tag):
        """Runs the plan once on `inputs` (name -> array); returns {output name: array}."""
        folder = os.path.join(self.work, tag)
        os.makedirs(folder, exist_ok=True)
        args = ["run", plan, "-o", os.path.join(folder, "out"), "--device", self.device]
        for name, arr in inputs.items():
            path = os.path.join(folder, name + ".npy")
            np.save(path, arr)
            args += ["-i", f"{name}={path}"]
        self._call(args, f"kiln run {plan}")
        out_dir = os.path.join(folder, "out")
        return {f[:-4]: np.load(os.path.join(out_dir, f)) for f in os.listdir(out_dir) if f.endswith(".npy")}


def print_table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    for r in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)), flush=True)
