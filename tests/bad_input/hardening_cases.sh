#!/usr/bin/env bash
# Files and sizes from an attacker (issue 10): external data that is a symlink, a FIFO, a
# directory or a malformed offset; /dev/zero, FIFOs and directories given as models, plans and
# inputs; declared-but-empty huge initializers; a huge .npy of the wrong shape; a pinned plan
# hash. Every case must fail fast with one line naming the problem (lib.sh: expect_fail), and
# nothing may read outside the model's folder. Run by ctest as hardening.<case>.
source "$(dirname "$0")/lib.sh"

# ext.onnx: y = x @ w with w (3x4 float32) stored as external data at LOCATION (offset/length
# optional), plus w.bin holding w's 48 bytes; want.npy is the right answer.
ext_model() {
  "$PY" - "$@" <<'PY'
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
location = sys.argv[1]
w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
t = numpy_helper.from_array(w, "w")
t.ClearField("raw_data")
t.data_location = TensorProto.EXTERNAL
for k, v in [("location", location)] + [tuple(a.split("=", 1)) for a in sys.argv[2:]]:
    e = t.external_data.add()
    e.key, e.value = k, v
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [t])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "ext.onnx")
open("w.bin", "wb").write(w.tobytes())
np.save("x.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
np.save("want.npy", np.arange(6, dtype=np.float32).reshape(2, 3) @ w)
PY
}

case_external_data_regular_file_works() {
  ext_model w.bin
  expect_ok "$KILN" build ext.onnx -o ext.plan --device cpu
  expect_ok "$KILN" run ext.plan -i x=x.npy -o out --device cpu
  "$PY" -c "import numpy as np; assert np.allclose(np.load('out/y.npy'), np.load('want.npy'), rtol=1e-6)" ||
    die "external-data result differs from numpy"
}

case_external_data_symlinks_are_refused() {
  # A file symlink to a file outside the folder (its bytes would come back as an output) and a
  # directory symlink on the way to one.
  mkdir -p outside
  cp /etc/passwd outside/secret
  ext_model link.bin
  ln -sf "$PWD/outside/secret" link.bin
  expect_fail "tensor 'w'" "link.bin" "symbolic link" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model dir/w.bin
  ln -sfn "$PWD/outside" dir
  cp w.bin outside/w.bin
  expect_fail "tensor 'w'" "dir/w.bin" "symbolic link" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ln -sf /etc/passwd passwd
  ext_model passwd
  expect_fail "tensor 'w'" "symbolic link" -- "$KILN" build ext.onnx -o e.plan --device cpu
  [ ! -e e.plan ] || die "a plan was written from a symlinked external-data file"
}

case_external_data_not_a_regular_file() {
  ext_model fifo.bin
  mkfifo fifo.bin
  expect_fail "tensor 'w'" "fifo.bin" "is a FIFO" -- timeout 20 "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model sub
  mkdir -p sub
  expect_fail "tensor 'w'" "is a directory" -- timeout 20 "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model ../w.bin
  expect_fail "tensor 'w'" "inside the model's folder" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model /etc/passwd
  expect_fail "tensor 'w'" "inside the model's folder" -- "$KILN" build ext.onnx -o e.plan --device cpu
}

case_external_data_offsets_and_lengths() {
  ext_model w.bin offset=abc
  expect_fail "tensor 'w'" "offset 'abc' is not a non-negative number" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model w.bin offset=-4
  expect_fail "offset '-4'" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model w.bin offset=99999999999999999999999
  expect_fail "offset '99999999999999999999999'" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model w.bin offset=16
  expect_fail "tensor 'w'" "has 48 bytes; the tensor needs 48 at offset 16" -- "$KILN" build ext.onnx -o e.plan --device cpu
  ext_model w.bin length=40
  expect_fail "tensor 'w'" "length 40 does not match" -- "$KILN" build ext.onnx -o e.plan --device cpu
}

case_declared_huge_initializer_without_data() {
  # A [2^20, 2^12] float initializer (16 GiB) declared with no data: refused before anything
  # of that size is allocated (the build must stay far below it: ulimit -v 4 GiB).
  "$PY" - <<'PY'
import onnx
from onnx import helper, TensorProto
t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 12])
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 20])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 12])
g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [t])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "empty_init.onnx")
PY
  expect_fail "tensor 'w'" "has 0 values for shape 1048576x4096" -- \
    with_vm_limit 4194304 timeout 60 "$KILN" build empty_init.onnx -o e.plan --device cpu
}

