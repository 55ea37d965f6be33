"""NaN and Inf through kiln's activations, fused into Conv/Gemm or not, against ONNX Runtime.

Issue 10: an all-NaN input gave finite probabilities from the default (fused Conv+Relu) plan but
NaN from the --no-fuse plan and ONNX Runtime. One model holds, for every activation the fusion
passes fold, a 1x1 Conv (weight 1, bias 0: the activation sees the input exactly) and a Gemm
with identity weights, each followed by the activation, plus the activation alone (an
Elementwise op). Built fused and with --no-fuse and run on the given device, every output must
equal ONNX Runtime's: NaN where it has NaN, the same infinities, finite values within 1e-5.

usage: nan_inf_test.py KILN WORKDIR DEVICE
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

kiln, work, device = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(work, exist_ok=True)
os.chdir(work)

VALUES = [np.nan, np.inf, -np.inf, -30.0, -2.0, -0.25, 0.0, 0.5, 3.0, 25.0]
N = len(VALUES)
ACTS = [
    ("Relu", {}), ("LeakyRelu", {"alpha": 0.1}), ("Clip", None), ("HardSigmoid", {"alpha": 0.2, "beta": 0.5}),
    ("HardSwish", {}), ("Sigmoid", {}), ("Tanh", {}), ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Softplus", {}),
]

nodes, inits, outputs = [], [], []
inits.append(numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "cw"))
inits.append(numpy_helper.from_array(np.zeros((1,), np.float32), "cb"))
inits.append(numpy_helper.from_array(np.eye(N, dtype=np.float32), "gw"))
inits.append(numpy_helper.from_array(np.zeros((N,), np.float32), "gb"))
inits.append(numpy_helper.from_array(np.array(-1.0, np.float32), "lo"))
inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "hi"))
nodes.append(helper.make_node("Flatten", ["x"], ["flat"], axis=1))
for op, attrs in ACTS:
    for src, kind in (("x", "conv"), ("flat", "gemm"), ("x", "alone")):
        pre = f"{op}_{kind}_in"
        if kind == "conv":
            nodes.append(helper.make_node("Conv", ["x", "cw", "cb"], [pre], name=f"{op}_conv"))
        elif kind == "gemm":
            nodes.append(helper.make_node("Gemm", ["flat", "gw", "gb"], [pre], name=f"{op}_gemm"))
        else:
            pre = "x"
        ins = [pre, "lo", "hi"] if op == "Clip" else [pre]
        out = f"{op}_{kind}"
        nodes.append(helper.make_node(op, ins, [out], name=f"{op}_{kind}_act", **(attrs or {})))
        shape = [1, N] if kind == "gemm" else [1, 1, 1, N]
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
graph = helper.make_graph(nodes, "nan_inf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, N])],
                          outputs, inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
model.ir_version = 8
onnx.save(model, "nan_inf.onnx")
x = np.array(VALUES, np.float32).reshape(1, 1, 1, N)
np.save("x.npy", x)
want = dict(zip([o.name for o in outputs],
                ort.InferenceSession("nan_inf.onnx", providers=["CPUExecutionProvider"]).run(None, {"x": x})))

failures = []
for mode, flags in (("fused", []), ("unfused", ["--no-fuse"])):
    plan = f"{mode}.plan"
    subprocess.run([kiln, "build", "nan_inf.onnx", "-o", plan, "--device", device] + flags, check=True,
                   stdout=subprocess.DEVNULL)
    inspect = subprocess.run([kiln, "inspect", plan], check=True, capture_output=True, text=True).stdout
    if mode == "fused" and 'activation="Relu"' not in inspect:
        failures.append("the fused plan fused no Relu into a Conv/Gemm (the test would not test fusion)")
    subprocess.run([kiln, "run", plan, "-i", "x=x.npy", "-o", f"out_{mode}", "--device", device], check=True,
                   stdout=subprocess.DEVNULL)
    for name, ref in want.items():
        got = np.load(f"out_{mode}/{name}.npy").reshape(ref.shape)
        same_nan = np.array_equal(np.isnan(got), np.isnan(ref))
        fin = np.isfinite(ref)
        same_inf = np.array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])
        close = np.allclose(got[fin], ref[fin], rtol=1e-5, atol=1e-6)
        if not (same_nan and same_inf and close):
            failures.append(f"{mode} {name}: kiln {got.ravel()} vs onnxruntime {ref.ravel()} (inputs {VALUES})")
for f in failures:
    print("FAIL", f)
print(f"{device}: {len(want) * 2 - len(failures)} of {len(want) * 2} outputs match onnxruntime")
sys.exit(1 if failures else 0)
