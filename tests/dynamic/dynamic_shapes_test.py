"""Dynamic shapes end to end: models built once with --min-shapes/--max-shapes, run by `kiln run`
at several shapes in range on each device and checked against onnxruntime at that shape; range
errors and refused models; a strided CNN with dynamic H and W (floor divisions) against fixed-shape
plans.

usage: dynamic_shapes_test.py KILN WORKDIR DEVICE
"""
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dynamic_models  # noqa: E402

KILN, WORK, DEVICE = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)
failures = []


def kiln(*args, expect_ok=True):
    r = subprocess.run([KILN, *args], capture_output=True, text=True)
    if expect_ok and r.returncode != 0:
        raise SystemExit(f"kiln {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run_at(model, plan, x, tag):
    xin = os.path.join(WORK, f"{tag}_x.npy")
    out = os.path.join(WORK, f"{tag}_out")
    np.save(xin, x)
    kiln("run", plan, "-i", f"x={xin}", "-o", out, "--device", DEVICE)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for o, want in zip(sess.get_outputs(), sess.run(None, {"x": x})):
        got = np.load(os.path.join(out, o.name + ".npy"))
        err = np.abs(got - want).max() if got.shape == want.shape else float("inf")
        check(got.shape == want.shape and err < 1e-4,
              f"{tag}: x {x.shape} -> {o.name} {got.shape} (onnxruntime {want.shape}), max |diff| {err:.2e}")


rng = np.random.default_rng(7)
mlp = os.path.join(WORK, "batch_mlp.onnx")
att = os.path.join(WORK, "attention.onnx")
conv = os.path.join(WORK, "strided_conv.onnx")
dynamic_models.batch_mlp(mlp, rng)
dynamic_models.attention(att, rng)
dynamic_models.strided_conv(conv, rng)
shrink = os.path.join(WORK, "shrinking.onnx")
dynamic_models.shrinking(shrink, rng)
two = os.path.join(WORK, "two_inputs.onnx")
dynamic_models.two_inputs(two, rng)

# A dynamic batch, tuned for N=4.
mlp_plan = os.path.join(WORK, f"mlp_{DEVICE}.plan")
kiln("build", mlp, "-o", mlp_plan, "--device", DEVICE, "--min-shapes", "x=1x4x4", "--max-shapes", "x=8x4x4",
     "--shapes", "x=4x4x4")
for n in (1, 3, 8, 5):
    run_at(mlp, mlp_plan, rng.standard_normal((n, 4, 4)).astype(np.float32), f"mlp_n{n}")
inspect = kiln("inspect", mlp_plan).stdout
check("N in [1, 8], tuned for 4: x[0]" in inspect, "inspect shows the range of N")

# INT8: calibrated once at the --shapes point (the samples' shape); at another N the dynamic plan
# gives what a static INT8 plan built for that N from the same ranges gives, and stays near fp32.
calib = os.path.join(WORK, "calib")
os.makedirs(calib, exist_ok=True)
for i in range(6):
    np.save(os.path.join(calib, f"s{i}.npy"), rng.standard_normal((4, 4, 4)).astype(np.float32))
cache = os.path.join(WORK, f"calib_{DEVICE}.cache")
if os.path.exists(cache):
    os.remove(cache)
int8_plan = os.path.join(WORK, f"mlp_int8_{DEVICE}.plan")
kiln("build", mlp, "-o", int8_plan, "--device", DEVICE, "--precision", "int8", "--calib", calib, "--calib-cache", cache,
     "--min-shapes", "x=1x4x4", "--max-shapes", "x=8x4x4", "--shapes", "x=4x4x4")
x6 = rng.standard_normal((6, 4, 4)).astype(np.float32)
np.save(os.path.join(WORK, "x6.npy"), x6)
static_plan = os.path.join(WORK, f"mlp_int8_static_{DEVICE}.plan")
kiln("build", mlp, "-o", static_plan, "--device", DEVICE, "--precision", "int8", "--calib-cache", cache,
     "--shapes", "x=6x4x4")
for plan, out in ((int8_plan, "int8_dyn"), (static_plan, "int8_static")):
    kiln("run", plan, "-i", f"x={WORK}/x6.npy", "-o", os.path.join(WORK, out), "--device", DEVICE)
dyn, static = (np.load(os.path.join(WORK, o, "y.npy")) for o in ("int8_dyn", "int8_static"))
fp32 = ort.InferenceSession(mlp, providers=["CPUExecutionProvider"]).run(None, {"x": x6})[0]
check(dyn.shape == (6, 8) and np.array_equal(dyn, static) and np.abs(dyn - fp32).max() < 0.1,
      f"int8 dynamic plan at N=6 equals the static int8 plan, max |diff| to fp32 {np.abs(dyn - fp32).max():.3f}")

# Batch and sequence length (dim_params B and S): shapes with B*S and S-1 in them.
att_plan = os.path.join(WORK, f"att_{DEVICE}.plan")
kiln("build", att, "-o", att_plan, "--device", DEVICE, "--min-shapes", "x=1x3x16", "--max-shapes", "x=3x12x16")
for b, s in ((1, 3), (2, 5), (3, 12), (3, 7), (1, 12)):
    run_at(att, att_plan, rng.standard_normal((b, s, 16)).astype(np.float32), f"att_b{b}_s{s}")
inspect = kiln("inspect", att_plan).stdout
check("(B*S)x16" in inspect and "y  float32 Bx(S-1)x16" in inspect, "inspect shows shapes as formulas of B and S")
check("dynamic: starts[1] = S-2" in inspect, "inspect shows the shape-dependent Slice start")

# Out of range, wrong fixed dim, wrong rank: clear errors, nothing run.
bad = os.path.join(WORK, "bad.npy")
for shape, expect in (((2, 13, 16), "input 'x' dim 1 ('S') = 13 is outside the plan's range [3, 12]"),
                      ((2, 2, 16), "input 'x' dim 1 ('S') = 2 is outside the plan's range [3, 12]"),
                      ((2, 5, 8), "input 'x' dim 2 is fixed to 16"),
                      ((2, 5), "input 'x': expected rank 3")):
    np.save(bad, np.zeros(shape, np.float32))
    r = kiln("run", att_plan, "-i", f"x={bad}", "-o", os.path.join(WORK, "bad_out"), "--device", DEVICE, expect_ok=False)
    check(r.returncode != 0 and expect in r.stderr, f"x {shape} refused: {r.stderr.strip()}")

# Two inputs sharing the dynamic dim B: they move together, and disagreeing shapes are refused.
two_plan = os.path.join(WORK, f"two_{DEVICE}.plan")
kiln("build", two, "-o", two_plan, "--device", DEVICE, "--min-shapes", "a=1x4", "--max-shapes", "a=6x4",
     "--min-shapes", "b=1x4", "--max-shapes", "b=6x4")
check("B in [1, 6], tuned for 6: a[0], b[0]" in kiln("inspect", two_plan).stdout, "a shared dim_param is one dynamic dim")
a3, b3 = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
np.save(os.path.join(WORK, "a3.npy"), a3)
np.save(os.path.join(WORK, "b3.npy"), b3)
np.save(os.path.join(WORK, "b2.npy"), b3[:2])
kiln("run", two_plan, "-i", f"a={WORK}/a3.npy", "-i", f"b={WORK}/b3.npy", "-o", f"{WORK}/two_out", "--device", DEVICE)
got = np.load(f"{WORK}/two_out/y.npy")
check(got.shape == (3, 4) and np.array_equal(got, np.maximum(a3 + b3, 0)), "two inputs at B=3 match numpy")
r = kiln("run", two_plan, "-i", f"a={WORK}/a3.npy", "-i", f"b={WORK}/b2.npy", "-o", f"{WORK}/two_bad", "--device",
         DEVICE, expect_ok=False)
check(r.returncode != 0 and "inputs disagree on a shared dynamic dim" in r.stderr,
      f"inputs disagreeing on B are refused: {r.stderr.strip()}")

# Random inputs of a given shape for bench.
r = kiln("bench", att_plan, "--shapes", "x=2x3x16", "--iterations", "3", "--warmup-ms", "0", "--device", DEVICE)
check("latency" in r.stdout.lower() or "median" in r.stdout.lower(), "bench --shapes x=2x3x16 runs")
r = kiln("profile", att_plan, "--shapes", "x=1x4x16", "--iterations", "2", "--device", DEVICE)
check("out_proj" in r.stdout and "MatMul" in r.stdout, "profile --shapes x=1x4x16 runs")

# At S=2 the last-two-tokens Slice takes everything and is optimized into a Reshape: the graph
# differs across the range, which is refused naming the node.
r = kiln("build", att, "-o", os.path.join(WORK, "x.plan"), "--device", DEVICE, "--min-shapes", "x=1x2x16",
         "--max-shapes", "x=3x12x16", expect_ok=False)
check(r.returncode != 0 and "node 'last_two' (Slice) changes with the input shapes" in r.stderr,
      f"a graph that changes within the range is refused: {r.stderr.strip()}")

# Floor divisions: a stride-2 conv over a dynamic height, floor((H-1)/2)+1.
conv_plan = os.path.join(WORK, f"conv_{DEVICE}.plan")
kiln("build", conv, "-o", conv_plan, "--device", DEVICE, "--min-shapes", "x=1x2x4x8", "--max-shapes", "x=1x2x16x8")
for h in (4, 5, 16, 9, 12):
    run_at(conv, conv_plan, rng.standard_normal((1, 2, h, 8)).astype(np.float32), f"conv_h{h}")
check("floor((H+1)/2)" in kiln("inspect", conv_plan).stdout, "inspect shows the conv's output height as floor((H+1)/2)")

# A small CNN (strided convs, max and ceil-mode average pooling, a flatten) with dynamic H and W,
# built once and run at several sizes: bit-exact against plans built for each size.
cnn = os.path.join(WORK, "strided_cnn.onnx")
dynamic_models.strided_cnn(cnn, rng)
cnn_plan = os.path.join(WORK, f"cnn_{DEVICE}.plan")
kiln("build", cnn, "-o", cnn_plan, "--device", DEVICE, "--min-shapes", "x=1x2x9x12", "--max-shapes", "x=1x2x40x33")
worst = 0.0
for h, w in ((9, 12), (40, 33), (17, 20), (23, 31), (32, 32), (10, 13), (40, 12)):
    x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
    tag = f"cnn_{h}x{w}"
    np.save(os.path.join(WORK, f"{tag}_x.npy"), x)
    fixed = os.path.join(WORK, f"{tag}_{DEVICE}.plan")
    kiln("build", cnn, "-o", fixed, "--device", DEVICE, "--shapes", f"x=1x2x{h}x{w}")
    outs = {}
    for plan, o in ((cnn_plan, "dyn"), (fixed, "fixed")):
        kiln("run", plan, "-i", f"x={WORK}/{tag}_x.npy", "-o", os.path.join(WORK, f"{tag}_{o}"), "--device", DEVICE)
        outs[o] = [np.load(os.path.join(WORK, f"{tag}_{o}", n + ".npy")) for n in ("y", "y2")]
    want = ort.InferenceSession(cnn, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    same = all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(outs["dyn"], outs["fixed"]))
    err = max(np.abs(a - b).max() if a.shape == b.shape else float("inf") for a, b in zip(outs["dyn"], want))
    worst = max(worst, err)
    check(same and err < 1e-4, f"cnn at {h}x{w}: y {outs['dyn'][0].shape} bit-exact with the fixed-shape plan: "
          f"{same}, max |diff| to onnxruntime {err:.2e}")
print(f"strided cnn: max |diff| to onnxruntime over all sizes {worst:.2e}")

# A model that takes even sizes only (a stride-2 map upsampled x2 and added to a full-size one):
# the probe at min+1 fails, so the build probes at even sizes and says so; odd sizes are refused
# when bound, even ones run bit-exact against fixed-shape plans. The nearest x2 Resize has no
# shape-sized tables, so it stays the same across the range.
fpn = os.path.join(WORK, "upsample_add.onnx")
dynamic_models.upsample_add(fpn, rng)
fpn_plan = os.path.join(WORK, f"fpn_{DEVICE}.plan")
r = kiln("build", fpn, "-o", fpn_plan, "--device", DEVICE, "--min-shapes", "x=1x2x8x8", "--max-shapes", "x=1x2x32x24")
check("probed at sizes min + multiples of 2" in r.stdout + r.stderr and "cannot be broadcast" in r.stdout + r.stderr,
      "a model taking even sizes only is probed at even sizes, with a notice naming the size that failed")
for h, w in ((8, 8), (32, 24), (14, 20), (10, 22)):
    x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
    tag = f"fpn_{h}x{w}"
    np.save(os.path.join(WORK, f"{tag}_x.npy"), x)
    fixed = os.path.join(WORK, f"{tag}_{DEVICE}.plan")
    kiln("build", fpn, "-o", fixed, "--device", DEVICE, "--shapes", f"x=1x2x{h}x{w}")
    outs = []
    for plan, o in ((fpn_plan, "dyn"), (fixed, "fixed")):
        kiln("run", plan, "-i", f"x={WORK}/{tag}_x.npy", "-o", os.path.join(WORK, f"{tag}_{o}"), "--device", DEVICE)
        outs.append(np.load(os.path.join(WORK, f"{tag}_{o}", "y.npy")))
    want = ort.InferenceSession(fpn, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    err = np.abs(outs[0] - want).max() if outs[0].shape == want.shape else float("inf")
    check(outs[0].shape == outs[1].shape and np.array_equal(outs[0], outs[1]) and err < 1e-4,
          f"upsample+add at {h}x{w}: {outs[0].shape} bit-exact with the fixed-shape plan, max |diff| to onnxruntime "
          f"{err:.2e}")
np.save(bad, np.zeros((1, 2, 9, 8), np.float32))
r = kiln("run", fpn_plan, "-i", f"x={bad}", "-o", os.path.join(WORK, "bad_out"), "--device", DEVICE, expect_ok=False)
check(r.returncode != 0 and "reshaping input 'x' to 1x2x9x8" in r.stderr,
      f"an odd size is refused when bound: {r.stderr.strip()[:300]}")

# A dim that shrinks as the input grows (16-S): memory planned at the max would not bound it.
r = kiln("build", shrink, "-o", os.path.join(WORK, "x.plan"), "--device", DEVICE, "--min-shapes", "x=1x2",
         "--max-shapes", "x=1x7", expect_ok=False)
check(r.returncode != 0 and "tensor 'y' (output of node 'tail') dim 1 shrinks as 'S' grows" in r.stderr,
      f"a shrinking dim is refused: {r.stderr.strip()}")

# The same model with equal min and max is static and builds.
r = kiln("build", conv, "-o", os.path.join(WORK, "conv.plan"), "--device", DEVICE, "--min-shapes", "x=1x2x9x8",
         "--max-shapes", "x=1x2x9x8", expect_ok=False)
check(r.returncode == 0, "the same model with equal min and max builds")
# Range flags must come in pairs and name inputs.
r = kiln("build", att, "-o", os.path.join(WORK, "x.plan"), "--min-shapes", "x=1x2x16", expect_ok=False)
check(r.returncode != 0 and "--min-shapes names 'x' but --max-shapes does not" in r.stderr, "--min-shapes alone refused")
r = kiln("build", att, "-o", os.path.join(WORK, "x.plan"), "--min-shapes", "x=4x2x16", "--max-shapes", "x=3x12x16",
         expect_ok=False)
check(r.returncode != 0 and "need min <= --shapes <= max" in r.stderr, "min above max refused")

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all dynamic-shape checks passed")
