"""Small ONNX models with dynamic dims for tests/dynamic/dynamic_shapes_test.py (written at test
time with the tooling venv's onnx, so nothing binary is committed)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _save(nodes, name, inputs, outputs, inits, path, opset=17):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def _c(rng, name, shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def batch_mlp(path, rng):
    """x[N,4,4] -> Shape/Gather/Concat -> Reshape [N,16] -> MatMul+Add -> Relu -> MatMul -> Softmax."""
    inits = [_c(rng, "w1", (16, 32)), _c(rng, "b1", (32,)), _c(rng, "w2", (32, 8)),
             numpy_helper.from_array(np.array(0, np.int64), "i0"),
             numpy_helper.from_array(np.array([16], np.int64), "c16")]
    nodes = [
        helper.make_node("Shape", ["x"], ["xs"], name="shape"),
        helper.make_node("Gather", ["xs", "i0"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "c16"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w1"], ["h"], name="mm1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
        helper.make_node("Relu", ["hb"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["logits"], name="mm2"),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=-1),
    ]
    inits.append(numpy_helper.from_array(np.array([0], np.int64), "ax0"))
    _save(nodes, "batch_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 4])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])], inits, path)


def attention(path, rng):
    """x[B,S,16]: attention with 2 heads of 8, Shape-derived Reshape targets and a Slice whose
    ends is S, so shapes depend on B, S and B*S; y[B,S-1,16], and last[B,2,16] whose Slice start
    is S-2."""
    d, h, dh = 16, 2, 8
    inits = [_c(rng, n, (d, d)) for n in ("wq", "wk", "wv", "wo")]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("i0", 0), ("i1", 1), ("ax0", [0]), ("heads", [h, dh]), ("dmodel", [d]), ("flat", [-1, d]))]
    inits.append(numpy_helper.from_array(np.array(1 / np.sqrt(dh), np.float32), "scale"))
    nodes = [
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "i0"], ["b"], axis=0),
        helper.make_node("Gather", ["xs", "i1"], ["s"], axis=0),
        helper.make_node("Unsqueeze", ["b", "ax0"], ["b1"]),
        helper.make_node("Unsqueeze", ["s", "ax0"], ["s1"]),
        helper.make_node("Concat", ["b1", "s1", "heads"], ["split_shape"], axis=0),
        helper.make_node("Concat", ["b1", "s1", "dmodel"], ["merge_shape"], axis=0),
        helper.make_node("Reshape", ["x", "flat"], ["x2"], name="flatten_tokens"),  # [B*S, 16]
    ]
    for n in "qkv":
        nodes += [helper.make_node("MatMul", ["x2", "w" + n], [n + "2"], name="proj_" + n),
                  helper.make_node("Reshape", [n + "2", "split_shape"], [n + "4"], name="split_" + n),
                  helper.make_node("Transpose", [n + "4"], [n + "h"], perm=[0, 2, 1, 3], name="heads_" + n)]
    nodes += [
        helper.make_node("Transpose", ["kh"], ["kt"], perm=[0, 1, 3, 2], name="k_t"),
        helper.make_node("MatMul", ["qh", "kt"], ["scores"], name="qk"),
        helper.make_node("Mul", ["scores", "scale"], ["scaled"], name="scale"),
        helper.make_node("Softmax", ["scaled"], ["probs"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["probs", "vh"], ["ctx"], name="pv"),
        helper.make_node("Transpose", ["ctx"], ["ctx_t"], perm=[0, 2, 1, 3], name="merge_t"),
        helper.make_node("Reshape", ["ctx_t", "merge_shape"], ["merged"], name="merge"),
        helper.make_node("MatMul", ["merged", "wo"], ["proj"], name="out_proj"),
        # Drops the first token: Slice's ends come from the shape (a shape-dependent attribute).
        helper.make_node("Slice", ["proj", "one", "s1", "ax1"], ["y"], name="drop_first"),
        # The last two tokens: kiln canonicalizes starts to S-2 (an attribute that depends on S).
        helper.make_node("Slice", ["proj", "minus2", "big", "ax1"], ["last"], name="last_two"),
    ]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n)
              for n, v in (("one", [1]), ("ax1", [1]), ("minus2", [-2]), ("big", [1 << 30]))]
    _save(nodes, "attention", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "S", d])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", None, d]),
           helper.make_tensor_value_info("last", TensorProto.FLOAT, ["B", 2, d])], inits, path)


def strided_conv(path, rng):
    """x[1,2,H,8] -> Conv 3x3 stride 2: the output height floor((H-1)/2)+1 is not multilinear."""
    inits = [_c(rng, "w", (4, 2, 3, 3))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv_s2", strides=[2, 2], pads=[1, 1, 1, 1])]
    _save(nodes, "strided_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "H", 8])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, None, 4])], inits, path)


def strided_cnn(path, rng):
    """x[1,2,H,W] -> Conv 3x3/2 pad 1 -> Relu -> MaxPool 3x3/2 pad 1 -> Conv 3x3/2 pad 1 -> AveragePool
    2x2/2 ceil_mode: every spatial dim a nest of floor divisions of H or W; y2 flattens it (a
    product of a floor of H and a floor of W)."""
    inits = [_c(rng, "w1", (4, 2, 3, 3)), _c(rng, "b1", (4,)), _c(rng, "w2", (3, 4, 3, 3))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["c2"], ["y"], name="pool2", kernel_shape=[2, 2], strides=[2, 2],
                         ceil_mode=1),
        helper.make_node("Flatten", ["y"], ["y2"], name="flat", axis=1),
    ]
    _save(nodes, "strided_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "H", "W"])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None]),
           helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, None])], inits, path)


def upsample_add(path, rng):
    """An FPN step: x[1,2,H,W] -> Conv 3x3/2 -> Resize nearest x2 -> + Conv 3x3/1 of x: takes even H
    and W only (ceil(H/2)*2 must equal H)."""
    inits = [_c(rng, "w1", (4, 2, 3, 3)), _c(rng, "w2", (4, 2, 3, 3)),
             numpy_helper.from_array(np.array([], np.float32), "roi"),
             numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="down", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Resize", ["c1", "roi", "scales"], ["u"], name="up", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        helper.make_node("Conv", ["x", "w2"], ["c2"], name="lateral", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["u", "c2"], ["y"], name="merge"),
    ]
    _save(nodes, "upsample_add", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, "H", "W"])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, None, None])], inits, path)


def shrinking(path, rng):
    """x[1,S] -> Concat with 16 constants -> Slice from 2S: y[1,16-S] shrinks as S grows."""
    inits = [_c(rng, "c", (1, 16))]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n)
              for n, v in (("i1", [1]), ("big", [1 << 30]), ("ax1", [1]))]
    nodes = [
        helper.make_node("Concat", ["x", "c"], ["z"], axis=1, name="concat"),
        helper.make_node("Shape", ["x"], ["xs"]),
        helper.make_node("Gather", ["xs", "i1"], ["s"], axis=0),
        helper.make_node("Add", ["s", "s"], ["two_s"]),
        helper.make_node("Slice", ["z", "two_s", "big", "ax1"], ["y"], name="tail"),
    ]
    _save(nodes, "shrinking", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "S"])],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, None])], inits, path)


def two_inputs(path, rng):
    """a[B,4] + b[B,4] -> Relu -> y[B,4]: one dynamic dim shared by two inputs (dim_param B)."""
    nodes = [helper.make_node("Add", ["a", "b"], ["s"], name="add"), helper.make_node("Relu", ["s"], ["y"], name="relu")]
    _save(nodes, "two_inputs", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", 4]) for n in "ab"],
          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 4])], [], path)
