"""Small ONNX graphs built with onnx.helper the way real exporters write them, for the ops kiln
added for real exports (issue 9): torch's nn.TransformerEncoder at opset 14 and 17 (integer
shape arithmetic with Mod, a hashed-id Mod at run time), a torch-dynamo style sentence
encoder head (GatherND pooling, CumSum position ids, a Trilu causal mask, TopK +
GatherElements, OneHot, a ScatterND cache update, Einsum attention, ArgMax), a vision block at
opset 21 (GroupNormalization, Gelu, DepthToSpace/SpaceToDepth, Einsum, ReduceL2/LogSumExp) and
an opset-9 decoder (Upsample, Scatter, OneHot). Each builder writes the model and returns its
inputs; export_patterns_test.py compares kiln with onnxruntime on them. Weights are random:
the check is that kiln computes what onnxruntime computes on the same graph.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _const(nodes, name, value):
    nodes.append(helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(np.asarray(value), name)))
    return name


def _save(path, nodes, inputs, outputs, inits, opset):
    g = helper.make_graph(nodes, path.rsplit("/", 1)[-1].replace(".onnx", ""), inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch")
    m.ir_version = 8
    onnx.save(m, path)


def transformer_encoder(path, opset, rng, seq=5, batch=2, d=16, heads=4, ff=32, buckets=7):
    """One nn.TransformerEncoderLayer (post-norm, ReLU) as torch.onnx exports it with dynamic
    axes: the head size is E // heads, which the exporter writes as Div with a Mod-based sign
    fix; torch's LayerNorm is one op from opset 17, a ReduceMean chain before. Token ids are
    hashed into `buckets` embedding rows with a Mod at run time."""
    n, inits = [], []

    def w(name, *shape, scale=0.3):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def node(op, ins, outs, **kw):
        n.append(helper.make_node(op, ins, outs, name=outs[0], **kw))
        return outs[0]

    # Hashed token ids: embedding row = id mod buckets (int64 Mod on data).
    node("Mod", ["ids", _const(n, "buckets", np.array(buckets, np.int64))], ["bucket"])
    node("Gather", [w("emb", buckets, d), "bucket"], ["tok"])
    x0 = node("Add", ["x", "tok"], ["x0"])
    # Shape arithmetic: head_dim = floor(E / heads) as torch writes floor division of ints.
    shp = node("Shape", [x0], ["shape"])
    S = node("Gather", [shp, _const(n, "i0", np.array(0, np.int64))], ["S"])
    B = node("Gather", [shp, _const(n, "i1", np.array(1, np.int64))], ["B"])
    E = node("Gather", [shp, _const(n, "i2", np.array(2, np.int64))], ["E"])
    H = _const(n, "heads", np.array(heads, np.int64))
    zero = _const(n, "zero", np.array(0, np.int64))
    q = node("Div", [E, H], ["E_div"])
    rem = node("Mod", [E, H], ["E_mod"])
    neg = node("Xor", [node("Less", [E, zero], ["E_neg"]), node("Less", [H, zero], ["H_neg"])], ["sign_differs"])
    fix = node("And", [node("Not", [node("Equal", [rem, zero], ["exact"])], ["inexact"]), neg], ["fix"])
    hd = node("Sub", [q, node("Cast", [fix], ["fix_i"], to=I64)], ["head_dim"])
    BH = node("Mul", [B, H], ["BH"])
    axis0 = _const(n, "axis0", np.array([0], np.int64))
    unsq = lambda v: v + "_1d" if any(v + "_1d" in m.output for m in n) else node("Unsqueeze", [v, axis0], [v + "_1d"])  # noqa: E731
    split_shape = node("Concat", [unsq(S), unsq(BH), unsq(hd)], ["split_shape"], axis=0)
    merge_shape = node("Concat", [unsq(S), unsq(B), unsq(E)], ["merge_shape"], axis=0)

    qkv = node("Add", [node("MatMul", [x0, w("in_proj_w", d, 3 * d)], ["qkv_mm"]), w("in_proj_b", 3 * d)], ["qkv"])
    node("Split", [qkv, _const(n, "split3", np.array([d, d, d], np.int64))], ["q", "k", "v"], axis=-1)
    heads_of = lambda t: node("Transpose", [node("Reshape", [t, split_shape], [t + "_r"])], [t + "_h"], perm=[1, 0, 2])  # noqa: E731
    qh, kh, vh = heads_of("q"), heads_of("k"), heads_of("v")
    scale = _const(n, "scale", np.array(1.0 / np.sqrt(d // heads), np.float32))
    scores = node("MatMul", [node("Mul", [qh, scale], ["q_s"]), node("Transpose", [kh], ["k_t"], perm=[0, 2, 1])], ["scores"])
    att = node("MatMul", [node("Softmax", [scores], ["probs"], axis=-1), vh], ["att"])
    merged = node("Reshape", [node("Transpose", [att], ["att_t"], perm=[1, 0, 2]), merge_shape], ["merged"])
    proj = node("Add", [node("MatMul", [merged, w("out_proj_w", d, d)], ["o_mm"]), w("out_proj_b", d)], ["proj"])

    def layer_norm(x, tag):
        g, b = w(tag + "_g", d, scale=1.0), w(tag + "_b", d)
        if opset >= 17:
            return node("LayerNormalization", [x, g, b], [tag], axis=-1, epsilon=1e-5)
        mean = node("ReduceMean", [x], [tag + "_mean"], axes=[-1])
        dev = node("Sub", [x, mean], [tag + "_dev"])
        var = node("ReduceMean", [node("Pow", [dev, _const(n, tag + "_two", np.array(2.0, np.float32))], [tag + "_sq"])],
                   [tag + "_var"], axes=[-1])
        std = node("Sqrt", [node("Add", [var, _const(n, tag + "_eps", np.array(1e-5, np.float32))], [tag + "_ve"])], [tag + "_std"])
        return node("Add", [node("Mul", [node("Div", [dev, std], [tag + "_n"]), g], [tag + "_ng"]), b], [tag])

    h1 = layer_norm(node("Add", [x0, proj], ["res1"]), "norm1")
    ff1 = node("Relu", [node("Add", [node("MatMul", [h1, w("lin1_w", d, ff)], ["f1"]), w("lin1_b", ff)], ["f1b"])], ["f1r"])
    ff2 = node("Add", [node("MatMul", [ff1, w("lin2_w", ff, d)], ["f2"]), w("lin2_b", d)], ["f2b"])
    layer_norm(node("Add", [h1, ff2], ["res2"]), "y")
    _save(path, n, [helper.make_tensor_value_info("x", F, ["S", "B", d]), helper.make_tensor_value_info("ids", I64, ["S", "B"])],
          [helper.make_tensor_value_info("y", F, None)], inits, opset)
    return {"x": rng.standard_normal((seq, batch, d)).astype(np.float32),
            "ids": rng.integers(-1000, 1000, (seq, batch)).astype(np.int64)}


def encoder_head(path, rng, batch=2, seq=6, d=8, k=3, classes=5):
    """A sentence-encoder head as a torch-dynamo export writes it (opset 18): position ids from a
    CumSum of the attention mask, a Trilu causal mask, Einsum attention, the [SEP] token's vector
    picked by GatherND (index pairs, and batch_dims=1), TopK + GatherElements over the scores,
    a ScatterND write into a cache, OneHot labels and an ArgMax prediction."""
    n, inits = [], []

    def w(name, *shape):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * 0.5).astype(np.float32), name))
        return name

    def node(op, ins, outs, **kw):
        n.append(helper.make_node(op, ins, outs, name=outs[0], **kw))
        return outs[0]

    one = _const(n, "one", np.array(1, np.int64))
    pos = node("Sub", [node("Mul", [node("CumSum", ["mask", one], ["cs"]), "mask"], ["cs_m"]), one], ["pos"])
    h = node("Add", ["h", node("Gather", [w("pos_emb", seq + 1, d), node("Relu", [pos], ["pos_c"])], ["pe"])], ["h_pos"])
    causal = node("Trilu", [node("ConstantOfShape", [_const(n, "ss", np.array([seq, seq], np.int64))], ["ones"],
                                 value=numpy_helper.from_array(np.array([1.0], np.float32)))], ["tri"], upper=0)
    scores = node("Einsum", [h, h], ["scores"], equation="bqd,bkd->bqk")
    neg = _const(n, "neg", np.array(-1e4, np.float32))
    masked = node("Where", [node("Cast", [causal], ["tri_b"], to=TensorProto.BOOL), scores, neg], ["masked"])
    ctx = node("Einsum", [node("Softmax", [masked], ["p"], axis=-1), h], ["ctx"], equation="bqk,bkd->bqd")
    # The [SEP] position (token id 2) per sequence, then its vector two ways.
    sep = node("ArgMax", [node("Cast", [node("Equal", ["ids", _const(n, "sep_id", np.array(2, np.int64))], ["is_sep"])],
                                ["is_sep_i"], to=TensorProto.INT32)], ["sep"], axis=1, keepdims=0)
    pairs = node("Concat", [node("Unsqueeze", [_const(n, "batch_ids", np.arange(batch, dtype=np.int64)), one], ["bi"]),
                            node("Unsqueeze", [sep, one], ["si"])], ["pairs"], axis=1)
    pooled = node("GatherND", [ctx, pairs], ["pooled"])
    pooled_b = node("GatherND", [ctx, node("Unsqueeze", [sep, one], ["sep_1"])], ["pooled_b"], batch_dims=1)
    logits = node("MatMul", [node("Add", [pooled, pooled_b], ["pooled2"]), w("cls_w", d, classes)], ["logits"])
    node("ArgMax", [logits], ["pred"], axis=-1, keepdims=0)
    node("TopK", [masked, _const(n, "k", np.array([k], np.int64))], ["top_v", "top_i"], axis=-1)
    node("GatherElements", [ctx, node("Slice", ["top_i", _const(n, "s0", np.array([0], np.int64)),
                                                 _const(n, "s1", np.array([d], np.int64)),
                                                 _const(n, "s2", np.array([2], np.int64))], ["top_d"])],
         ["picked"], axis=1)
    node("ScatterND", ["cache", _const(n, "slot", np.array([[1], [0]], np.int64)), pooled], ["cache_out"])
    node("ReduceSum", [node("Mul", [node("OneHot", ["labels", _const(n, "depth", np.array(classes, np.int64)),
                                                   _const(n, "onoff", np.array([0.0, 1.0], np.float32))], ["onehot"]),
                                    node("LogSoftmax", [logits], ["logp"], axis=-1)], ["nll_terms"])],
         ["nll"], keepdims=0)
    outs = ["pred", "top_v", "top_i", "picked", "cache_out", "nll"]
    _save(path, n, [helper.make_tensor_value_info("h", F, [batch, seq, d]), helper.make_tensor_value_info("mask", I64, [batch, seq]),
                    helper.make_tensor_value_info("ids", I64, [batch, seq]),
                    helper.make_tensor_value_info("cache", F, [3, d]), helper.make_tensor_value_info("labels", I64, [batch])],
          [helper.make_tensor_value_info(o, I64 if o in ("pred", "top_i") else F, None) for o in outs], inits, 18)
    mask = np.ones((batch, seq), np.int64)
    mask[0, -2:] = 0
    ids = rng.integers(3, 100, (batch, seq)).astype(np.int64)
    ids[0, 3] = 2
    ids[1, 5] = 2
    return {"h": rng.standard_normal((batch, seq, d)).astype(np.float32), "mask": mask, "ids": ids,
            "cache": rng.standard_normal((3, d)).astype(np.float32), "labels": np.array([1, 4], np.int64)}


def vision_block(path, rng):
    """Opset 21: GroupNormalization (per-channel scale), Gelu (tanh), a pixel-shuffle
    DepthToSpace (CRD) and its SpaceToDepth inverse, an Einsum channel mix, a ReduceL2
    normalization and ReduceLogSumExp/ReduceProd/ReduceL1/ReduceSumSquare heads."""
    n, inits = [], []

    def w(name, *shape, lo=-0.5, hi=0.5):
        inits.append(numpy_helper.from_array(rng.uniform(lo, hi, shape).astype(np.float32), name))
        return name

    def node(op, ins, outs, **kw):
        n.append(helper.make_node(op, ins, outs, name=outs[0], **kw))
        return outs[0]

    g = node("GroupNormalization", ["x", w("gn_s", 8, lo=0.5, hi=1.5), w("gn_b", 8)], ["gn"], num_groups=4, epsilon=1e-5)
    a = node("Gelu", [g], ["gelu"], approximate="tanh")
    up = node("DepthToSpace", [a], ["up"], blocksize=2, mode="CRD")
    mixed = node("Einsum", [node("SpaceToDepth", [node("Gelu", [up], ["gelu2"])], ["down"], blocksize=2), w("mix", 4, 8)],
                 ["mixed"], equation="bchw,dc->bdhw")
    norm = node("ReduceL2", [mixed, _const(n, "ax1", np.array([1], np.int64))], ["l2"], keepdims=1)
    y = node("Div", [mixed, node("Add", [norm, _const(n, "tiny", np.array(1e-6, np.float32))], ["l2e"])], ["y"])
    hw = _const(n, "hw", np.array([2, 3], np.int64))
    node("ReduceLogSumExp", [y, hw], ["lse"], keepdims=0)
    node("ReduceProd", [node("Add", [y, _const(n, "onef", np.array(1.0, np.float32))], ["y1"]), hw], ["prod"], keepdims=0)
    node("ReduceL1", [y, hw], ["l1"], keepdims=0)
    node("ReduceSumSquare", [y, hw], ["ss"], keepdims=0)
    _save(path, n, [helper.make_tensor_value_info("x", F, [1, 8, 5, 6])],
          [helper.make_tensor_value_info(o, F, None) for o in ("y", "lse", "prod", "l1", "ss")], inits, 21)
    return {"x": rng.standard_normal((1, 8, 5, 6)).astype(np.float32) * 2 + 1}


def opset9_decoder(path, rng):
    """Opset 9: Upsample with a scales input (nearest, then linear), Scatter into a mask, OneHot."""
    n = []

    def node(op, ins, outs, **kw):
        n.append(helper.make_node(op, ins, outs, name=outs[0], **kw))
        return outs[0]

    node("Upsample", ["x", _const(n, "sc", np.array([1, 1, 2, 2], np.float32))], ["near"], mode="nearest")
    node("Upsample", ["x", _const(n, "sc2", np.array([1, 1, 2, 3], np.float32))], ["lin"], mode="linear")
    node("Scatter", [_const(n, "zeros", np.zeros((2, 5), np.float32)), "where", "what"], ["scattered"], axis=1)
    node("OneHot", ["cls", _const(n, "depth", np.array([4.0], np.float32)), _const(n, "oo", np.array([-1.0, 1.0], np.float32))],
         ["onehot"], axis=0)
    _save(path, n, [helper.make_tensor_value_info("x", F, [1, 2, 3, 4]), helper.make_tensor_value_info("where", I64, [2, 2]),
                    helper.make_tensor_value_info("what", F, [2, 2]), helper.make_tensor_value_info("cls", I64, [3])],
          [helper.make_tensor_value_info(o, F, None) for o in ("near", "lin", "scattered", "onehot")], [], 9)
    return {"x": rng.standard_normal((1, 2, 3, 4)).astype(np.float32), "where": np.array([[4, 0], [1, 3]], np.int64),
            "what": rng.standard_normal((2, 2)).astype(np.float32), "cls": np.array([3, -1, 0], np.int64)}


def if_with_lstm(path, rng, cond, op="If"):
    """An If whose branches hold an LSTM each (as silero's voice-activity detector has), the
    condition a run-time input: the If runs its branches on the CPU. With `op` another name (an
    op kiln lacks that has GRAPH attributes), kiln must name that op, not the attribute type."""
    def branch(name, direction):
        lstm = helper.make_node("LSTM", ["x", "W", "R"], ["", "h"], name=name + "_lstm", hidden_size=2,
                                direction=direction)
        return helper.make_graph([lstm], name, [], [helper.make_tensor_value_info("h", F, None)])
    init = [numpy_helper.from_array(rng.standard_normal((1, 8, 3)).astype(np.float32), "W"),
            numpy_helper.from_array(rng.standard_normal((1, 8, 2)).astype(np.float32), "R")]
    node = helper.make_node(op, ["c"], ["y"], name="vad_if", then_branch=branch("then", "forward"),
                            else_branch=branch("else", "reverse"))
    g = helper.make_graph([node], "if_lstm", [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                                              helper.make_tensor_value_info("x", F, [4, 1, 3])],
                          [helper.make_tensor_value_info("y", F, None)], init)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return {"c": np.array(cond), "x": rng.standard_normal((4, 1, 3)).astype(np.float32)}
