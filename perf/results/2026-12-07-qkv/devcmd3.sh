# Call 3: the packed-projection test again (FP8 compared by relative L2 error: the packed product
# may take wgmma where the separate ones took mma.sync), and BERT-base batch 1 FP16/INT8 built
# with --tune: after packing, the profile shows the batch-1 MatMuls at 20-29 us of kernel time
# each (128 rows, split-K over 128x128 tiles): does another tile or split do better? (--tune now
# also times the two tiles whose split the latency model ranks fastest.)
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin k3
call_tests 90 'MmaVariant.PackedQkv*:PackQkv.*:MmaVariant.SmallGrids*:MmaVariant.SplitK*'
STEP_NAME=bert-b1-tuned call_step bert fp16,int8 1 330 --tune --profile 1
