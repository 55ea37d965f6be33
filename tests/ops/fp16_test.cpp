// FP16 (--precision fp16) kernels of every family that has them: the one-node graph built in
// fp16 runs its op on float16 tensors (half weights) on both backends. The reference is the
// float16-storage definition itself: the FP32 op (conformance-tested) applied to the inputs
// rounded to half, its result rounded to half; kiln's FP16 output may differ from it only by
// the float32 accumulation order (at most a half ulp or two). OpenCL must run the node itself
// (no CPU fallback) and agree with the CPU's widened kernel.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/core/alloc_stats.h"
#include "runtime/core/half.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/elementwise_program.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor round_to_half(const HostTensor& t) {
  HostTensor r = t;
  if (t.dtype() != DType::kFloat32) return r;
  for (int64_t i = 0; i < t.numel(); ++i) r.as<float>()[i] = half_to_float(float_to_half(t.as<float>()[i]));
  return r;
}

HostTensor floats(std::initializer_list<float> v) {
  HostTensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.as<float>());
  return t;
}

// The node of `spec` in `plan` ran on `backend` in float16: its output is float16, or (an
// elementwise op) it was fused with its boundary Casts into one float16 program.
::testing::AssertionResult ran_in_fp16(const Plan& plan, const OpSpec& spec, Backend backend) {
  const std::string name = spec.op_type + "_node";
  for (const PlanNode& n : plan.nodes) {
    const bool fused = std::count(n.fused.begin(), n.fused.end(), name) != 0;
    if (n.name != name && !fused) continue;
    if (n.backend != backend) return ::testing::AssertionFailure() << name << " ran on " << backend_name(n.backend);
    const DType dt = plan.tensors[n.outputs[0]].dtype;
    bool cast_in = false;
    for (const std::string& f : n.fused) cast_in |= f.find("_to_fp16") != std::string::npos;
    if (dt != DType::kFloat16 && !(n.op == "Elementwise" && cast_in))
      return ::testing::AssertionFailure() << name << " output is " << dtype_name(dt);
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no node " << name << " in the plan";
}

// `data`: the inputs that are float data (rounded to half for the reference); the others
// (Resize scales) are parameters kept as they are.
::testing::AssertionResult fp16_matches_reference(OpSpec spec, double rtol = 2e-3, double atol = 2e-3,
                                                  std::vector<bool> data = {}) {
  OpSpec ref = spec;
  for (size_t i = 0; i < ref.inputs.size(); ++i)
    if (data.empty() || (i < data.size() && data[i])) ref.inputs[i] = round_to_half(ref.inputs[i]);
  std::vector<HostTensor> want;
  Status st = run_op(ref, "cpu", &want);
  if (!st) return ::testing::AssertionFailure() << "fp32 reference: " << st.message();
  for (HostTensor& w : want) w = round_to_half(w);

  spec.precision = "fp16";
  std::vector<std::string> devices = {"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  std::vector<HostTensor> first;
  for (const std::string& dev : devices) {
    std::vector<HostTensor> got;
    Plan plan;
    st = run_op(spec, dev, &got, &plan);
    if (!st) return ::testing::AssertionFailure() << dev << ": " << st.message();
    auto r = ran_in_fp16(plan, spec, dev == "cpu" ? Backend::kCpu : Backend::kOpenCL);
    if (!r) return ::testing::AssertionFailure() << dev << ": " << r.message();
    for (size_t i = 0; i < got.size(); ++i) {
      r = tensors_close(got[i], want[i], rtol, atol);
      if (!r) return ::testing::AssertionFailure() << dev << " output " << i << " vs reference: " << r.message();
    }
    if (first.empty()) {
      first = got;
      continue;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      r = tensors_close(got[i], first[i], rtol, atol);
      if (!r) return ::testing::AssertionFailure() << dev << " output " << i << " vs cpu: " << r.message();
    }
  }
  return ::testing::AssertionSuccess();
}

Attributes conv_attrs(int64_t group, std::vector<int64_t> pads, std::vector<int64_t> strides) {
  Attributes a;
  a.set("group", group);
  a.set("pads", pads);
  a.set("strides", strides);
  return a;
}

TEST(Fp16Ops, ConvDirectIm2colAndPointwise) {
  std::mt19937 rng(16);
  struct Case {
    int64_t C, M, group, k, stride;
  };
  // Depthwise and few-channel convs take the direct kernel, the others im2col + GEMM, 1x1
  // stride 1 the GEMM on the input itself.
  for (const Case& c : {Case{4, 4, 4, 3, 1}, Case{3, 8, 1, 3, 2}, Case{16, 32, 1, 3, 1}, Case{32, 32, 1, 1, 1},
                        Case{16, 32, 2, 3, 1}}) {
    SCOPED_TRACE(testing::Message() << "C=" << c.C << " M=" << c.M << " group=" << c.group << " k=" << c.k);
    const int64_t pad = c.k / 2;
    OpSpec s{"Conv", 17, conv_attrs(c.group, {pad, pad, pad, pad}, {c.stride, c.stride}),
             {random_tensor(DType::kFloat32, {2, c.C, 9, 11}, rng),
              random_tensor(DType::kFloat32, {c.M, c.C / c.group, c.k, c.k}, rng, -0.5, 0.5),
              random_tensor(DType::kFloat32, {c.M}, rng)},
             {false, true, true}};
    EXPECT_TRUE(fp16_matches_reference(s));
  }
  // Large enough for CLBlast: on devices without native half the GEMM runs as SGEMM on
  // widened operands, 3x3 with im2col writing float columns, 1x1 widening the input itself.
  for (int64_t k : {3, 1}) {
    SCOPED_TRACE(testing::Message() << "large k=" << k);
    const int64_t C = k == 3 ? 32 : 64, pad = k / 2;
    OpSpec s{"Conv", 17, conv_attrs(1, {pad, pad, pad, pad}, {1, 1}),
             {random_tensor(DType::kFloat32, {2, C, 40, 40}, rng),
              random_tensor(DType::kFloat32, {C, C, k, k}, rng, -0.2, 0.2), random_tensor(DType::kFloat32, {C}, rng)},
             {false, true, true}};
    EXPECT_TRUE(fp16_matches_reference(s, 2e-3, 4e-3));
  }
}

TEST(Fp16Ops, ConvTranspose) {
  std::mt19937 rng(17);
  OpSpec s{"ConvTranspose", 17, conv_attrs(1, {1, 1, 1, 1}, {2, 2}),
           {random_tensor(DType::kFloat32, {1, 4, 5, 6}, rng), random_tensor(DType::kFloat32, {4, 6, 3, 3}, rng),
            random_tensor(DType::kFloat32, {6}, rng)},
           {false, true, true}};
  EXPECT_TRUE(fp16_matches_reference(s));
}

TEST(Fp16Ops, GemmAndBatchedMatMul) {
  std::mt19937 rng(18);
  Attributes ga;
  ga.set("transB", int64_t{1});
  ga.set("alpha", 0.5f);
  OpSpec gemm{"Gemm", 17, ga,
              {random_tensor(DType::kFloat32, {7, 70}, rng), random_tensor(DType::kFloat32, {90, 70}, rng),
               random_tensor(DType::kFloat32, {90}, rng)},
              {false, true, true}};
  EXPECT_TRUE(fp16_matches_reference(gemm));
  // Large enough that FP32 takes CLBlast: FP16 keeps kiln's half-storage kernel on PoCL.
  OpSpec big{"MatMul", 17, {},
             {random_tensor(DType::kFloat32, {128, 256}, rng), random_tensor(DType::kFloat32, {256, 160}, rng)},
             {false, true}};
  EXPECT_TRUE(fp16_matches_reference(big, 2e-3, 4e-3));
  OpSpec batched{"MatMul", 17, {},
                 {random_tensor(DType::kFloat32, {2, 3, 5, 19}, rng), random_tensor(DType::kFloat32, {3, 19, 6}, rng)},
                 {false, false}};
  EXPECT_TRUE(fp16_matches_reference(batched));
}

TEST(Fp16Ops, SoftmaxAndNormalizations) {
  std::mt19937 rng(19);
  Attributes axis;
  axis.set("axis", int64_t{-1});
  for (int64_t n : {7, 300, 768}) {  // one work-item, one work-group and one warp per row
    EXPECT_TRUE(fp16_matches_reference(OpSpec{"Softmax", 17, axis, {random_tensor(DType::kFloat32, {6, n}, rng, -4, 4)}}));
    EXPECT_TRUE(fp16_matches_reference(
        OpSpec{"LayerNormalization", 17, axis,
               {random_tensor(DType::kFloat32, {5, n}, rng, -2, 3), random_tensor(DType::kFloat32, {n}, rng),
                random_tensor(DType::kFloat32, {n}, rng)},
               {false, true, true}}));
  }
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"LogSoftmax", 17, axis, {random_tensor(DType::kFloat32, {4, 9}, rng, -4, 4)}}));
  EXPECT_TRUE(fp16_matches_reference(
      OpSpec{"BatchNormalization", 15, {},
             {random_tensor(DType::kFloat32, {2, 3, 4, 5}, rng), random_tensor(DType::kFloat32, {3}, rng),
              random_tensor(DType::kFloat32, {3}, rng), random_tensor(DType::kFloat32, {3}, rng),
              random_tensor(DType::kFloat32, {3}, rng, 0.5, 2)},
             {false, true, true, true, true}}));
  EXPECT_TRUE(fp16_matches_reference(
      OpSpec{"InstanceNormalization", 17, {},
             {random_tensor(DType::kFloat32, {2, 3, 6, 7}, rng, -1, 3), random_tensor(DType::kFloat32, {3}, rng),
              random_tensor(DType::kFloat32, {3}, rng)},
             {false, true, true}}));
}

