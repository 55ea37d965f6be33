#!/usr/bin/env bash
# Layering checks (ctest: layering.*): the runtime library an application embeds pulls in no
# compiler dependency and exports the C API only, and runtime/ + include/ never include compiler/.
#   bash scripts/check_layering.sh BUILD_DIR CHECK     CHECK: deps | exports | compiler-exports | includes
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
    # What the runtime may link: OpenCL, CLBlast, oneDNN (the cpu device's kernels) and GNU
    # OpenMP (its threads and kiln's loops), plus the C/C++ runtime. A new dependency is a
    # decision: add it here, to cmake/kilnConfig.cmake.in and to cmake/kiln.pc.in.
    allowed='libOpenCL\.so|libclblast\.so|libdnnl\.so|libgomp\.so|libstdc\+\+\.so|libm\.so|libgcc_s\.so|libc\.so|libpthread\.so|libdl\.so|ld-linux'
    extra=$(echo "$needed" | grep -oE '\[[^]]+\]' | tr -d '[]' | grep -Ev "^($allowed)" || true)
    [ -z "$extra" ] || die "libkiln_runtime.so links libraries outside the allowed list: $extra"
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
      grep -qx "$f" <<<"$syms" || die "kiln.h declares $f but the library does not export it"
    done
    ;;
  compiler-exports)
    # libkiln_compiler.so: the compiler C API (kiln_build_*) only, all of kiln_build.h, plain C.
    CLIB=$BUILD/libkiln_compiler.so
    [ -f "$CLIB" ] || die "$CLIB not built"
    syms=$(nm -D --defined-only "$CLIB" | awk '{print $NF}')
    bad=$(echo "$syms" | grep -v '^kiln_build_' || true)
    [ -z "$bad" ] || die "libkiln_compiler.so exports symbols outside kiln_build_*: $(echo "$bad" | head -20 | tr '\n' ' ')"
    for f in $(grep -oE 'KILN_API [^(]*\(' "$ROOT/include/kiln/kiln_build.h" | grep -oE 'kiln_[a-z_]+\($' | tr -d '('); do
      grep -qx "$f" <<<"$syms" || die "kiln_build.h declares $f but libkiln_compiler.so does not export it"
    done
    cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$ROOT/include" -x c "$ROOT/include/kiln/kiln_build.h"
    ;;
  includes)
    if grep -rn '#include "compiler/' "$ROOT/runtime" "$ROOT/include"; then die "runtime/ or include/ includes compiler/"; fi
    # What the OpenCL kernels, the op rules and the compiler share with the CPU kernels lives in
    # neutral headers (runtime/backends/*.h, runtime/ops/), not in the CPU backend's folder.
    if grep -rn '#include "runtime/backends/cpu/' "$ROOT/runtime/backends/opencl" "$ROOT/runtime/ops" "$ROOT/compiler"; then
      die "a file outside runtime/backends/cpu/ includes a CPU-backend header (move the shared part to runtime/backends/)"
    fi
    # The public header is plain C.
    cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c "$ROOT/include/kiln/kiln.h"
    ;;
  *) die "unknown check '$2'" ;;
esac
echo "PASS layering.$2"
