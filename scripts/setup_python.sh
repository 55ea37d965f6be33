#!/usr/bin/env bash
# Creates the Python environment kiln's test and benchmark tooling uses (ONNX Runtime as an
# independent reference, onnx, numpy) at ${KILN_VENV:-.venv} and prints its python's path.
# Debian's own python3 stays untouched (PEP 668); PyPI is only used for tooling, never by kiln.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${KILN_VENV:-$PWD/.venv}
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import onnxruntime, onnx, numpy" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "numpy<2.3" "onnx==1.17.0" "onnxruntime==1.20.1" >&2
fi
echo "$VENV/bin/python"
