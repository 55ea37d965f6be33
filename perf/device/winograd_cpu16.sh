#!/usr/bin/env bash
# Issue 11 on the GPU machine's 16 cores (an idle host, unlike the shared 2-core one): kiln's cpu
# device against onnxruntime with oneDNN's Winograd convolutions (the default) and without
# (KILN_CPU_WINOGRAD=0), twice each, interleaved; then the probe of single convolutions.
# There: (carry .device) bash perf/device/winograd_cpu16.sh -> $OUT/winograd-{on,off}-{1,2}.md, probe.txt
set -uo pipefail
source perf/device/env.sh
models=${MODELS:-resnet_mini,resnet18}
for r in 1 2; do
  python3 perf/cpu_vs_ort.py "$OUT/winograd-on-$r.md" --kiln "$KILN_BUNDLE/bin/kiln" --models "$models" --no-int8 \
    --duration-s 2 --repeats 1 > "$OUT/winograd-on-$r.log" 2>&1 || echo "winograd on, run $r: failed (see its log)"
  KILN_CPU_WINOGRAD=0 python3 perf/cpu_vs_ort.py "$OUT/winograd-off-$r.md" --kiln "$KILN_BUNDLE/bin/kiln" \
    --models "$models" --no-int8 --duration-s 2 --repeats 1 > "$OUT/winograd-off-$r.log" 2>&1 ||
    echo "winograd off, run $r: failed (see its log)"
done
grep -h "^| res" "$OUT"/winograd-*.md
# The probe needs oneDNN's headers, which that machine lacks: built here, run there.
if [ -x .device/onednn_conv_layouts ]; then
  OMP_NUM_THREADS=16 LD_LIBRARY_PATH="$KILN_BUNDLE/lib" .device/onednn_conv_layouts > "$OUT/probe.txt" 2>&1
fi
