#!/usr/bin/env python3
"""Top-1 of the committed Fashion-MNIST CNN on all 10,000 test images, per kiln precision.

    .venv/bin/python tests/accuracy/fashion_mnist_accuracy.py --kiln build/kiln \
        [--precisions "fp32 int8"] [--device opencl] [--work DIR]

Each precision's plan is built for --device (calibration: 500 training images, seeded) and
run on the test set in batches. Asserts:
  - kiln FP32 against onnxruntime FP32 on the same images (the independent reference): logits
    within 1e-3, and every image whose predicted class differs is a near tie in onnxruntime's
    logits (top-2 gap below 1e-3), so the two top-1 scores agree up to such ties;
  - every other precision's top-1 drop against kiln FP32 is within FASHION_MAX_DROP.
"""
import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from accuracy_lib import FASHION_MAX_DROP, Kiln, parse_precisions, print_table  # noqa: E402
from train_fashion_mnist import DEFAULT_DATA, load_split  # noqa: E402

CALIB_IMAGES = 500
TIE_GAP = 1e-3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--model", default=os.path.join(ROOT, "tests", "models", "fashion_cnn.onnx"))
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--precisions", default="fp32 int8")
    ap.add_argument("--device", default="opencl")
    ap.add_argument("--batch", type=int, default=CALIB_IMAGES, help="images per kiln run (and calibration sample)")
    ap.add_argument("--work", default=None, help="folder for plans and tensors (default: a temporary one)")
    args = ap.parse_args()
    precisions = parse_precisions(args.precisions, FASHION_MAX_DROP, "fashion_mnist_accuracy")
    for split in ("train", "t10k"):
        if not os.path.exists(os.path.join(args.data, f"{split}-images-idx3-ubyte.gz")):
            sys.exit(f"fashion_mnist_accuracy: no Fashion-MNIST in {args.data} "
                     "(Debian package dataset-fashion-mnist: bash scripts/setup.sh)")

    work = args.work or tempfile.mkdtemp(prefix="kiln-fashion-")
    test_x, test_y = load_split(args.data, "t10k")
    test_x = np.ascontiguousarray(test_x.transpose(0, 3, 1, 2))
    if len(test_x) % args.batch:
        sys.exit(f"fashion_mnist_accuracy: --batch {args.batch} does not divide {len(test_x)} test images")
    train_x, _ = load_split(args.data, "train")
    pick = np.random.default_rng(7).choice(len(train_x), CALIB_IMAGES, replace=False)
    calib = np.ascontiguousarray(train_x[pick].transpose(0, 3, 1, 2))
    calib_dir = os.path.join(work, "calib")
    os.makedirs(calib_dir, exist_ok=True)
    # Calibration samples have the plan's input shape: batches of --batch images.
    for i in range(0, CALIB_IMAGES, args.batch):
        np.savez(os.path.join(calib_dir, f"train_{i:05d}.npz"), input=calib[i:i + args.batch])

    import onnxruntime as ort
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(None, {"input": test_x})[0]
    ort_top1 = (ort_logits.argmax(1) == test_y).mean() * 100

    kiln = Kiln(args.kiln, args.device, work)
    shapes = {"input": (args.batch, 1, 28, 28)}
    results, failures = {}, []
    for p in precisions:
        plan = os.path.join(work, f"fashion_{p}.plan")
        build_s = kiln.build(args.model, plan, p, shapes, calib_dir)
        logits = np.concatenate([kiln.run(plan, {"input": test_x[i:i + args.batch]}, f"{p}_{i}")["logits"]
                                 for i in range(0, len(test_x), args.batch)])
        results[p] = logits
        print(f"{p}: built in {build_s:.1f} s, top-1 {(logits.argmax(1) == test_y).mean() * 100:.2f}%", flush=True)

    fp32 = results["fp32"]
    fp32_top1 = (fp32.argmax(1) == test_y).mean() * 100
    err = float(np.abs(fp32 - ort_logits).max())
    differ = np.nonzero(fp32.argmax(1) != ort_logits.argmax(1))[0]
    top2 = np.sort(ort_logits, axis=1)[:, -2:]
    not_ties = [int(i) for i in differ if top2[i, 1] - top2[i, 0] >= TIE_GAP]
    if err > 1e-3:
        failures.append(f"fp32: logits differ from onnxruntime by up to {err:.2e} (limit 1e-3)")
    if not_ties:
        failures.append(f"fp32: predictions differ from onnxruntime on images {not_ties[:10]} that are not near ties")

    rows = [["onnxruntime fp32", f"{ort_top1:.2f}", "", "(reference)", ""]]
    for p in precisions:
        top1 = (results[p].argmax(1) == test_y).mean() * 100
        drop = fp32_top1 - top1
        agree = (results[p].argmax(1) == fp32.argmax(1)).mean() * 100
        limit = FASHION_MAX_DROP[p]
        ok = drop <= limit + 1e-9 if p != "fp32" else not failures
        if p != "fp32" and not ok:
            failures.append(f"{p}: top-1 {top1:.2f}% drops {drop:.2f} points vs fp32 {fp32_top1:.2f}% (limit {limit})")
        rows.append([f"kiln {p}", f"{top1:.2f}", f"{drop:+.2f}" if p != "fp32" else f"max |logit err| {err:.1e}",
                     f"<= {limit}" if p != "fp32" else f"{len(differ)} predictions differ", f"{agree:.2f}",
                     "ok" if ok else "FAIL"])
    rows[0].append("")
    print(f"\nFashion-MNIST CNN, {len(test_y):,} test images, device {args.device}")
    print_table(["model", "top-1 %", "drop vs fp32 (points)", "limit", "same class as fp32 %", ""], rows)
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("\nall precisions within their limits")


if __name__ == "__main__":
    main()
