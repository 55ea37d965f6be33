# Call 5: the same host for both sides (call 4's host issued launches ~1.6x slower than calls 1-2's,
# torch eager's batch 1 was 1.9x slower too): ResNet-50 and BERT-base batch 1 INT8 with the
# latency model's tiles (default) and without (KILN_MMA_LATENCY_MODEL=0: the throughput ranking).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin k5
call_step resnet50 int8 1 60
STEP_NAME=resnet50-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step resnet50 int8 1 60
STEP_NAME=bert-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step bert int8 1 70
call_step bert int8 1 70
