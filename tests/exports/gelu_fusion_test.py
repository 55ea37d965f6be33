"""GELU as exporters write it (compiler/passes/fuse_gelu.cpp): an FFN block, MatMul + bias + GELU +
MatMul + bias, with GELU spelled as BERT/torch exports do (erf form with Div or Mul, in either
operand order) and as GPT-2's tanh approximation (Pow with a float or an integer exponent, or
Muls). `kiln build` must collapse each into the first MatMul's epilogue (its plan node has
activation=Gelu or GeluTanh and no Erf/Tanh Elementwise node is left), in FP32, FP16, INT8 and
FP8 plans (in INT8/FP8 the QuantizeLinear of the second MatMul's input fuses too); `kiln run` must match onnxruntime: FP32 within 1e-4 of the
largest output, FP16 within 2e-2, INT8/FP8 within 6% of it (calibrated on 16 samples).
Look-alikes that are not GELU (a scale of 1/1.5 inside erf) or whose inner values are also graph
outputs must not be collapsed and must still match.

usage: gelu_fusion_test.py KILN WORKDIR DEVICE
"""
import math
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

KILN, WORK, DEVICE = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)
failures = []
B, S, D, F = 2, 8, 32, 64


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def scalar(nodes, inits, name, value):
    inits.append(numpy_helper.from_array(np.array(value, np.float32), name))
    return name


def erf_bert(nodes, inits, x):
    """HF BERT: x * 0.5 * (1 + erf(x / sqrt 2)), Div first."""
    nodes += [helper.make_node("Div", [x, scalar(nodes, inits, "sqrt2", math.sqrt(2))], ["g_div"]),
              helper.make_node("Erf", ["g_div"], ["g_erf"]),
              helper.make_node("Add", ["g_erf", scalar(nodes, inits, "one", 1.0)], ["g_add"]),
              helper.make_node("Mul", [x, "g_add"], ["g_mul"]),
              helper.make_node("Mul", ["g_mul", scalar(nodes, inits, "half", 0.5)], ["gelu"])]
    return "gelu", []


def erf_mul_first(nodes, inits, x, inv=1 / math.sqrt(2)):
    """(0.5 * x) * (1 + erf(x * 1/sqrt 2)), constants first where the op allows."""
    nodes += [helper.make_node("Mul", [scalar(nodes, inits, "inv", inv), x], ["g_scaled"]),
              helper.make_node("Erf", ["g_scaled"], ["g_erf"]),
              helper.make_node("Add", [scalar(nodes, inits, "one", 1.0), "g_erf"], ["g_add"]),
              helper.make_node("Mul", [x, scalar(nodes, inits, "half", 0.5)], ["g_half"]),
              helper.make_node("Mul", ["g_half", "g_add"], ["gelu"])]
    return "gelu", []


def not_gelu(nodes, inits, x):
    """erf(x / 1.5): looks like GELU, is not."""
    return erf_mul_first(nodes, inits, x, inv=1 / 1.5)


def erf_with_output(nodes, inits, x):
    """The erf form whose Erf output is also a graph output: it must stay."""
    name, _ = erf_bert(nodes, inits, x)
    return name, [helper.make_tensor_value_info("g_erf", TensorProto.FLOAT, None)]


