# Call 2 (same warm H100): call 1's torch FP16 BERT took 16.6 ms (13.0 in earlier calls), so
# BERT-base INT8 again with and without --io-precision fp16 beside a fresh torch timing, and FP8
# with it.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin io2
call_step bert int8 128 100 --profile 128
STEP_NAME=bert-io16 call_step bert int8,fp8 128 150 --profile 128 --build-flags "--io-precision fp16"
