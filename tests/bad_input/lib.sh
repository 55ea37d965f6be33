# Shared by the shell test scripts in tests/bad_input/. A script defines case_<name>()
# functions; ctest runs `bash SCRIPT KILN_BIN MODELS_DIR WORK_DIR <name>` once per case (the
# case list is read from the script by tests/CMakeLists.txt).
set -euo pipefail

KILN=$1
MODELS=$2
WORK=$3/$4
CASE=$4
PY=/usr/bin/python3  # Debian's python3-numpy, installed by scripts/setup.sh
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

die() {
  echo "FAIL [$CASE]: $*" >&2
  for f in stdout stderr; do
    if [ -s "$WORK/$f" ]; then
      echo "--- $f" >&2
      head -c 4000 "$WORK/$f" >&2
    fi
  done
  exit 1
}

# expect_fail SUBSTRING... -- COMMAND...
# The command must exit non-zero without crashing (exit code < 128: no signal, no abort) and
# print exactly one line on stderr containing every SUBSTRING.
expect_fail() {
  local subs=()
  while [ "$1" != "--" ]; do subs+=("$1"); shift; done
  shift
  local rc=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  [ "$rc" -ne 0 ] || die "expected a failure, got exit 0: $*"
  [ "$rc" -lt 128 ] || die "crashed with exit code $rc: $*"
  local lines
  lines=$(wc -l <"$WORK/stderr")
  [ "$lines" -eq 1 ] || die "expected one line on stderr, got $lines: $*"
  local s
  for s in "${subs[@]}"; do
    grep -qF -- "$s" "$WORK/stderr" || die "stderr lacks '$s': $*"
  done
  echo "ok: $* -> $(cat "$WORK/stderr")"
}

# with_vm_limit KIB COMMAND... : runs COMMAND with its address space limited to KIB (so a case
# can show that something is refused without being allocated). Sanitizer builds reserve
# terabytes of address space up front: there (KILN_SANITIZED=1) the limit is left out.
with_vm_limit() {
  local kib=$1
  shift
  if [ -n "${KILN_SANITIZED:-}" ]; then "$@"; else bash -c "ulimit -v $kib; exec \"\$@\"" _ "$@"; fi
}

# expect_ok COMMAND... : exit 0; stdout/stderr kept in $WORK/stdout, $WORK/stderr.
expect_ok() {
  local rc=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  [ "$rc" -eq 0 ] || die "exit code $rc: $*"
}

# expect_out SUBSTRING... : the last expect_ok's stdout contains every SUBSTRING.
expect_out() {
  local s
  for s in "$@"; do
    grep -qF -- "$s" "$WORK/stdout" || die "stdout lacks '$s'"
  done
}

# The copy-ops model (x float32[2,3,4] -> Reshape [4,6] -> y; ids int64[5] -> ids_out), built
# for the cpu device, and matching inputs.
copy_plan() {
  expect_ok "$KILN" build "$MODELS/copy_two_inputs.onnx" -o copy.plan --device "${1:-cpu}"
}
make_inputs() {
  "$PY" - <<'PYEOF'
import numpy as np
np.save("x.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
np.save("ids.npy", np.arange(5, dtype=np.int64) + 100)
np.save("x_f64.npy", np.arange(24, dtype=np.float64).reshape(2, 3, 4))
np.save("x_shape.npy", np.zeros((3, 2, 4), dtype=np.float32))
np.save("x_flat.npy", np.zeros((24,), dtype=np.float32))
PYEOF
}

# Writes a copy of $1 to $2 with the byte at offset $3 inverted.
flip_byte() {
  "$PY" -c "
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[int(sys.argv[3])] ^= 0xff
open(sys.argv[2], 'wb').write(b)" "$1" "$2" "$3"
}

run_case() {
  declare -F "case_$CASE" >/dev/null || die "no such case"
  "case_$CASE"
  echo "PASS [$CASE]"
}
