# Call 3: what one launch of a replayed plan costs on the GPU (perf/device/launch_probe.py: chains
# of 25 / 100 / 200 LayerNormalization nodes, kiln bench --no-data-transfers), and whether NVIDIA's
# OpenCL offers cl_khr_command_buffer.
source perf/device/env.sh; source perf/device/call_steps.sh; call_begin b3
timeout 200 python3 perf/device/launch_probe.py "$R/probe" --kiln kiln > "$R/probe.txt" 2>&1; echo "probe rc $?"
tail -4 "$R/probe.txt"; call_pack
