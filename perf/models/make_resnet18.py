#!/usr/bin/env python3
"""Writes torchvision's ResNet-18 (random weights) as ONNX, built node by node with onnx.helper
(torch is not a dependency): the graph torch.onnx.export gives for resnet18() in eval mode, with
BatchNormalization folded into the convolutions' weights and biases as the exporter does.

  conv1 7x7/2 (64) + Relu, MaxPool 3x3/2 pad 1, four stages of two BasicBlocks (64, 128, 256,
  512 channels; the first block of stages 2-4 strides 2 with a 1x1/2 downsample), residual Add
  + Relu, GlobalAveragePool, Flatten, Gemm 512 -> 1000 (transB).

Input "input" float32 [N, 3, 224, 224] (N is the dim_param "batch"), output "logits" [N, 1000].
He-normal weights, so activations stay in range through the 18 layers.

Usage: make_resnet18.py OUT.onnx   (needs numpy and onnx)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build(seed=18):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    count = [0]

    def name(base):
        count[0] += 1
        return f"{base}_{count[0]}"

    def const(arr, base):
        n = name(base)
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), n))
        return n

    def op(op_type, inputs, **attrs):
        out = name(op_type.lower())
        nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def conv(x, cin, cout, k, stride, relu):
        w = const(rng.normal(0, (2.0 / (cin * k * k)) ** 0.5, (cout, cin, k, k)), "weight")
        b = const(rng.normal(0, 0.05, cout), "bias")
        p = k // 2
        y = op("Conv", [x, w, b], kernel_shape=[k, k], pads=[p, p, p, p], strides=[stride, stride])
        return op("Relu", [y]) if relu else y

    def basic_block(x, cin, cout, stride):
        y = conv(x, cin, cout, 3, stride, True)
        y = conv(y, cout, cout, 3, 1, False)
        skip = conv(x, cin, cout, 1, stride, False) if stride != 1 or cin != cout else x
        return op("Relu", [op("Add", [y, skip])])

    x = conv("input", 3, 64, 7, 2, True)
    x = op("MaxPool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        x = basic_block(x, cin, cout, stride)
        x = basic_block(x, cout, cout, 1)
        cin = cout
    x = op("Flatten", [op("GlobalAveragePool", [x])], axis=1)
    w = const(rng.normal(0, 0.05, (1000, 512)), "fc_weight")
    b = const(np.zeros(1000), "fc_bias")
    nodes.append(helper.make_node("Gemm", [x, w, b], ["logits"], name="fc", transB=1))
    graph = helper.make_graph(nodes, "resnet18", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kiln-perf")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    onnx.save(build(), sys.argv[1])
    print("wrote", sys.argv[1])


if __name__ == "__main__":
    main()
