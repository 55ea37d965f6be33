source perf/device/env.sh; source perf/device/call_steps.sh; call_begin c2
call_step bert-large fp16,int8 1 150 --concurrency 1
STEP_NAME=bert-large-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step bert-large fp16,int8 1 150 --concurrency 1
call_step minilm fp16,int8 1 60 --concurrency 1
STEP_NAME=minilm-b1-nolat KILN_MMA_LATENCY_MODEL=0 call_step minilm fp16,int8 1 60 --concurrency 1
call_pack
