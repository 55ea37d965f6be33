"""Attention blocks built with onnx.helper node for node the way torch.onnx (TorchScript
exporter, opset 14 and 17) writes them, for the fuse_attention pass (attention_ort_test.py):

  bert_self_attention   transformers' BertSelfAttention (eager) + BertSelfOutput, the extended
                        mask (1 - mask[:, None, None, :]) * finfo.min computed from an int64
                        attention_mask, head-split shapes from Shape/Gather/Concat (dynamic axes)
  multihead_attention   nn.MultiheadAttention (batch_first=False, need_weights=True): packed
                        in-projection, [N*H, L, D] heads, q * sqrt(1/D), baddbmm with a
                        key_padding_mask turned into -inf, the averaged weights optionally an output
  sdpa                  F.scaled_dot_product_attention's opset-14 symbolic: sqrt(scale) on Q and
                        on K^T (scale from Shape), a float, bool or causal (is_causal) mask

Each builder writes the model and returns its inputs (a dict of numpy arrays).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
INT64_MAX = np.iinfo(np.int64).max


class _Graph:
    def __init__(self, rng):
        self.rng, self.nodes, self.inits, self.count = rng, [], [], 0

    def node(self, op, ins, n_out=1, **kw):
        self.count += 1
        outs = [f"{op.lower()}_{self.count}" + (f"_{i}" if n_out > 1 else "") for i in range(n_out)]
        self.nodes.append(helper.make_node(op, ins, outs, name=f"{op}_{self.count}", **kw))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=None):
        """A Constant node, as the TorchScript exporter writes literals."""
        arr = np.asarray(value, dtype=dtype)
        self.count += 1
        name = f"const_{self.count}"
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=numpy_helper.from_array(arr, name)))
        return name

    def weight(self, *shape, scale=0.2):
        self.count += 1
        name = f"w_{self.count}"
        self.inits.append(numpy_helper.from_array((self.rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def linear(self, x, din, dout):
        """nn.Linear on a 3-D input: MatMul by the transposed weight, then Add(bias, .)."""
        return self.node("Add", [self.weight(dout, scale=0.05), self.node("MatMul", [x, self.weight(din, dout)])])

    def save(self, path, inputs, outputs, opset):
        g = helper.make_graph(self.nodes, "attention_block", inputs, outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="pytorch")
        m.ir_version = 8
        onnx.save(m, path)

    def dim(self, x, i):
        """x.size(i) as a 1-D int64 tensor: Shape -> Gather -> Unsqueeze."""
        g = self.node("Gather", [self.node("Shape", [x]), self.const(i, np.int64)], axis=0)
        return self.node("Unsqueeze", [g, self.const([0], np.int64)])

    def layer_norm(self, x, d, opset):
        g, b = self.weight(d, scale=1.0), self.weight(d, scale=0.1)
        if opset >= 17:
            return self.node("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-12)
        mean = self.node("ReduceMean", [x], axes=[-1])
        dev = self.node("Sub", [x, mean])
        var = self.node("ReduceMean", [self.node("Pow", [dev, self.const(2.0, np.float32)])], axes=[-1])
        std = self.node("Sqrt", [self.node("Add", [var, self.const(1e-12, np.float32)])])
        return self.node("Add", [self.node("Mul", [self.node("Div", [dev, std]), g]), b])


def bert_self_attention(path, opset, rng, batch=2, seq=7, hidden=64, heads=4, padded_batch=None):
    """BertSelfAttention + BertSelfOutput as exported with dynamic batch and sequence axes.
    padded_batch: that batch element's attention_mask is all zeros (a fully padded sequence)."""
    g = _Graph(rng)
    d = hidden // heads
    x = "hidden_states"
    # BertModel.get_extended_attention_mask: mask[:, None, None, :], to float, (1 - m) * min.
    ext = g.node("Unsqueeze", [g.node("Unsqueeze", ["attention_mask", g.const([1], np.int64)]), g.const([2], np.int64)])
    ext = g.node("Cast", [ext], to=F)
    ext = g.node("Mul", [g.node("Sub", [g.const(1.0, np.float32), ext]), g.const(np.finfo(np.float32).min, np.float32)])

    def heads_of(t):  # transpose_for_scores
        shape = g.node("Concat", [g.dim(t, 0), g.dim(t, 1), g.const([heads], np.int64), g.const([d], np.int64)], axis=0)
        return g.node("Transpose", [g.node("Reshape", [t, shape])], perm=[0, 2, 1, 3])

    q = heads_of(g.linear(x, hidden, hidden))
    k = heads_of(g.linear(x, hidden, hidden))
    v = heads_of(g.linear(x, hidden, hidden))
    scores = g.node("MatMul", [q, g.node("Transpose", [k], perm=[0, 1, 3, 2])])
    scores = g.node("Div", [scores, g.const(np.sqrt(d), np.float32)])
    scores = g.node("Add", [scores, ext])
    ctx = g.node("MatMul", [g.node("Softmax", [scores], axis=-1), v])
    ctx = g.node("Transpose", [ctx], perm=[0, 2, 1, 3])
    merged = g.node("Concat", [g.dim(ctx, 0), g.dim(ctx, 1), g.const([hidden], np.int64)], axis=0)
    ctx = g.node("Reshape", [ctx, merged])
    out = g.layer_norm(g.node("Add", [g.linear(ctx, hidden, hidden), x]), hidden, opset)
    g.nodes.append(helper.make_node("Identity", [out], ["y"], name="y"))
    g.save(path, [helper.make_tensor_value_info(x, F, ["batch", "seq", hidden]),
                  helper.make_tensor_value_info("attention_mask", I64, ["batch", "seq"])],
           [helper.make_tensor_value_info("y", F, None)], opset)
    mask = np.ones((batch, seq), np.int64)
    for b in range(1, batch):
        mask[b, seq - b:] = 0  # right padding, every row keeps a token
    if padded_batch is not None:
        mask[padded_batch, :] = 0
    return {x: rng.standard_normal((batch, seq, hidden)).astype(np.float32), "attention_mask": mask}


