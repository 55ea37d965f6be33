# Sourced on the GPU machine before running anything from .device/ (see bundle.sh).
mkdir -p /tmp/kiln-icd && echo libnvidia-opencl.so.1 > /tmp/kiln-icd/nvidia.icd
export OCL_ICD_VENDORS=/tmp/kiln-icd
export LD_LIBRARY_PATH="$PWD/.device/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$PWD/.device/bin:$PATH"
export KILN_CACHE_DIR=/tmp/kiln-cache