TEST(Fp16Ops, PoolingAndReductions) {
  std::mt19937 rng(20);
  Attributes pool;
  pool.set("kernel_shape", std::vector<int64_t>{3, 3});
  pool.set("strides", std::vector<int64_t>{2, 2});
  pool.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  const HostTensor x = random_tensor(DType::kFloat32, {2, 3, 9, 10}, rng, -3, 3);
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"MaxPool", 17, pool, {x}}));
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"AveragePool", 17, pool, {x}}));
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"GlobalAveragePool", 17, {}, {x}}));
  Attributes axes;
  axes.set("axes", std::vector<int64_t>{1, 3});
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"ReduceMean", 17, axes, {x}}));
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"ReduceMax", 17, axes, {x}}));
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"ReduceSum", 13, {}, {x}}, 2e-3, 2e-2));
}

TEST(Fp16Ops, ResizeAndMovement) {
  std::mt19937 rng(21);
  Attributes lin;
  lin.set("mode", std::string("linear"));
  OpSpec resize{"Resize", 13, lin, {random_tensor(DType::kFloat32, {1, 2, 5, 6}, rng), HostTensor(), floats({1, 1, 2, 1.5f})},
                {false, false, true}};
  EXPECT_TRUE(fp16_matches_reference(resize, 2e-3, 2e-3, {true, false, false}));
  // Data movers follow their producer's precision (a lone one stays fp32), so they are tested
  // on float16 graph inputs: byte moves by element size, bit-exact on both backends.
  auto half_tensor = [&](const Shape& shape) {
    const HostTensor f = random_tensor(DType::kFloat32, shape, rng);
    HostTensor h(DType::kFloat16, shape);
    for (int64_t i = 0; i < f.numel(); ++i) h.as<uint16_t>()[i] = float_to_half(f.as<float>()[i]);
    return h;
  };
  Attributes perm;
  perm.set("perm", std::vector<int64_t>{0, 2, 3, 1});
  OpSpec tr{"Transpose", 17, perm, {half_tensor({2, 3, 4, 5})}};
  EXPECT_TRUE(opencl_matches_cpu(tr, 0, 0));
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(tr, "opencl", &out).is_ok());
  ASSERT_EQ(out[0].dtype(), DType::kFloat16);
  const uint16_t* x = tr.inputs[0].as<uint16_t>();
  const uint16_t* y = out[0].as<uint16_t>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t w = 0; w < 5; ++w) ASSERT_EQ(y[((n * 4 + h) * 5 + w) * 3 + c], x[((n * 3 + c) * 4 + h) * 5 + w]);
  Attributes ax;
  ax.set("axis", int64_t{1});
  EXPECT_TRUE(opencl_matches_cpu(OpSpec{"Concat", 17, ax, {half_tensor({2, 3, 4}), half_tensor({2, 5, 4})}, {false, true}}, 0, 0));
}

