"""RNN, GRU, LSTM and control flow end to end against ONNX Runtime: models from
recurrent_models.py are built and run by the kiln CLI on one device and compared with
onnxruntime's outputs for the same inputs.

- Random RNN/GRU/LSTM nodes (random shapes, directions, sequence_lens, initial states,
  peepholes, clip, linear_before_reset, input_forget, activations with alpha/beta, absent
  outputs, layout 0 and 1; ONNX Runtime lacks layout 1, so those are checked against its
  layout-0 run on transposed tensors).
- If decided at run time (LSTMs in both branches, the silero pattern) and at build time
  (inlined: no subgraph left), Loops with run-time trip counts and conditions, with scan
  outputs (unrolled when small, run as a subgraph when not), Scan-9 and Scan-8, and a Loop
  with an If inside.

usage: recurrent_ort_test.py KILN WORKDIR DEVICE
"""
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import recurrent_models as rm  # noqa: E402

KILN, WORK, DEVICE = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)
failures = []
ATOL, RTOL = 5e-5, 1e-4


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def kiln(*args):
    r = subprocess.run([KILN, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kiln {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def build(model, tag):
    path = os.path.join(WORK, tag + ".onnx")
    onnx.save(model, path)
    plan = os.path.join(WORK, f"{tag}_{DEVICE}.plan")
    kiln("build", path, "-o", plan, "--device", DEVICE)
    return plan


def run(plan, feeds, tag):
    args = []
    for name, arr in feeds.items():
        f = os.path.join(WORK, f"{tag}_{name}.npy")
        np.save(f, arr)
        args += ["-i", f"{name}={f}"]
    out = os.path.join(WORK, f"{tag}_{DEVICE}_out")
    kiln("run", plan, *args, "-o", out, "--device", DEVICE)
    return lambda name: np.load(os.path.join(out, name + ".npy"))


def compare(got, want, what):
    if got.shape != want.shape:
        check(False, f"{what}: shape {got.shape}, onnxruntime {want.shape}")
        return
    err = float(np.max(np.abs(got - want) - RTOL * np.abs(want))) if want.size else 0.0
    check(err <= ATOL, f"{what}: max |diff| - rtol*|ref| = {err:.2e}")


def ort_run(model, feeds):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def random_recurrent_nodes(op, rng, count=8):
    """`count` random nodes of `op` in one model (half of them layout 1), checked node by node."""
    nodes, inputs, inits, feeds, outputs, refs = [], [], [], {}, [], {}
    for k in range(count):
        layout = k % 2
        node, ins, node_inits, outs, attrs = rm.random_recurrent(op, rng, k, layout)
        nodes.append(node)
        for name, arr in ins.items():
            inputs.append(rm.info(name, arr))
            feeds[name] = arr
        inits += [onnx.numpy_helper.from_array(a, n) for n, a in node_inits.items()]
        outputs += [onnx.helper.make_tensor_value_info(o, rm.F, None) for o in outs if o]
        # Reference: the node alone in ONNX Runtime, at layout 0 (transposed in and out for layout 1).
        ref_attrs = {a: v for a, v in attrs.items() if a != "layout"}
        # ONNX Runtime's RNN (unlike its GRU and LSTM) matches activation names case-sensitively.
        canonical = {name.lower(): name for name, _ in rm.ACTS}
        if "activations" in ref_attrs:
            ref_attrs["activations"] = [canonical[a.lower()] for a in ref_attrs["activations"]]
        ref_node = onnx.helper.make_node(op, list(node.input), list(node.output), **ref_attrs)
        ref_feeds = {n: rm.to_layout0(a, n[0]) if layout else a for n, a in ins.items()}
        ref_model = rm.make_model([ref_node], [rm.info(n, a) for n, a in ref_feeds.items()],
                                  [onnx.helper.make_tensor_value_info(o, rm.F, None) for o in outs if o],
                                  [onnx.numpy_helper.from_array(a, n) for n, a in node_inits.items()])
        for name, value in ort_run(ref_model, ref_feeds).items():
            kind = "H" if name.startswith(("Yh", "Yc")) else "Y"
            refs[name] = rm.from_layout0(value, kind) if layout else value
        desc = f"{op}{k} {attrs.get('direction')} layout {layout}"
        for o in outs:
            if o:
                refs[o + "/desc"] = desc
    model = rm.make_model(nodes, inputs, outputs, inits)
    tag = f"random_{op.lower()}"
    plan = build(model, tag)
    out = run(plan, feeds, tag)
    for o in outputs:
        compare(out(o.name), refs[o.name], f"{refs[o.name + '/desc']} -> {o.name}")
    if DEVICE != "cpu":
        text = kiln("inspect", plan)
        check(f"op={op}  backend=opencl" in text, f"{op} nodes run on the OpenCL device")


def control_flow(rng):
    # If decided at run time: both branches are LSTMs (the silero pattern).
    model, feeds = rm.if_lstm(rng)
    plan = build(model, "if_lstm")
    text = kiln("inspect", plan)
    check("op=If" in text and "subgraphs (2" in text, "if_lstm: the If runs its branches as subgraphs")
    for cond in (True, False):
        f = dict(feeds, cond=np.array(cond))
        out, ref = run(plan, f, f"if_lstm_{cond}"), ort_run(model, f)
        for name in ("h", "c"):
            compare(out(name), ref[name], f"if_lstm cond={cond} -> {name}")

    # If on a build-time condition: inlined, so the LSTM runs like any node (on the device).
    model, feeds = rm.if_folded(rng)
    plan = build(model, "if_folded")
    text = kiln("inspect", plan)
    check("op=If" not in text and "subgraphs" not in text, "if_folded: the If is inlined, no subgraph left")
    if DEVICE != "cpu":
        check("op=LSTM  backend=opencl" in text, "if_folded: the inlined LSTM runs on the OpenCL device")
    out, ref = run(plan, feeds, "if_folded"), ort_run(model, feeds)
    for name in ("h", "c"):
        compare(out(name), ref[name], f"if_folded -> {name}")

    # Streaming LSTM in a Loop with run-time trip count and stop condition.
    model, feeds = rm.loop_lstm_stream(rng)
    plan = build(model, "loop_stream")
    for m, stop in ((6, 10), (6, 3), (0, 5), (4, 1)):
        f = dict(feeds, m=np.array(m, dtype=np.int64), stop=np.array(stop, dtype=np.int64))
        out, ref = run(plan, f, f"loop_stream_{m}_{stop}"), ort_run(model, f)
        for name in ("h", "c"):
            compare(out(name), ref[name], f"loop_stream m={m} stop={stop} -> {name}")

    # Scan outputs: 5 iterations are unrolled, 300 run as a subgraph (also with the scan output
    # read by nothing).
    for trips, unrolled, keep in ((5, True, True), (300, False, True), (300, False, False)):
        model, feeds = rm.loop_scan_outputs(rng, trips, keep)
        tag = f"loop_scan_{trips}_{keep}"
        plan = build(model, tag)
        text = kiln("inspect", plan)
        check(("op=Loop" not in text) == unrolled, f"{tag}: {'unrolled' if unrolled else 'kept as a Loop'}")
        out, ref = run(plan, feeds, tag), ort_run(model, feeds)
        for name in ("s", "all") if keep else ("s",):
            compare(out(name), ref[name], f"{tag} -> {name}")

    for builder in (rm.scan9, rm.scan8):
        model, feeds = builder(rng)
        tag = builder.__name__
        out, ref = run(build(model, tag), feeds, tag), ort_run(model, feeds)
        for name in ("final", "ys"):
            compare(out(name), ref[name], f"{tag} -> {name}")

    model, feeds = rm.loop_with_if(rng)
    plan = build(model, "loop_with_if")
    for m in (0, 1, 4):
        f = dict(feeds, m=np.array(m, dtype=np.int64))
        out, ref = run(plan, f, f"loop_with_if_{m}"), ort_run(model, f)
        compare(out("s"), ref["s"], f"loop_with_if m={m} -> s")


def dynamic_lstm(rng):
    """A bidirectional LSTM built once for a range of sequence lengths and batch sizes
    (--min-shapes/--max-shapes) and run at several of them."""
    hidden, inp = 6, 4
    w = (rng.standard_normal((2, 4 * hidden, inp)) * 0.5).astype(np.float32)
    r = (rng.standard_normal((2, 4 * hidden, hidden)) * 0.5).astype(np.float32)
    node = onnx.helper.make_node("LSTM", ["x", "W", "R"], ["y", "y_h"], hidden_size=hidden, direction="bidirectional")
    model = rm.make_model([node], [onnx.helper.make_tensor_value_info("x", rm.F, ["S", "N", inp])],
                          [onnx.helper.make_tensor_value_info("y", rm.F, None),
                           onnx.helper.make_tensor_value_info("y_h", rm.F, None)],
                          [onnx.numpy_helper.from_array(w, "W"), onnx.numpy_helper.from_array(r, "R")])
    path = os.path.join(WORK, "dynamic_lstm.onnx")
    onnx.save(model, path)
    plan = os.path.join(WORK, f"dynamic_lstm_{DEVICE}.plan")
    kiln("build", path, "-o", plan, "--device", DEVICE, "--min-shapes", f"x=1x1x{inp}", "--max-shapes",
         f"x=7x3x{inp}")
    for seq, batch in ((7, 3), (2, 1), (5, 2)):
        feeds = {"x": rng.standard_normal((seq, batch, inp)).astype(np.float32)}
        out, ref = run(plan, feeds, f"dynamic_lstm_{seq}_{batch}"), ort_run(model, feeds)
        for name in ("y", "y_h"):
            compare(out(name), ref[name], f"dynamic LSTM at seq {seq}, batch {batch} -> {name}")


def main():
    rng = np.random.default_rng(20261204)
    for op in ("RNN", "GRU", "LSTM"):
        try:
            random_recurrent_nodes(op, rng)
        except RuntimeError as e:
            check(False, f"random {op}: {e}")
    try:
        dynamic_lstm(rng)
    except RuntimeError as e:
        check(False, f"dynamic LSTM: {e}")
    try:
        control_flow(rng)
    except RuntimeError as e:
        check(False, f"control flow: {e}")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
