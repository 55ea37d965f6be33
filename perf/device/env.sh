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

# Copies the newest N programs of the kernel cache that contain tensor-core code (PTX text from
# NVIDIA's OpenCL compiler) to DIR, to read the compiler's output back home.
kiln_copy_mma_ptx() {
  local dir=$1 n=${2:-4} i=0 f
  mkdir -p "$dir"
  for f in $(ls -t $(grep -l -s -E "mma.sync|wgmma" -r "$KILN_CACHE_DIR") 2>/dev/null | head -"$n"); do
    cp "$f" "$dir/program$i.ptx"
    i=$((i + 1))
  done
}
