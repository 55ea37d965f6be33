#!/usr/bin/env python3
"""FP32 vs FP16 vs INT8 vs FP8 plans of the same models on one device, in one run.

For each model: builds one plan per precision with `kiln build` (INT8/FP8 calibrated on 16
random samples), records the plan size, times it with `kiln bench` (concurrency 1), checks it
against the FP32 ONNX model with `kiln compare` (cosine of the worst output) and, where torch
with CUDA is present (the GPU machine), times the same network in PyTorch (FP32 and FP16,
CUDA events, median) so kiln's numbers are ratios against torch measured in the same run.
A precision the build refuses is reported with the build's reason.

Usage: precision_bench.py OUT.md [--device opencl] [--models resnet_mini,mlp,attention,resnet18]
       [--duration 2] [--kiln kiln]
Models come from perf/models/make_perf_models.py; resnet18 is torchvision's (random weights:
speed only) and needs torch + torchvision.
"""
import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PRECISIONS = ["fp32", "fp16", "int8", "fp8"]


def sh(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def model_inputs(path):
    import onnx
    m = onnx.load(path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    out = []
    for i in m.graph.input:
        if i.name in inits:
            continue
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in i.type.tensor_type.shape.dim]
        out.append((i.name, dims))
    return out


def torch_times(name, path, inputs, device_ok):
    """Median ms of the PyTorch model in FP32 and FP16 (resnet18 only: the others exist as ONNX)."""
    if not device_ok or name != "resnet18":
        return {}
    import torch
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval().cuda()
    x = torch.rand(*inputs[0][1], device="cuda")
    res = {}
    for prec, (mod, inp) in {"fp32": (net, x), "fp16": (copy.deepcopy(net).half(), x.half())}.items():
        with torch.no_grad():
            for _ in range(20):
                mod(inp)
            torch.cuda.synchronize()
            times = []
            for _ in range(200):
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                mod(inp)
                b.record()
                torch.cuda.synchronize()
                times.append(a.elapsed_time(b))
        res[prec] = float(np.median(times))
    return res


def export_resnet18(path):
    import torch
    import torchvision
    torch.manual_seed(0)
    net = torchvision.models.resnet18().eval()
    torch.onnx.export(net, torch.rand(1, 3, 224, 224), path, input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamo=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--device", default="opencl")
    ap.add_argument("--models", default="resnet_mini,mlp,attention,resnet18")
    ap.add_argument("--duration", default="2")
    ap.add_argument("--kiln", default="kiln")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="kiln-precision-")
    sh([sys.executable, os.path.join(HERE, "models", "make_perf_models.py"), work])
    try:
        import torch
        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    rng = np.random.default_rng(0)
    rows = []
    for name in a.models.split(","):
        path = os.path.join(work, name + ".onnx")
        if name == "resnet18":
            try:
                export_resnet18(path)
            except Exception as e:  # no torch/torchvision here
                rows.append((name, "-", f"not available: {type(e).__name__}", "", "", "", "", ""))
                continue
        inputs = model_inputs(path)
        calib = os.path.join(work, name + "_calib")
        os.makedirs(calib, exist_ok=True)
        for i in range(16):
            np.savez(os.path.join(calib, f"{i:02d}.npz"),
                     **{n: rng.uniform(-1, 1, d).astype(np.float32) for n, d in inputs})
        args_in = []
        for n, d in inputs:
            f = os.path.join(work, f"{name}_{n}.npy".replace("/", "_"))
            np.save(f, rng.uniform(-1, 1, d).astype(np.float32))
            args_in += ["-i", f"{n}={f}"]
        try:
            torch_ms = torch_times(name, path, inputs, cuda)
        except Exception as e:  # report kiln's numbers even if the torch side fails
            print(f"torch timing of {name} failed: {e}", file=sys.stderr)
            torch_ms = {}
        base_ms = None
        for prec in PRECISIONS:
            plan = os.path.join(work, f"{name}_{prec}.plan")
            cmd = [a.kiln, "build", path, "-o", plan, "--device", a.device, "--precision", prec]
            if prec in ("int8", "fp8"):
                cmd += ["--calib", calib]
            rc, log = sh(cmd)
            if rc != 0:
                reason = log.strip().splitlines()[-1] if log.strip() else f"exit {rc}"
                rows.append((name, prec, "not available: " + reason[:90], "", "", "", "", ""))
                continue
            size_mb = os.path.getsize(plan) / 2**20
            js = os.path.join(work, f"{name}_{prec}.json")
            rc, log = sh([a.kiln, "bench", plan, "--device", a.device, "--duration-s", a.duration, "--json", js] + args_in)
            if rc != 0:
                rows.append((name, prec, "bench failed: " + log.strip().splitlines()[-1][:90], "", "", "", "", ""))
                continue
            b = json.load(open(js))
            med = b["latency_ms"]["median"]
            base_ms = med if prec == "fp32" else base_ms
            rc, log = sh([a.kiln, "compare", plan, "--reference", path, "--device", a.device] + args_in)
            cos = [float(l.split()[-1]) for l in log.splitlines()[1:] if re.match(r"^\S+\s+[-0-9.e+]+\s", l)]
            t = torch_ms.get("fp32")
            rows.append((name, prec, f"{size_mb:.2f}", f"{med:.3f}", f"{b['throughput_per_s']:.1f}",
                         f"{base_ms / med:.2f}x" if base_ms else "", f"{min(cos):.5f}" if cos else "?",
                         f"{t / med:.2f}x" if t else ""))
        for prec, ms in torch_ms.items():
            rows.append((name, f"torch {prec}", "", f"{ms:.3f}", f"{1000 / ms:.1f}", "", "", f"{torch_ms['fp32'] / ms:.2f}x"))
    dev = sh([a.kiln, "devices"])[1].strip().splitlines()
    with open(a.out, "w") as f:
        f.write(f"# kiln precisions on `{a.device}`\n\n")
        f.write("Command: `python3 perf/precision_bench.py OUT.md --device %s --duration %s`\n\n" % (a.device, a.duration))
        f.write("Devices:\n```\n" + "\n".join(dev) + "\n```\n\n")
        f.write("| model | precision | plan MiB | median ms | inferences/s | speed vs kiln FP32 | cosine vs FP32 ONNX | speed vs torch FP32 |\n")
        f.write("|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write("| " + " | ".join(r) + " |\n")
    print(open(a.out).read())


if __name__ == "__main__":
    main()
