#!/usr/bin/env bash
# Layering checks (ctest: layering.*): the runtime library an application embeds pulls in no
# compiler dependency and exports the C API only, and runtime/ + include/ never include compiler/.
#   bash scripts/check_layering.sh BUILD_DIR CHECK     CHECK: deps | exports | includes | embed
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$1" && pwd)
LIB=$BUILD/libkiln_runtime.so
die() { echo "FAIL: $*" >&2; exit 1; }

case "$2" in
  deps)
    [ -f "$LIB" ] || die "$LIB not built"
    needed=$(readelf -d "$LIB" | grep NEEDED || true)
    echo "$needed"
    if echo "$needed" | grep -Eiq 'protobuf|onnx|boost'; then die "libkiln_runtime.so links a compiler dependency"; fi
    # ldd also shows what those libraries pull in.
    if ldd "$LIB" | grep -Eiq 'protobuf|onnx|boost'; then ldd "$LIB"; die "a compiler dependency is loaded with libkiln_runtime.so"; fi
    ;;
  exports)
    syms=$(nm -D --defined-only "$LIB" | awk '{print $NF}')
    echo "$syms"
    bad=$(echo "$syms" | grep -v '^kiln_' || true)
    [ -z "$bad" ] || die "exported symbols outside the C API: $(echo "$bad" | head -20 | tr '\n' ' ')"
    # Every function declared in kiln.h is exported.
    for f in $(grep -oE 'KILN_API [^(]*\(' "$ROOT/include/kiln/kiln.h" | grep -oE 'kiln_[a-z_]+\($' | tr -d '('); do
      echo "$syms" | grep -qx "$f" || die "kiln.h declares $f but the library does not export it"
    done
    ;;
  includes)
    if grep -rn '#include "compiler/' "$ROOT/runtime" "$ROOT/include"; then die "runtime/ or include/ includes compiler/"; fi
    # The public header is plain C.
    cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c "$ROOT/include/kiln/kiln.h"
    ;;
  embed)
    # A C program linked against libkiln_runtime.so alone loads and runs a plan.
    [ -x "$BUILD/tests/kiln_embed_example" ] || die "kiln_embed_example not built"
    if readelf -d "$BUILD/tests/kiln_embed_example" | grep -Eq 'kiln_compiler|protobuf|onnx'; then die "the example links compiler code"; fi
    work=$BUILD/tests/layering-embed
    rm -rf "$work" && mkdir -p "$work"
    "$BUILD/kiln" build "$ROOT/tests/models/copy_two_inputs.onnx" -o "$work/copy.plan" --device cpu >/dev/null
    out=$("$BUILD/tests/kiln_embed_example" "$work/copy.plan" cpu)
    echo "$out"
    echo "$out" | grep -qF "y: dtype 1, dims [4, 6], 96 bytes, first bytes 0 1 2 3 4 5 6 0" || die "unexpected output"
    echo "$out" | grep -qF "ids_out: dtype 7, dims [5], 40 bytes" || die "unexpected output"
    ;;
  *) die "unknown check '$2'" ;;
esac
echo "PASS layering.$2"
