#!/usr/bin/env python3
"""Task accuracy of real pretrained models (from PyPI wheels) per kiln precision.

    .venv/bin/python tests/accuracy/real_models_accuracy.py --kiln build/kiln \
        [--models efficientnet_lite0,yolov8n_nudenet,...] [--precisions "fp32 fp16 int8 fp8"] \
        [--calib 64] [--quick] [--check] [--markdown FILE] [--work DIR] [--build-flags "..."]

Models, inputs and metrics: tests/accuracy/real_models.py (fetched by scripts/fetch_real_models.py,
which this runs first). For each model: onnxruntime FP32 on the evaluated inputs (the
independent reference: kiln FP32 must match it, max |diff| and the task metric), then every
precision is built with the default calibrator on --calib samples of calibration images (never
evaluated) and scored against kiln FP32 with the model's task metric. --check exits 1 when a
target is missed (TARGETS below); --quick uses scikit-image's photos only (the ctest case).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from accuracy_lib import CALIBRATED, Kiln, print_table  # noqa: E402
import fetch_real_models  # noqa: E402
import real_models  # noqa: E402

# Issue 9's targets: the metric is an agreement with FP32 in percent, so a drop of 0.5 points
# of top-1 is at most 0.5% of predictions changed (a changed prediction can also be a fix).
TARGETS = {  # kind -> precision -> minimum metric
    "classifier": {"fp16": 99.9, "int8": 99.5, "fp8": 99.5},
    "detector": {"fp16": 99.9, "int8": 99.0, "fp8": 99.5},
    "ocr": {"fp16": 99.9, "int8": 99.0, "fp8": 99.0},
    "transformer": {"fp16": 100.0, "int8": 100.0, "fp8": 100.0},
    "vad": {"fp16": 99.9, "int8": 99.5, "fp8": 99.5},  # per-chunk decisions, as a classifier's
}
FP32_TOLERANCE = 2e-3  # max |kiln fp32 - onnxruntime| relative to the output's max |x|


def file_name_for(name):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def run_all(kiln, plan, samples, tag):
    outs = []
    for i, s in enumerate(samples):
        outs.append(kiln.run(plan, s, f"{tag}_{i}"))
    return outs


def evaluate(name, args, kiln, rows, failures):
    start = len(rows)
    try:
        _evaluate(name, args, kiln, rows, failures)
    finally:
        for r in rows[start:]:
            print("  row: " + " | ".join(str(c) for c in r), flush=True)


def _evaluate(name, args, kiln, rows, failures):
    m = real_models.MODELS[name](args.dir, args.quick)
    work = os.path.join(args.work, name)
    t0 = time.time()
    samples = m.inputs()
    if args.max_eval and len(samples) > args.max_eval:  # an even subsample, same every run
        samples = [samples[i] for i in np.linspace(0, len(samples) - 1, args.max_eval).round().astype(int)]
    import onnxruntime as ort
    sess = ort.InferenceSession(m.onnx, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ort_outs = [{file_name_for(k): v for k, v in zip(names, sess.run(None, s))} for s in samples]
    calib_dir = os.path.join(work, "calib")
    os.makedirs(calib_dir, exist_ok=True)
    for f in os.listdir(calib_dir):
        os.unlink(os.path.join(calib_dir, f))
    calib = m.calib(args.calib)
    for i, s in enumerate(calib):
        np.savez(os.path.join(calib_dir, f"{i:04d}.npz"), **s)
    print(f"{name}: {len(samples)} evaluated samples, {len(calib)} calibration samples "
          f"({time.time() - t0:.0f} s to prepare)", flush=True)
    metric = (lambda r, g: m.metric(r, g, samples)) if m.kind == "transformer" else m.metric
    results = {}
    for p in args.precisions:
        plan = os.path.join(work, f"{p}.plan")
        extra = args.build_flags.split() if p in CALIBRATED else []
        try:
            build_s = kiln.build(m.onnx, plan, p, m.shapes, calib_dir, extra)
        except SystemExit as e:
            rows.append([name, p, "build failed", "", "", str(e).splitlines()[-1][:110]])
            failures.append(f"{name} {p}: build failed")
            continue
        results[p] = run_all(kiln, plan, samples, f"{name}_{p}")
        print(f"  {p}: built in {build_s:.0f} s", flush=True)
    if "fp32" not in results:
        return
    ref = results["fp32"]
    err = max(float(np.abs(r[k] - o[k]).max() / max(np.abs(o[k]).max(), 1e-6))
              for r, o in zip(ref, ort_outs) for k in o if k in r)
    ort_agree, _ = metric(ort_outs, ref)
    ok = err <= FP32_TOLERANCE and ort_agree >= 99.9
    if not ok:
        failures.append(f"{name} fp32: rel. max |diff| vs onnxruntime {err:.1e}, task agreement {ort_agree:.2f}%")
    rows.append([name, "fp32", f"{ort_agree:.2f}", "onnxruntime", f"max |diff| {err:.1e} of max |x|", "ok" if ok else "FAIL"])
    for p, outs in results.items():
        if p == "fp32":
            continue
        value, detail = metric(ref, outs)
        target = TARGETS.get(m.kind, {}).get(p)
        ok = target is None or value >= target - 1e-9
        if not ok:
            failures.append(f"{name} {p}: {value:.2f} < target {target}")
        rows.append([name, p, f"{value:.2f}", f">= {target}" if target else "", detail, "ok" if ok else "MISS"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--models", default=",".join(real_models.MODELS))
    ap.add_argument("--precisions", default="fp32 fp16 int8 fp8")
    ap.add_argument("--device", default="opencl")
    ap.add_argument("--calib", type=int, default=64, help="calibration samples (images, crops, sentences)")
    ap.add_argument("--quick", action="store_true", help="scikit-image's photos only (the ctest case)")
    ap.add_argument("--max-eval", type=int, default=0, help="evaluate at most this many samples (runs) per model")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    ap.add_argument("--floor", type=float, default=None,
                    help="exit 1 when a reduced precision's agreement is below this (a regression floor, "
                         "for the ctest case) or kiln fp32 disagrees with onnxruntime")
    ap.add_argument("--build-flags", default="", help="extra kiln build flags for calibrated precisions")
    ap.add_argument("--dir", default=fetch_real_models.default_dir(), help="where the models are fetched")
    ap.add_argument("--work", default=None)
    ap.add_argument("--markdown", default=None, help="append the table to this file")
    args = ap.parse_args()
    args.precisions = args.precisions.replace(",", " ").split()
    if args.precisions[0] != "fp32":
        sys.exit("real_models_accuracy: the precision list must start with fp32 (the reference)")
    args.work = args.work or tempfile.mkdtemp(prefix="kiln-real-")
    models = args.models.split(",")
    for name in models:
        if name not in real_models.MODELS:
            sys.exit(f"real_models_accuracy: unknown model '{name}' (known: {', '.join(real_models.MODELS)})")
    wheel_of = {"ppocr_det": "ppocr", "ppocr_rec": "ppocr"}
    for name in {wheel_of.get(n, n) for n in models} | {"photos"}:
        fetch_real_models.fetch(name, args.dir)
    kiln = Kiln(args.kiln, args.device, args.work)
    rows, failures = [], []
    for name in models:
        evaluate(name, args, kiln, rows, failures)
    header = ["model", "precision", "agreement %", "target", "detail", ""]
    print(f"\nreal models, device {args.device}, {args.calib} calibration samples, default calibrator"
          f"{' ' + args.build_flags if args.build_flags else ''}{' (quick)' if args.quick else ''}")
    print_table(header, rows)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
            for r in rows:
                f.write("| " + " | ".join(str(c) for c in r) + " |\n")
    if failures:
        print("\nmissed:\n  " + "\n  ".join(failures))
        if args.check:
            sys.exit(1)
    if args.floor is not None:
        broken = [r for r in rows if r[1] == "fp32" and r[-1] != "ok" or
                  r[1] != "fp32" and not (r[2].replace(".", "").isdigit() and float(r[2]) >= args.floor)]
        if broken:
            sys.exit(f"real_models_accuracy: below the floor {args.floor}% (or fp32 off): {broken}")
        print(f"every precision at or above the floor {args.floor}%")


if __name__ == "__main__":
    main()
