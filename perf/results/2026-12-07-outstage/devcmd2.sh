# Call 2: branch-free 8-bit output stages (kiln_div: the correctly rounded quotient by Markstein's
# correction instead of a test for rounding midpoints; FP8 encoding / decoding one instruction each,
# the saturation fixed at build time; per-column scales and biases read once per column; a group of
# rows wholly inside the output stored without a test per element): the tests on the real tensor
# cores, then ResNet-50 and BERT-base FP16/INT8/FP8 at batch 128 profiled, with throughput at 2
# contexts (transfers overlapping kernels); the 8-bit NHWC MaxPool on uint4 accesses.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin r2
call_tests 150 'MmaVariant.*Fp8*:MmaVariant.*Int8*:MmaVariant.*Residual*:MmaVariant.ChannelsLast*:QuantizeFp8Ops.*:QuantizeOps.*:FuseQuantized.*'
call_step resnet50 fp16,int8,fp8 128 240 --profile 128 --concurrency 2
call_step bert fp16,int8,fp8 128 240 --profile 128 --concurrency 2
