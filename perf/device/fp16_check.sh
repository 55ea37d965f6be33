#!/usr/bin/env bash
# FP16 on the GPU machine: the benchmark models built in FP32 and FP16, FP16 checked against
# the FP32 ONNX model with kiln compare, and both timed with kiln bench (concurrency 1).
# NVIDIA's OpenCL has no cl_khr_fp16: FP16 runs as half storage with FP32 math there.
# Runs here too with the build on PATH: PATH=$PWD/build:$PATH bash perf/device/fp16_check.sh
set -uo pipefail
[ -f .device/kiln-bundle.tgz ] && source perf/device/env.sh
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT" /tmp/f16 && cd /tmp/f16
python3 "$OLDPWD/perf/models/make_perf_models.py" m >/dev/null
for m in resnet_mini mlp attention; do
  kiln build m/$m.onnx -o ${m}_fp32.plan | tail -1
  kiln build m/$m.onnx -o ${m}_fp16.plan --precision fp16 | tail -1
  ls -l ${m}_fp32.plan ${m}_fp16.plan | awk '{print $5, $9}'
  kiln compare ${m}_fp16.plan --reference m/$m.onnx
  for p in fp32 fp16; do
    kiln bench ${m}_$p.plan --duration-s 3 --json "$OUT/${m}_$p.json" | grep -E "bench|throughput|latency"
  done
done
