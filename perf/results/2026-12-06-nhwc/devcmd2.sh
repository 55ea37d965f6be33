# Call 2: FP8 convolutions channels-last too, the wgmma tiles last where a problem has 64
# columns or fewer, and the INT8/FP8 output stages reading their scalars once (not per element). Tests: the channels-last ones (tensor cores and cpu), INT8/FP8 mma; the
# channels-last region test again with the cpu's reference kernels only (call 1 saw the NCHW cpu
# plan differ from both NHWC plans on this host, whose oneDNN runs INT8 natively: AVX-512 VNNI),
# and the cpu fast-path tests. Then ResNet-50 at batch 128: INT8 (profiled), INT8 without the
# in-place rule (profiled: layer1's 1x1 expansions differ 4x between blocks of equal shapes),
# FP8 channels-last and FP8 NCHW.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r2
call_tests 200 'MmaVariant.ChannelsLast*:MmaVariant.Int8*:MmaVariant.Fp8*:ChannelsLast.*:CpuFast*'
KILN_CPU_REFERENCE=1 timeout 60 kiln_tests --gtest_filter='ChannelsLast.*' > $R/tests-cpu-reference.txt 2>&1
echo "reference tests rc $?"; grep -E "^\[  (PASSED|FAILED) |Failure" -A3 $R/tests-cpu-reference.txt | head -12
lscpu | grep -E "Model name|Flags" | sed 's/Flags:/Flags (vnni\/amx):/; s/ \(avx512_vnni\|amx_int8\|avx_vnni\)/ [\1]/g' | cut -c1-200 > $R/cpu.txt
grep -o "avx512_vnni\|amx_int8\|avx_vnni" /proc/cpuinfo | sort -u >> $R/cpu.txt; cat $R/cpu.txt
call_step resnet50 int8 128 120 --profile 128
KILN_NO_INPLACE=1 STEP_NAME=resnet50-noinplace-b128 call_step resnet50 int8 128 110 --profile 128
STEP_NAME=resnet50-fp8-b128 call_step resnet50 fp8 128 120 --profile 128
STEP_NAME=resnet50-fp8-nchw-b128 call_step resnet50 fp8 128 110 --build-flags "--layout nchw"
