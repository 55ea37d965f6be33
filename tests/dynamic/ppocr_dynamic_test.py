"""PP-OCRv4 (paddle2onnx, from the rapidocr-onnxruntime wheel: scripts/fetch_real_models.py) with
dynamic shapes: the recognizer with a dynamic width and the detector with dynamic height and
width, each built once with --min-shapes/--max-shapes and run at several sizes, bit-exact against
plans built for each size and near onnxruntime. Exits 77 (skipped) when the models are absent.

usage: ppocr_dynamic_test.py KILN WORKDIR DEVICE [MODELS_DIR]
"""
import os
import subprocess
import sys

import numpy as np

KILN, WORK, DEVICE = sys.argv[1], sys.argv[2], sys.argv[3]
CANDIDATES = [sys.argv[4]] if len(sys.argv) > 4 else [
    d for d in (os.environ.get("KILN_REAL_MODELS"), os.environ.get("KILN_BUILD_REAL_MODELS"),
                os.path.join(os.path.expanduser("~"), ".cache", "kiln", "real-models")) if d]
for MODELS in CANDIDATES:
    DIR = os.path.join(MODELS, "ppocr", "rapidocr_onnxruntime", "models")
    REC = os.path.join(DIR, "ch_PP-OCRv4_rec_infer.onnx")
    DET = os.path.join(DIR, "ch_PP-OCRv4_det_infer.onnx")
    if os.path.exists(REC) and os.path.exists(DET):
        break
else:
    print(f"PP-OCR models not in {CANDIDATES} (scripts/fetch_real_models.py --only ppocr): skipped")
    sys.exit(77)
import onnxruntime as ort  # noqa: E402

os.makedirs(WORK, exist_ok=True)
failures = []


def kiln(*args):
    r = subprocess.run([KILN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"kiln {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def case(model, tag, lo, hi, sizes, rng):
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out_name = sess.get_outputs()[0].name
    dyn = os.path.join(WORK, f"{tag}_{DEVICE}.plan")
    kiln("build", model, "-o", dyn, "--device", DEVICE, "--min-shapes", f"x={lo}", "--max-shapes", f"x={hi}")
    worst = 0.0
    for shape in sizes:
        # An image-like input: smooth shading plus noise, in the models' normalized range.
        x = (np.tanh(rng.standard_normal((1, 3) + shape).astype(np.float32)) * 0.8).astype(np.float32)
        name = f"{tag}_{'x'.join(map(str, shape))}"
        xin = os.path.join(WORK, name + "_x.npy")
        np.save(xin, x)
        fixed = os.path.join(WORK, f"{name}_{DEVICE}.plan")
        kiln("build", model, "-o", fixed, "--device", DEVICE, "--shapes", f"x=1x3x{shape[0]}x{shape[1]}")
        got = {}
        for plan, o in ((dyn, "dyn"), (fixed, "fixed")):
            d = os.path.join(WORK, f"{name}_{o}")
            kiln("run", plan, "-i", f"x={xin}", "-o", d, "--device", DEVICE)
            got[o] = np.load(os.path.join(d, out_name + ".npy"))
        want = sess.run(None, {"x": x})[0]
        same_shape = got["dyn"].shape == got["fixed"].shape
        same = same_shape and np.array_equal(got["dyn"], got["fixed"])
        vs_fixed = np.abs(got["dyn"] - got["fixed"]).max() if same_shape else float("inf")
        err = np.abs(got["dyn"] - want).max() if got["dyn"].shape == want.shape else float("inf")
        worst = max(worst, err)
        # Bit-exact, except where the cpu device's oneDNN path packs a MatMul's weights for the
        # plan's (max) shapes: the recognizer's attention MatMuls then sum in another order.
        close = same or (DEVICE == "cpu" and vs_fixed <= 1e-5)
        check(close and err < 2e-3, f"{tag} at {shape}: {got['dyn'].shape}, bit-exact with the fixed-shape plan: "
              f"{same} (max |diff| {vs_fixed:.2e}), max |diff| to onnxruntime {err:.2e}")
    print(f"{tag}: {len(sizes)} sizes, max |diff| to onnxruntime {worst:.2e}")


rng = np.random.default_rng(3)
# The recognizer: height 48, any width (text lines); its output length is a floor of W / 8.
case(REC, "rec", "1x3x48x32", "1x3x48x640", [(48, 320), (48, 100), (48, 640), (48, 37)], rng)
# The detector: H and W multiples of 32 (its FPN adds upsampled stride-32 maps to stride-16 ones).
case(DET, "det", "1x3x320x320", "1x3x640x640", [(320, 320), (640, 480), (416, 352), (640, 640)], rng)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all PP-OCR dynamic-shape checks passed")