def multihead_attention(path, opset, rng, L=6, N=3, E=32, heads=4, weights_output=False):
    """nn.MultiheadAttention(E, heads)(x, x, x, key_padding_mask=pad), need_weights=True."""
    g = _Graph(rng)
    d = E // heads
    x = "x"
    proj = g.node("Add", [g.node("MatMul", [x, g.weight(E, 3 * E)]), g.weight(3 * E, scale=0.05)])
    proj = g.node("Reshape", [proj, g.const([L, N, 3, E], np.int64)])
    proj = g.node("Unsqueeze", [proj, g.const([0], np.int64)])
    proj = g.node("Transpose", [proj], perm=[3, 1, 2, 0, 4])
    proj = g.node("Squeeze", [proj, g.const([3], np.int64)])

    def heads_of(i):
        t = g.node("Gather", [proj, g.const(i, np.int64)], axis=0)
        return g.node("Transpose", [g.node("Reshape", [t, g.const([L, N * heads, d], np.int64)])], perm=[1, 0, 2])

    q, k, v = heads_of(0), heads_of(1), heads_of(2)
    # F._canonical_mask: zeros masked_fill(pad, -inf); merged per head into [N*H, 1, S].
    pad = g.node("Where", ["key_padding_mask", g.const(-np.inf, np.float32), g.const(0.0, np.float32)])
    pad = g.node("Reshape", [pad, g.const([N, 1, 1, L], np.int64)])
    pad = g.node("Expand", [pad, g.const([N, heads, 1, L], np.int64)])
    pad = g.node("Reshape", [pad, g.const([N * heads, 1, L], np.int64)])
    q_scaled = g.node("Mul", [q, g.const(np.sqrt(1.0 / d), np.float32)])
    # baddbmm(mask, q_scaled, k^T) with alpha = beta = 1, each a Cast of a constant.
    one = lambda: g.node("Cast", [g.const(1, np.int64)], to=F)  # noqa: E731
    mm = g.node("MatMul", [q_scaled, g.node("Transpose", [k], perm=[0, 2, 1])])
    w = g.node("Add", [g.node("Mul", [mm, one()]), g.node("Mul", [pad, one()])])
    w = g.node("Softmax", [w], axis=-1)
    out = g.node("MatMul", [w, v])
    out = g.node("Reshape", [g.node("Transpose", [out], perm=[1, 0, 2]), g.const([L * N, E], np.int64)])
    out = g.node("Gemm", [out, g.weight(E, E), g.weight(E, scale=0.05)], transB=1)
    g.nodes.append(helper.make_node("Reshape", [out, g.const([L, N, E], np.int64)], ["y"], name="y"))
    outputs = [helper.make_tensor_value_info("y", F, None)]
    if weights_output:
        avg = g.node("Reshape", [w, g.const([N, heads, L, L], np.int64)])
        g.nodes.append(helper.make_node("ReduceMean", [avg], ["weights"], name="weights", axes=[1], keepdims=0))
        outputs.append(helper.make_tensor_value_info("weights", F, None))
    g.save(path, [helper.make_tensor_value_info(x, F, [L, N, E]),
                  helper.make_tensor_value_info("key_padding_mask", BOOL, [N, L])], outputs, opset)
    pad_mask = np.zeros((N, L), bool)
    for n in range(N):
        pad_mask[n, L - n:] = True
    return {x: rng.standard_normal((L, N, E)).astype(np.float32), "key_padding_mask": pad_mask}


