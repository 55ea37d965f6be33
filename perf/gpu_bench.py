#!/usr/bin/env python3
"""kiln against PyTorch on the GPU machine, in one run: a GEMM sweep per precision and
torchvision ResNet-50 / a BERT-base encoder per precision and batch size (parts `bert-large` and
`minilm`: encoders of other widths, with random weights too).

GEMMs: `kiln build` of a one-MatMul ONNX model (A [M,K] input, B [K,N] constant) per precision
(INT8/FP8 calibrated with minmax on 2 random samples), timed by `kiln profile` (the MatMul
node's kernel time, median of the iterations); torch: torch.matmul in FP32/TF32/FP16,
torch._int_mm for INT8 and torch._scaled_mm for FP8 (cuBLAS), CUDA events, median.
Models: exported on this machine with random weights (speed only); INT8/FP8 calibrated at batch
1 on 4 random samples (the ranges are reused at other batches through --calib-cache) and built
with --fallback-precision fp16 (what quantization leaves in float, attention and LayerNorm among
it, runs in FP16, as TensorRT's --int8 --fp16 plans do); kiln by
`kiln bench` (median latency, throughput at concurrency 1, inputs resident on the host as a
user would have them; then again with --no-data-transfers, inputs on the device as torch's are);
torch eager FP32 and FP16 (channels-last for ResNet), CUDA events.

Writes OUT/gpu-latest.json ({"device", "gemm": [...], "models": [...]}) and OUT/gpu-latest.md.
Usage: gpu_bench.py OUT [--kiln kiln] [--parts gemm,resnet50,bert,bert-large,minilm] [--sizes 4096,8192]
       [--batches 1,128] [--precisions fp32,fp16,int8,fp8] [--duration 2] [--profile 128] [--tune]
       [--build-flags "--layout nchw"]
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

RESULT = {"device": "", "gemm": [], "models": [], "notes": []}
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


def sh(cmd, timeout=600):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return 124, f"timed out after {timeout} s: {' '.join(cmd)}"


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:200] if lines else ""


def cuda_median_ms(fn, iters=50, warmup=10):
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return float(np.median(times))


def save(out):
    with open(os.path.join(out, "gpu-latest.json"), "w") as f:
        json.dump(RESULT, f, indent=1)


# ---------------------------------------------------------------- GEMM sweep

def gemm_model(path, m, n, k, rng):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    b = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["y"], name="gemm")], "gemm",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])],
                          [numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def kiln_gemm_ms(a, work, m, n, k, prec, rng):
    model = os.path.join(work, f"g{m}x{n}x{k}.onnx")
    if not os.path.exists(model):
        gemm_model(model, m, n, k, rng)
    plan = os.path.join(work, f"g{m}x{n}x{k}_{prec}.plan")
    cmd = [a.kiln, "build", model, "-o", plan, "--device", "opencl", "--precision", prec] + tune_flags(a)
    if prec in ("int8", "fp8"):
        # Random data: nothing to check. (A lone MatMul leaves nothing in float: the fallback
        # precision only keeps the builds alike.)
        cmd += ["--no-accuracy-check", "--fallback-precision", "fp16"]
        calib = os.path.join(work, f"calib_{m}x{k}")
        if not os.path.isdir(calib):
            os.makedirs(calib)
            for i in range(2):
                np.save(os.path.join(calib, f"{i}.npy"), rng.uniform(-1, 1, (m, k)).astype(np.float32))
        cmd += ["--calib", calib, "--calibrator", "minmax"]
    rc, out = sh(cmd)
    if rc:
        return None, "build: " + last_line(out)
    trace = plan + ".trace.json"
    rc, out = sh([a.kiln, "profile", plan, "--device", "opencl", "--iterations", "20", "--trace", trace])
    if rc:
        return None, "profile: " + last_line(out)
    ops = {"MatMul", "QLinearMatMul", "Fp8MatMul"}
    t = json.load(open(trace))
    durs = [e["dur"] / 1000.0 for e in t["traceEvents"]
            if e.get("ph") == "X" and e.get("cat") in ops]
    if not durs:
        return None, "no MatMul node in the profile"
    variant = ""
    rc, out = sh([a.kiln, "inspect", plan])
    for line in out.splitlines():
        if "op=MatMul" in line or "op=QLinearMatMul" in line or "op=Fp8MatMul" in line:
            variant = line.split("kernel=")[1].split("  precision")[0] if "kernel=" in line else ""
    return float(np.median(durs)), variant


def tune_flags(a):
    """`kiln build --tune` with one tuning cache for the whole run, OUT/tuning.cache (every
    candidate's time per layer, kept as each build ends), and --build-flags."""
    tune = ["--tune", "--tuning-cache", os.path.join(a.out, "tuning.cache")] if a.tune else []
    return tune + shlex.split(a.build_flags)


def torch_gemm_ms(m, n, k, prec):
    import torch
    torch.backends.cuda.matmul.allow_tf32 = prec == "tf32"
    if prec in ("fp32", "tf32", "fp16"):
        dt = torch.float16 if prec == "fp16" else torch.float32
        x, w = torch.randn(m, k, device="cuda", dtype=dt), torch.randn(k, n, device="cuda", dtype=dt)
        return cuda_median_ms(lambda: torch.matmul(x, w))
    if prec == "int8":
        x = torch.randint(-128, 127, (m, k), device="cuda", dtype=torch.int8)
        w = torch.randint(-128, 127, (n, k), device="cuda", dtype=torch.int8).t()
        return cuda_median_ms(lambda: torch._int_mm(x, w))
    if prec == "fp8":
        x = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
        w = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()
        one = torch.ones((), device="cuda")
        return cuda_median_ms(lambda: torch._scaled_mm(x, w, scale_a=one, scale_b=one, out_dtype=torch.float16))
    raise ValueError(prec)


def gemm_sweep(a, work, rng):
    sizes = []
    for s in a.sizes.split(","):
        dims = [int(v) for v in s.split("x")]
        sizes.append(tuple(dims * 3 if len(dims) == 1 else dims))
    for (m, n, k) in sizes:
        for prec in a.precisions.split(","):
            flops = 2.0 * m * n * k
            ms, variant = kiln_gemm_ms(a, work, m, n, k, prec, rng)
            try:
                tms = torch_gemm_ms(m, n, k, prec)
            except Exception as e:
                tms = None
                RESULT["notes"].append(f"torch {prec} {m}x{n}x{k}: {e}")
            row = {"precision": prec, "m": m, "n": n, "k": k,
                   "kiln_tflops": round(flops / ms / 1e9, 2) if ms else None,
                   "torch_tflops": round(flops / tms / 1e9, 2) if tms else None,
                   "ratio": round(tms / ms, 3) if ms and tms else None,
                   "kiln_ms": round(ms, 4) if ms else None, "torch_ms": round(tms, 4) if tms else None,
                   "kiln_kernel": variant}
            if prec == "fp32":
                try:
                    t32 = torch_gemm_ms(m, n, k, "tf32")
                    row["torch_tf32_tflops"] = round(flops / t32 / 1e9, 2)
                except Exception:
                    pass
            RESULT["gemm"].append(row)
            log("gemm", row)


# ---------------------------------------------------------------- models

def export_resnet50(path):
    import torch
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet50().eval()
    torch.onnx.export(net, torch.rand(1, 3, 224, 224), path, input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    return net


# Encoders by part name: BERT-base (12 x 768), and two whose matmul shapes no kiln heuristic was
# fitted to (BERT-large 24 x 1024, and all-MiniLM-L6-v2's 6 x 384 with 12 heads).
ENCODERS = {
    "bert": {},
    "bert-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
    "minilm": {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536},
}


def export_bert(path, seq, name="bert"):
    import torch
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    net = BertModel(BertConfig(attn_implementation="eager", **ENCODERS[name])).eval()
    ids = torch.randint(0, 30522, (1, seq))
    mask = torch.ones(1, seq, dtype=torch.int64)

    class Enc(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ids, mask):
            return self.m(input_ids=ids, attention_mask=mask).last_hidden_state

    torch.onnx.export(Enc(net), (ids, mask), path, input_names=["ids", "mask"], output_names=["hidden"],
                      opset_version=17, dynamic_axes={"ids": {0: "batch"}, "mask": {0: "batch"}, "hidden": {0: "batch"}},
                      dynamo=False)
    return net


def torch_model_ms(name, net, batch, prec, seq=128):
    import torch
    m = net.cuda()
    if prec == "fp16":
        m = m.half()
    if name == "resnet50":
        m = m.to(memory_format=torch.channels_last)
        x = torch.rand(batch, 3, 224, 224, device="cuda", dtype=torch.float16 if prec == "fp16" else torch.float32)
        x = x.to(memory_format=torch.channels_last)
        fn = lambda: m(x)
    else:
        ids = torch.randint(0, 30522, (batch, seq), device="cuda")
        mask = torch.ones(batch, seq, dtype=torch.int64, device="cuda")
        fn = lambda: m(input_ids=ids, attention_mask=mask)
    with torch.no_grad():
        ms = cuda_median_ms(fn, iters=20 if batch > 1 else 50)
    m.float().cpu()
    return ms


def model_bench(a, work, name, rng):
    import torch
    path = os.path.join(work, name + ".onnx")
    seq = 128
    t = time.time()
    net = export_resnet50(path) if name == "resnet50" else export_bert(path, seq, name)
    log(f"exported {name} in {time.time() - t:.0f} s")
    if name == "resnet50":
        inputs = {"input": lambda b: rng.uniform(0, 1, (b, 3, 224, 224)).astype(np.float32)}
        shape = lambda b: [f"input={b}x3x224x224"]
    else:
        inputs = {"ids": lambda b: rng.integers(0, 30522, (b, seq)).astype(np.int64),
                  "mask": lambda b: np.ones((b, seq), np.int64)}
        shape = lambda b: [f"ids={b}x{seq}", f"mask={b}x{seq}"]
    calib = os.path.join(work, name + "_calib")
    os.makedirs(calib, exist_ok=True)
    for i in range(4):
        np.savez(os.path.join(calib, f"{i}.npz"), **{k: f(1) for k, f in inputs.items()})
    for batch in [int(b) for b in a.batches.split(",")]:
        args_in = []
        for k, f in inputs.items():
            p = os.path.join(work, f"{name}_{k}_{batch}.npy")
            np.save(p, f(batch))
            args_in += ["-i", f"{k}={p}"]
        torch_ms = {}
        for prec in ("fp32", "fp16"):
            try:
                torch_ms[prec] = torch_model_ms(name, net, batch, prec, seq)
            except Exception as e:
                RESULT["notes"].append(f"torch {name} {prec} b{batch}: {e}")
        log(name, batch, "torch", torch_ms)
        for prec in a.precisions.split(","):
            plan = os.path.join(work, f"{name}_{prec}_{batch}.plan")
            cmd = [a.kiln, "build", path, "-o", plan, "--device", "opencl", "--precision", prec] + tune_flags(a)
            if prec in ("int8", "fp8"):
                # Random weights and inputs: the default accuracy check would measure noise and
                # move layers to FP32 at random; speed is measured on the plan as quantized.
                cmd += ["--no-accuracy-check", "--fallback-precision", "fp16"]
            for s in shape(batch):
                cmd += ["--shapes", s]
            if prec in ("int8", "fp8"):
                cache = os.path.join(work, f"{name}_{prec}.calib")
                if not os.path.exists(cache):
                    c1 = [a.kiln, "build", path, "-o", plan + ".b1", "--device", "opencl", "--precision", prec,
                          "--calib", calib, "--calib-cache", cache, "--calibrator", "minmax", "--no-accuracy-check"]
                    for s in shape(1):
                        c1 += ["--shapes", s]
                    rc, out = sh(c1, timeout=900)
                    if rc:
                        log(name, prec, "calibration failed:", last_line(out))
                cmd += ["--calib-cache", cache, "--calibrator", "minmax"]
            t = time.time()
            rc, out = sh(cmd, timeout=900)
            row = {"model": name, "batch": batch, "precision": prec}
            if rc:
                row["error"] = "build: " + last_line(out)
            else:
                row["build_s"] = round(time.time() - t, 1)
                js = plan + ".json"
                rc, out = sh([a.kiln, "bench", plan, "--device", "opencl", "--duration-s", a.duration, "--json", js]
                             + args_in, timeout=600)
                if rc:
                    row["error"] = "bench: " + last_line(out)
                else:
                    b = json.load(open(js))
                    ms = b["latency_ms"]["median"]
                    row.update({"kiln_per_s": round(b["throughput_per_s"] * batch, 1), "kiln_ms": round(ms, 3),
                                "h2d_ms": b.get("h2d_ms"), "compute_ms": b.get("compute_ms"), "d2h_ms": b.get("d2h_ms"),
                                "issue_us_per_launch": b.get("issue_us_per_launch")})
                    # As torch is timed: the input already on the device (trtexec's --noDataTransfers).
                    rc, out = sh([a.kiln, "bench", plan, "--device", "opencl", "--duration-s", a.duration, "--json", js,
                                  "--no-data-transfers"] + args_in, timeout=600)
                    if rc:
                        row["error_device"] = "bench --no-data-transfers: " + last_line(out)
                    else:
                        row["kiln_device_ms"] = round(json.load(open(js))["latency_ms"]["median"], 3)
                    # Throughput with several contexts in flight, each with its transfers (one context's
                    # copies overlap another's kernels), as a server would run it: trtexec's --streams.
                    if a.concurrency > 1:
                        rc, out = sh([a.kiln, "bench", plan, "--device", "opencl", "--duration-s", a.duration,
                                      "--json", js, "--concurrency", str(a.concurrency)] + args_in, timeout=600)
                        if rc:
                            row["error_concurrent"] = "bench --concurrency: " + last_line(out)
                        else:
                            row["concurrency"] = a.concurrency
                            row["kiln_per_s_concurrent"] = round(json.load(open(js))["throughput_per_s"] * batch, 1)
                if a.profile and batch in [int(v) for v in a.profile.split(",")]:
                    rc, out = sh([a.kiln, "profile", plan, "--device", "opencl", "--iterations", "3"] + args_in,
                                 timeout=300)
                    _, chosen = sh([a.kiln, "inspect", plan], timeout=60)
                    chosen = "\n".join(l for l in chosen.splitlines() if "kernel=" in l)
                    with open(os.path.join(a.out, "profiles.txt"), "a") as f:
                        f.write(f"\n===== {name} batch {batch} {prec} (rc {rc})\n{out}\n"
                                f"----- kernels chosen (kiln inspect)\n{chosen}\n")
            tf = torch_ms.get("fp16")
            if tf:
                row["torch_fp16_ms"] = round(tf, 3)
                row["torch_fp16_per_s"] = round(batch * 1000 / tf, 1)
            if torch_ms.get("fp32"):
                row["torch_fp32_ms"] = round(torch_ms["fp32"], 3)
            if tf and row.get("kiln_ms"):
                row["ratio"] = round(tf / row["kiln_ms"], 3)
            if tf and row.get("kiln_device_ms"):
                row["ratio_device"] = round(tf / row["kiln_device_ms"], 3)
            if tf and row.get("kiln_per_s_concurrent"):
                row["ratio_concurrent"] = round(row["kiln_per_s_concurrent"] / (batch * 1000 / tf), 3)
            RESULT["models"].append(row)
            log(row)
            save(a.out)


def write_table(out):
    lines = ["# kiln vs torch on the GPU machine", "", f"Device: {RESULT['device']}", "",
             "## GEMM (kernel time)", "",
             "| precision | M x N x K | kiln TFLOP/s | torch TFLOP/s | kiln / torch | kiln kernel |", "|---|---|---|---|---|---|"]
    for r in RESULT["gemm"]:
        lines.append(f"| {r['precision']} | {r['m']}x{r['n']}x{r['k']} | {r['kiln_tflops']} | {r['torch_tflops']} | "
                     f"{r['ratio']} | {r.get('kiln_kernel', '')} |")
    lines += ["", "## Models (kiln bench median latency: inputs from host memory, and with --no-data-transfers "
              "(on the device, as torch's); torch eager, CUDA events, inputs on the device)", "",
              "| model | batch | precision | kiln /s | kiln ms | torch fp16 /s | torch fp16 ms | torch fp32 ms | kiln / torch fp16 "
              "| kiln ms, no transfers | kiln / torch fp16, no transfers | kiln /s, --concurrency contexts | "
              "its throughput / torch fp16's |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in RESULT["models"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['batch']} | {r['precision']} | {r['error']} | | | | | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['batch']} | {r['precision']} | {r.get('kiln_per_s')} | {r.get('kiln_ms')} | "
                     f"{r.get('torch_fp16_per_s')} | {r.get('torch_fp16_ms')} | {r.get('torch_fp32_ms')} | {r.get('ratio')} | "
                     f"{r.get('kiln_device_ms', r.get('error_device'))} | {r.get('ratio_device')} | "
                     f"{r.get('kiln_per_s_concurrent', r.get('error_concurrent', ''))} | {r.get('ratio_concurrent', '')} |")
    if RESULT["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in RESULT["notes"]]
    open(os.path.join(out, "gpu-latest.md"), "w").write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--kiln", default="kiln")
    ap.add_argument("--parts", default="gemm,resnet50,bert")
    ap.add_argument("--sizes", default="256,1024,2048,4096,8192,8192x1024x4096")
    ap.add_argument("--batches", default="1,128")
    ap.add_argument("--precisions", default="fp32,fp16,int8,fp8")
    ap.add_argument("--duration", default="2")
    ap.add_argument("--concurrency", type=int, default=2, help="also measure throughput with this many contexts "
                    "in flight (kiln bench --concurrency), transfers included; 1: not")
    ap.add_argument("--build-flags", default="", help="more `kiln build` flags for every plan (e.g. '--layout nchw')")
    ap.add_argument("--tune", action="store_true", help="build with --tune (one tuning cache, "
                    "OUT/tuning.cache)")
    ap.add_argument("--profile", default="", help="batch sizes whose plans `kiln profile` also runs "
                    "(OUT/profiles.txt, with each node's kernel from `kiln inspect`)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    try:
        import torch
        RESULT["device"] = torch.cuda.get_device_name(0) + ", torch " + torch.__version__
    except Exception as e:  # a dry run elsewhere: kiln's side only
        RESULT["device"] = "no CUDA torch: " + str(e)[:80]
    work = tempfile.mkdtemp(prefix="kiln-gpu-bench-")
    rng = np.random.default_rng(0)
    for part in a.parts.split(","):
        try:
            if part == "gemm":
                gemm_sweep(a, work, rng)
            else:
                model_bench(a, work, part, rng)
        except Exception as e:
            RESULT["notes"].append(f"{part}: {type(e).__name__}: {e}")
            log(part, "failed:", e)
        save(a.out)
        write_table(a.out)
    save(a.out)
    write_table(a.out)
    print(open(os.path.join(a.out, "gpu-latest.md")).read())


if __name__ == "__main__":
    main()
