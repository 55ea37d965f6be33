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
  expect_out "usage: kiln <verb>" build run inspect devices compare sweep
  for verb in build run inspect devices compare sweep; do
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
    expect_out "format version: 5" "target device: $dev" "inputs:" "x  float32 2x3x4" "ids  int64 5" \
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
case_fusion_keeps_results() {
  # Conv+BN+Relu and Conv+BN+Add+Relu fuse into two Conv nodes; --no-fuse keeps every node, and
  # both plans give the same probabilities on each device.
  "$PY" -c "import numpy as np; np.save('in.npy', np.random.default_rng(1).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32))"
  for dev in cpu opencl; do
    expect_ok "$KILN" build "$MODELS/demo_cnn.onnx" -o fused.plan --device $dev
    expect_ok "$KILN" inspect fused.plan
    expect_out "fused: block1_conv + block1_bn + block1_relu" "fused: block2_conv + block2_bn + res_add + res_relu" \
      "fused groups: 2"
    expect_ok "$KILN" build "$MODELS/demo_cnn.onnx" -o plain.plan --device $dev --no-fuse
    expect_ok "$KILN" inspect plain.plan
    expect_out "fused groups: 0" "op=BatchNormalization"
    expect_ok "$KILN" run fused.plan -i input=in.npy -o out_fused --device $dev
    expect_ok "$KILN" run plain.plan -i input=in.npy -o out_plain --device $dev
    "$PY" -c "
import numpy as np
a, b = np.load('out_fused/probs.npy'), np.load('out_plain/probs.npy')
assert a.shape == (1, 10) and np.allclose(a, b, rtol=1e-5, atol=1e-6), (a, b)
assert abs(a.sum() - 1) < 1e-5"
  done
}
case_io_precision_fp16() {
  # --io-precision fp16: the plan's float input and output are float16 (inspect), `kiln run` takes
  # the float32 .npy a user has (converted as numpy's astype would) and writes a float16 output
  # within half's rounding of the float32 plan's, and `kiln compare` judges it against the ONNX
  # model; FP16 plans lose their boundary Casts; a precision other than fp32/fp16 is refused.
  "$PY" -c "import numpy as np; np.save('in.npy', np.random.default_rng(2).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32))"
  expect_ok "$KILN" build --help
  expect_out "--io-precision P" "--inputIOFormats/--outputIOFormats=fp16"
  for dev in cpu opencl; do
    for prec in fp32 fp16; do
      expect_ok "$KILN" build "$MODELS/demo_cnn.onnx" -o wide.plan --device $dev --precision $prec
      expect_ok "$KILN" build "$MODELS/demo_cnn.onnx" -o half.plan --device $dev --precision $prec --io-precision fp16
      expect_ok "$KILN" inspect half.plan
      expect_out "input  float16 1x3x32x32" "probs  float16 1x10"
      if [ $prec = fp16 ] && grep -E "_to_fp(16|32) " stdout | grep -qE "input_to_fp16|probs_to_fp32"; then
        die "the $dev FP16 plan kept a boundary Cast with --io-precision fp16"
      fi
      expect_ok "$KILN" run wide.plan -i input=in.npy -o out_wide --device $dev
      expect_ok "$KILN" run half.plan -i input=in.npy -o out_half --device $dev
      "$PY" -c "
import numpy as np
a, b = np.load('out_wide/probs.npy'), np.load('out_half/probs.npy')
assert a.dtype == np.float32 and b.dtype == np.float16, (a.dtype, b.dtype)
assert np.allclose(a, b.astype(np.float32), rtol=4e-3, atol=2e-3), (a, b)
assert abs(float(b.astype(np.float32).sum()) - 1) < 1e-2"
      expect_ok "$KILN" compare half.plan --reference "$MODELS/demo_cnn.onnx" -i input=in.npy --device $dev
      expect_out "probs"
    done
  done
  expect_fail "--io-precision must be fp32 or fp16" "got 'int8'" -- "$KILN" build "$MODELS/demo_cnn.onnx" -o x.plan \
    --io-precision int8
}
case_kiln_rt_runtime_verbs() {
  # kiln-rt runs, inspects, profiles and benchmarks plans with kiln's flags; it has no build.
  local rt
  rt="$(dirname "$KILN")/kiln-rt"
  make_inputs
  expect_ok "$KILN" build "$MODELS/copy_two_inputs.onnx" -o c.plan
  expect_ok "$rt" run c.plan -i x=x.npy -i ids=ids.npy -o out
  expect_out "y: float32 4x6" "ids_out: int64 5"
  expect_ok "$rt" inspect c.plan
  expect_out "format version: 5" "nodes (2):"
  expect_ok "$rt" devices
  expect_out "opencl:0"
  expect_ok "$rt" profile c.plan --iterations 2 --trace trace.json
  expect_out "calls" "total ms" "GB/s" "GFLOP/s"
  expect_ok "$rt" bench c.plan --iterations 20 --concurrency 2 --json bench.json
  expect_out "throughput:" "latency ms:" "p99"
  "$PY" -c "
import json
t = json.load(open('trace.json'))
ev = [e for e in t['traceEvents'] if e['ph'] == 'X']
assert ev and all('ts' in e and 'dur' in e and 'tid' in e for e in ev), ev
b = json.load(open('bench.json'))
assert b['throughput_per_s'] > 0 and b['inferences'] == 20
assert set(b['latency_ms']) >= {'min', 'mean', 'median', 'p90', 'p95', 'p99', 'max'}"
  # --no-data-transfers: no copy in the profiled inference (the inputs uploaded once).
  expect_ok "$rt" bench c.plan --device opencl --iterations 10 --no-data-transfers
  expect_out "per inference (profiled): H2D 0.0000 ms" "D2H 0.0000 ms"
  expect_fail "--no-data-transfers: it needs an OpenCL device; this context runs on cpu" -- \
    "$rt" bench c.plan --device cpu --iterations 10 --no-data-transfers
  expect_fail "unknown verb 'build'" -- "$rt" build "$MODELS/copy_two_inputs.onnx" -o x.plan
  if ldd "$rt" | grep -Eqi 'protobuf|onnx|boost'; then die "kiln-rt links compiler dependencies"; fi
}
case_old_ir_and_external_data() {
  # An IR v3 model listing its initializer as a graph input (old exporters), and the same model
  # with its weights in an external-data file beside it: both build, the initializer is a
  # constant (not a plan input), and the results match numpy. A missing external file is a
  # clear error.
  "$PY" - <<'PY'
import numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
w_info = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 4])
y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x_info, w_info], [y_info],
                      [numpy_helper.from_array(w, "w")])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 7)])
m.ir_version = 3
onnx.save(m, "old_ir.onnx")
g2 = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x_info], [y_info],
                       [numpy_helper.from_array(w, "w")])
