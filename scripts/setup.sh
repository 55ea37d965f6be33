#!/usr/bin/env bash
# Installs everything kiln needs to build and test on Debian 12 (run as root). Idempotent: a
# machine that already has the packages does no network work.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  ocl-icd-opencl-dev opencl-headers ocl-icd-libopencl1 pocl-opencl-icd clinfo
  libclblast-dev
  libonnx-dev libprotobuf-dev protobuf-compiler
  libboost-dev
  libgtest-dev googletest
  libonnx-testdata
  python3-numpy python3-onnx
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
