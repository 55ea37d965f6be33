# Call 2: ResNet-50 INT8 at batch 1 on the plain queue and on the timestamping one (last
# session's 4-5% slower INT8 number: is the queue the cause?), and kiln profile timing each
# replayed node by its own kernels' events on BERT-base batch 1 FP16.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin k2
call_step resnet50 int8 1 120
STEP_NAME=resnet50-b1-profq KILN_PROFILING_QUEUE=1 call_step resnet50 int8 1 120
STEP_NAME=bert-b1-profile call_step bert fp16 1 200 --profile 1
