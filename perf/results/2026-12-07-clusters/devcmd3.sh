# Call 3: the one-SM wgmma tiles (256x192 on 16 warps, 192x256 on 12; stages of 32-byte rows) on
# the device: their tests, then the square GEMMs with --tune. The tuning cache is seeded with the
# earlier H100 timings of every other candidate (seed.cache: 2026-12-05-wgmma, 2026-12-07-b1/r5)
# except the heuristic's 128x192 tile, so this call times the new tiles and re-times 128x192 beside them.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin c3
call_tests 100 'MmaVariant.EveryWgmmaTileMatchesCpu:MmaVariant.Fp16ConvGemmMatMulMatchCpu'
mkdir -p "$R/gemm-b0" && cp perf/results/2026-12-07-clusters/seed.cache "$R/gemm-b0/tuning.cache"
call_step gemm fp16,int8 0 330 --sizes 4096,8192 --tune
mkdir -p "$R/gemm-fp8" && cp "$R/gemm-b0/tuning.cache" "$R/gemm-fp8/tuning.cache"
STEP_NAME=gemm-fp8 call_step gemm fp8 0 90 --sizes 4096 --tune
python3 perf/tuning_table.py "$R/gemm-fp8/tuning.cache" --top 8 > "$R/tuning-table.txt" 2>&1; call_pack
