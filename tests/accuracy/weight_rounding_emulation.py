"""How much of a CNN's INT8 loss is the rounding of its weights, and how much a better rounding
wins back, measured independently of kiln: onnxruntime on the FP32 model (BatchNormalization
folded into the Conv before it, as kiln folds it), every Conv's weights rounded per output
channel to INT8 (symmetric, scale max|w| / 127, as kiln quantizes them) and activations left in
FP32. Roundings compared, each on the same calibration crops:
  nearest        round to nearest (kiln today, before its bias correction)
  nearest+mean   nearest, with each output channel's bias corrected by the exact mean of
                 conv(x, W - W_q) over the calibration inputs (the best a bias correction can do)
  gptq           GPTQ / Optimal Brain Quantization (Frantar et al. 2022): the weights of a row
                 are rounded one input at a time and the rounding error is spread over the
                 not-yet-rounded weights through the inverse of H = sum x x^T of the layer's
                 calibration inputs (im2col patches), minimizing E ||(W - W_q) x||^2.
  gptq+mean      GPTQ, then the mean correction of what is left.
Prints each rounding's task metric against FP32 (tests/accuracy/real_models.py; a classifier's
includes the top-1 accuracy lost if FP32's softmax were the truth).

    .venv/bin/python tests/accuracy/weight_rounding_emulation.py [--model efficientnet_lite0]
        [--calib 64] [--max-eval 40]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import real_models  # noqa: E402
from accuracy_lib import int8_weights_nearest  # noqa: E402


def fold_batchnorm(model):
    """Conv -> BatchNormalization pairs become one Conv with a bias (in place; Constant nodes become
    initializers first, as paddle2onnx writes BatchNorm parameters as Constants)."""
    import onnx
    from onnx import numpy_helper
    g = model.graph
    for c in [n for n in g.node if n.op_type == "Constant" and n.attribute[0].name == "value"]:
        t = onnx.TensorProto()  # a Constant's tensor as an initializer, so it can be folded
        t.CopyFrom(c.attribute[0].t)
        t.name = c.output[0]
        g.initializer.append(t)
        g.node.remove(c)
    inits = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    drop = []
    for conv in [n for n in g.node if n.op_type == "Conv"]:
        users = consumers.get(conv.output[0], [])
        if len(users) != 1 or users[0].op_type != "BatchNormalization":
            continue
        bn = users[0]
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[t]).astype(np.float64) for t in bn.input[1:5])
        k = gamma / np.sqrt(var + eps)
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 else 0 * mean
        inits[conv.input[1]].CopyFrom(numpy_helper.from_array(
            (w * k.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32), conv.input[1]))
        bias_name = conv.name + "_folded_bias"
        g.initializer.append(numpy_helper.from_array(((b - mean) * k + beta).astype(np.float32), bias_name))
        del conv.input[2:]
        conv.input.append(bias_name)
        conv.output[0] = bn.output[0]
        drop.append(bn)
    for bn in drop:
        g.node.remove(bn)
    used = {t for n in g.node for t in n.input}
    for i in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(i)
    return model


def attrs(node):
    from onnx import helper
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    return a.get("group", 1), a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]), a.get("dilations", [1, 1])


def patches(x, w_shape, node):
    """im2col of x [N, C, H, W] for this Conv: [groups, N*Ho*Wo, C/groups*kh*kw]."""
    groups, (sh, sw), pads, (dh, dw) = attrs(node)
    if (dh, dw) != (1, 1):
        sys.exit("weight_rounding_emulation: dilated convolutions are not handled")
    kh, kw = w_shape[2], w_shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    n, c, ho, wo = win.shape[:4]
    win = win.reshape(n, groups, c // groups, ho, wo, kh * kw).transpose(1, 0, 3, 4, 2, 5)
    return win.reshape(groups, n * ho * wo, (c // groups) * kh * kw)


def gptq(w, h, damp=0.01):
    """Rows of w [rows, d] rounded to INT8 (scale max|row| / 127) one column at a time, the error
    spread over the later columns by the upper Cholesky factor of H^-1."""
    w = w.astype(np.float64).copy()
    s = np.abs(w).max(1) / 127
    s[s == 0] = 1
    h = h.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    h += damp * np.mean(np.diag(h)) * np.eye(len(h))
    u = np.linalg.cholesky(np.linalg.inv(h)).T  # upper: H^-1 = U^T U
    q = np.zeros_like(w)
    for i in range(w.shape[1]):
        q[:, i] = np.clip(np.round(w[:, i] / s), -127, 127) * s
        err = (w[:, i] - q[:, i]) / u[i, i]
        w[:, i + 1:] -= np.outer(err, u[i, i + 1:])
    return q


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0", choices=sorted(real_models.MODELS))
    ap.add_argument("--dir", default=os.path.expanduser("~/.cache/kiln/real-models"))
    ap.add_argument("--calib", type=int, default=64)
    ap.add_argument("--max-eval", type=int, default=40, help="evaluated samples (as real_models_accuracy.py)")
    ap.add_argument("--roundings", default="nearest,nearest+mean,gptq,gptq+mean")
    args = ap.parse_args()
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    ort.set_default_logger_severity(3)
    mod = real_models.MODELS[args.model](args.dir, False)
    calib, evals = mod.calib(args.calib), mod.inputs()
    if len(evals) > args.max_eval:  # the even subsample real_models_accuracy.py takes
        evals = [evals[i] for i in np.linspace(0, len(evals) - 1, args.max_eval).round().astype(int)]
    metric = (lambda r, g: mod.metric(r, g, evals)) if mod.kind == "transformer" else mod.metric
    base = fold_batchnorm(onnx.load(mod.onnx))
    inits = {i.name: i for i in base.graph.initializer}
    convs = [n for n in base.graph.node if n.op_type == "Conv" and n.input[1] in inits]
    for n in convs:  # every Conv gets a bias, which the mean correction adjusts
        if len(n.input) < 3:
            out_ch = inits[n.input[1]].dims[0]
            base.graph.initializer.append(numpy_helper.from_array(np.zeros(out_ch, np.float32), n.name + "_bias0"))
            n.input.append(n.name + "_bias0")
    outputs = [o.name for o in base.graph.output]

    def session(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])

    def run_all(m):
        sv = session(m)
        keys = ["".join(c if c.isalnum() or c in "._-" else "_" for c in o) for o in outputs]
        return [dict(zip(keys, sv.run(outputs, x))) for x in evals]

    # Each Conv's H (per group) and input channel means, from the calibration samples.
    probe = onnx.ModelProto()
    probe.CopyFrom(base)
    probe.graph.output.extend(onnx.ValueInfoProto(name=n.input[0]) for n in convs)
    s = session(probe)
    hs = [None] * len(convs)
    means = [None] * len(convs)
    counts = [0] * len(convs)
    for x in calib:
        outs = s.run([n.input[0] for n in convs], x)
        for i, (n, a) in enumerate(zip(convs, outs)):
            p = patches(a, inits[n.input[1]].dims, n)
            h = (p.transpose(0, 2, 1) @ p).astype(np.float64)
            hs[i] = h if hs[i] is None else hs[i] + h
            m = p.sum(1, dtype=np.float64)
            means[i] = m if means[i] is None else means[i] + m
            counts[i] += p.shape[1]
    means = [m / c for m, c in zip(means, counts)]
    del s

    def variant(kind):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        mi = {i.name: i for i in m.graph.initializer}
        for n, h, mean in zip(convs, hs, means):
            w = numpy_helper.to_array(mi[n.input[1]]).astype(np.float64)
            groups = attrs(n)[0]
            rows = w.reshape(groups, w.shape[0] // groups, -1)
            if kind.startswith("gptq"):
                q = np.stack([gptq(rows[g], h[g]) for g in range(groups)]).reshape(w.shape)
            else:
                q = int8_weights_nearest(w)
            if kind.endswith("+mean"):
                dq = (w - q).reshape(groups, w.shape[0] // groups, -1)
                shift = np.einsum("gri,gi->gr", dq, mean).reshape(-1)
                b = numpy_helper.to_array(mi[n.input[2]]).astype(np.float64)
                mi[n.input[2]].CopyFrom(numpy_helper.from_array((b + shift).astype(np.float32), n.input[2]))
            mi[n.input[1]].CopyFrom(numpy_helper.from_array(q.astype(np.float32), n.input[1]))
        return run_all(m)

    ref = run_all(base)
    print(f"{args.model}: {len(evals)} evaluated samples, {len(calib)} calibration samples, {len(convs)} Convs; "
          f"{mod.what}", flush=True)
    for kind in args.roundings.split(","):
        value, detail = metric(ref, variant(kind))
        print(f"{kind:13s} {value:6.2f}  {detail}", flush=True)


if __name__ == "__main__":
    main()
