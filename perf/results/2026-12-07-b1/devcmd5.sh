# Call 5: the INT8 square GEMMs with --tune (every tile, pipeline and split timed on the device)
# against torch._int_mm: the heuristic's 128x192 tile reached 0.79x / 0.77x cuBLAS in call 1.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin b5
call_step gemm int8 0 420 --sizes 4096,8192 --tune
cp "$R/gemm-b0/tuning.cache" "$R/tuning.cache" 2>/dev/null; call_pack
