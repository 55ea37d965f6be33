#!/usr/bin/env bash
# Packs a kiln build for the GPU machine (see perf/device/README.md) into .device/:
# binaries, the runtime library, and the shared libraries that machine lacks (the OpenCL ICD
# loader, CLBlast, oneDNN and its GNU OpenMP, protobuf and onnx_proto from Debian), plus the ONNX
# node tests.
# Usage: [KILN_BUNDLE_TESTDATA=0] bash perf/device/bundle.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
OUTDIR=.device
excl=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$excl")"
grep -qx "/.device/" "$excl" 2>/dev/null || echo "/.device/" >> "$excl"
# Staged, then packed into one gzip'd tarball: the libraries alone (oneDNN is 38 MB) would pass
# the 64 MiB a device call carries. env.sh unpacks it there.
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR" "$STAGE/lib" "$STAGE/bin"

tmp=$(mktemp -d)
(cd "$tmp" && apt-get download -qq ocl-icd-libopencl1 libclblast1 >/dev/null && for d in *.deb; do dpkg -x "$d" x; done)
cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/libOpenCL.so.1 "$STAGE/lib/"
cp -L "$tmp"/x/usr/lib/x86_64-linux-gnu/libclblast.so.1 "$STAGE/lib/"
rm -rf "$tmp"
for l in libprotobuf.so.32 libonnx_proto.so.1 libdnnl.so.2 libgomp.so.1; do cp -L "/usr/lib/x86_64-linux-gnu/$l" "$STAGE/lib/"; done
# Nothing else the binaries link may be missing there (only the C/C++ runtime and zlib are).
for b in "$BUILD/kiln" "$BUILD"/libkiln_runtime.so.0; do
  missing=$(LD_LIBRARY_PATH="$STAGE/lib" ldd "$b" | awk '$3 ~ /^\/(usr\/)?lib/ {print $1}' |
            grep -vE '^(libc|libm|libstdc\+\+|libgcc_s|libz|libpthread|libdl|librt)\.so' || true)
  [ -z "$missing" ] || { echo "bundle.sh: $b links libraries not in the bundle: $missing" >&2; exit 1; }
done
cp -L "$BUILD"/libkiln_runtime.so.0 "$STAGE/lib/"
cp "$BUILD/kiln" "$STAGE/bin/"
for t in kiln_conformance kiln_tests; do [ -f "$BUILD/tests/$t" ] && cp "$BUILD/tests/$t" "$STAGE/bin/"; done
[ -f "$BUILD/kiln-rt" ] && cp "$BUILD/kiln-rt" "$STAGE/bin/"
# The ONNX node tests (27 MB) only for the conformance runs: KILN_BUNDLE_TESTDATA=0 leaves them out.
if [ "${KILN_BUNDLE_TESTDATA:-1}" != 0 ]; then
  mkdir -p "$STAGE/testdata" && cp -r /usr/share/libonnx-testdata/data/node "$STAGE/testdata/"
fi
tar -C "$STAGE" -czf "$OUTDIR/kiln-bundle.tgz" .
du -sh "$OUTDIR"
