"""Ground truth for one layer's effect on a real model's outputs, independent of kiln: onnxruntime
on the FP32 model with one Conv's weights rounded per output channel to INT8 (symmetric, max|w| /
127), or its input fake-quantized per tensor (max |x| over the samples / 127), the rest FP32.
Prints, per Conv, the first output's relative L2 error against FP32 and the share of unchanged
argmaxes over the last axis, for each of the two.

    .venv/bin/python tests/accuracy/layer_sensitivity_ort.py --model ppocr_rec [--samples 24] [CONV ...]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import real_models  # noqa: E402
from accuracy_lib import int8_weights_nearest  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(real_models.MODELS))
    ap.add_argument("--dir", default=os.path.expanduser("~/.cache/kiln/real-models"))
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("convs", nargs="*", help="Conv node names (default: the first 12)")
    args = ap.parse_args()
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    ort.set_default_logger_severity(3)
    mod = real_models.MODELS[args.model](args.dir, False)
    samples = mod.inputs()[:args.samples]
    base = onnx.load(mod.onnx)
    convs = [n for n in base.graph.node if n.op_type == "Conv"]
    first_output = base.graph.output[0].name

    def run(m, outs=None):
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return [s.run(outs, x) for x in samples]

    # The reference output and every conv input's max |x|.
    probe = onnx.load(mod.onnx)
    inputs = sorted({n.input[0] for n in convs})
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in inputs)
    outs = run(probe)
    ref = np.concatenate([o[0] for o in outs])
    amax = {t: max(float(np.abs(o[1 + i]).max()) for o in outs) for i, t in enumerate(inputs)}

    def weight_tensor(g, name):
        for i in g.initializer:
            if i.name == name:
                return i
        for n in g.node:
            if n.op_type == "Constant" and n.output[0] == name:
                return n.attribute[0].t
        sys.exit(f"layer_sensitivity_ort: weight '{name}' is neither an initializer nor a Constant")

    def variant(conv, weights):
        m = onnx.load(mod.onnx)
        g = m.graph
        n = next(x for x in g.node if x.name == conv)
        if weights:
            t = weight_tensor(g, n.input[1])
            w = numpy_helper.to_array(t).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(int8_weights_nearest(w).astype(np.float32), t.name))
        else:
            x = n.input[0]
            g.initializer.extend([numpy_helper.from_array(np.array(amax[x] / 127, np.float32), "ls_s"),
                                  numpy_helper.from_array(np.array(0, np.int8), "ls_z")])
            at = list(g.node).index(n)
            g.node.insert(at, helper.make_node("DequantizeLinear", ["ls_q", "ls_s", "ls_z"], ["ls_dq"]))
            g.node.insert(at, helper.make_node("QuantizeLinear", [x, "ls_s", "ls_z"], ["ls_q"]))
            n.input[0] = "ls_dq"
        y = np.concatenate([o[0] for o in run(m, [first_output])])
        return np.linalg.norm(y - ref) / np.linalg.norm(ref), float((y.argmax(-1) == ref.argmax(-1)).mean())

    print(f"{args.model}: output '{first_output}', {len(samples)} samples; rel L2 / argmax agreement")
    for c in args.convs or [c.name for c in convs[:12]]:
        print("%-28s weights only: %.4f / %.4f   input only: %.4f / %.4f" % (c, *variant(c, True), *variant(c, False)),
              flush=True)


if __name__ == "__main__":
    main()
