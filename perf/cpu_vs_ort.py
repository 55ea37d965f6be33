#!/usr/bin/env python3
"""kiln's cpu device against ONNX Runtime's CPU execution provider, same thread count, on the
benchmark models at batch 1 and batch 32, FP32 and INT8, in one run; writes a Markdown report.

    .venv/bin/python perf/cpu_vs_ort.py OUT.md [--kiln build/kiln] [--threads N]
        [--duration-s 3] [--repeats 2] [--models a,b,...] [--batches 1,32] [--seq 128]
        [--real-models NAME,...] [--no-int8]

Models (random weights unless noted): resnet_mini, mlp, attention (perf/models/
make_perf_models.py --batch B), resnet18 (perf/models/make_resnet18.py: torchvision's
ResNet-18 graph, 224x224), minilm (all-MiniLM-L6-v2, the real weights, exported by
scripts/export_minilm.py; sequence length --seq, random token ids), fashion_cnn
(tests/models/fashion_cnn.onnx). INT8: resnet18 quantized by onnxruntime.quantization's
quantize_static (QDQ, per-channel int8 weights, uint8 activations, 16 random calibration
images); ONNX Runtime and kiln both run that QDQ model, and kiln also its own PTQ build
(--precision int8, same images). `--real-models yolov8n_nudenet,...` adds pretrained models of
tests/accuracy/real_models.py, FP32 at their own shapes on their first real input.

Every point is measured `--repeats` times, alternating the runtimes, each for `--duration-s`
seconds after a warm-up (at least 3 inferences); the report keeps each runtime's best median
(the host is shared: the best of a few runs is the least disturbed one) and prints the load
average before and after. Throughput counts samples per second (batch x inferences / s).
kiln: `kiln bench --threads N` (one context); ONNX Runtime: intra_op_num_threads=N, default
graph optimizations. N defaults to kiln's default, the physical cores.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"cpu_vs_ort: {' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def physical_cores():
    cores = set()
    for c in os.sched_getaffinity(0):
        base = f"/sys/devices/system/cpu/cpu{c}/topology/"
        try:
            with open(base + "core_id") as f1, open(base + "physical_package_id") as f2:
                cores.add((f2.read().strip(), f1.read().strip()))
        except OSError:
            cores.add(("cpu", c))
    return len(cores)


# ---- models ----

def make_models(work, models, batches, seq):
    """{(model, batch): (onnx path, {input name: array}, kiln --shapes args)}"""
    py = sys.executable
    out = {}
    rng = np.random.default_rng(7)
    for b in batches:
        d = os.path.join(work, f"b{b}")
        if {"resnet_mini", "mlp", "attention"} & set(models):
            sh([py, os.path.join(ROOT, "perf/models/make_perf_models.py"), d, "--batch", str(b)])
        for m, shape in (("resnet_mini", (b, 3, 64, 64)), ("mlp", (b, 512)), ("attention", (b, 64, 128))):
            if m in models:
                out[(m, b)] = (os.path.join(d, m + ".onnx"), {"input": rng.uniform(-1, 1, shape).astype(np.float32)}, [])
    if "resnet18" in models:
        path = os.path.join(work, "resnet18.onnx")
        sh([py, os.path.join(ROOT, "perf/models/make_resnet18.py"), path])
        for b in batches:
            out[("resnet18", b)] = (path, {"input": rng.uniform(-1, 1, (b, 3, 224, 224)).astype(np.float32)},
                                    ["--shapes", f"input={b}x3x224x224"])
    if "fashion_cnn" in models:
        path = os.path.join(ROOT, "tests/models/fashion_cnn.onnx")
        for b in batches:
            out[("fashion_cnn", b)] = (path, {"input": rng.uniform(0, 1, (b, 1, 28, 28)).astype(np.float32)},
                                       ["--shapes", f"input={b}x1x28x28"])
    if "minilm" in models:
        path = os.path.join(work, "minilm.onnx")
        sh([py, os.path.join(ROOT, "scripts/export_minilm.py"), "-o", path])
        for b in batches:
            ids = rng.integers(1000, 20000, (b, seq)).astype(np.int64)
            ids[:, 0], ids[:, -1] = 101, 102
            feeds = {"input_ids": ids, "attention_mask": np.ones((b, seq), np.int64)}
            out[("minilm", b)] = (path, feeds, ["--shapes", f"input_ids={b}x{seq}", "--shapes", f"attention_mask={b}x{seq}"])
    return out


def real_model(name, models_dir):
    """(onnx path, its first real input, kiln --shapes args) of a model of tests/accuracy/real_models.py."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "accuracy"))
    import real_models
    if name not in real_models.MODELS:
        sys.exit(f"cpu_vs_ort: unknown real model '{name}' (known: {', '.join(sorted(real_models.MODELS))})")
    m = real_models.MODELS[name](models_dir, True)
    if not os.path.exists(m.onnx):
        sys.exit(f"cpu_vs_ort: {m.onnx} is missing: run scripts/fetch_real_models.py")
    feeds = m.inputs()[0]
    shapes = []
    for k, v in feeds.items():
        shapes += ["--shapes", k + "=" + "x".join(str(d) for d in v.shape)]
    return m.onnx, feeds, shapes


