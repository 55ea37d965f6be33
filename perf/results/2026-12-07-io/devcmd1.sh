# Call 1 (tenth session): --io-precision fp16 (float16 plan inputs and outputs: half the bytes
# over PCIe) on the real GPU: its tests, then ResNet-50 INT8 at batch 128 with it and without
# it (the second is also the ninth session's untimed call 3: every 8-bit output stage at 4 rows,
# 8 with a residual), then BERT-base INT8 with it (torch eager FP16 timed in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin io1
call_tests 60 'IoPrecision.*:BuildCApi.IoPrecision*'
STEP_NAME=resnet50-io16 call_step resnet50 int8 128 110 --profile 128 --build-flags "--io-precision fp16"
call_step resnet50 int8 128 100 --profile 128
STEP_NAME=bert-io16 call_step bert int8 128 150 --profile 128 --build-flags "--io-precision fp16"
