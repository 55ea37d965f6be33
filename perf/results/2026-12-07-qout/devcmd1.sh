# Call 1: QuantizeLinear folded into its producer (LayerNormalization, Attention:
# compiler/passes/fuse_quantize_output.cpp) and queues without timestamps unless a profiler is
# attached: the tests on the real tensor cores, the launch probe (host time issuing each node,
# plain vs profiling queue), BERT-base at batch 1 in FP16/INT8/FP8 (the INT8/FP8 plans now have
# FP16's 169 launches, not 205) and at batch 128 in INT8/FP8 (torch eager FP16 in each step).
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin q1
call_tests 200 'MmaVariant.AttentionWritesQuantizedOutput:QuantizedOutput.*:MmaVariant.AttentionFp16MatchesCpu:NormalizationOps.LayerNorm*:AttentionOps.*'
timeout 150 python3 perf/device/launch_probe.py "$R/probe" --kiln kiln > "$R/probe.txt" 2>&1; echo "probe rc $?"
cat "$R/probe.txt"; call_pack
call_step bert fp16,int8,fp8 1 170
call_step bert int8,fp8 128 200
