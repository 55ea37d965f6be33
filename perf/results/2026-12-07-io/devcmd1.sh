# Call 1 (tenth session): --io-precision fp16 (float16 plan inputs and outputs: half the bytes
# over PCIe) on the real GPU: its tests, then ResNet-50 INT8/FP16 and BERT-base INT8/FP8 at
# batch 128 built with it (torch eager FP16 timed in each step, as always).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin io1
call_tests 120 'IoPrecision.*:BuildCApi.IoPrecision*'
STEP_NAME=resnet50-io16 call_step resnet50 int8,fp16 128 200 --profile 128 --build-flags "--io-precision fp16"
STEP_NAME=bert-io16 call_step bert int8,fp8 128 250 --profile 128 --build-flags "--io-precision fp16"
