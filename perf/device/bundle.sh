#!/usr/bin/env bash
# Packs a kiln build for the GPU machine (see perf/device/README.md) into .device/:
# binaries, the runtime library, and the shared libraries that machine lacks (the OpenCL ICD
# loader, CLBlast, protobuf and onnx_proto from Debian), plus the ONNX node tests.
# Usage: [KILN_BUNDLE_TESTDATA=0] bash perf/device/bundle.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
OUTDIR=.device
excl=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$excl")"
grep -qx "/.device/" "$excl" 2>/dev/null || echo "/.device/" >> "$excl"
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR/lib" "$OUTDIR/bin"

tmp=$(mktemp -d)
(cd "$tmp" && apt-get download -qq ocl-icd-libopencl1 libclblast1 >/dev/null && for d in *.deb; do dpkg -x "$d" x; done)
cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/libOpenCL.so.1 "$OUTDIR/lib/"
cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/libclblast.so.1 "$OUTDIR/lib/"
rm -rf "$tmp"
for l in libprotobuf.so.32 libonnx_proto.so.1; do cp -L "/usr/lib/x86_64-linux-gnu/$l" "$OUTDIR/lib/"; done
cp -L "$BUILD"/libkiln_runtime.so.0 "$OUTDIR/lib/"
cp "$BUILD/kiln" "$OUTDIR/bin/"
for t in kiln_conformance kiln_tests; do [ -f "$BUILD/tests/$t" ] && cp "$BUILD/tests/$t" "$OUTDIR/bin/"; done
[ -f "$BUILD/kiln-rt" ] && cp "$BUILD/kiln-rt" "$OUTDIR/bin/"
# The ONNX node tests (27 MB) only for the conformance runs: KILN_BUNDLE_TESTDATA=0 leaves them out.
if [ "${KILN_BUNDLE_TESTDATA:-1}" != 0 ]; then
  mkdir -p "$OUTDIR/testdata" && cp -r /usr/share/libonnx-testdata/data/node "$OUTDIR/testdata/"
fi
du -sh "$OUTDIR"