def quantize_resnet18(work, fp32_path, calib_images):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": x[None]} for x in calib_images])

        def get_next(self):
            return next(self.it, None)

    qdq = os.path.join(work, "resnet18_qdq.onnx")
    quantize_static(fp32_path, qdq, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    calib_dir = os.path.join(work, "calib")
    os.makedirs(calib_dir, exist_ok=True)
    for i, x in enumerate(calib_images):
        np.save(os.path.join(calib_dir, f"{i}.npy"), x[None])
    return qdq, calib_dir


# ---- timing ----

def time_ort(sess, feeds, duration):
    for _ in range(3):
        sess.run(None, feeds)
    lat = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < duration or len(lat) < 3:
        s = time.perf_counter()
        sess.run(None, feeds)
        lat.append((time.perf_counter() - s) * 1e3)
    return float(np.median(lat))


def time_kiln(kiln, plan, inputs, threads, duration, work, concurrency=1):
    js = os.path.join(work, "bench.json")
    args = [kiln, "bench", plan, "--device", "cpu", "--threads", str(threads), "--duration-s", str(duration),
            "--concurrency", str(concurrency), "--json", js]
    for name, path in inputs.items():
        args += ["-i", f"{name}={path}"]
    sh(args)
    with open(js) as f:
        d = json.load(f)
    return d["latency_ms"]["median"], d["throughput_per_s"]


def measure(label, kiln, plan, onnx_path, feeds, threads, a, work, rows, batch, note=""):
    inputs = {}
    for name, arr in feeds.items():
        p = os.path.join(work, f"in_{name}.npy")
        np.save(p, arr)
        inputs[name] = p
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    before = load()
    k_best, o_best = float("inf"), float("inf")
    for _ in range(a.repeats):
        k_best = min(k_best, time_kiln(kiln, plan, inputs, threads, a.duration_s, work)[0])
        o_best = min(o_best, time_ort(sess, feeds, a.duration_s))
    rows.append({"model": label, "batch": batch, "kiln_ms": k_best, "ort_ms": o_best, "load": f"{before} / {load()}",
                 "note": note})
    print(f"{label:28s} b{batch:<3d} kiln {k_best:9.3f} ms  ort {o_best:9.3f} ms  x{o_best / k_best:5.2f}  load {before}",
          flush=True)
    return k_best, o_best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build/kiln"))
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--duration-s", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--models", default="resnet_mini,mlp,attention,resnet18,minilm,fashion_cnn")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument("--real-models", default="",
                    help="also these pretrained models of tests/accuracy/real_models.py (comma-separated names; "
                         "scripts/fetch_real_models.py fetches them), at their own shapes and on their real inputs")
    ap.add_argument("--models-dir", default=os.path.expanduser("~/.cache/kiln/real-models"))
    a = ap.parse_args()
    threads = a.threads or physical_cores()
    models = a.models.split(",")
    batches = [int(b) for b in a.batches.split(",")]
    work = tempfile.mkdtemp(prefix="kiln-cpu-vs-ort-")
    rows, int8_rows, notes = [], [], []
    start_load = load()
    try:
        all_models = make_models(work, models, batches, a.seq)
        for (m, b), (path, feeds, shapes) in all_models.items():
            plan = os.path.join(work, f"{m}_b{b}.plan")
            sh([a.kiln, "build", path, "-o", plan, "--device", "cpu"] + shapes)
            measure(m, a.kiln, plan, path, feeds, threads, a, work, rows, b)
        for name in filter(None, a.real_models.split(",")):
            path, feeds, shapes = real_model(name, a.models_dir)
            plan = os.path.join(work, f"real_{name}.plan")
            sh([a.kiln, "build", path, "-o", plan, "--device", "cpu"] + shapes)
            measure(name, a.kiln, plan, path, feeds, threads, a, work, rows, next(iter(feeds.values())).shape[0])
        if "resnet18" in models and not a.no_int8:
            rng = np.random.default_rng(11)
            calib = [rng.uniform(-1, 1, (3, 224, 224)).astype(np.float32) for _ in range(16)]
            fp32 = os.path.join(work, "resnet18.onnx")
            qdq, calib_dir = quantize_resnet18(work, fp32, calib)
            for b in batches:
                feeds = all_models[("resnet18", b)][1]
                shapes = ["--shapes", f"input={b}x3x224x224"]
                plan_q = os.path.join(work, f"r18_qdq_b{b}.plan")
                sh([a.kiln, "build", qdq, "-o", plan_q, "--device", "cpu"] + shapes)
                measure("resnet18 int8 (QDQ model)", a.kiln, plan_q, qdq, feeds, threads, a, work, int8_rows, b)
                if b == 1:  # kiln's own PTQ calibrates at the --shapes point (batch 1 images)
                    plan_p = os.path.join(work, "r18_ptq_b1.plan")
                    sh([a.kiln, "build", fp32, "-o", plan_p, "--device", "cpu", "--precision", "int8", "--calib",
                        calib_dir, "--shapes", "input=1x3x224x224"])
                    measure("resnet18 int8 (kiln PTQ)", a.kiln, plan_p, qdq, feeds, threads, a, work, int8_rows, b,
                            "ORT column: the QDQ model")
        if "resnet18" in models:
            # Two contexts on the same cores: the fair share keeps the total at the core count.
            plan = os.path.join(work, "resnet18_b1.plan")
            p = os.path.join(work, "in_input.npy")
            np.save(p, all_models[("resnet18", 1)][1]["input"])
            c1 = time_kiln(a.kiln, plan, {"input": p}, threads, a.duration_s, work, 1)[1]
            c2 = time_kiln(a.kiln, plan, {"input": p}, threads, a.duration_s, work, 2)[1]
            notes.append(f"kiln resnet18 batch 1, --threads {threads}: concurrency 1 {c1:.1f} inferences/s, "
                         f"concurrency 2 {c2:.1f} inferences/s (load {load()})")
        env = dict(os.environ, ONEDNN_VERBOSE="1")
        first = next(iter(all_models))
        plan = os.path.join(work, f"{first[0]}_b{first[1]}.plan")
        verbose = subprocess.run([a.kiln, "bench", plan, "--device", "cpu", "--iterations", "1", "--warmup-ms", "0",
                                  "--threads", str(threads)], capture_output=True, text=True, env=env).stdout
        isa = [l.split(",", 2)[2] for l in verbose.splitlines() if l.startswith("onednn_verbose,info,cpu,")]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    with open("/proc/cpuinfo") as f:
        cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    with open(a.out, "w") as f:
        f.write(f"# kiln cpu (oneDNN) vs ONNX Runtime CPU EP — {time.strftime('%Y-%m-%d')}\n\n")
        f.write(f"Host: {cpu}, {physical_cores()} physical cores ({os.cpu_count()} logical), shared with other builds. "
                f"Threads: {threads} for both runtimes. onnxruntime {ort.__version__}.\n")
        f.write(f"Command: `{' '.join(['perf/cpu_vs_ort.py'] + sys.argv[1:])}`; {a.repeats} repeats x {a.duration_s} s "
                f"per point, best median kept. Load average at start {start_load}, at end {load()}.\n")
        if isa:
            f.write("oneDNN: " + "; ".join(isa) + "\n")
        f.write("\n## FP32\n\n| model | batch | kiln median ms | ORT median ms | kiln samples/s | ORT samples/s | "
                "kiln / ORT speed | load (1/5/15 min, before / after) |\n|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['model']} | {r['batch']} | {r['kiln_ms']:.3f} | {r['ort_ms']:.3f} | "
                    f"{r['batch'] * 1e3 / r['kiln_ms']:.1f} | {r['batch'] * 1e3 / r['ort_ms']:.1f} | "
                    f"{r['ort_ms'] / r['kiln_ms']:.2f}x | {r['load']} |\n")
        if int8_rows:
            f.write("\n## INT8 (ResNet-18)\n\n| model | batch | kiln median ms | ORT INT8 median ms | kiln / ORT INT8 | "
                    "kiln INT8 / kiln FP32 | load |\n|---|---|---|---|---|---|---|\n")
            fp32 = {r["batch"]: r["kiln_ms"] for r in rows if r["model"] == "resnet18"}
            for r in int8_rows:
                vs_fp32 = f"{fp32[r['batch']] / r['kiln_ms']:.2f}x" if r["batch"] in fp32 else "-"
                f.write(f"| {r['model']} | {r['batch']} | {r['kiln_ms']:.3f} | {r['ort_ms']:.3f} | "
                        f"{r['ort_ms'] / r['kiln_ms']:.2f}x | {vs_fp32} | {r['load']} |\n")
        for n in notes:
            f.write(f"\n{n}\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