// Elementwise ops (float16 programs), Clip's constant bounds included: inference moves them
// into attributes, and the fp16 conversion runs the shape rule again on the float16 input.
TEST(Fp16Ops, ElementwiseAndClipBounds) {
  std::mt19937 rng(25);
  auto scalar = [](float v) {
    HostTensor t(DType::kFloat32, {});
    t.as<float>()[0] = v;
    return t;
  };
  const HostTensor x = random_tensor(DType::kFloat32, {3, 50}, rng, -8, 8);
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"Clip", 13, {}, {x, scalar(-1.5f), scalar(6.f)}, {false, true, true}}));
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"Clip", 13, {}, {x, HostTensor(), scalar(0.25f)}, {false, false, true}}));
  Attributes bounds;
  bounds.set("min", 0.f);
  bounds.set("max", 6.f);
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"Clip", 6, bounds, {x}}));
  EXPECT_TRUE(fp16_matches_reference(OpSpec{"Sigmoid", 13, {}, {x}}));
  EXPECT_TRUE(fp16_matches_reference(
      OpSpec{"Mul", 14, {}, {x, random_tensor(DType::kFloat32, {50}, rng)}, {false, true}}));
}

// An op without float16 kernels (Pow computes through float64) stays fp32 inside an fp16
// build: no Casts, the same result as the FP32 plan.
TEST(Fp16Ops, OpsWithoutFp16KernelsStayFp32) {
  std::mt19937 rng(23);
  OpSpec s{"Pow", 17, {}, {random_tensor(DType::kFloat32, {3, 4}, rng, 0.5, 2), random_tensor(DType::kFloat32, {4}, rng)},
           {false, true}};
  std::vector<HostTensor> want, got;
  ASSERT_TRUE(run_op(s, "cpu", &want).is_ok());
  s.precision = "fp16";
  Plan plan;
  ASSERT_TRUE(run_op(s, "cpu", &got, &plan).is_ok());
  ASSERT_EQ(plan.nodes.size(), 1u);
  EXPECT_EQ(plan.tensors[plan.nodes[0].outputs[0]].dtype, DType::kFloat32);
  EXPECT_TRUE(tensors_close(got[0], want[0], 0, 0));
}

