# Call 2: kiln profile timing each replayed node by its own kernels' events (first start to last
# end) instead of queue markers: BERT-base batch 1 FP16 and INT8, to see how much of the latency
# is kernel time and how much the device waits for launches.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin q2
call_tests 60 'Profiler.*'
call_step bert fp16,int8 1 200 --profile 1
