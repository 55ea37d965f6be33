# Sourced on the GPU machine before running anything kiln there (see bundle.sh): unpacks the
# bundle carried in .device/ into $KILN_BUNDLE once, and points the loader at NVIDIA's OpenCL.
mkdir -p /tmp/kiln-icd && echo libnvidia-opencl.so.1 > /tmp/kiln-icd/nvidia.icd
export OCL_ICD_VENDORS=/tmp/kiln-icd
export KILN_BUNDLE=/tmp/kiln-bundle
if [ ! -x "$KILN_BUNDLE/bin/kiln" ]; then
  mkdir -p "$KILN_BUNDLE" && tar -C "$KILN_BUNDLE" -xzf .device/kiln-bundle.tgz
fi
export LD_LIBRARY_PATH="$KILN_BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$KILN_BUNDLE/bin:$PATH"
export KILN_CACHE_DIR=/tmp/kiln-cache