m2 = helper.make_model(g2, opset_imports=[helper.make_opsetid("", 13)])
onnx.save_model(m2, "ext.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                location="ext.weights", size_threshold=0)
np.save("x.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
np.save("want.npy", np.arange(6, dtype=np.float32).reshape(2, 3) @ w)
PY
  [ -f ext.weights ] || die "the external-data file was not written"
  for model in old_ir ext; do
    expect_ok "$KILN" build $model.onnx -o $model.plan --device cpu
    expect_ok "$KILN" inspect $model.plan
    expect_out "inputs:" "x  float32 2x3"
    if sed -n '/^inputs:/,/^outputs:/p' stdout | grep -q "^  w "; then die "$model: initializer w became a plan input"; fi
    expect_ok "$KILN" run $model.plan -i x=x.npy -o out_$model --device cpu
    "$PY" -c "import numpy as np; assert np.allclose(np.load('out_$model/y.npy'), np.load('want.npy'), rtol=1e-6)"
  done
  mv ext.weights moved.weights
  expect_fail "external data file" "ext.weights" "not found" -- "$KILN" build ext.onnx -o e.plan
}
case_compare_against_reference() {
  # The opencl plan of the demo CNN agrees with the FP32 cpu reference; a model that does not
  # match the plan is a clear error.
  expect_ok "$KILN" build "$MODELS/demo_cnn.onnx" -o d.plan --device opencl
  expect_ok "$KILN" compare d.plan --reference "$MODELS/demo_cnn.onnx" --device opencl
  expect_out "max abs" "cosine" "probs"
  "$PY" -c "
import re
row = [l for l in open('stdout') if l.startswith('probs')][0].split()
assert float(row[1]) < 1e-5 and abs(float(row[5]) - 1) < 1e-6, row"
  expect_fail "reference" "not a model input" -- "$KILN" compare d.plan --reference "$MODELS/copy_two_inputs.onnx"
}
case_fp16_precision() {
  # --precision fp16 on the demo CNN and the perf models (ResNet-style CNN, MLP, attention
  # block), on cpu and opencl: Conv/Gemm/MatMul run in fp16 with half weights (plan at most 55%
  # of FP32), outputs stay float32 and match onnxruntime's FP32 to half-precision accuracy;
  # --layer-precision NODE=fp32 keeps one node in FP32 inside the FP16 plan.
  local VPY="$MODELS/../../.venv/bin/python"
  [ -x "$VPY" ] || die "no tooling venv (bash scripts/setup_python.sh)"
  "$PY" "$MODELS/../../perf/models/make_perf_models.py" m >/dev/null
  cp "$MODELS/demo_cnn.onnx" m/
  "$VPY" - <<'PY'
import numpy as np, onnx, onnxruntime as ort
r = np.random.default_rng(1)
for m in ["demo_cnn", "resnet_mini", "mlp", "attention"]:
    sess = ort.InferenceSession("m/%s.onnx" % m, providers=["CPUExecutionProvider"])
    i = sess.get_inputs()[0]
    x = r.uniform(-1, 1, i.shape).astype(np.float32)
    np.save("%s_x.npy" % m, x)
    np.save("%s_ref.npy" % m, sess.run(None, {i.name: x})[0])
    open("%s_names" % m, "w").write("%s %s\n" % (i.name, sess.get_outputs()[0].name))
PY
  for m in demo_cnn resnet_mini mlp attention; do
    read -r in out <"${m}_names"
    expect_ok "$KILN" build m/$m.onnx -o ${m}32.plan --device opencl
    for dev in cpu opencl; do
      expect_ok "$KILN" build m/$m.onnx -o ${m}16_$dev.plan --device $dev --precision fp16
      expect_out "fp16: " "nodes run in float16"
      expect_ok "$KILN" inspect ${m}16_$dev.plan
      expect_out "$in  float32" "$out  float32" "precision=fp32->fp16" "precision=fp16->fp32"
      if grep -E "op=(Conv|Gemm|MatMul) " stdout | grep -v "precision=fp16"; then die "$m: an FP32 Conv/Gemm/MatMul is left"; fi
      grep -qE "op=(Conv|Gemm|MatMul) .*backend=$dev .*precision=fp16" stdout || die "$m: no fp16 Conv/Gemm/MatMul on $dev"
      expect_ok "$KILN" run ${m}16_$dev.plan -i $in=${m}_x.npy -o out_${m}_$dev --device $dev
      "$PY" - "$m" "$out" "$dev" <<'PY'
import numpy as np, os, sys
m, out, dev = sys.argv[1:]
got = np.load("out_%s_%s/%s.npy" % (m, dev, out)).astype(np.float64).ravel()
ref = np.load("%s_ref.npy" % m).astype(np.float64).ravel()
cos = got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref))
err = np.abs(got - ref).max()
scale = np.abs(ref).max()
# Half has an 11-bit significand (2^-11 relative rounding); a few layers of rounded
# activations and weights stay within 16 such steps of the output's scale, and are not exact.
assert cos >= 0.999 and err <= 16 * 2.0 ** -11 * scale, (m, dev, cos, err, scale)
assert err > 0, (m, dev, "identical to FP32: nothing ran in half")
a, b = os.path.getsize("%s16_%s.plan" % (m, dev)), os.path.getsize("%s32.plan" % m)
assert m == "demo_cnn" or a <= 0.55 * b, (m, a, b)
print(m, dev, "cosine %.6f max abs %.3g (scale %.3g) plan %d/%d" % (cos, err, scale, a, b))
PY
    done
  done
  # One node kept in FP32 inside the FP16 plan: its Conv reads and writes float32.
  expect_ok "$KILN" build m/resnet_mini.onnx -o mixed.plan --device opencl --precision fp16 --layer-precision conv_10=fp32
  expect_ok "$KILN" inspect mixed.plan
  # (kernel=: the op, then the variant the build chose for the device)
  for want in "conv_2 fp16" "conv_10 fp32" "conv_18 fp16"; do
    grep -qE "${want% *}  op=Conv  backend=opencl  kernel=opencl:Conv( [^ ]+)?  precision=${want#* }" stdout ||
      die "no '$want' node in the mixed plan"
  done
  expect_ok "$KILN" run mixed.plan -i input=resnet_mini_x.npy -o out_mixed --device opencl
  "$PY" -c "
import numpy as np
got, ref = np.load('out_mixed/gemm_78.npy').ravel(), np.load('resnet_mini_ref.npy').ravel()
assert got @ ref / (np.linalg.norm(got) * np.linalg.norm(ref)) >= 0.999"
  # The other way round: one fp16 node in an FP32 plan.
  expect_ok "$KILN" build m/resnet_mini.onnx -o one.plan --device opencl --layer-precision conv_10=fp16
  expect_ok "$KILN" inspect one.plan
  for want in "conv_2 fp32" "conv_10 fp16"; do
    grep -qE "${want% *}  op=Conv  backend=opencl  kernel=opencl:Conv( [^ ]+)?  precision=${want#* }" stdout ||
      die "no '$want' node in the plan"
  done
  # Data movers after an fp16 Conv follow it into fp16 (Pad's constant value as half, Split,
  # Slice, Gather, Transpose), then Resize/Softmax/ReduceMean in fp16; both backends vs ORT.
  "$VPY" - <<'PY'
