# Call 3: the float output stage's paired columns (MMA_EPI_VEC=2), tiles that keep an 8-bit
# stage's residual in __local first on short reductions, and oneDNN's VNNI 1x1 int8 kernel
# avoided for s8 sources (issue 11): every MmaVariant test on the real tensor cores, the
# channels-last tests, every CpuFastQuant test with 16 threads (oneDNN's implementations listed),
# then ResNet-50 FP16/INT8/FP8 (profiled) and BERT-base FP16 at batch 128.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r3
call_tests 110 'MmaVariant.*:ChannelsLastFloat.*:ChannelsLast.*:CpuFastQuant.*:Fp16Fallback.*'
ONEDNN_VERBOSE=1 timeout 60 kiln_tests --gtest_filter='CpuFastQuant.ConvChainWithResidualMatchesReference' > "$R/onednn-verbose.txt" 2>&1
echo "onednn verbose rc $?"; grep "^onednn_verbose,exec,cpu,convolution" "$R/onednn-verbose.txt" | cut -d, -f5 | sort | uniq -c
call_pack
call_step resnet50 fp16,int8,fp8 128 200 --profile 128
call_step bert fp16 128 100
