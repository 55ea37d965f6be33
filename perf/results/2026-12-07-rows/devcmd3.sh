# Call 3: every 8-bit output stage at 4 rows (8 with a residual; call 2's rule keyed on the
# B mode missed ResNet's channels-last convolutions), ResNet-50 INT8 profiled; BERT-base INT8
# with --tune, to see which register cap the attention's timing picks (uncapped, 168, 128).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r3
call_step resnet50 int8,fp8 128 150 --profile 128
STEP_NAME=bert-tune call_step bert int8 128 300 --profile 128 --tune