import numpy as np, onnx, onnxruntime as ort
from onnx import helper as h, TensorProto as T, numpy_helper as nh
r = np.random.default_rng(0)
a = lambda v, n, t=np.int64: nh.from_array(np.array(v, t), n)
inits = [nh.from_array((r.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), 'w'),
         a([0, 0, 1, 2, 0, 0, 2, 1], 'pads'), a(0.5, 'cv', np.float32), a([3, 5], 'split'), a([1], 's0'),
         a([6], 's1'), a([2], 'ax'), a([0, 2, 4], 'idx'), a([1, 1, 2, 2], 'scales', np.float32)]
nodes = [h.make_node('Conv', ['x', 'w'], ['c'], pads=[1, 1, 1, 1], name='conv'),
         h.make_node('Pad', ['c', 'pads', 'cv'], ['p'], name='pad'),
         h.make_node('Split', ['p', 'split'], ['a', 'b'], axis=1, name='split'),
         h.make_node('Slice', ['a', 's0', 's1', 'ax'], ['sl'], name='slice'),
         h.make_node('Gather', ['b', 'idx'], ['g'], axis=1, name='gather'),
         h.make_node('Transpose', ['g'], ['t'], perm=[0, 1, 3, 2], name='tr'),
         h.make_node('Resize', ['sl', '', 'scales'], ['rs'], mode='linear', name='resize'),
         h.make_node('Softmax', ['t'], ['sm'], axis=-1, name='sm'),
         h.make_node('ReduceMean', ['rs'], ['rm'], axes=[2, 3], keepdims=1, name='rm')]
g = h.make_graph(nodes, 'g', [h.make_tensor_value_info('x', T.FLOAT, [1, 3, 10, 9])],
                 [h.make_tensor_value_info('sm', T.FLOAT, None), h.make_tensor_value_info('rm', T.FLOAT, None)], inits)
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), 'movers.onnx')
x = r.uniform(-1, 1, (1, 3, 10, 9)).astype(np.float32)
np.save('mx.npy', x)
sm, rm = ort.InferenceSession('movers.onnx', providers=['CPUExecutionProvider']).run(None, {'x': x})
np.save('ref_sm.npy', sm)
np.save('ref_rm.npy', rm)
PY
  for dev in cpu opencl; do
    expect_ok "$KILN" build movers.onnx -o mv_$dev.plan --device $dev --precision fp16
    expect_out "fp16: 9 nodes run in float16"
    expect_ok "$KILN" inspect mv_$dev.plan
    for n in pad split slice gather tr resize sm rm; do
      grep -qE "\] $n  op=.* backend=$dev .*precision=fp16$" stdout || die "$n is not an fp16 node on $dev"
    done
    expect_ok "$KILN" run mv_$dev.plan -i x=mx.npy -o mv_$dev --device $dev
    "$PY" -c "
import numpy as np
for n in ['sm', 'rm']:
    got, ref = np.load('mv_$dev/%s.npy' % n), np.load('ref_%s.npy' % n)
    assert got.shape == ref.shape and np.abs(got - ref).max() <= 16 * 2.0 ** -11 * np.abs(ref).max(), n"
  done
  # An op without float16 kernels stays fp32 between Casts, and the build says so.
  "$VPY" -c "
import numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
w = nh.from_array(np.full((4, 4), 0.5, np.float32), 'w')
e = nh.from_array(np.array(2.0, np.float32), 'e')
g = h.make_graph([h.make_node('MatMul', ['x', 'w'], ['y'], name='mm'), h.make_node('Pow', ['y', 'e'], ['p'], name='pow'),
                  h.make_node('MatMul', ['p', 'w'], ['z'], name='mm2')], 'g',
                 [h.make_tensor_value_info('x', T.FLOAT, [2, 4])], [h.make_tensor_value_info('z', T.FLOAT, [2, 4])], [w, e])
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid('', 17)]), 'pow.onnx')"
  expect_ok "$KILN" build pow.onnx -o pow.plan --precision fp16
  expect_out "fp16: 2 nodes run in float16; 1 stay float32 (no float16 kernels): pow (Pow)"
  expect_ok "$KILN" inspect pow.plan
  # (the Casts around Pow fuse with it into one elementwise kernel computing Pow in float32)
  expect_out "mm  op=MatMul" "mm2  op=MatMul" "precision=fp16->fp32" "precision=fp32->fp16" \
    "fused: y_to_fp32 + pow + p_to_fp16"
}
case_int8_post_training_quantization() {
  # A weight-heavy ResNet-style model (perf/models) calibrated on 8 samples: every Conv/Gemm
  # becomes an integer kernel, the plan is at most 30% of the FP32 plan, the outputs stay close
  # to FP32 on a held-out input, and the calibration cache is reused (and refused when damaged).
  "$PY" "$MODELS/../../perf/models/make_perf_models.py" m >/dev/null
  "$PY" -c "
import numpy as np, os
r = np.random.default_rng(0)
os.makedirs('calib', exist_ok=True)
for i in range(8): np.savez('calib/%d.npz' % i, input=r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))
np.save('x.npy', r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))"
  expect_ok "$KILN" build m/resnet_mini.onnx -o fp32.plan --device opencl
  expect_ok "$KILN" build m/resnet_mini.onnx -o int8.plan --device opencl --precision int8 --calib calib --calib-cache c.cache
  expect_out "calibrating (histograms)" "clipped" "input" "bias correction: the layers reading"
  expect_ok "$KILN" inspect int8.plan
  expect_out "op=QLinearConv" "op=QLinearMatMul"
  if grep -Eq "op=(Conv|Gemm|MatMul) " stdout; then die "an FP32 Conv/Gemm/MatMul is left in the INT8 plan"; fi
  "$PY" -c "
import os
a, b = os.path.getsize('int8.plan'), os.path.getsize('fp32.plan')
assert a <= 0.30 * b, (a, b)"
  expect_ok "$KILN" compare int8.plan --reference m/resnet_mini.onnx -i input=x.npy --device opencl
  "$PY" -c "