// The one rule for float32 constants beyond float16's range (compiler/passes/convert_fp16.cpp):
// a node reading a finite one (torch's (1 - mask) * finfo(float32).min) stays float32 and
// computes exactly what the FP32 plan does, on both backends (as half the constant would be
// -inf and 0 * -inf NaN); infinite constants (masks that are -inf already) do not count, so
// such a node converts.
TEST(Fp16Ops, ConstantsBeyondHalfRangeKeepTheirNodeFp32) {
  std::mt19937 rng(26);
  HostTensor keep = random_tensor(DType::kFloat32, {2, 1, 1, 40}, rng, 0, 1);
  for (int64_t i = 0; i < keep.numel(); ++i) keep.as<float>()[i] = keep.as<float>()[i] < 0.3f ? 0.f : 1.f;
  HostTensor lowest(DType::kFloat32, {});
  lowest.as<float>()[0] = std::numeric_limits<float>::lowest();
  OpSpec s{"Mul", 14, {}, {keep, lowest}, {false, true}};
  std::vector<std::string> devices = {"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  for (const std::string& dev : devices) {
    std::vector<HostTensor> want, got;
    s.precision = "fp32";
    ASSERT_TRUE(run_op(s, dev, &want).is_ok()) << dev;
    s.precision = "fp16";
    Plan plan;
    ASSERT_TRUE(run_op(s, dev, &got, &plan).is_ok()) << dev;
    ASSERT_EQ(plan.nodes.size(), 1u) << dev;
    EXPECT_EQ(plan.tensors[plan.nodes[0].outputs[0]].dtype, DType::kFloat32) << dev;
    EXPECT_EQ(plan.nodes[0].backend, dev == "cpu" ? Backend::kCpu : Backend::kOpenCL) << dev;
    EXPECT_TRUE(tensors_close(got[0], want[0], 0, 0)) << dev;
    for (int64_t i = 0; i < got[0].numel(); ++i) ASSERT_FALSE(std::isnan(got[0].as<float>()[i])) << dev << " " << i;
  }
  HostTensor ninf(DType::kFloat32, {});
  ninf.as<float>()[0] = -std::numeric_limits<float>::infinity();
  OpSpec masked{"Add", 14, {}, {random_tensor(DType::kFloat32, {2, 40}, rng), ninf}, {false, true}};
  EXPECT_TRUE(fp16_matches_reference(masked));
}