def sdpa(path, opset, rng, B=2, H=3, L=9, S=9, D=16, mask="none", masked_batch=None):
    """F.scaled_dot_product_attention(q, k, v, attn_mask, is_causal=mask == "causal").
    mask: none, float ([B, 1, L, S]), bool ([B, 1, 1, S]) or causal; masked_batch: a batch whose
    bool mask is all False (every score -inf)."""
    g = _Graph(rng)
    # _attention_scale: 1 / sqrt(q.size(-1)), from the shape.
    last = g.node("Slice", [g.node("Shape", ["q"]), g.const([-1], np.int64), g.const([INT64_MAX], np.int64)])
    scale = g.node("Div", [g.const([1.0], np.float32), g.node("Sqrt", [g.node("Cast", [last], to=F)])])
    scale = g.node("Cast", [scale], to=F)
    attn_mask = None
    if mask == "causal":  # _causal_attention_mask
        tgt = g.node("Slice", [g.node("Shape", ["q"]), g.const([-2], np.int64), g.const([-1], np.int64)])
        src = g.node("Slice", [g.node("Shape", ["k"]), g.const([-2], np.int64), g.const([-1], np.int64)])
        ones = g.node("Expand", [g.const([1.0], np.float32), g.node("Concat", [tgt, src], axis=0)])
        tri = g.node("Trilu", [ones], upper=0)
        attn_mask = g.node("Where", [g.node("Equal", [tri, g.const([0.0], np.float32)]), g.const([-np.inf], np.float32),
                                     g.const([0.0], np.float32)])
    kt = g.node("Transpose", ["k"], perm=[0, 1, 3, 2])
    q_s = g.node("Mul", ["q", g.node("Sqrt", [scale])])
    k_s = g.node("Mul", [kt, g.node("Sqrt", [scale])])
    s = g.node("MatMul", [q_s, k_s])
    if mask == "bool":
        attn_mask = g.node("Where", ["attn_mask", g.const([0.0], np.float32), g.const([-np.inf], np.float32)])
    if mask == "float":
        attn_mask = "attn_mask"
    if attn_mask:
        s = g.node("Add", [s, attn_mask])
    g.nodes.append(helper.make_node("MatMul", [g.node("Softmax", [s], axis=-1), "v"], ["y"], name="y"))
    inputs = {"q": rng.standard_normal((B, H, L, D)).astype(np.float32),
              "k": rng.standard_normal((B, H, S, D)).astype(np.float32),
              "v": rng.standard_normal((B, H, S, D)).astype(np.float32)}
    if mask == "float":
        inputs["attn_mask"] = rng.uniform(-3, 0, (B, 1, L, S)).astype(np.float32)
    if mask == "bool":
        keep = rng.uniform(size=(B, 1, 1, S)) < 0.7
        keep[..., 0] = True
        if masked_batch is not None:
            keep[masked_batch] = False
        inputs["attn_mask"] = keep
    infos = [helper.make_tensor_value_info(n, BOOL if a.dtype == bool else F, list(a.shape)) for n, a in inputs.items()]
    g.save(path, infos, [helper.make_tensor_value_info("y", F, None)], opset)
    return inputs