case_special_files_as_model_plan_input() {
  copy_plan
  make_inputs
  mkfifo fifo
  mkdir -p adir
  for f in /dev/zero fifo adir; do
    expect_fail "$f" -- timeout 20 "$KILN" build "$f" -o e.plan --device cpu
    expect_fail "$f" -- timeout 20 "$KILN" inspect "$f"
    expect_fail "$f" -- timeout 20 "$KILN" run "$f" -i x=x.npy -i ids=ids.npy -o out --device cpu
    expect_fail "input 'x'" "$f" -- timeout 20 "$KILN" run copy.plan -i x="$f" -i ids=ids.npy -o out --device cpu
  done
  expect_fail "plan file 'adir' is a directory" -- "$KILN" inspect adir
  expect_fail "plan file '/dev/zero' is a device" -- "$KILN" inspect /dev/zero
  if grep -q "basic_filebuf" "$WORK/stderr"; then die "libstdc++ message leaked"; fi
}

case_huge_npy_of_the_wrong_shape_is_not_read() {
  # A 3 GiB .npy (sparse: nothing is really on disk) whose header shape is not the plan's: the
  # header alone decides, in well under the time reading 3 GiB would take, in little memory.
  copy_plan
  make_inputs
  "$PY" - <<'PY'
n = (3 << 30) // 4
header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % n
header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
with open("huge.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())
    f.truncate(f.tell() + n * 4)
PY
  local t0=$(date +%s%N)
  expect_fail "input 'x'" "expected float32 2x3x4, got float32 805306368" -- \
    with_vm_limit 2097152 "$KILN" run copy.plan -i x=huge.npy -i ids=ids.npy -o out --device cpu
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  [ "$ms" -lt 5000 ] || die "refusing the huge .npy took $ms ms"
}

case_output_folder_is_created_with_parents() {
  copy_plan
  make_inputs
  expect_ok "$KILN" run copy.plan -i x=x.npy -i ids=ids.npy -o a/b/c --device cpu
  [ -f a/b/c/y.npy ] || die "a/b/c/y.npy was not written"
  : >afile
  expect_fail "afile" "is not a folder" -- "$KILN" run copy.plan -i x=x.npy -i ids=ids.npy -o afile/out --device cpu
}

case_pinned_plan_hash() {
  copy_plan
  make_inputs
  local sum
  sum=$(sha256sum copy.plan | cut -d' ' -f1)
  expect_ok "$KILN" inspect copy.plan
  expect_out "sha256: $sum"
  expect_ok "$KILN" run copy.plan --plan-sha256 "$sum" -i x=x.npy -i ids=ids.npy -o out --device cpu
  local other=${sum:1}0
  expect_fail "copy.plan" "has SHA-256 $sum, not the pinned $other" -- \
    "$KILN" run copy.plan --plan-sha256 "$other" -i x=x.npy -i ids=ids.npy -o out --device cpu
  expect_fail "is not 64 hex digits" -- "$KILN" run copy.plan --plan-sha256 xyz -i x=x.npy -o out
}

case_memory_bounds_at_build_and_context_creation() {
  # A Conv+Relu with free H, W: --shapes 1x3x100000x100000 needs 298 GiB of activations.
  "$PY" - <<'PY'
import numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
                       helper.make_node("Relu", ["y"], ["z"])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
                      [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "conv.onnx")
PY
  expect_fail "298.0 GiB of activations" "largest tensor 'z' float32 1x8x100000x100000" "--allow-over-memory" -- \
    "$KILN" build conv.onnx -o big.plan --shapes x=1x3x100000x100000 --device cpu
  [ ! -e big.plan ] || die "the oversized plan was written"
  expect_fail "30.5 MiB of host memory" "more than the 10.0 MiB allowed (--max-memory" -- \
    "$KILN" build conv.onnx -o mid.plan --shapes x=1x3x1000x1000 --device cpu --max-memory 10M
  expect_ok "$KILN" build conv.onnx -o mid.plan --shapes x=1x3x1000x1000 --device cpu --max-memory 64M
  expect_fail "--max-memory needs a size" -- "$KILN" build conv.onnx -o mid.plan --shapes x=1x3x8x8 --max-memory lots
  # Allowed at build, refused when a context is created, before anything is allocated.
  expect_ok "$KILN" build conv.onnx -o big.plan --shapes x=1x3x100000x100000 --device cpu --allow-over-memory
  expect_fail "creating a context on cpu" "298.0 GiB of activations" "available" -- \
    with_vm_limit 2097152 "$KILN" run big.plan -o out --device cpu
}

case_node_with_an_output_its_op_lacks() {
  # Found by fuzz_onnx_import: an output slot the op does not have was reported as an internal
  # error ("shape rule left output unset").
  "$PY" - <<'PY'
import onnx
from onnx import helper, TensorProto
n = helper.make_node("Softmax", ["x"], ["y", "extra"], name="sm", axis=1)
g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
open("extra_out.onnx", "wb").write(m.SerializeToString())
PY
  expect_fail "node 'sm'" "output 'extra' is not an output Softmax has" -- "$KILN" build extra_out.onnx -o e.plan --device cpu
  if grep -q "internal error" "$WORK/stderr"; then die "reported as an internal error"; fi
}

run_case