// The device scratch of FP16 nodes (widened SGEMM operands, half im2col columns: this Conv
// takes that path on OpenCL) is allocated on the first inference and reused: no runtime
// buffer is allocated after warm-up, on either backend.
TEST(Fp16Ops, NoAllocationsAfterWarmup) {
  std::mt19937 rng(24);
  OpSpec conv{"Conv", 17, conv_attrs(1, {1, 1, 1, 1}, {1, 1}),
              {random_tensor(DType::kFloat32, {1, 32, 48, 48}, rng), random_tensor(DType::kFloat32, {32, 32, 3, 3}, rng),
               random_tensor(DType::kFloat32, {32}, rng)},
              {false, true, true}, 1, "fp16"};
  std::vector<std::string> devices = {"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  for (const std::string& dev : devices) {
    SCOPED_TRACE(dev);
    auto plan = std::make_shared<Plan>();
    ASSERT_TRUE(build_op_plan(conv, dev, plan.get()).is_ok());
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, dev, &ctx, &notice).is_ok());
    const HostTensor& x = conv.inputs[0];
    HostTensor y(DType::kFloat32, {1, 32, 48, 48});
    ASSERT_TRUE(ctx->bind_input("in0", x.dtype(), x.shape(), x.data(), x.size_bytes()).is_ok());
    ASSERT_TRUE(ctx->bind_output("out0", y.data(), y.size_bytes()).is_ok());
    ASSERT_TRUE(ctx->run().is_ok());
    const uint64_t before = runtime_allocations();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(ctx->run().is_ok());
    EXPECT_EQ(runtime_allocations(), before);
  }
}

