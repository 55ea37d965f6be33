#!/usr/bin/env python3
"""Writes the models kiln's benchmarks run (random weights: for speed, never accuracy).

  resnet_mini.onnx   1x3x64x64 -> 1x10: ResNet-style stages (Conv+BN+Relu, residual Adds,
                     strided downsampling), GlobalAveragePool, Gemm.
  mlp.onnx           32x512 -> 32x10: four Gemm+Relu layers (MatMul/Add/Relu form).
  attention.onnx     1x64x128 -> 1x64x128: one transformer encoder block (LayerNorm, Q/K/V
                     MatMul, Reshape/Transpose to 4 heads, Softmax, output projection, MLP with
                     Erf-GELU, residual Adds).

Usage: make_perf_models.py OUTDIR [--batch B]   (needs numpy and onnx >= 1.12)
--batch sets every model's batch dim (default: 1, and 32 rows for mlp); the weights are the same
for every batch.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
rng = np.random.default_rng(2026)


class Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, arr, base="w"):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), nm))
        return nm

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv_bn_relu(self, x, cin, cout, stride=1, relu=True):
        w = self.const(rng.normal(0, (2.0 / (cin * 9)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32))
        y = self.op("Conv", [x, w], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride])
        scale = self.const(rng.uniform(0.5, 1.5, cout).astype(np.float32))
        bias = self.const(rng.normal(0, 0.1, cout).astype(np.float32))
        mean = self.const(rng.normal(0, 0.1, cout).astype(np.float32))
        var = self.const(rng.uniform(0.5, 1.5, cout).astype(np.float32))
        y = self.op("BatchNormalization", [y, scale, bias, mean, var], epsilon=1e-5)
        return self.op("Relu", [y]) if relu else y

    def model(self, inputs, outputs, name):
        g = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kiln-perf")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def resnet_mini(batch=1):
    b = Builder()
    x = b.conv_bn_relu("input", 3, 32)
    cin = 32
    for cout, stride in [(32, 1), (64, 2), (128, 2)]:
        y = b.conv_bn_relu(x, cin, cout, stride)
        y = b.conv_bn_relu(y, cout, cout, relu=False)
        skip = x if (cin == cout and stride == 1) else b.conv_bn_relu(x, cin, cout, stride, relu=False)
        x = b.op("Relu", [b.op("Add", [y, skip])])
        cin = cout
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    w = b.const(rng.normal(0, 0.05, (10, cin)).astype(np.float32))
    c = b.const(np.zeros(10, np.float32))
    out = b.op("Gemm", [x, w, c], transB=1)
    return b.model([helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 64, 64])],
                   [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, 10])], "resnet_mini")


def mlp(batch=32):
    b = Builder()
    x, d = "input", 512
    for width in [1024, 1024, 512]:
        w = b.const(rng.normal(0, (2.0 / d) ** 0.5, (d, width)).astype(np.float32))
        x = b.op("Relu", [b.op("Add", [b.op("MatMul", [x, w]), b.const(np.zeros(width, np.float32))])])
        d = width
    out = b.op("MatMul", [x, b.const(rng.normal(0, 0.05, (d, 10)).astype(np.float32))])
    return b.model([helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 512])],
                   [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, 10])], "mlp")


def attention(batch=1):
    b = Builder()
    seq, dim, heads = 64, 128, 4
    hd = dim // heads

    def layernorm(x):
        return b.op("LayerNormalization", [x, b.const(np.ones(dim, np.float32)), b.const(np.zeros(dim, np.float32))],
                    axis=-1, epsilon=1e-5)

    def linear(x, din, dout):
        w = b.const(rng.normal(0, din ** -0.5, (din, dout)).astype(np.float32))
        return b.op("Add", [b.op("MatMul", [x, w]), b.const(rng.normal(0, 0.02, dout).astype(np.float32))])

    def split_heads(x):
        shape = b.const(np.array([batch, seq, heads, hd], np.int64), "shape")
        return b.op("Transpose", [b.op("Reshape", [x, shape])], perm=[0, 2, 1, 3])

    h = layernorm("input")
    q, k, v = (split_heads(linear(h, dim, dim)) for _ in range(3))
    kt = b.op("Transpose", [k], perm=[0, 1, 3, 2])
    scores = b.op("Mul", [b.op("MatMul", [q, kt]), b.const(np.array(hd ** -0.5, np.float32))])
    ctx = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
    ctx = b.op("Reshape", [b.op("Transpose", [ctx], perm=[0, 2, 1, 3]), b.const(np.array([batch, seq, dim], np.int64))])
    x = b.op("Add", ["input", linear(ctx, dim, dim)])
    h = linear(layernorm(x), dim, 4 * dim)
    gelu = b.op("Mul", [b.op("Mul", [h, b.op("Add", [b.op("Erf", [b.op("Div", [h, b.const(np.array(2 ** 0.5, np.float32))])]),
                                                       b.const(np.array(1.0, np.float32))])]),
                        b.const(np.array(0.5, np.float32))])
    out = b.op("Add", [x, linear(gelu, 4 * dim, dim)])
    return b.model([helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, seq, dim])],
                   [helper.make_tensor_value_info(out, TensorProto.FLOAT, [batch, seq, dim])], "attention")


def main():
    args = sys.argv[1:]
    batch = None
    if len(args) == 3 and args[1] == "--batch" and args[2].isdigit() and int(args[2]) > 0:
        batch = int(args[2])
        args = args[:1]
    if len(args) != 1:
        sys.exit(__doc__)
    os.makedirs(args[0], exist_ok=True)
    global rng
    for fn in (resnet_mini, mlp, attention):
        rng = np.random.default_rng(2026)  # the same weights whatever the batch
        path = os.path.join(args[0], fn.__name__ + ".onnx")
        onnx.save(fn() if batch is None else fn(batch), path)
        print("wrote", path)


if __name__ == "__main__":
    main()
