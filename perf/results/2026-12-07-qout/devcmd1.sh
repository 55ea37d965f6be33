# Call 1: QuantizeLinear folded into its producer (LayerNormalization, Attention:
# compiler/passes/fuse_quantize_output.cpp) and queues without timestamps unless a profiler is
# attached: the tests on the real tensor cores, the launch probe (host time issuing each node,
# plain vs profiling queue), BERT-base at batch 1 in FP16/INT8/FP8 (the INT8/FP8 plans now have
# FP16's 169 launches, not 205), ResNet-50 at batch 1 (the queue change alone) and BERT at batch
# 128 in INT8/FP8 (torch eager FP16 in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin q1
call_tests 200 'MmaVariant.AttentionWritesQuantizedOutput:QuantizedOutput.*:MmaVariant.AttentionFp16MatchesCpu:NormalizationOps.LayerNorm*:AttentionOps.*'
timeout 150 python3 perf/device/launch_probe.py "$R/probe" --kiln kiln > "$R/probe.txt" 2>&1; echo "probe rc $?"
cat "$R/probe.txt"; call_pack
call_step bert fp16,int8,fp8 1 170
call_step resnet50 fp16,int8 1 120
call_step bert int8,fp8 128 200
# The same FP16 plan at batch 1 on queues that record timestamps (every queue before this change).
STEP_NAME=bert-b1-profq KILN_PROFILING_QUEUE=1 call_step bert fp16 1 140
