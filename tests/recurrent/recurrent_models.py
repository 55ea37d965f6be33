"""ONNX models for tests/recurrent: random RNN/GRU/LSTM nodes and control-flow graphs, built with
onnx.helper (no downloads). Each builder returns (model, {input name: array}) and is
deterministic for a given numpy Generator."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
OPSET = 17


def make_model(nodes, inputs, outputs, inits=(), opset=OPSET):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="kiln-tests")
    model.ir_version = 8
    return model


def info(name, arr):
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))


GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
# Activations whose alpha/beta (if any) the tests always give explicitly: ONNX Runtime's defaults
# for Affine and ThresholdedRelu differ from the spec's (kiln follows the spec).
ACTS = [("Relu", 0), ("Tanh", 0), ("Sigmoid", 0), ("Affine", 2), ("LeakyRelu", 1), ("ThresholdedRelu", 1),
        ("ScaledTanh", 2), ("HardSigmoid", 2), ("Elu", 1), ("Softsign", 0), ("Softplus", 0)]
N_ACTS = {"RNN": 1, "GRU": 2, "LSTM": 3}


def random_recurrent(op, rng, k, layout):
    """One random node of `op` (suffix k on every name). Returns (node, graph inputs {name: array},
    initializers {name: array}, output names (None where absent), attrs)."""
    seq, batch, inp, hidden = (int(v) for v in rng.integers(1, 6, size=4))
    hidden += 1
    direction = ["forward", "reverse", "bidirectional"][rng.integers(3)]
    D, G = (2 if direction == "bidirectional" else 1), GATES[op]
    attrs = {"hidden_size": hidden, "direction": direction}
    if layout:
        attrs["layout"] = 1
    if rng.random() < 0.3:
        attrs["clip"] = float(rng.uniform(0.5, 2.0))
    if op == "GRU" and rng.random() < 0.5:
        attrs["linear_before_reset"] = 1
    if op == "LSTM" and rng.random() < 0.2:
        attrs["input_forget"] = 1
    if rng.random() < 0.5:
        names, alpha, beta = [], [], []
        # ONNX Runtime's RNN reads activation_alpha/beta by position, its GRU and LSTM (and kiln)
        # hand them out in order to the functions that take them: the same when every function
        # of the node takes the same number, which RNN nodes here do.
        pool = ACTS
        if op == "RNN":
            n_params = int(rng.integers(3))
            pool = [a for a in ACTS if a[1] == n_params]
        for _ in range(N_ACTS[op] * D):
            name, n = pool[rng.integers(len(pool))]
            names.append(name if rng.random() < 0.7 else name.lower())
            if n >= 1:
                alpha.append(float(rng.uniform(0.1, 1.5)))
            if n == 2:
                beta.append(float(rng.uniform(0.1, 1.0)))
        attrs["activations"] = names
        if alpha:
            attrs["activation_alpha"] = alpha
        if beta:
            attrs["activation_beta"] = beta
    x_shape = (batch, seq, inp) if layout else (seq, batch, inp)
    state = (batch, D, hidden) if layout else (D, batch, hidden)
    ins, inits = {}, {}
    names = [f"X{k}", f"W{k}", f"R{k}"]
    ins[f"X{k}"] = rng.standard_normal(x_shape).astype(np.float32)
    inits[f"W{k}"] = (rng.standard_normal((D, G * hidden, inp)) * 0.5).astype(np.float32)
    inits[f"R{k}"] = (rng.standard_normal((D, G * hidden, hidden)) * 0.5).astype(np.float32)
    optional = []
    if rng.random() < 0.7:
        inits[f"B{k}"] = (rng.standard_normal((D, 2 * G * hidden)) * 0.3).astype(np.float32)
        optional.append((3, f"B{k}"))
    if rng.random() < 0.4:
        lens = rng.integers(1, seq + 1, size=batch).astype(np.int32)
        lens[0] = seq
        ins[f"L{k}"] = lens
        optional.append((4, f"L{k}"))
    if rng.random() < 0.5:
        ins[f"H{k}"] = rng.standard_normal(state).astype(np.float32)
        optional.append((5, f"H{k}"))
    if op == "LSTM" and rng.random() < 0.5:
        ins[f"C{k}"] = rng.standard_normal(state).astype(np.float32)
        optional.append((6, f"C{k}"))
    if op == "LSTM" and rng.random() < 0.5:
        inits[f"P{k}"] = rng.standard_normal((D, 3 * hidden)).astype(np.float32)
        optional.append((7, f"P{k}"))
    for pos, name in optional:
        while len(names) < pos:
            names.append("")
        names.append(name)
    outs = [f"Y{k}", f"Yh{k}"] + ([f"Yc{k}"] if op == "LSTM" else [])
    # Drop one output sometimes (an absent output is "" or left off the end).
    drop = rng.integers(len(outs) + 2)
    if drop < len(outs):
        outs[drop] = None
    while outs and outs[-1] is None:
        outs.pop()
    node = helper.make_node(op, names, [o or "" for o in outs], name=f"{op.lower()}{k}", **attrs)
    return node, ins, inits, outs, attrs


def to_layout0(arr, kind):
    """The layout-0 form of a layout-1 tensor: X [batch, seq, in] -> [seq, batch, in], states
    [batch, D, H] -> [D, batch, H]; Y is the other way round (from_layout0)."""
    return np.ascontiguousarray(arr.transpose(1, 0, 2)) if kind in ("X", "H", "C") else arr


def from_layout0(arr, kind):
    if kind == "Y":  # [seq, D, batch, H] -> [batch, seq, D, H]
        return np.ascontiguousarray(arr.transpose(2, 0, 1, 3))
    return np.ascontiguousarray(arr.transpose(1, 0, 2))  # Y_h, Y_c


# ---------------------------------------------------------------- control flow

def lstm_branch(name, rng, x, hidden, out_names):
    """A branch graph running an LSTM over the outer value x [seq, batch, in] (a capture), with its
    own weights, giving Y_h and Y_c squeezed to [batch, hidden] under `out_names`."""
    seq, batch, inp = x
    w = numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, inp)) * 0.4).astype(np.float32), name + "_W")
    r = numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, hidden)) * 0.4).astype(np.float32), name + "_R")
    b = numpy_helper.from_array((rng.standard_normal((1, 8 * hidden)) * 0.2).astype(np.float32), name + "_B")
    axes = numpy_helper.from_array(np.array([0], dtype=np.int64), name + "_axes")
    nodes = [helper.make_node("LSTM", ["x", w.name, r.name, b.name, "", "h0"], ["", name + "_h", name + "_c"],
                              name=name + "_lstm", hidden_size=hidden),
             helper.make_node("Squeeze", [name + "_h", axes.name], [out_names[0]], name=name + "_sq_h"),
             helper.make_node("Squeeze", [name + "_c", axes.name], [out_names[1]], name=name + "_sq_c")]
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(n, F, [batch, hidden]) for n in out_names],
                             initializer=[w, r, b, axes])


def if_lstm(rng):
    """y = If(cond) { LSTM_a(x) } else { LSTM_b(x) }: the silero pattern, decided at run time."""
    seq, batch, inp, hidden = 5, 2, 6, 8
    then_g = lstm_branch("a", rng, (seq, batch, inp), hidden, ["ha", "ca"])
    else_g = lstm_branch("b", rng, (seq, batch, inp), hidden, ["hb", "cb"])
    x = rng.standard_normal((seq, batch, inp)).astype(np.float32)
    h0 = rng.standard_normal((1, batch, hidden)).astype(np.float32)
    model = make_model([helper.make_node("If", ["cond"], ["h", "c"], name="pick", then_branch=then_g,
                                         else_branch=else_g)],
                       [helper.make_tensor_value_info("cond", TensorProto.BOOL, []), info("x", x), info("h0", h0)],
                       [helper.make_tensor_value_info("h", F, [batch, hidden]),
                        helper.make_tensor_value_info("c", F, [batch, hidden])])
    return model, {"x": x, "h0": h0}


def if_folded(rng):
    """The same If with a condition computed from x's shape (size == 60): known at build time,
    so kiln inlines the then-branch and no subgraph is left."""
    model, feeds = if_lstm(rng)
    g = model.graph
    sixty = numpy_helper.from_array(np.array(60, dtype=np.int64), "sixty")
    g.initializer.append(sixty)
    g.node.insert(0, helper.make_node("Size", ["x"], ["n"], name="size"))
    g.node.insert(1, helper.make_node("Equal", ["n", "sixty"], ["cond"], name="is60"))
    del g.input[0]
    return model, feeds


def loop_lstm_stream(rng):
    """A streaming LSTM: Loop(m, cond) feeds chunk i of x [m_max, batch, in] through one LSTM step
    per iteration, carrying h and c, until iteration >= stop (a run-time input); returns the
    final state. Gather at the iteration number needs it at run time: the loop runs its body."""
    steps, batch, inp, hidden = 6, 2, 3, 5
    w = numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, inp)) * 0.5).astype(np.float32), "W")
    r = numpy_helper.from_array((rng.standard_normal((1, 4 * hidden, hidden)) * 0.5).astype(np.float32), "R")
    one = numpy_helper.from_array(np.array(1, dtype=np.int64), "one")
    body = helper.make_graph(
        [helper.make_node("Gather", ["x", "i"], ["xt"], name="chunk", axis=0),
         helper.make_node("Unsqueeze", ["xt", "zero_axis"], ["xt3"], name="to_seq"),
         helper.make_node("LSTM", ["xt3", "W", "R", "", "", "h_in", "c_in"], ["", "h_out", "c_out"], name="step",
                          hidden_size=hidden),
         helper.make_node("Add", ["i", "one"], ["next"], name="next_i"),
         helper.make_node("Less", ["next", "stop"], ["go"], name="keep_going")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", F, [1, batch, hidden]),
         helper.make_tensor_value_info("c_in", F, [1, batch, hidden])],
        [helper.make_tensor_value_info("go", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", F, [1, batch, hidden]),
         helper.make_tensor_value_info("c_out", F, [1, batch, hidden])],
        initializer=[one])
    zero_axis = numpy_helper.from_array(np.array([0], dtype=np.int64), "zero_axis")
    x = rng.standard_normal((steps, batch, inp)).astype(np.float32)
    h0 = rng.standard_normal((1, batch, hidden)).astype(np.float32)
    c0 = rng.standard_normal((1, batch, hidden)).astype(np.float32)
    model = make_model(
        [helper.make_node("Loop", ["m", "", "h0", "c0"], ["h", "c"], name="stream", body=body)],
        [helper.make_tensor_value_info("m", TensorProto.INT64, []),
         helper.make_tensor_value_info("stop", TensorProto.INT64, []), info("x", x), info("h0", h0), info("c0", c0)],
        [helper.make_tensor_value_info("h", F, [1, batch, hidden]), helper.make_tensor_value_info("c", F, [1, batch, hidden])],
        [w, r, zero_axis])
    return model, {"x": x, "h0": h0, "c0": c0}


def loop_scan_outputs(rng, trips, keep_scan=True):
    """Loop with a build-time trip count and scan outputs: s = tanh(s * a + i); each iteration's s
    is stacked (unless keep_scan is false: the scan output is then not a graph output, read by
    nothing; onnxruntime refuses a Loop output named ""). Past kiln's
    unrolling limit the body runs at run time."""
    n = 4
    a = numpy_helper.from_array(rng.uniform(0.5, 1.5, size=(n,)).astype(np.float32), "a")
    m = numpy_helper.from_array(np.array(trips, dtype=np.int64), "m")
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["fi"], name="as_float", to=F),
         helper.make_node("Mul", ["s_in", "a"], ["sa"], name="scale"),
         helper.make_node("Add", ["sa", "fi"], ["pre"], name="plus_i"),
         helper.make_node("Tanh", ["pre"], ["s_out"], name="squash"),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="same_cond"),
         helper.make_node("Identity", ["s_out"], ["stacked"], name="emit")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_in", F, [n])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("s_out", F, [n]),
         helper.make_tensor_value_info("stacked", F, [n])])
    s0 = rng.standard_normal((n,)).astype(np.float32)
    outputs = [helper.make_tensor_value_info("s", F, [n])]
    if keep_scan:
        outputs.append(helper.make_tensor_value_info("all", F, [trips, n]))
    model = make_model([helper.make_node("Loop", ["m", "", "s0"], ["s", "all" if keep_scan else "unread"], name="iterate",
                                         body=body)], [info("s0", s0)], outputs, [a, m])
    return model, {"s0": s0}


def scan9(rng):
    """Scan-9 with a reversed scan input along axis 1 and a reversed scan output along axis 1:
    running sum with a GRU-like squash."""
    rows, seq, n = 3, 5, 4
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "col"], ["sum"], name="acc_add"),
         helper.make_node("Tanh", ["sum"], ["acc_out"], name="acc_tanh"),
         helper.make_node("Mul", ["acc_out", "col"], ["emit"], name="acc_emit")],
        "body", [helper.make_tensor_value_info("acc", F, [rows, n]), helper.make_tensor_value_info("col", F, [rows, n])],
        [helper.make_tensor_value_info("acc_out", F, [rows, n]), helper.make_tensor_value_info("emit", F, [rows, n])])
    init = rng.standard_normal((rows, n)).astype(np.float32)
    x = rng.standard_normal((rows, seq, n)).astype(np.float32)
    model = make_model(
        [helper.make_node("Scan", ["init", "x"], ["final", "ys"], name="scan", body=body, num_scan_inputs=1,
                          scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[-1],
                          scan_output_directions=[1])],
        [info("init", init), info("x", x)],
        [helper.make_tensor_value_info("final", F, [rows, n]), helper.make_tensor_value_info("ys", F, [rows, n, seq])])
    return model, {"init": init, "x": x}


def scan8(rng):
    """Scan-8 (batched, with sequence_lens and a reversed input): per batch item, a running max."""
    batch, seq, n = 3, 4, 2
    body = helper.make_graph(
        [helper.make_node("Max", ["acc", "v"], ["acc_out"], name="running_max"),
         helper.make_node("Add", ["acc_out", "v"], ["emit"], name="emit_sum")],
        "body", [helper.make_tensor_value_info("acc", F, [n]), helper.make_tensor_value_info("v", F, [n])],
        [helper.make_tensor_value_info("acc_out", F, [n]), helper.make_tensor_value_info("emit", F, [n])])
    init = rng.standard_normal((batch, n)).astype(np.float32)
    x = rng.standard_normal((batch, seq, n)).astype(np.float32)
    lens = np.array([seq, 2, 3], dtype=np.int64)
    model = make_model(
        [helper.make_node("Scan", ["lens", "init", "x"], ["final", "ys"], name="scan8", body=body, num_scan_inputs=1,
                          directions=[1])],
        [info("lens", lens), info("init", init), info("x", x)],
        [helper.make_tensor_value_info("final", F, [batch, n]), helper.make_tensor_value_info("ys", F, [batch, seq, n])],
        opset=8)
    return model, {"lens": lens, "init": init, "x": x}


def loop_with_if(rng):
    """Nested control flow at run time: a Loop whose body branches on the iteration number
    (i < 2: s + x, else s * 0.5), x captured from the main graph through both levels."""
    n = 3
    half = numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half")
    two = numpy_helper.from_array(np.array(2, dtype=np.int64), "two")
    early_g = helper.make_graph([helper.make_node("Add", ["s_in", "x"], ["e"], name="add_x")], "early", [],
                                [helper.make_tensor_value_info("e", F, [n])])
    late_g = helper.make_graph([helper.make_node("Mul", ["s_in", "half"], ["l"], name="halve")], "late", [],
                               [helper.make_tensor_value_info("l", F, [n])])
    body = helper.make_graph(
        [helper.make_node("Less", ["i", "two"], ["early"], name="is_early"),
         helper.make_node("If", ["early"], ["s_out"], name="branch", then_branch=early_g, else_branch=late_g),
         helper.make_node("Identity", ["c_in"], ["c_out"], name="same_cond")],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s_in", F, [n])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("s_out", F, [n])])
    x = rng.standard_normal((n,)).astype(np.float32)
    s0 = rng.standard_normal((n,)).astype(np.float32)
    model = make_model([helper.make_node("Loop", ["m", "", "s0"], ["s"], name="outer_loop", body=body)],
                       [helper.make_tensor_value_info("m", TensorProto.INT64, []), info("x", x), info("s0", s0)],
                       [helper.make_tensor_value_info("s", F, [n])], [half, two])
    return model, {"x": x, "s0": s0}
