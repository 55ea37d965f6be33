#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds kiln and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd "${KILN_BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)"