row = [l for l in open('stdout') if l.startswith('gemm')][0].split()
assert float(row[5]) > 0.99, row"
  expect_ok "$KILN" build m/resnet_mini.onnx -o nobc.plan --device opencl --precision int8 --calib calib \
    --no-bias-correction
  if grep -q "bias correction:" stdout; then die "--no-bias-correction still corrected"; fi
  # The cache replaces the samples (channel means included: the bias correction is the same);
  # a damaged cache is refused by name.
  expect_ok "$KILN" build m/resnet_mini.onnx -o int8b.plan --precision int8 --calib-cache c.cache
  expect_out "from cache" "bias correction: the layers reading"
  grep -q "^means " c.cache || die "the calibration cache has no channel means"
  sed -i 's/^0x1/0x2/' c.cache
  expect_fail "calibration cache" "corrupted" -- "$KILN" build m/resnet_mini.onnx -o x.plan --precision int8 --calib-cache c.cache
  expect_fail "needs calibration data" -- "$KILN" build m/resnet_mini.onnx -o x.plan --precision int8
  # --layer-precision keeps a named layer in FP32 inside an INT8 plan; unknown names are errors.
  expect_ok "$KILN" build m/resnet_mini.onnx -o mixed.plan --precision int8 --calib-cache c2.cache --calib calib \
    --layer-precision conv_2=fp32,conv_10=fp32
  expect_ok "$KILN" inspect mixed.plan
  expect_out "conv_2  op=Conv" "conv_10  op=Conv" "op=QLinearConv"
  expect_fail "--layer-precision names 'nope'" "not a node" -- "$KILN" build m/resnet_mini.onnx -o x.plan \
    --precision int8 --calib calib --layer-precision nope=fp32
  expect_fail "unknown precision 'fp7'" -- "$KILN" build m/resnet_mini.onnx -o x.plan --layer-precision conv_2=fp7
}
case_int8_stays_integer_between_layers() {
  # Conv -> Relu -> MaxPool -> two Convs -> Concat -> Conv -> GAP -> Gemm, INT8: requantization,
  # bias and activations fuse into the integer kernels, MaxPool and Concat move int8 values, and
  # the only conversions left are the model input and the GAP (an average is not exact in int8).
  local VPY="$MODELS/../../.venv/bin/python"
  [ -x "$VPY" ] || die "no tooling venv (bash scripts/setup_python.sh)"
  "$VPY" - <<'PY'
import os, numpy as np, onnx, onnxruntime as ort
from onnx import helper as h, TensorProto as T, numpy_helper as nh
r = np.random.default_rng(0)
def c(name, shape): return nh.from_array((r.standard_normal(shape) * 0.2).astype(np.float32), name)
nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
         h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
         h.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
         h.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
         h.make_node("Relu", ["c2"], ["r2"], name="relu2"),
         h.make_node("Conv", ["p1", "w3", "b3"], ["c3"], name="conv3"),
         h.make_node("Relu", ["c3"], ["r3"], name="relu3"),
         h.make_node("Concat", ["r2", "r3"], ["cat"], axis=1, name="concat"),
         h.make_node("Conv", ["cat", "w4", "b4"], ["c4"], pads=[1, 1, 1, 1], name="conv4"),
         h.make_node("GlobalAveragePool", ["c4"], ["g"], name="gap"),
         h.make_node("Flatten", ["g"], ["f"], name="flat"),
         h.make_node("Gemm", ["f", "w5", "b5"], ["y"], transB=1, name="fc")]
inits = [c("w1", (8, 3, 3, 3)), c("b1", (8,)), c("w2", (8, 8, 3, 3)), c("b2", (8,)), c("w3", (8, 8, 1, 1)),
         c("b3", (8,)), c("w4", (16, 16, 3, 3)), c("b4", (16,)), c("w5", (10, 16)), c("b5", (10,))]
g = h.make_graph(nodes, "qcnn", [h.make_tensor_value_info("x", T.FLOAT, [1, 3, 16, 16])],
                 [h.make_tensor_value_info("y", T.FLOAT, [1, 10])], inits)
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, "qcnn.onnx")
os.makedirs("calib", exist_ok=True)
for i in range(8): np.savez("calib/%d.npz" % i, x=r.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))
x = r.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
np.save("x.npy", x)
np.save("ort.npy", ort.InferenceSession("qcnn.onnx", providers=["CPUExecutionProvider"]).run(None, {"x": x})[0])
PY
  for dev in cpu opencl; do
    expect_ok "$KILN" build qcnn.onnx -o q_$dev.plan --precision int8 --calib calib --device $dev
    expect_ok "$KILN" inspect q_$dev.plan
    expect_out "pool1  op=MaxPool" "concat  op=Concat" "flat  op=Reshape"
    grep -E "(pool1|concat|flat)  op=" stdout | grep -vqE "precision=u?int8" && die "MaxPool/Concat/Reshape not in int8"
    [ "$(grep -c "op=QuantizeLinear" stdout)" = 2 ] || die "expected 2 QuantizeLinear (model input, after GAP)"
    if grep -q "op=DequantizeLinear" stdout; then die "a DequantizeLinear is left between integer layers"; fi
    expect_ok "$KILN" run q_$dev.plan -i x=x.npy -o out_$dev --device $dev
  done
  "$PY" -c "
