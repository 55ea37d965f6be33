#!/usr/bin/env python3
"""Writes an FP8 Q/DQ checkpoint (the form FP8 quantization-aware training exports) and the
reference outputs kiln's CLI test (tests/bad_input/cli_cases.sh, case_fp8_qdq_checkpoint)
compares against. Needs the tooling venv (onnx 1.17.0, onnxruntime 1.20.1):

    .venv/bin/python tests/models/make_fp8_qdq_model.py OUTDIR

A small CNN on a 1x3x32x32 input, every weight a float8 initializer + DequantizeLinear:
  conv1  3->8 3x3 pad 1          E4M3FN weights per output channel, E4M3FN activations Q/DQ
  relu
  conv2  8->16 3x3 stride 2, group 2   E5M2 weights per channel, E4M3FN activations Q/DQ
  relu, GlobalAveragePool, Flatten
  fc     Gemm 16->12 transB=1 + bias   E4M3FN weights per tensor, E5M2 activations Q/DQ
  head   MatMul 12->10               E4M3FN weights per column, float32 activations (weight-only)
Activation scales are amax / 448 (E4M3FN) or amax / 57344 (E5M2) of the float model on the test
input. Files: fp8_qdq.onnx, fp8_fnuz.onnx (conv1's weights as FLOAT8E4M3FNUZ, which kiln
refuses), x.npy, ref.npy (onnxruntime's CPU output, checked against onnx.reference) and
ref_source.txt.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

E4, E5 = TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2
QMAX = {E4: 448.0, E5: 57344.0, TensorProto.FLOAT8E4M3FNUZ: 240.0}


def float_model(w):
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2], group=2),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "w3", "b3"], ["fc"], name="fc", transB=1),
        helper.make_node("MatMul", ["fc", "w4"], ["y"], name="head"),
    ]
    g = helper.make_graph(nodes, "fp8_float", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                          [numpy_helper.from_array(v, k) for k, v in w.items()])
    g.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ["c1", "c2", "fc", "x"])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])


def amax_of(model, x):
    outs = ReferenceEvaluator(model).run(None, {"x": x})
    return {n: float(np.abs(v).max()) for n, v in zip(["y", "c1", "c2", "fc", "x"], outs)}


def build(w, amax, conv1_type=E4):
    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    def weight(name, arr, ftype, axis):
        # Per-channel (axis) or per-tensor (axis None) scale, values cast by onnx's saturating RNE.
        a = np.abs(arr)
        if axis is None:
            scale = np.float32(max(a.max(), 1e-12) / QMAX[ftype])
            q = arr / scale
        else:
            other = tuple(d for d in range(arr.ndim) if d != axis)
            scale = (np.maximum(a.max(axis=other), 1e-12) / QMAX[ftype]).astype(np.float32)
            shape = [1] * arr.ndim
            shape[axis] = -1
            q = arr / scale.reshape(shape)
        inits.append(helper.make_tensor(name + "_q", ftype, arr.shape, q.astype(np.float32).flatten().tolist()))
        const(name + "_scale", scale)
        inits.append(helper.make_tensor(name + "_zp", ftype, scale.shape if axis is not None else [], [0.0] * (scale.size)))
        attrs = {"axis": axis} if axis is not None else {}
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale", name + "_zp"], [name], name=name + "_dq", **attrs))
        return name

    def qdq(src, ftype, scale_of):
        s = const(src + "_act_scale", amax[scale_of] / QMAX[ftype])
        inits.append(helper.make_tensor(src + "_act_zp", ftype, [], [0.0]))
        nodes.append(helper.make_node("QuantizeLinear", [src, s, src + "_act_zp"], [src + "_q"], name=src + "_quant"))
        nodes.append(helper.make_node("DequantizeLinear", [src + "_q", s, src + "_act_zp"], [src + "_dq"], name=src + "_dequant"))
        return src + "_dq"

    x = qdq("x", E4, "x")
    nodes.append(helper.make_node("Conv", [x, weight("w1", w["w1"], conv1_type, 0), const("b1", w["b1"])], ["c1"], name="conv1", pads=[1, 1, 1, 1]))
    c1 = qdq("c1", E4, "c1")
    nodes.append(helper.make_node("Relu", [c1], ["r1"], name="relu1"))
    r1 = qdq("r1", E4, "c1")
    nodes.append(helper.make_node("Conv", [r1, weight("w2", w["w2"], E5, 0), const("b2", w["b2"])], ["c2"], name="conv2",
                                  pads=[1, 1, 1, 1], strides=[2, 2], group=2))
    c2 = qdq("c2", E4, "c2")
    nodes.append(helper.make_node("Relu", [c2], ["r2"], name="relu2"))
    nodes.append(helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    flat = qdq("flat", E5, "c2")
    nodes.append(helper.make_node("Gemm", [flat, weight("w3", w["w3"], E4, None), const("b3", w["b3"])], ["fc"], name="fc", transB=1))
    fc = qdq("fc", E5, "fc")
    nodes.append(helper.make_node("MatMul", [fc, weight("w4", w["w4"], E4, 1)], ["y"], name="head"))
    g = helper.make_graph(nodes, "fp8_qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    m.ir_version = 9
    return m


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    r = np.random.default_rng(7)
    w = {"w1": r.normal(0, 0.4, (8, 3, 3, 3)), "b1": r.normal(0, 0.1, 8), "w2": r.normal(0, 0.2, (16, 4, 3, 3)),
         "b2": r.normal(0, 0.1, 16), "w3": r.normal(0, 0.3, (12, 16)), "b3": r.normal(0, 0.1, 12),
         "w4": r.normal(0, 0.3, (12, 10))}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    x = r.uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
    amax = amax_of(float_model(w), x)
    model = build(w, amax)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.path.join(out, "fp8_qdq.onnx"))
    onnx.save(build(w, amax, TensorProto.FLOAT8E4M3FNUZ), os.path.join(out, "fp8_fnuz.onnx"))
    np.save(os.path.join(out, "x.npy"), x)
    # onnxruntime 1.20.1's CPU EP runs float8 Q/DQ, but its extended graph optimizations fuse
    # DQ(float8) -> MatMul into MatMulIntegerToFloat, which rejects float8 inputs: basic
    # optimizations (no fusion) give the plain Q/DQ semantics. onnx's reference evaluator must
    # agree with it, and is the reference where onnxruntime cannot run the model.
    check = ReferenceEvaluator(model).run(None, {"x": x})[0]
    try:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        ref = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        assert np.allclose(ref, check, rtol=1e-5, atol=1e-6), (ref, check)
        source = "onnxruntime %s (basic graph optimizations), onnx.reference %s agrees" % (ort.__version__, onnx.__version__)
    except (ImportError, RuntimeError) as e:  # RuntimeError: onnxruntime's errors (no float8 kernels)
        print("onnxruntime cannot run the model (%s); using onnx.reference" % str(e).splitlines()[0], file=sys.stderr)
        ref, source = check, "onnx.reference " + onnx.__version__
    np.save(os.path.join(out, "ref.npy"), ref)
    with open(os.path.join(out, "ref_source.txt"), "w") as f:
        f.write(source + "\n")
    print("wrote fp8_qdq.onnx, fp8_fnuz.onnx, x.npy, ref.npy (%s)" % source)


if __name__ == "__main__":
    main()
