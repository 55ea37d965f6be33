#!/usr/bin/env bash
# The CLI's normal paths: --version, --help on every verb, devices, build/run/inspect output.
# Run by ctest (cli.<case>); by hand: bash tests/bad_input/cli_cases.sh build/kiln tests/models /tmp/w <case>
source "$(dirname "$0")/lib.sh"

case_version() {
  expect_ok "$KILN" --version
  grep -qE '^kiln [0-9]+\.[0-9]+\.[0-9]+' stdout || die "no version line"
}
case_help_every_verb() {
  expect_ok "$KILN" --help
  expect_out "usage: kiln <verb>" build run inspect devices
  for verb in build run inspect devices; do
    expect_ok "$KILN" "$verb" --help
    expect_out "usage: kiln $verb"
    expect_ok "$KILN" "$verb" -h
    expect_out "usage: kiln $verb"
  done
  local rc=0
  "$KILN" >stdout 2>stderr || rc=$?
  [ "$rc" -eq 2 ] || die "kiln without a verb: exit $rc, expected 2"
  grep -qF "usage:" stderr || die "kiln without a verb prints no usage"
}
case_devices() {
  expect_ok "$KILN" devices
  expect_out "cpu " "host CPU backend"
  # scripts/setup.sh installs PoCL, so a CPU OpenCL device is always there.
  expect_out "opencl:0" "Portable Computing Language" "compute units:"
  grep -qF "[auto]" stdout || die "no device marked [auto]"
}
case_inspect() {
  for dev in cpu opencl; do
    expect_ok "$KILN" build "$MODELS/copy_two_inputs.onnx" -o $dev.plan --device $dev
    expect_out "built $dev.plan" "2 nodes" "target $dev"
    expect_ok "$KILN" inspect $dev.plan
    expect_out "format version: 1" "target device: $dev" "inputs:" "x  float32 2x3x4" "ids  int64 5" \
      "outputs:" "y  float32 4x6" "ids_out  int64 5" "nodes (2):" "reshape  op=Reshape  backend=$dev" \
      "identity  op=Reshape  backend=$dev" "kernel=" "segments:"
  done
}
case_build_run_cpu() {
  make_inputs
  expect_ok "$KILN" build "$MODELS/copy_two_inputs.onnx" -o c.plan --device cpu
  expect_ok "$KILN" run c.plan -i x=x.npy -i ids=ids.npy -o out --device cpu --repeat 3
  expect_out "y: float32 4x6 [0, 1, 2, 3, 4, 5, ...] -> out/y.npy" "ids_out: int64 5 [100, 101, 102, 103, 104]" \
    "device cpu: first run" "median of 3 runs"
  "$PY" -c "
import numpy as np
assert (np.load('out/y.npy') == np.arange(24, dtype=np.float32).reshape(4, 6)).all()
assert np.load('out/y.npy').dtype == np.float32
assert (np.load('out/ids_out.npy') == np.arange(5) + 100).all()"
}
case_build_run_opencl() {
  make_inputs
  expect_ok "$KILN" build "$MODELS/copy_two_inputs.onnx" -o c.plan --device opencl:0
  expect_out "2 opencl"
  expect_ok "$KILN" run c.plan -i x=x.npy -i ids=ids.npy -o out --device opencl:0
  expect_out "device opencl:0"
  "$PY" -c "
import numpy as np
assert (np.load('out/y.npy') == np.arange(24, dtype=np.float32).reshape(4, 6)).all()
assert (np.load('out/ids_out.npy') == np.arange(5) + 100).all()"
  # A plan built for OpenCL also runs on the cpu, with a note saying so.
  expect_ok "$KILN" run c.plan -i x=x.npy -i ids=ids.npy -o out2 --device cpu
  grep -qF "note: plan was built for opencl" stderr || die "no note about the device change"
}
case_dynamic_dim_fixed() {
  expect_ok "$KILN" build "$MODELS/dynamic_batch.onnx" -o d.plan --device cpu --shapes x=5x3x4
  expect_ok "$KILN" inspect d.plan
  expect_out "x  float32 5x3x4" "y  float32 5x12"
}

run_case
