#!/usr/bin/python3
"""Writes the small ONNX models committed next to this script.

Run with Debian's python (python3-onnx 1.12 + python3-numpy); the output is deterministic
(fixed seed, fixed names), so re-running it reproduces the committed files byte for byte:

    /usr/bin/python3 tests/models/make_models.py

Models:
  demo_cnn.onnx           the demo: Conv3x3+BN+Relu, a residual Add, MaxPool, GlobalAveragePool,
                          Flatten, Gemm, Softmax on a 1x3x32x32 input (scripts/demo.sh)
  copy_two_inputs.onnx    copy ops only: x float32[2,3,4] -> Reshape [4,6] -> y,
                          ids int64[5] -> Identity -> ids_out (CLI and C API tests)
  dynamic_batch.onnx      x float32[N,3,4] -> Flatten -> y (an unfixed dimension)
  hardmax.onnx            an op kiln does not implement (Hardmax-13)
  custom_domain.onnx      an op from a custom domain (com.example.MyOp)
  dropout_opset22.onnx    Dropout at opset 22, where Dropout changed (refused: Dropout-22)
  conv_opset22.onnx       Conv at opset 22, where Conv changed (refused: Conv-22)
  reshape_opset22.onnx    Reshape importing opset 22; Reshape did not change in 22 (accepted)
  control_flow.onnx       control flow run at run time: cond, flag bool, x float32[3,4], m int64 ->
                          y_if = If(cond, then: If(flag, Relu(x), Neg(x)), else: x * 3),
                          y_loop = Loop(m, state x: state + x), Scan(state zeros[4] over the rows
                          of x: state + row; scan output 2 * state) -> y_state, y_scan
  graph_attr_custom_op.onnx  a custom-domain op with a graph attribute (refused, naming the op)
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
# IR version 8 is what onnx 1.12 writes; pinned so a newer onnx still writes the same bytes.
IR_VERSION = 8


def save(graph, name, opset, extra_opsets=(), check=True):
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="kiln-tests")
    model.ir_version = IR_VERSION
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print("wrote", path)


def demo_cnn(rng):
    c = 8
    inits = []

    def const(name, arr):
        inits.append(numpy_helper.from_array(arr.astype(np.float32), name))
        return name

    def conv_bn(x, cin, prefix, relu):
        w = const(prefix + ".w", rng.normal(0, np.sqrt(2.0 / (cin * 9)), (c, cin, 3, 3)))
        b = const(prefix + ".b", rng.normal(0, 0.05, (c,)))
        scale = const(prefix + ".bn.scale", rng.uniform(0.8, 1.2, (c,)))
        bias = const(prefix + ".bn.bias", rng.normal(0, 0.1, (c,)))
        mean = const(prefix + ".bn.mean", rng.normal(0, 0.1, (c,)))
        var = const(prefix + ".bn.var", rng.uniform(0.5, 1.5, (c,)))
        nodes = [
            helper.make_node("Conv", [x, w, b], [prefix + ".conv"], name=prefix + "_conv",
                             kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("BatchNormalization", [prefix + ".conv", scale, bias, mean, var],
                             [prefix + ".bn"], name=prefix + "_bn", epsilon=1e-5),
        ]
        out = prefix + ".bn"
        if relu:
            nodes.append(helper.make_node("Relu", [out], [prefix + ".relu"], name=prefix + "_relu"))
            out = prefix + ".relu"
        return nodes, out

    n1, a = conv_bn("input", 3, "block1", relu=True)
    n2, b = conv_bn(a, c, "block2", relu=False)
    wfc = const("fc.w", rng.normal(0, np.sqrt(1.0 / c), (10, c)))
    bfc = const("fc.b", rng.normal(0, 0.05, (10,)))
    nodes = n1 + n2 + [
        helper.make_node("Add", [a, b], ["res.add"], name="res_add"),
        helper.make_node("Relu", ["res.add"], ["res.relu"], name="res_relu"),
        helper.make_node("MaxPool", ["res.relu"], ["pool"], name="maxpool",
                         kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["pool"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", wfc, bfc], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "demo_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
        initializer=inits)
    save(graph, "demo_cnn.onnx", 17)


def copy_two_inputs():
    shape = numpy_helper.from_array(np.array([4, 6], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape"),
         helper.make_node("Identity", ["ids"], ["ids_out"], name="identity")],
        "copy_two_inputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 6]),
         helper.make_tensor_value_info("ids_out", TensorProto.INT64, [5])],
        initializer=[shape])
    save(graph, "copy_two_inputs.onnx", 13)


def dynamic_batch():
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=1)],
        "dynamic_batch",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 12])])
    save(graph, "dynamic_batch.onnx", 13)


def single_op(name, op, opset, out_shape, domain="", extra_opsets=(), check=True, inputs=None,
              **attrs):
    inputs = inputs or [("x", [2, 3])]
    inits = []
    in_names = []
    for n, v in inputs:
        if isinstance(v, np.ndarray):
            inits.append(numpy_helper.from_array(v, n))
        in_names.append(n)
    graph = helper.make_graph(
        [helper.make_node(op, in_names, ["y"], name=op.lower() + "_node", domain=domain, **attrs)],
        name.replace(".onnx", ""),
        [helper.make_tensor_value_info(inputs[0][0], TensorProto.FLOAT, inputs[0][1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=inits)
    save(graph, name, opset, extra_opsets, check)


def control_flow():
    f = TensorProto.FLOAT
    x_info = helper.make_tensor_value_info("x", f, [3, 4])
    inner_then = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="relu")], "inner_then", [],
                                   [helper.make_tensor_value_info("r", f, [3, 4])])
    inner_else = helper.make_graph([helper.make_node("Neg", ["x"], ["n"], name="neg")], "inner_else", [],
                                   [helper.make_tensor_value_info("n", f, [3, 4])])
    then_g = helper.make_graph(
        [helper.make_node("If", ["flag"], ["t"], name="inner_if", then_branch=inner_then, else_branch=inner_else)],
        "then", [], [helper.make_tensor_value_info("t", f, [3, 4])])
    three = numpy_helper.from_array(np.array(3.0, dtype=np.float32), "three")
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "three"], ["e"], name="times3")], "else", [],
                               [helper.make_tensor_value_info("e", f, [3, 4])], initializer=[three])
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"], name="keep_going"),
         helper.make_node("Add", ["s_in", "x"], ["s_out"], name="accumulate")],
        "loop_body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_in", f, [3, 4])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_out", f, [3, 4])])
    two = numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two")
    scan_body = helper.make_graph(
        [helper.make_node("Add", ["acc", "row"], ["acc_out"], name="scan_add"),
         helper.make_node("Mul", ["acc_out", "two"], ["doubled"], name="scan_double")],
        "scan_body",
        [helper.make_tensor_value_info("acc", f, [4]), helper.make_tensor_value_info("row", f, [4])],
        [helper.make_tensor_value_info("acc_out", f, [4]), helper.make_tensor_value_info("doubled", f, [4])],
        initializer=[two])
    zeros = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "zeros")
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y_if"], name="outer_if", then_branch=then_g, else_branch=else_g),
         helper.make_node("Loop", ["m", "", "x"], ["y_loop"], name="loop", body=body),
         helper.make_node("Scan", ["zeros", "x"], ["y_state", "y_scan"], name="scan", body=scan_body,
                          num_scan_inputs=1)],
        "control_flow",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, []), x_info,
         helper.make_tensor_value_info("m", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y_if", f, [3, 4]), helper.make_tensor_value_info("y_loop", f, [3, 4]),
         helper.make_tensor_value_info("y_state", f, [4]), helper.make_tensor_value_info("y_scan", f, [3, 4])],
        initializer=[zeros])
    save(graph, "control_flow.onnx", 13)


def graph_attr_custom_op():
    body = helper.make_graph([helper.make_node("Relu", ["x"], ["r"], name="relu")], "body", [],
                             [helper.make_tensor_value_info("r", TensorProto.FLOAT, [2, 3])])
    graph = helper.make_graph(
        [helper.make_node("MyLoop", ["x"], ["y"], name="myloop_node", domain="com.example", body=body)],
        "graph_attr_custom_op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    save(graph, "graph_attr_custom_op.onnx", 17, [("com.example", 1)], check=False)


def main():
    rng = np.random.default_rng(20240611)
    demo_cnn(rng)
    copy_two_inputs()
    dynamic_batch()
    single_op("hardmax.onnx", "Hardmax", 13, [2, 3])
    single_op("custom_domain.onnx", "MyOp", 17, [2, 3], domain="com.example",
              extra_opsets=[("com.example", 1)], check=False)
    # onnx 1.12's checker stops at opset 17: the opset-22 models are written unchecked.
    single_op("dropout_opset22.onnx", "Dropout", 22, [2, 3], check=False)
    w = np.full((4, 3, 3, 3), 0.1, dtype=np.float32)
    single_op("conv_opset22.onnx", "Conv", 22, [1, 4, 6, 6], check=False,
              inputs=[("x", [1, 3, 8, 8]), ("w", w)], kernel_shape=[3, 3])
    single_op("reshape_opset22.onnx", "Reshape", 22, [3, 2], check=False,
              inputs=[("x", [2, 3]), ("shape", np.array([3, 2], dtype=np.int64))])
    control_flow()
    graph_attr_custom_op()


if __name__ == "__main__":
    main()
