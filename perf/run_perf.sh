#!/usr/bin/env bash
# Benchmarks kiln against ONNX Runtime (CPU EP) on the perf models, on every kiln device given,
# at concurrency 1 and 4, and writes a Markdown report with ratios.
# Usage: perf/run_perf.sh OUT.md [DEVICE ...]      (default devices: cpu opencl)
# Env: KILN (kiln binary, default build/kiln), PY (python with onnxruntime; default: the venv
#      from scripts/setup_python.sh), DURATION (seconds per measurement, default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: run_perf.sh OUT.md [DEVICE ...]}
shift || true
DEVICES=("${@:-cpu opencl}")
[ $# -eq 0 ] && DEVICES=(cpu opencl)
KILN=${KILN:-build/kiln}
PY=${PY:-$(bash scripts/setup_python.sh)}
DURATION=${DURATION:-3}
WORK=$(mktemp -d)
"$PY" perf/models/make_perf_models.py "$WORK/models" >/dev/null

json_get() { "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d'+sys.argv[2]))" "$1" "$2"; }

{
  echo "# kiln vs ONNX Runtime — $(date -u +%Y-%m-%d)"
  echo
  echo "Host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs). Devices: ${DEVICES[*]}."
  echo "Command: \`perf/run_perf.sh $OUT ${DEVICES[*]}\` (random weights and inputs; ${DURATION}s per point)."
  echo
  echo "| model | runtime | device | concurrency | median ms | p99 ms | throughput/s | ORT median / kiln median |"
  echo "|---|---|---|---|---|---|---|---|"
} > "$OUT"

for model in resnet_mini mlp attention; do
  m="$WORK/models/$model.onnx"
  "$PY" perf/ort_bench.py "$m" --duration-s "$DURATION" > "$WORK/ort.json"
  ort_med=$(json_get "$WORK/ort.json" "['latency_ms']['median']")
  printf '| %s | onnxruntime | cpu EP | 1 | %.3f | %.3f | %.1f | 1.00 |\n' "$model" "$ort_med" \
    "$(json_get "$WORK/ort.json" "['latency_ms']['p99']")" "$(json_get "$WORK/ort.json" "['throughput_per_s']")" >> "$OUT"
  for dev in "${DEVICES[@]}"; do
    "$KILN" build "$m" -o "$WORK/$model.$dev.plan" --device "$dev" >/dev/null
    for c in 1 4; do
      "$KILN" bench "$WORK/$model.$dev.plan" --device "$dev" --duration-s "$DURATION" --concurrency "$c" \
        --json "$WORK/k.json" >/dev/null
      med=$(json_get "$WORK/k.json" "['latency_ms']['median']")
      printf '| %s | kiln | %s | %d | %.3f | %.3f | %.1f | %.2f |\n' "$model" "$dev" "$c" "$med" \
        "$(json_get "$WORK/k.json" "['latency_ms']['p99']")" "$(json_get "$WORK/k.json" "['throughput_per_s']")" \
        "$("$PY" -c "print($ort_med / $med)")" >> "$OUT"
    done
  done
done
rm -rf "$WORK"
cat "$OUT"