import numpy as np
a, b, ref = np.load('out_cpu/y.npy'), np.load('out_opencl/y.npy'), np.load('ort.npy')
assert (a == b).all(), 'cpu and opencl INT8 plans differ'
cos = float((a * ref).sum() / np.linalg.norm(a) / np.linalg.norm(ref))
assert cos > 0.999, cos
print('cosine vs onnxruntime FP32', cos)"
}
case_int8_smooth_quant() {
  # A MatMul and a Gemm (transB, bias) whose input has one outlier channel (x60): plain INT8
  # spends the int8 range on it, --smooth-quant moves it into the weights. kiln's smoothed plan
  # must match a numpy model of the scheme (per-axis input scale s_x*s_k, weights s_k*W quantized
  # per column, s_x the range of X/s, s from the cached channel maxima), which equals X W in real
  # arithmetic, and be much closer to onnxruntime FP32 than plain INT8. A third branch, two
  # MatMuls whose first makes the outlier channel, checks that the per-axis QuantizeLinear
  # between integer layers stays a node of its own (epilogue fusion takes per-tensor ones only).
  local VPY="$MODELS/../../.venv/bin/python"
  [ -x "$VPY" ] || die "no tooling venv (bash scripts/setup_python.sh)"
  "$VPY" - <<'PY'
import os, numpy as np, onnx, onnxruntime as ort
from onnx import helper as h, TensorProto as T, numpy_helper as nh
r = np.random.default_rng(0)
def acts(shape):
    x = r.standard_normal(shape).astype(np.float32)
    x[..., 3] *= 60
    return x
w1 = (r.standard_normal((32, 16)) * 0.2).astype(np.float32)
w2 = (r.standard_normal((16, 32)) * 0.2).astype(np.float32)
b2 = (r.standard_normal(16) * 0.1).astype(np.float32)
w3 = (r.standard_normal((32, 32)) * 0.2).astype(np.float32)
w3[:, 3] *= 60
w4 = (r.standard_normal((32, 16)) * 0.2).astype(np.float32)
nodes = [h.make_node("MatMul", ["x", "w1"], ["y1"], name="mm"),
         h.make_node("Gemm", ["x2", "w2", "b2"], ["y2"], transB=1, name="fc"),
         h.make_node("MatMul", ["x3", "w3"], ["hid"], name="mm_a"),
         h.make_node("MatMul", ["hid", "w4"], ["y3"], name="mm_b")]
g = h.make_graph(nodes, "outlier", [h.make_tensor_value_info("x", T.FLOAT, [2, 8, 32]),
                                    h.make_tensor_value_info("x2", T.FLOAT, [8, 32]),
                                    h.make_tensor_value_info("x3", T.FLOAT, [8, 32])],
                 [h.make_tensor_value_info("y1", T.FLOAT, [2, 8, 16]), h.make_tensor_value_info("y2", T.FLOAT, [8, 16]),
                  h.make_tensor_value_info("y3", T.FLOAT, [8, 16])],
                 [nh.from_array(w1, "w1"), nh.from_array(w2, "w2"), nh.from_array(b2, "b2"), nh.from_array(w3, "w3"),
                  nh.from_array(w4, "w4")])
m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, "outlier.onnx")
os.makedirs("calib", exist_ok=True)
gauss = lambda shape: r.standard_normal(shape).astype(np.float32)
for i in range(8): np.savez("calib/%d.npz" % i, x=acts((2, 8, 32)), x2=acts((8, 32)), x3=gauss((8, 32)))
x, x2, x3 = acts((2, 8, 32)), acts((8, 32)), gauss((8, 32)) * 0.8  # x3: inside the calibrated range
np.save("x.npy", x)
np.save("x2.npy", x2)
np.save("x3.npy", x3)
ref = ort.InferenceSession("outlier.onnx", providers=["CPUExecutionProvider"]).run(None, {"x": x, "x2": x2, "x3": x3})
for i in range(3): np.save("ref%d.npy" % (i + 1), ref[i])
PY
  expect_ok "$KILN" build outlier.onnx -o plain.plan --device opencl --precision int8 --calib calib --calib-cache c.cache
  if grep -q "smooth-quant" stdout; then die "smoothing without --smooth-quant"; fi
  expect_ok "$KILN" run plain.plan -i x=x.npy -i x2=x2.npy -i x3=x3.npy -o out_plain --device opencl
  # The plain build's cache has no channel maxima: the smoothed build recalibrates, then reuses.
  expect_ok "$KILN" build outlier.onnx -o s.plan --device opencl --precision int8 --calib calib --calib-cache c.cache \
    --smooth-quant
  expect_out "lacks tensors of this graph; recalibrating" "smooth-quant: mm (input channel spread" "smooth-quant: fc" \
    "smooth-quant: mm_b"
  if grep -q "smooth-quant: mm_a" stdout; then die "mm_a (no outlier channel) was smoothed"; fi
  expect_ok "$KILN" inspect s.plan
  [ "$(grep -c "op=QuantizeLinear" stdout)" = 4 ] || die "expected 4 QuantizeLinear (3 inputs, mm_b's input)"
  [ "$(grep -c "op=QLinearMatMul" stdout)" = 4 ] || die "expected 4 QLinearMatMul"
  [ "$(grep -c "qmode=1" stdout)" = 3 ] || die "the smoothed layers' input QuantizeLinear nodes are not per-axis"
  expect_ok "$KILN" build outlier.onnx -o s2.plan --device cpu --precision int8 --calib-cache c.cache --smooth-quant=0.5
  expect_out "from cache" "smooth-quant: mm"
  expect_ok "$KILN" run s.plan -i x=x.npy -i x2=x2.npy -i x3=x3.npy -o out_s --device opencl
  expect_ok "$KILN" run s2.plan -i x=x.npy -i x2=x2.npy -i x3=x3.npy -o out_s2 --device cpu
  "$PY" -c "
import numpy as np, sys
lines = open('c.cache').read().splitlines()
assert lines[0] in ('kiln-calibration-cache 2', 'kiln-calibration-cache 3', 'kiln-calibration-cache 4'), lines[0]
chans = {l.split()[3]: np.array([float.fromhex(v) for v in l.split()[2].split(',')]) for l in lines if l.startswith('channels ')}
assert sorted(chans) == ['hid', 'x', 'x2', 'x3'] and all(len(c) == 32 for c in chans.values()), chans.keys()
x, x2 = np.load('x.npy').astype(np.float64), np.load('x2.npy').astype(np.float64)
import onnx
from onnx import numpy_helper as nh
init = {t.name: nh.to_array(t).astype(np.float64) for t in onnx.load('outlier.onnx').graph.initializer}
def q(v, s): return np.clip(np.round(v / s), -127, 127)
def smoothed(xv, cm, w):  # w [K, N]
    s = np.sqrt(cm) / np.sqrt(np.abs(w).max(1))
    ws = w * s[:, None]
    sw = np.abs(ws).max(0) / 127
    sx = (cm / s).max() / 127
    assert np.allclose((xv / s) @ ws, xv @ w, rtol=1e-9)  # the identity X/s . sW = X W
    return sx * sw * (q(xv / s, sx) @ q(ws, sw))
emu = [smoothed(x, chans['x'], init['w1']), smoothed(x2, chans['x2'], init['w2'].T) + init['b2']]
def err(a, b): return float(np.linalg.norm(a - b) / np.linalg.norm(b))
for i in (1, 2):
    ref, plain, sm, sm_cpu = (np.load(f) for f in ('ref%d.npy' % i, 'out_plain/y%d.npy' % i, 'out_s/y%d.npy' % i, 'out_s2/y%d.npy' % i))
    e_plain, e_smooth, e_emu = err(plain, ref), err(sm, ref), err(emu[i - 1], ref)
    print('y%d: plain int8 %.4f, smoothed %.4f (cpu %.4f), numpy model of the scheme %.4f, kiln vs model %.2e'
          % (i, e_plain, e_smooth, err(sm_cpu, ref), e_emu, err(sm, emu[i - 1])))
    assert e_plain > 0.03 and e_smooth < 0.015 and err(sm_cpu, ref) < 0.015, (e_plain, e_smooth)
    assert err(sm, emu[i - 1]) < 1e-3, err(sm, emu[i - 1])
