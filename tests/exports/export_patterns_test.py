"""Builds the graphs of export_patterns.py, compiles each with `kiln build`, runs it with
`kiln run` on one device and compares every output with onnxruntime on the same inputs
(float32 within 1e-4, integers exactly); checks that an op kiln refuses is named as an op.

usage: export_patterns_test.py KILN WORKDIR DEVICE
"""
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_patterns as ep  # noqa: E402

KILN, WORK, DEVICE = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def compare(name, builder, *args):
    model = os.path.join(WORK, name + ".onnx")
    inputs = builder(model, *args)
    plan = os.path.join(WORK, f"{name}_{DEVICE}.plan")
    shapes = [a for k, v in inputs.items() for a in ("--shapes", f"{k}={'x'.join(map(str, v.shape))}") if v.ndim]
    r = kiln("build", model, "-o", plan, "--device", DEVICE, *shapes)
    if r.returncode != 0:
        check(False, f"{name}: kiln build failed: {r.stderr.strip()}")
        return
    run_args, outdir = [], os.path.join(WORK, f"{name}_{DEVICE}_out")
    for k, v in inputs.items():
        np.save(os.path.join(WORK, f"{name}_{k}.npy"), v)
        run_args += ["-i", f"{k}={os.path.join(WORK, f'{name}_{k}.npy')}"]
    r = kiln("run", plan, *run_args, "-o", outdir, "--device", DEVICE)
    if r.returncode != 0:
        check(False, f"{name}: kiln run failed: {r.stderr.strip()}")
        return
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for o, want in zip(sess.get_outputs(), sess.run(None, inputs)):
        got = np.load(os.path.join(outdir, o.name + ".npy"))
        if got.shape != want.shape or got.dtype != want.dtype:
            check(False, f"{name}: {o.name} is {got.dtype}{got.shape}, onnxruntime {want.dtype}{want.shape}")
            continue
        err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if got.size else 0.0
        tol = 1e-4 * max(1.0, float(np.abs(want).max())) if np.issubdtype(want.dtype, np.floating) else 0.0
        check(err <= tol, f"{name}: {o.name} {got.shape} matches onnxruntime (max |diff| {err:.2e})")


rng = np.random.default_rng(9)
for opset in (14, 17):
    compare(f"transformer_encoder_opset{opset}", ep.transformer_encoder, opset, rng)
compare("encoder_head", ep.encoder_head, rng)
compare("vision_block", ep.vision_block, rng)
compare("opset9_decoder", ep.opset9_decoder, rng)

# An If with LSTM branches and a run-time condition runs either branch.
for cond in (True, False):
    compare(f"if_lstm_{str(cond).lower()}", ep.if_with_lstm, rng, cond)

# Refused ops are named as ops (here one kiln lacks whose branches are GRAPH attributes).
model = os.path.join(WORK, "unknown_graph_op.onnx")
ep.if_with_lstm(model, rng, True, op="SequenceMap")
r = kiln("build", model, "-o", os.path.join(WORK, "unknown.plan"), "--device", DEVICE, "--shapes", "x=4x1x3")
err = r.stderr.strip()
check(r.returncode != 0 and "op SequenceMap" in err and "not supported" in err and "GRAPH" not in err,
      f"an unknown op with graph attributes is refused naming the op: {err}")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
