"""Issue 8 probe: ResNet-50's 1x1 convolutions as kiln runs them today (NCHW implicit GEMM) next
to the same products as channels-last MatMuls ([N*H*W, Cin] x [Cin, Cout]), and one 3x3, each
built with --tune (every tile timed: OUT/tuning.cache) and profiled (kernel time, median of 20).
Answers whether a channels-last layout would make the 1x1s as fast as the packed GEMMs.
Usage (GPU machine, after env.sh): python3 perf/device/pointwise_probe.py OUT [--precisions fp16,int8]"""
import argparse, json, os, subprocess, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SHAPES = [  # (name, batch, cin, h, w, cout, kernel)
    ("l1_1x1", 128, 64, 56, 56, 256, 1),
    ("l2_1x1", 128, 128, 28, 28, 512, 1),
    ("l3_1x1", 128, 256, 14, 14, 1024, 1),
    ("l4_1x1", 128, 512, 7, 7, 2048, 1),
    ("l1_3x3", 128, 64, 56, 56, 64, 3),
]


def save(path, nodes, inp, out, inits):
    g = helper.make_graph(nodes, "probe", [inp], [out], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def conv_model(path, n, c, h, w, co, k, rng):
    wt = (rng.standard_normal((co, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32) * 0.1
    save(path, [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[k // 2] * 4, name="conv"),
                helper.make_node("Relu", ["c"], ["y"], name="relu")],
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, c, h, w]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, co, h, w]),
         [numpy_helper.from_array(wt, "w"), numpy_helper.from_array(b, "b")])
    return (n, c, h, w)


def matmul_model(path, n, c, h, w, co, rng):
    wt = (rng.standard_normal((c, co)) / np.sqrt(c)).astype(np.float32)
    b = rng.standard_normal(co).astype(np.float32) * 0.1
    save(path, [helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
                helper.make_node("Add", ["m", "b"], ["a"], name="bias"),
                helper.make_node("Relu", ["a"], ["y"], name="relu")],
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [n * h * w, c]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [n * h * w, co]),
         [numpy_helper.from_array(wt, "w"), numpy_helper.from_array(b, "b")])
    return (n * h * w, c)


def sh(cmd, log):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=580)
    log.write("$ " + " ".join(cmd) + "\n" + r.stdout[-3000:] + "\n")
    return r.returncode, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--precisions", default="fp16")
    ap.add_argument("--shapes", default=",".join(s[0] for s in SHAPES))
    ap.add_argument("--no-tune", action="store_true")
    ap.add_argument("--batch", type=int, default=0, help="override the batch (a quick check)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    work = "/tmp/kiln-probe"
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(0)
    log = open(os.path.join(a.out, "probe.log"), "a")
    rows = []
    for name, n, c, h, w, co, k in SHAPES:
        n = a.batch or n
        if name not in a.shapes.split(","):
            continue
        kinds = [("conv", None)] + ([("matmul", None)] if k == 1 else [])
        for kind, _ in kinds:
            model = os.path.join(work, f"{name}_{kind}.onnx")
            shape = conv_model(model, n, c, h, w, co, k, rng) if kind == "conv" else matmul_model(model, n, c, h, w, co, rng)
            flops = 2.0 * n * h * w * co * c * k * k
            for prec in a.precisions.split(","):
                plan = model.replace(".onnx", f"_{prec}.plan")
                cmd = ["kiln", "build", model, "-o", plan, "--device", "opencl", "--precision", prec]
                if not a.no_tune:
                    cmd += ["--tune", "--tuning-cache", os.path.join(a.out, "tuning.cache")]
                if prec in ("int8", "fp8"):
                    calib = os.path.join(work, f"calib_{name}_{kind}")
                    if not os.path.isdir(calib):
                        os.makedirs(calib)
                        np.save(os.path.join(calib, "0.npy"), rng.uniform(-1, 1, shape).astype(np.float32))
                    cmd += ["--no-accuracy-check", "--calib", calib, "--calibrator", "minmax"]
                rc, out = sh(cmd, log)
                if rc:
                    rows.append((name, kind, prec, None, "build failed: " + out.strip().splitlines()[-1][:120]))
                    continue
                trace = plan + ".json"
                rc, out = sh(["kiln", "profile", plan, "--device", "opencl", "--iterations", "20", "--trace", trace], log)
                ops = {"Conv", "MatMul", "QLinearConv", "QLinearMatMul", "Fp8Conv", "Fp8MatMul"}
                durs = [e["dur"] / 1000.0 for e in json.load(open(trace))["traceEvents"]
                        if e.get("ph") == "X" and e.get("cat") in ops] if rc == 0 else []
                _, ins = sh(["kiln", "inspect", plan], log)
                kern = [l.split("kernel=")[1].split("  precision")[0] for l in ins.splitlines()
                        if "kernel=" in l and any(f"op={o}" in l for o in ops)]
                ms = float(np.median(durs)) if durs else None
                rows.append((name, kind, prec, ms, (kern[0] if kern else "") +
                             (f"  {flops / ms / 1e9:.1f} TFLOP/s" if ms else "")))
                print(rows[-1], flush=True)
    with open(os.path.join(a.out, "probe.md"), "w") as f:
        f.write("| shape | form | precision | kernel ms | kernel, TFLOP/s |\n|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r[0]} | {r[1]} | {r[2]} | {'' if r[3] is None else f'{r[3]:.3f}'} | {r[4]} |\n")
    print(open(os.path.join(a.out, "probe.md")).read())


if __name__ == "__main__":
    main()