ref, plain, sm = np.load('ref3.npy'), np.load('out_plain/y3.npy'), np.load('out_s/y3.npy')
print('y3 (two layers): plain int8 %.4f, smoothed %.4f' % (err(plain, ref), err(sm, ref)))
assert err(sm, ref) < 0.02 and err(sm, ref) < 0.5 * err(plain, ref), (err(plain, ref), err(sm, ref))
"
  # Damaged channel maxima and a bad alpha are refused by name.
  sed -i 's/^channels 32 /channels 31 /' c.cache
  expect_fail "calibration cache" "corrupted" -- "$KILN" build outlier.onnx -o x.plan --precision int8 \
    --calib-cache c.cache --smooth-quant
  expect_fail "--smooth-quant needs an alpha in [0, 1]" "got '1.5'" -- "$KILN" build outlier.onnx -o x.plan \
    --precision int8 --calib calib --smooth-quant=1.5
}
case_qdq_model_from_onnxruntime() {
  # The demo CNN quantized by onnxruntime.quantization.quantize_static (QDQ format, per-channel
  # int8): kiln turns every DQ -> Conv/Gemm -> Q into an integer kernel (no FP32 Conv/Gemm/MatMul
  # left) and matches onnxruntime's outputs to within one output quantization step. onnxruntime
  # runs the model as written (optimizations off: float math between each DQ and Q): its fused
  # int8 kernels saturate on CPUs without VNNI (AVX2), where they are off by several steps.
  local VPY="$MODELS/../../.venv/bin/python"
  [ -x "$VPY" ] || die "no tooling venv (bash scripts/setup_python.sh)"
  "$VPY" - "$MODELS/demo_cnn.onnx" <<'PY'
import sys, numpy as np, onnxruntime as ort
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
class Reader(CalibrationDataReader):
    def __init__(self):
        r = np.random.default_rng(0)
        self.it = iter([{"input": r.uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)} for _ in range(8)])
    def get_next(self):
        return next(self.it, None)
quantize_static(sys.argv[1], "qdq.onnx", Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
x = np.random.default_rng(5).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
np.save("x.npy", x)
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
np.save("ort.npy", ort.InferenceSession("qdq.onnx", so, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0])
PY
  for dev in cpu opencl; do
    expect_ok "$KILN" build qdq.onnx -o qdq.plan --device $dev
    expect_ok "$KILN" inspect qdq.plan
    expect_out "op=QLinearConv" "op=QLinearMatMul"
    if grep -Eq "op=(Conv|Gemm|MatMul) " stdout; then die "an FP32 Conv/Gemm/MatMul is left in the Q/DQ plan"; fi
    expect_ok "$KILN" run qdq.plan -i input=x.npy -o out_$dev --device $dev
    "$PY" -c "
import numpy as np
a, b = np.load('out_$dev/probs.npy'), np.load('ort.npy')
assert np.abs(a - b).max() <= 1 / 255 + 1e-6 and a.argmax() == b.argmax(), (a, b)"
  done
}