def tanh_pow(nodes, inits, x, exponent=np.float32(3.0)):
    """GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    inits.append(numpy_helper.from_array(np.array(exponent), "three"))
    nodes += [helper.make_node("Pow", [x, "three"], ["g_cube"]),
              helper.make_node("Mul", [scalar(nodes, inits, "c", 0.044715), "g_cube"], ["g_c3"]),
              helper.make_node("Add", [x, "g_c3"], ["g_inner"]),
              helper.make_node("Mul", [scalar(nodes, inits, "k", math.sqrt(2 / math.pi)), "g_inner"], ["g_u"]),
              helper.make_node("Tanh", ["g_u"], ["g_tanh"]),
              helper.make_node("Add", [scalar(nodes, inits, "one", 1.0), "g_tanh"], ["g_add"]),
              helper.make_node("Mul", [scalar(nodes, inits, "half", 0.5), x], ["g_half"]),
              helper.make_node("Mul", ["g_half", "g_add"], ["gelu"])]
    return "gelu", []


def tanh_pow_int(nodes, inits, x):
    """The tanh form with an int64 exponent (Pow's T1 and T2 may differ)."""
    return tanh_pow(nodes, inits, x, exponent=np.int64(3))


def tanh_muls(nodes, inits, x):
    """The tanh form with x^3 as Muls and the factor applied last."""
    nodes += [helper.make_node("Mul", [x, x], ["g_sq"]),
              helper.make_node("Mul", ["g_sq", x], ["g_cube"]),
              helper.make_node("Mul", ["g_cube", scalar(nodes, inits, "c", 0.044715)], ["g_c3"]),
              helper.make_node("Add", ["g_c3", x], ["g_inner"]),
              helper.make_node("Mul", ["g_inner", scalar(nodes, inits, "k", math.sqrt(2 / math.pi))], ["g_u"]),
              helper.make_node("Tanh", ["g_u"], ["g_tanh"]),
              helper.make_node("Add", ["g_tanh", scalar(nodes, inits, "one", 1.0)], ["g_add"]),
              helper.make_node("Mul", [x, "g_add"], ["g_mul"]),
              helper.make_node("Mul", ["g_mul", scalar(nodes, inits, "half", 0.5)], ["gelu"])]
    return "gelu", []


def ffn(path, gelu, rng):
    """X [B,S,D] -> MatMul W1 + b1 -> GELU -> MatMul W2 + b2 -> Y."""
    inits = [numpy_helper.from_array((rng.standard_normal((D, F)) * 0.4).astype(np.float32), "w1"),
             numpy_helper.from_array((rng.standard_normal(F) * 0.5).astype(np.float32), "b1"),
             numpy_helper.from_array((rng.standard_normal((F, D)) * 0.2).astype(np.float32), "w2"),
             numpy_helper.from_array((rng.standard_normal(D) * 0.1).astype(np.float32), "b2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h"])]
    g, extra_outputs = gelu(nodes, inits, "h")
    nodes += [helper.make_node("MatMul", [g, "w2"], ["y0"]), helper.make_node("Add", ["y0", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "ffn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [B, S, D])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [B, S, D])] + extra_outputs,
                              inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


rng = np.random.default_rng(5)
calib = os.path.join(WORK, "calib")
os.makedirs(calib, exist_ok=True)
for i in range(16):
    np.save(os.path.join(calib, f"s{i}.npy"), rng.standard_normal((B, S, D)).astype(np.float32))
x = rng.standard_normal((B, S, D)).astype(np.float32)
x_path = os.path.join(WORK, "x.npy")
np.save(x_path, x)

# (builder, the activation the first MatMul must get, or None where GELU must not be collapsed)
CASES = {"erf_bert": (erf_bert, "Gelu"), "erf_mul_first": (erf_mul_first, "Gelu"), "tanh_pow": (tanh_pow, "GeluTanh"),
         "tanh_pow_int": (tanh_pow_int, "GeluTanh"), "tanh_muls": (tanh_muls, "GeluTanh"), "not_gelu": (not_gelu, None), "erf_with_output": (erf_with_output, None)}
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 6e-2, "fp8": 6e-2}

for name, (builder, act) in CASES.items():
    model = os.path.join(WORK, name + ".onnx")
    ffn(model, builder, np.random.default_rng(11))
    want = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for precision in ("fp32", "fp16", "int8", "fp8"):
        if act is None and precision in ("int8", "fp8"):
            continue  # the look-alikes: where fusion must not happen, FP32/FP16 say it
        tag = f"{name} {precision}"
        plan = os.path.join(WORK, f"{name}_{precision}_{DEVICE}.plan")
        args = ["build", model, "-o", plan, "--device", DEVICE, "--precision", precision]
        if precision in ("int8", "fp8"):
            args += ["--calib", calib]
        r = kiln(*args)
        if r.returncode != 0:
            check(False, f"{tag}: kiln build failed: {r.stderr.strip()}")
            continue
        text = kiln("inspect", plan).stdout
        acts = re.findall(r'activation="(\w+)"', text)
        # Elementwise nodes other than the FP16 plans' boundary Casts (x_to_fp16, y_to_fp32)
        leftover = [n for n in re.findall(r"\] (\S+)\s+op=Elementwise", text) if "_to_fp" not in n]
        if act:
            check(acts == [act] and not leftover,
                  f"{tag}: GELU fused into the first MatMul as {act} (activations {acts}, Elementwise left {leftover})")
        else:
            check(not any(a.startswith("Gelu") for a in acts), f"{tag}: not collapsed (activations {acts})")
        out = os.path.join(WORK, f"{name}_{precision}_out")
        r = kiln("run", plan, "-i", f"x={x_path}", "-o", out, "--device", DEVICE)
        if r.returncode != 0:
            check(False, f"{tag}: kiln run failed: {r.stderr.strip()}")
            continue
        for info, ref in zip(ort.InferenceSession(model).get_outputs(), want):
            got = np.load(os.path.join(out, info.name + ".npy")).astype(np.float64)
            err = float(np.abs(got - ref).max())
            scale = max(1.0, float(np.abs(ref).max()))
            check(err <= TOLERANCE[precision] * scale,
                  f"{tag}: {info.name} matches onnxruntime (max |diff| {err:.2e}, scale {scale:.2f})")

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
