# Call 2: the batch-1 latency model (mma_gemm.cpp latency_ranked, fitted to BERT-base's --tune
# timings) on encoders it was not fitted on, BERT-large (24 x 1024) and MiniLM (6 x 384), with
# and without it (KILN_MMA_LATENCY_MODEL=0: the throughput ranking) on one host; then BERT-base.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin c2
call_step bert-large fp16,int8 1 170 --concurrency 1
STEP_NAME=bert-large-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step bert-large fp16,int8 1 170 --concurrency 1
call_step minilm fp16,int8 1 70 --concurrency 1
STEP_NAME=minilm-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step minilm fp16,int8 1 70 --concurrency 1
STEP_NAME=bert-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step bert int8 1 60 --concurrency 1
call_step bert int8 1 60 --concurrency 1