case_fp8_post_training_quantization() {
  # The weight-heavy ResNet-style model of perf/models in FP8 E4M3FN and E5M2, calibrated on 8
  # samples (minmax by default for FP8): every Conv/Gemm but the RGB stem (3 input channels:
  # FP16, and said so) becomes an FP8 kernel, the plan is at most 30% of the FP32 plan, and
  # the output stays close to FP32 on a held-out input.
  "$PY" "$MODELS/../../perf/models/make_perf_models.py" m >/dev/null
  "$PY" -c "
import numpy as np, os
r = np.random.default_rng(0)
os.makedirs('calib', exist_ok=True)
for i in range(8): np.savez('calib/%d.npz' % i, input=r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))
np.save('x.npy', r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))"
  expect_ok "$KILN" build m/resnet_mini.onnx -o fp32.plan --device opencl
  for p in fp8:fp8-e4m3 fp8-e5m2:fp8-e5m2; do
    local prec=${p%%:*} shown=${p##*:}
    expect_ok "$KILN" build m/resnet_mini.onnx -o $prec.plan --device opencl --precision $prec --calib calib
    expect_out "calibrating (histograms)" "fp8: 1 convolutions with fewer than 8 input channels per group run in fp16 (conv_2)"
    expect_ok "$KILN" inspect $prec.plan
    expect_out "op=Fp8Conv" "op=Fp8MatMul" "precision=$shown" "conv_2  op=Conv"
    grep "conv_2  op=Conv" stdout | grep -q "precision=fp16" || die "the stem is not FP16 in the $prec plan"
    if grep -v "conv_2  op=Conv" stdout | grep -Eq "op=(Conv|Gemm|MatMul|QLinearConv|QLinearMatMul) "; then
      die "a non-FP8 Conv/Gemm/MatMul other than the stem is left in the $prec plan"
    fi
    "$PY" -c "
import os
a, b = os.path.getsize('$prec.plan'), os.path.getsize('fp32.plan')
assert a <= 0.30 * b, (a, b)"
    expect_ok "$KILN" compare $prec.plan --reference m/resnet_mini.onnx -i input=x.npy --device opencl
    "$PY" -c "
row = [l for l in open('stdout') if l.startswith('gemm')][0].split()
assert float(row[5]) >= 0.99, row"
    # The cpu backend runs the same plan bit for bit like PoCL (same float32 order in both).
    expect_ok "$KILN" run $prec.plan -i input=x.npy -o out_cpu --device cpu
    expect_ok "$KILN" run $prec.plan -i input=x.npy -o out_cl --device opencl
    "$PY" -c "
import numpy as np
assert (np.load('out_cpu/gemm_78.npy') == np.load('out_cl/gemm_78.npy')).all()"
  done
  # Per layer: one FP8 layer in an FP32 plan; the FNUZ variants are refused by name.
  expect_ok "$KILN" build m/resnet_mini.onnx -o mixed.plan --calib calib --layer-precision conv_10=fp8-e5m2
  expect_ok "$KILN" inspect mixed.plan
  expect_out "conv_10  op=Fp8Conv" "conv_2  op=Conv"
  expect_fail "fp8-e4m3fnuz" "FNUZ" "not supported" -- "$KILN" build m/resnet_mini.onnx -o x.plan --precision fp8-e4m3fnuz
}
case_int8_fp16_fallback() {
  # --fallback-precision fp16 on the transformer encoder block of perf/models, INT8 and FP8: the
  # Attention and both LayerNorms run in FP16, the six linear layers stay quantized and every
  # QuantizeLinear reads float16; the output is as close to the ONNX model's (kiln compare's FP32
  # reference) as without the flag; --layer-precision NODE=fp32 keeps a LayerNorm FP32; a bad
  # value is a one-line error in build and sweep.
  "$PY" "$MODELS/../../perf/models/make_perf_models.py" m >/dev/null
  "$PY" -c "
import numpy as np, os
r = np.random.default_rng(0)
os.makedirs('calib', exist_ok=True)
for i in range(8): np.savez('calib/%d.npz' % i, input=r.normal(0, 1, (1, 64, 128)).astype(np.float32))
np.save('x.npy', r.normal(0, 1, (1, 64, 128)).astype(np.float32))"
  expect_ok "$KILN" build --help
  expect_out "--fallback-precision P" "as TensorRT's --int8 --fp16"
  for p in int8:QLinearMatMul fp8:Fp8MatMul; do
    local prec=${p%%:*} kernel=${p##*:}
    for fb in fp32 fp16; do
      expect_ok "$KILN" build m/attention.onnx -o ${prec}_$fb.plan --device cpu --precision $prec --calib calib \
        --fallback-precision $fb
      expect_ok "$KILN" compare ${prec}_$fb.plan --reference m/attention.onnx -i input=x.npy --device cpu
      grep "^add_58 " stdout | awk '{print $5}' >err_$fb.txt
    done
    expect_ok "$KILN" inspect ${prec}_fp16.plan
    "$PY" - "$kernel" <<'PY'
import re, sys
nodes = re.findall(r"^\s*\[\d+\] (\S+)  op=(\S+) .* precision=(\S+)$", open("stdout").read(), re.M)
by_op = lambda op: [p for _, o, p in nodes if o == op]
assert by_op("Attention") == ["fp16"], nodes
assert by_op("LayerNormalization") == ["fp16", "fp16"], nodes
assert len(by_op(sys.argv[1])) == 6, nodes
assert by_op("QuantizeLinear") and all(p.startswith("fp16->") for p in by_op("QuantizeLinear")), nodes
open("ln2.txt", "w").write([n for n, o, _ in nodes if o == "LayerNormalization"][1])
PY
    "$PY" -c "
plain, fb = float(open('err_fp32.txt').read()), float(open('err_fp16.txt').read())
print('$prec rel L2 vs FP32: %g without the fallback, %g with it' % (plain, fb))
assert fb < 0.05 and fb <= 1.1 * plain + 0.002, (plain, fb)"
    expect_ok "$KILN" build m/attention.onnx -o ${prec}_ln.plan --device cpu --precision $prec --calib calib \
      --fallback-precision fp16 --layer-precision "$(cat ln2.txt)=fp32"
    expect_ok "$KILN" inspect ${prec}_ln.plan
    grep -E "^\s*\[[0-9]+\] $(cat ln2.txt)  op=LayerNormalization .*precision=fp32$" stdout >/dev/null ||
      die "--layer-precision $(cat ln2.txt)=fp32 did not keep it FP32 in the $prec plan"
    expect_out "op=Attention  backend=cpu  kernel=cpu:Attention  precision=fp16"
  done
  expect_fail "--fallback-precision must be fp32 or fp16" "got 'int4'" -- "$KILN" build m/attention.onnx -o x.plan \
    --precision int8 --calib calib --fallback-precision int4
  expect_fail "--fallback-precision must be fp32 or fp16" "got 'int8'" -- "$KILN" sweep m/attention.onnx --calib calib \
    --fallback-precision int8
}
case_fp8_qdq_checkpoint() {
  # An FP8 Q/DQ CNN (float8 weights + DequantizeLinear, E4M3FN/E5M2 activation Q/DQ, a
  # weight-only FP8 MatMul; tests/models/make_fp8_qdq_model.py): no FP32 Conv/Gemm/MatMul is left,
  # the weights stay 8-bit, and both backends match onnxruntime's outputs. A FLOAT8E4M3FNUZ
  # checkpoint is refused by name.
  local VPY="$MODELS/../../.venv/bin/python"
  [ -x "$VPY" ] || die "no tooling venv (bash scripts/setup_python.sh)"
  expect_ok "$VPY" "$MODELS/make_fp8_qdq_model.py" .
  for dev in cpu opencl; do
    expect_ok "$KILN" build fp8_qdq.onnx -o q.plan --device $dev
    # 8-bit weights: the plan holds at most the FP8 weight bytes plus the model's float scales and
    # biases (64-byte aligned each), far below the 4 bytes per weight FP32 would take.
    "$VPY" -c "
import re, onnx, numpy as np
m = onnx.load('fp8_qdq.onnx')
f8 = sum(int(np.prod(t.dims)) for t in m.graph.initializer if t.data_type in (17, 19))
rest = sum(int(np.prod(t.dims)) * 4 + 64 for t in m.graph.initializer if t.data_type not in (17, 19))
got = int(re.search(r'(\d+) weight bytes', open('stdout').read()).group(1))
assert f8 <= got <= f8 + 64 * 8 + rest and got < 2 * f8, (got, f8, rest)"
    expect_ok "$KILN" inspect q.plan
    expect_out "conv1  op=Fp8Conv" "precision=fp8-e4m3" "conv2  op=Fp8Conv" "precision=fp8-e5m2" "fc  op=Fp8MatMul" \
      "head  op=Fp8MatMul"
    if grep -Eq "op=(Conv|Gemm|MatMul) " stdout; then die "an FP32 Conv/Gemm/MatMul is left in the FP8 Q/DQ plan"; fi
    expect_ok "$KILN" run q.plan -i x=x.npy -o out_$dev --device $dev
    "$PY" -c "
import numpy as np
a, b = np.load('out_$dev/y.npy'), np.load('ref.npy')
assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max(), (a, b)"
  done
  expect_fail "w1_dq" "float8e4m3fnuz" "not the FNUZ variants" -- "$KILN" build fp8_fnuz.onnx -o x.plan
}

case_kernel_variants() {
  # The build records a kernel variant per OpenCL node (inspect shows it); KILN_MMA_EMULATE=1
  # offers the tensor-core variant on PoCL (emulated). A plan whose variant the device does not
  # offer runs its portable kernels with one notice; --tune times the candidates and keeps a
  # tuning cache that later builds reuse.
  local x=$MODELS/fashion_cnn.onnx
  "$PY" -c "import numpy as np; np.save('x.npy', np.random.default_rng(3).uniform(-1, 1, (4, 1, 28, 28)).astype(np.float32))"
  expect_ok "$KILN" build "$x" -o plain.plan --device opencl --precision fp16 --shapes input=4x1x28x28
  expect_ok "$KILN" inspect plain.plan
  if grep -q "mma\[" stdout; then die "PoCL offered the tensor-core variant without KILN_MMA_EMULATE"; fi
  # Without tensor cores the build still records its GEMM choice: kiln's tiled kernel or CLBlast.
  grep -qE "op=Conv .*kernel=opencl:Conv (tiled|clblast)[^ ]*  " stdout || die "no GEMM variant recorded for the Conv"
  expect_ok "$KILN" run plain.plan -i input=x.npy -o plain --device opencl
  KILN_MMA_EMULATE=1 expect_ok "$KILN" build "$x" -o mma.plan --device opencl --precision fp16 --shapes input=4x1x28x28
  expect_ok "$KILN" inspect mma.plan
  expect_out "op=Conv" "mma[bm="
  grep -E "op=(Conv|Gemm|MatMul) " stdout | grep -q "mma\[" || die "no linear node chose the mma variant"
  KILN_MMA_EMULATE=1 expect_ok "$KILN" run mma.plan -i input=x.npy -o emu --device opencl
  # Without the emulation the plan still runs: its mma nodes fall back, with one notice.
  expect_ok "$KILN" run mma.plan -i input=x.npy -o fallback --device opencl
  grep -qF "run their portable kernel" stderr || die "no fallback notice: $(cat stderr)"
  "$PY" - <<'PY'
import glob, numpy as np
for f in glob.glob("plain/*.npy"):
    name = f.split("/")[-1]
    a, b, c = np.load(f), np.load("emu/" + name), np.load("fallback/" + name)
    assert np.array_equal(a, c), "fallback differs from the portable plan"
    assert np.allclose(a, b, rtol=2e-2, atol=2e-2), np.abs(a - b).max()
PY
  KILN_MMA_EMULATE=1 expect_ok "$KILN" build "$x" -o tuned.plan --device opencl --precision fp16 \
    --shapes input=4x1x28x28 --tune --tuning-cache t.cache
  expect_out "tune: " "portable"
  head -1 t.cache | grep -qx "kiln tuning cache 1" || die "tuning cache header: $(head -1 t.cache)"
  grep -q "mma\[bm=" t.cache || die "the cache holds no mma timings"
  cp t.cache t0.cache
  KILN_MMA_EMULATE=1 expect_ok "$KILN" build "$x" -o tuned2.plan --device opencl --precision fp16 \
    --shapes input=4x1x28x28 --tune --tuning-cache t.cache
  cmp -s t.cache t0.cache || die "a build with every timing cached rewrote the cache"
  # FP32 takes the (TF32) tensor cores only with --allow-tf32; kiln compare shows what it costs.
  KILN_MMA_EMULATE=1 expect_ok "$KILN" build "$x" -o fp32.plan --device opencl --shapes input=4x1x28x28
  expect_ok "$KILN" inspect fp32.plan
  if grep -q "mma\[" stdout; then die "an FP32 plan took the tensor cores without --allow-tf32"; fi
  KILN_MMA_EMULATE=1 expect_ok "$KILN" build "$x" -o tf32.plan --device opencl --shapes input=4x1x28x28 --allow-tf32
  expect_ok "$KILN" inspect tf32.plan
  expect_out "allow_tf32=1"
  grep -E "op=Conv .*mma\[" stdout | grep -q "precision=fp32" || die "no FP32 Conv on the tensor cores with --allow-tf32"
  KILN_MMA_EMULATE=1 expect_ok "$KILN" compare tf32.plan --reference "$x" -i input=x.npy --device opencl
  "$PY" - <<'PY'
rows = [l.split() for l in open("stdout") if l.startswith("logits")]
assert rows, open("stdout").read()
rel_l2, cosine = float(rows[0][4]), float(rows[0][5])
assert 0 < rel_l2 < 1e-3 and cosine > 0.9999, rows
PY
  expect_fail "--tuning-cache needs --tune" -- "$KILN" build "$x" -o y.plan --tuning-cache t.cache
  echo "garbage" >bad.cache
  expect_fail "is not a kiln tuning cache" -- "$KILN" build "$x" -o y.plan --device opencl --tune --tuning-cache bad.cache
}

case_flat_launch_list() {
  # Runs replay each OpenCL node's recorded kernel launches (arguments set once, re-recorded
  # after a reshape): the outputs equal those of launching every node through its launcher
  # (KILN_NO_FLAT_LAUNCH=1) bit for bit, and profile reports the host time per node.
  "$PY" "$MODELS/../../perf/models/make_perf_models.py" m >/dev/null
  "$PY" -c "
import numpy as np
r = np.random.default_rng(5)
np.save('r.npy', r.uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))
np.save('a.npy', r.uniform(-1, 1, (1, 64, 128)).astype(np.float32))
np.save('m.npy', r.uniform(-1, 1, (32, 512)).astype(np.float32))"
  for m in resnet_mini:r attention:a mlp:m; do
    local name=${m%%:*} in=${m##*:}
    expect_ok "$KILN" build m/$name.onnx -o $name.plan --device opencl --precision fp16
    expect_ok "$KILN" run $name.plan -i "input=$in.npy" -o flat_$name --device opencl --repeat 3
    KILN_NO_FLAT_LAUNCH=1 expect_ok "$KILN" run $name.plan -i "input=$in.npy" -o direct_$name --device opencl
    "$PY" -c "
import glob, numpy as np
fs = glob.glob('flat_$name/*.npy')
assert fs
for f in fs:
    assert np.array_equal(np.load(f), np.load(f.replace('flat_', 'direct_'))), f"
  done
  expect_ok "$KILN" profile attention.plan --device opencl --iterations 3
  expect_out "host us" "host time issuing OpenCL nodes:"
}
case_cpu_threads_and_reference() {
  # The cpu device's fast path (oneDNN) at 1 and 2 threads, and with concurrent contexts,
  # agrees with its reference kernels (KILN_CPU_REFERENCE=1); --threads is checked.
  "$PY" "$MODELS/../../perf/models/make_perf_models.py" m >/dev/null
  "$PY" -c "
import numpy as np
np.save('r.npy', np.random.default_rng(6).uniform(-1, 1, (1, 3, 64, 64)).astype(np.float32))"
  expect_ok "$KILN" build m/resnet_mini.onnx -o r.plan --device cpu
  expect_ok "$KILN" run r.plan -i input=r.npy -o t1 --device cpu --threads 1
  expect_ok "$KILN" run r.plan -i input=r.npy -o t2 --device cpu --threads 2
  KILN_CPU_REFERENCE=1 expect_ok "$KILN" run r.plan -i input=r.npy -o ref --device cpu
  "$PY" -c "
import glob, numpy as np
for f in glob.glob('ref/*.npy'):
    want = np.load(f)
    for d in ('t1', 't2'):
        got = np.load(f.replace('ref/', d + '/'))
        assert np.allclose(got, want, rtol=1e-4, atol=1e-5), (d, np.abs(got - want).max())"
  expect_ok "$KILN" bench r.plan --device cpu --iterations 20 --concurrency 2 --threads 2
  expect_fail "--threads needs a number from 1 to 1024, got '0'" -- "$KILN" bench r.plan --device cpu --threads 0
  KILN_CPU_THREADS=1 expect_ok "$KILN" profile r.plan --device cpu --iterations 2 --trace fine.json
  if grep -qF "cpu-ref" "$WORK/stdout"; then die "a finite input sent a node to its reference kernel"; fi
  # The trace names each node's kernel: oneDNN's convolutions (direct or Winograd, by CPU).
  grep -qF '"cat":"Conv","ph":"X"' fine.json || die "no Conv in the trace"
  if grep -F '"cat":"Conv","ph":"X"' fine.json | grep -vqF '"kernel":"onednn:convolution'; then
    die "a Conv of the trace does not name its oneDNN kernel: $(grep -F '"cat":"Conv"' fine.json | head -1)"
  fi
  # A NaN input: the first convolution's fused Relu would drop it, so that node runs its reference
  # kernel (which keeps the NaN), and the profile says so.
  "$PY" -c "
import numpy as np
x = np.load('r.npy'); x[0, 0, 5, 5] = np.nan; np.save('rnan.npy', x)"
  KILN_CPU_THREADS=1 expect_ok "$KILN" profile r.plan --device cpu --iterations 2 -i input=rnan.npy --trace nan.json
  expect_out "cpu-ref" "ran kiln's reference kernel instead"
  grep -F '"cat":"Conv","ph":"X"' nan.json | grep -qF '"kernel":"reference"' ||
    die "the trace does not name the reference kernel the NaN input's convolution ran"
}

run_case
