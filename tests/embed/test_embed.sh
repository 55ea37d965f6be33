#!/usr/bin/env bash
# Installs kiln into a temporary prefix, builds tests/embed/run_plan.c against it three ways
# (find_package shared, find_package static, pkg-config), runs each on MODEL's plan with every
# input set to ones, and checks the printed values against `kiln run` on the same inputs.
# Usage: test_embed.sh BUILD_DIR MODEL.onnx DEVICE
set -euo pipefail
BUILD=$(cd "$1" && pwd)
MODEL=$2
DEVICE=$3
SRC=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
# Nothing installed may drag in the compiler's dependencies.
if ldd "$TMP/prefix/lib/libkiln_runtime.so" "$TMP/prefix/bin/kiln-rt" | grep -Ei 'protobuf|onnx|boost'; then
  echo "installed runtime links protobuf/onnx/boost" >&2
  exit 1
fi
cmake -S "$SRC" -B "$TMP/b" -DCMAKE_PREFIX_PATH="$TMP/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$TMP/b" >/dev/null
PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig" cc "$SRC/run_plan.c" \
  $(PKG_CONFIG_PATH="$TMP/prefix/lib/pkgconfig" pkg-config --cflags --libs kiln) -o "$TMP/run_plan_pc"

"$BUILD/kiln" build "$MODEL" -o "$TMP/model.plan" --device "$DEVICE" >/dev/null
# Reference: kiln run with ones for every input, first 8 values of each output.
mkdir -p "$TMP/in" "$TMP/out"
args=()
while read -r name dtype dims; do
  /usr/bin/python3 -c "import numpy as np,sys; np.save(sys.argv[1], np.ones([int(d) for d in sys.argv[3].split('x') if d and sys.argv[3]!='scalar'], dtype=sys.argv[2]))" \
    "$TMP/in/$name.npy" "$dtype" "$dims"
  args+=(-i "$name=$TMP/in/$name.npy")
done < <("$BUILD/kiln" inspect "$TMP/model.plan" | sed -n '/^inputs:/,/^outputs:/p' | sed '1d;$d' | awk '{print $1, $2, $3}')
"$BUILD/kiln" run "$TMP/model.plan" "${args[@]}" -o "$TMP/out" --device "$DEVICE" >/dev/null
expected=$(/usr/bin/python3 - "$TMP/out" "$TMP/model.plan" "$BUILD/kiln" <<'PY'
import subprocess, sys, numpy as np
outdir, plan, kiln = sys.argv[1:]
text = subprocess.run([kiln, "inspect", plan], capture_output=True, text=True, check=True).stdout
outs = text.split("outputs:\n")[1].split("\n\n")[0].splitlines()
for line in outs:
    name = line.split()[0]
    v = np.load(f"{outdir}/{name.replace('/', '_')}.npy").reshape(-1)[:8]
    print(name + ":" + "".join(" %.6g" % float(x) for x in v))
PY
)
for exe in "$TMP/b/run_plan" "$TMP/b/run_plan_static" "$TMP/run_plan_pc"; do
  got=$(LD_LIBRARY_PATH="$TMP/prefix/lib" "$exe" "$TMP/model.plan" "$DEVICE")
  if [ "$got" != "$expected" ]; then
    echo "$(basename "$exe") printed:"; echo "$got"; echo "kiln run gives:"; echo "$expected"
    exit 1
  fi
done
echo "run_plan (shared, static, pkg-config) matches kiln run:"
echo "$expected"
