#!/usr/bin/env bash
# Installs everything kiln needs to build and test on Debian 12 (bookworm), run as root (or
# through sudo). Idempotent: a machine that already has the packages does no network work.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config               # compilers, binutils (readelf/nm for tests)
  ocl-icd-opencl-dev opencl-headers ocl-icd-libopencl1 pocl-opencl-icd clinfo
  libclblast-dev                                 # GEMM/conv backend of the OpenCL kernels
  libdnnl-dev                                    # oneDNN: the cpu device's convolutions, GEMMs, int8
  libonnx-dev libprotobuf-dev protobuf-compiler  # the compiler's ONNX importer
  libboost-dev
  libgtest-dev googletest
  libonnx-testdata                               # ONNX backend node tests (conformance)
  python3 python3-numpy python3-onnx             # test inputs, demo input, tests/models
  python3-venv zlib1g-dev                        # tooling venv (scripts/setup_python.sh); npz reading
  ninja-build                                    # the Python wheel's CMake build (pip install .)
  dataset-fashion-mnist                          # real images for the accuracy tests (tests/accuracy)
  alsa-utils                                     # spoken-word WAVs for the silero VAD test (tests/recurrent)
  clang libclang-rt-14-dev                       # sanitizer build (scripts/sanitize.sh) and libFuzzer (scripts/fuzz.sh)
)

if [ -r /etc/os-release ]; then
  . /etc/os-release
  if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
    echo "setup: warning: written for Debian 12, this is ${PRETTY_NAME:-unknown}; trying anyway" >&2
  fi
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    echo "setup: missing packages (${missing[*]}) and not root: run as root" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
