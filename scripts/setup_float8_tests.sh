#!/usr/bin/env bash
# Installs a pinned onnx (1.17.0) into its own folder for tests/conformance/gen_float8_cases.py.
# Debian's onnx (1.12) predates float8 and the opset-21 QuantizeLinear/DequantizeLinear test
# cases; 1.17.0 still carries them (with the reference implementation that generated them).
# Idempotent: does nothing when the folder already imports onnx 1.17.0.
#   KILN_ONNX117_DIR  where to install (default: ~/.cache/kiln/onnx-1.17.0)
# Prints the folder on success. tests/conformance/gen_float8_cases.py takes it as --onnx-dir (or
# KILN_ONNX117_DIR); ctest's float8_cases_gen uses the same default folder.
set -euo pipefail

DIR="${KILN_ONNX117_DIR:-${HOME}/.cache/kiln/onnx-1.17.0}"
PY=/usr/bin/python3

if PYTHONPATH="$DIR" "$PY" -c 'import onnx, sys; sys.exit(onnx.__version__ != "1.17.0")' 2>/dev/null; then
  echo "$DIR"
  exit 0
fi
mkdir -p "$DIR"
# --target keeps it out of the system site-packages (no python3-venv needed). numpy and
# protobuf come along so the folder works on its own, whatever the system versions are.
"$PY" -m pip install --quiet --disable-pip-version-check --no-input --upgrade \
  --target "$DIR" "onnx==1.17.0" "numpy<2" "protobuf>=3.20.2,<5" >&2
PYTHONPATH="$DIR" "$PY" -c 'import onnx; assert onnx.__version__ == "1.17.0", onnx.__version__'
echo "$DIR"