// A value computed in float32 beyond half's range and read by float16 nodes: BERT's extended
// mask (1 - mask) * finfo(float32).min stays float32 (its constant overflows half), and the
// boundary Cast that --precision fp16 inserts saturates it to -65504 instead of -inf. A fully
// padded sequence (mask all zeros) then softmaxes over equal finite scores, as in float32,
// where -inf everywhere gave NaN; the FP16 plan matches the FP32 plan within half's precision.
TEST(Fp16Ops, ComputedValuesBeyondHalfRangeSaturateAtTheBoundary) {
  std::mt19937 rng(27);
  HostTensor keep(DType::kFloat32, {2, 1, 1, 8});
  for (int64_t j = 0; j < 8; ++j) {
    keep.as<float>()[j] = 0.f;                  // batch 0: fully padded
    keep.as<float>()[8 + j] = j < 5 ? 1.f : 0.f;  // batch 1: three padded keys
  }
  HostTensor one(DType::kFloat32, {}), lowest(DType::kFloat32, {});
  one.as<float>()[0] = 1.f;
  lowest.as<float>()[0] = std::numeric_limits<float>::lowest();
  const HostTensor scores = random_tensor(DType::kFloat32, {2, 2, 8, 8}, rng, -6, 6);
  const HostTensor v = random_tensor(DType::kFloat32, {2, 2, 8, 4}, rng, -2, 2);
  std::vector<std::string> devs = {"cpu"};
  if (have_opencl()) devs.push_back("opencl");
  for (const std::string& dev : devs) {
    SCOPED_TRACE(dev);
    std::vector<HostTensor> out[2];
    for (int fp16 = 0; fp16 < 2; ++fp16) {
      GraphBuilder b(14);
      const std::string k = b.input(keep), s = b.input(scores), vv = b.input(v);
      const std::string mask = b.node("Mul", {b.node("Sub", {b.constant(one), k}), b.constant(lowest)});
      Attributes ax;
      ax.set("axis", int64_t{-1});
      const std::string p = b.node("Softmax", {b.node("Add", {s, mask})}, ax);
      b.output(b.node("MatMul", {p, vv}));
      b.output(p);
      BuildOptions opts;
      opts.device = dev;
      opts.precision = fp16 ? "fp16" : "fp32";
      std::shared_ptr<Plan> plan;
      Status st = b.build(&plan, opts);
      ASSERT_TRUE(st.is_ok()) << st.message();
      if (fp16) {
        // The mask (and every graph input) reaches the float16 nodes through a saturating
        // conversion; no plain Cast to float16 is left.
        int sat = 0, plain = 0;
        for (const PlanNode& n : plan->nodes) {
          if (n.op != ew::kRuntimeOp) continue;
          std::vector<DType> dt;
          for (int32_t t : n.inputs) dt.push_back(plan->tensors[t].dtype);
          ew::Program prog;
          ASSERT_TRUE(ew::Program::from_attrs(n.attrs, dt, &prog).is_ok());
          for (const ew::Instr& in : prog.code) {
            sat += in.op == ew::Op::CastSat;
            plain += in.op == ew::Op::Cast && in.dtype == DType::kFloat16;
          }
        }
        EXPECT_EQ(sat, 4);  // the inputs keep, scores and V, and the float32 mask
        EXPECT_EQ(plain, 0);
      }
      std::unique_ptr<ExecutionContext> ctx;
      std::string notice;
      ASSERT_TRUE(ExecutionContext::create(plan, dev, &ctx, &notice).is_ok());
      for (size_t i = 0; i < plan->inputs.size(); ++i) {
        const HostTensor& t = b.inputs()[i];
        ASSERT_TRUE(ctx->bind_input(plan->tensors[plan->inputs[i]].name, t.dtype(), t.shape(), t.data(), t.size_bytes())
                        .is_ok());
      }
      for (int32_t t : plan->outputs) {
        out[fp16].emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
        ASSERT_TRUE(ctx->bind_output(plan->tensors[t].name, out[fp16].back().data(), out[fp16].back().size_bytes())
                        .is_ok());
      }
      ASSERT_TRUE(ctx->run().is_ok());
    }
    for (size_t o = 0; o < 2; ++o) {
      for (int64_t i = 0; i < out[1][o].numel(); ++i) ASSERT_TRUE(std::isfinite(out[1][o].as<float>()[i])) << o << " " << i;
      EXPECT_TRUE(tensors_close(out[1][o], out[0][o], 1e-2, 1e-2)) << "output " << o;
    }
    // The fully padded batch averages V uniformly (probabilities 1/8), as float32 does.
    for (int64_t i = 0; i < 2 * 8 * 8; ++i) EXPECT_EQ(out[1][1].as<float>()[i], half_to_float(float_to_half(0.125f)));
  }
}

}  // namespace
}  // namespace kiln::test
