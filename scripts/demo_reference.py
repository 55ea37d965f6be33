#!/usr/bin/python3
"""Numpy reference for scripts/demo.sh: evaluates tests/models/demo_cnn.onnx (only the ops it
uses) and compares it with kiln's output.

    demo_reference.py MODEL.onnx INPUT.npy KILN_OUTPUT.npy
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def conv(x, w, b, pads):
    n, c, h, wd = x.shape
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh, ow = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i:i + oh, j:j + ow]
    y = np.einsum("nckluv,ockl->nouv", cols, w.astype(np.float64))
    return y + b.reshape(1, -1, 1, 1)


def run(model, x):
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for node in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        i = [env[n] for n in node.input]
        op = node.op_type
        if op == "Conv":
            y = conv(i[0], i[1], i[2], a.get("pads", [0, 0, 0, 0]))
        elif op == "BatchNormalization":
            s = lambda v: v.reshape(1, -1, 1, 1)
            y = s(i[1]) * (i[0] - s(i[3])) / np.sqrt(s(i[4]) + a.get("epsilon", 1e-5)) + s(i[2])
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "MaxPool":
            n, c, h, w = i[0].shape
            y = i[0].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            y = i[0].reshape(i[0].shape[0], -1)
        elif op == "Gemm":
            y = i[0] @ (i[1].T if a.get("transB", 0) else i[1]) + i[2]
        elif op == "Softmax":
            e = np.exp(i[0] - i[0].max(axis=-1, keepdims=True))
            y = e / e.sum(axis=-1, keepdims=True)
        else:
            raise SystemExit("demo_reference: op %s not handled" % op)
        env[node.output[0]] = y
    return env[model.graph.output[0].name]


def main():
    model = onnx.load(sys.argv[1])
    x = np.load(sys.argv[2])
    got = np.load(sys.argv[3])
    want = run(model, x)
    err = float(np.abs(got.astype(np.float64) - want).max())
    print("kiln  :", np.array2string(got.ravel(), precision=5))
    print("numpy :", np.array2string(want.ravel(), precision=5))
    print("top class: kiln %d, numpy %d; max abs difference %.2e" % (got.argmax(), want.argmax(), err))
    if got.shape != want.shape or err > 1e-4:
        raise SystemExit("demo: kiln's output does not match the numpy reference")
    print("demo: OK")


if __name__ == "__main__":
    main()
