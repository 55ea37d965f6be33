#!/usr/bin/env bash
# The README's test command: sets up a fresh Debian 12 machine (packages), builds kiln and runs
# the whole test suite. Extra arguments go to ctest, e.g. `bash scripts/test.sh -R bad_input`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
echo "== setup"
bash scripts/setup.sh
bash scripts/setup_python.sh >/dev/null   # ONNX Runtime + pinned onnx for reference tests
echo "== build"
bash scripts/build.sh
echo "== test"
cd "${KILN_BUILD_DIR:-build}"
rc=0
ctest --output-on-failure -j"$(nproc)" "$@" || rc=$?
echo "== done in $(( $(date +%s) - start )) s (ctest exit code $rc)"
exit $rc
