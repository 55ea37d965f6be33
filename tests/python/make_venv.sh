#!/usr/bin/env bash
# Builds the kiln wheel (`pip wheel .` at the repository root: scikit-build-core + nanobind, the
# pinned ones of the tooling venv) and installs it into a clean venv made from Debian's python,
# with the test tools only: the Python tests then import the installed package, not the tree.
#   bash tests/python/make_venv.sh BUILD_DIR     -> BUILD_DIR/python-venv, BUILD_DIR/python-dist
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(mkdir -p "$1" && cd "$1" && pwd)
TOOLS=${KILN_TOOL_PYTHON:-$ROOT/.venv/bin/python}
VENV=$BUILD/python-venv
DIST=$BUILD/python-dist
[ -x "$TOOLS" ] || { echo "no tooling venv at $TOOLS (scripts/setup_python.sh)"; exit 77; }
start=$(date +%s)
rm -rf "$DIST"
launcher=""
command -v ccache >/dev/null && launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache"
# ccache: the wheel compiles the same sources with the same flags as the main build.
CMAKE_ARGS="$launcher" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
  "$TOOLS" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$DIST" "$ROOT"
wheel=$(ls "$DIST"/kiln-*.whl)
echo "built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) in $(( $(date +%s) - start )) s"
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
if ! "$VENV/bin/python" -c "import pytest, onnxruntime, onnx, numpy, pytriton, tritonclient.grpc" 2>/dev/null; then
  # nvidia-pytriton ships the real tritonserver (and pulls tritonclient): the serving tests.
  "${PIP[@]}" "numpy<2.3" "pytest==8.4.2" "onnx==1.17.0" "onnxruntime==1.20.1" "nvidia-pytriton==0.7.0"
fi
"${PIP[@]}" --force-reinstall --no-deps "$wheel"
# From outside the tree, so that `import kiln` can only find the installed package.
(cd / && "$VENV/bin/python" -c "import kiln, sys; print('installed', kiln.__file__, kiln.__version__)")
echo "wheel + venv ready in $(( $(date +%s) - start )) s"
