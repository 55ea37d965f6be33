// The saturating float32 -> float16 conversion (Elementwise instruction CastSat) that
// --precision fp16 uses at its fp32 -> fp16 boundaries, against numpy-style expectations:
// np.float16(np.clip(x, -65504, 65504)) for finite x, NaN and +-inf kept. An ONNX Cast keeps
// ONNX semantics (np.float16(x): 65520 and beyond overflow to inf). Every path gives the same
// bits: the CPU reference interpreter, the cpu fast path, OpenCL, and fused programs.
#include <cmath>
#include <limits>
#include <map>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/ops/op_schema.h"
#include "runtime/core/half.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/elementwise_program.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kMax = std::numeric_limits<float>::max();

HostTensor f32(const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}

HostTensor f16_bits(const std::vector<uint16_t>& v) {
  HostTensor t(DType::kFloat16, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<uint16_t>()[i] = v[i];
  return t;
}

OpSpec cast_spec(HostTensor x, DType to, bool saturate) {
  OpSpec s{"Cast", 19, {}, {std::move(x)}, {false}};
  s.attrs.set("to", static_cast<int64_t>(to));
  if (saturate) s.attrs.set(kCastSaturateAttr, int64_t{1});
  return s;
}

std::vector<std::string> devices() {
  std::vector<std::string> d = {"cpu"};
  if (have_opencl()) d.push_back("opencl");
  return d;
}

// Inputs and the float16 bits numpy gives for each, saturated and not.
// 65519.99 is below the midpoint 65520 between 65504 and 65536 (half's next step): it rounds
// to 65504 either way; 65520 is the midpoint, which rounds to even (65536: inf) unsaturated.
struct Edge {
  float x;
  uint16_t sat, plain;
};
const std::vector<Edge> kEdges = {
    {0.f, 0x0000, 0x0000},         {-0.f, 0x8000, 0x8000},       {1.5f, 0x3e00, 0x3e00},
    {65504.f, 0x7bff, 0x7bff},     {-65504.f, 0xfbff, 0xfbff},   {65505.f, 0x7bff, 0x7bff},
    {65519.99f, 0x7bff, 0x7bff},   {-65519.99f, 0xfbff, 0xfbff}, {65520.f, 0x7bff, 0x7c00},
    {-65520.f, 0xfbff, 0xfc00},    {65536.f, 0x7bff, 0x7c00},    {1e6f, 0x7bff, 0x7c00},
    {-kMax, 0xfbff, 0xfc00},       {kMax, 0x7bff, 0x7c00},       {kInf, 0x7c00, 0x7c00},
    {-kInf, 0xfc00, 0xfc00},       {6e-8f, 0x0001, 0x0001},      {65488.f, 0x7bfe, 0x7bfe},
    {std::numeric_limits<float>::quiet_NaN(), 0x7e00, 0x7e00},
};

::testing::AssertionResult same_halves(const HostTensor& got, const std::vector<uint16_t>& want) {
  if (got.dtype() != DType::kFloat16 || got.numel() != static_cast<int64_t>(want.size()))
    return ::testing::AssertionFailure() << "output is " << dtype_name(got.dtype()) << " of " << got.numel();
  for (size_t i = 0; i < want.size(); ++i) {
    const uint16_t g = got.as<uint16_t>()[i];
    const bool both_nan = std::isnan(half_to_float(g)) && std::isnan(half_to_float(want[i]));
    if (g != want[i] && !both_nan)
      return ::testing::AssertionFailure() << "element " << i << " (x = " << kEdges[i].x << "): 0x" << std::hex << g
                                           << ", expected 0x" << want[i];
  }
  return ::testing::AssertionSuccess();
}

TEST(CastSaturate, Fp16EdgesAgainstHandComputedHalves) {
  std::vector<float> x;
  std::vector<uint16_t> sat, plain;
  for (const Edge& e : kEdges) {
    x.push_back(e.x);
    sat.push_back(e.sat);
    plain.push_back(e.plain);
  }
  for (const std::string& dev : devices()) {
    std::vector<HostTensor> got;
    Plan plan;
    ASSERT_TRUE(run_op(cast_spec(f32(x), DType::kFloat16, true), dev, &got, &plan).is_ok()) << dev;
    ASSERT_EQ(plan.nodes.size(), 1u);
    EXPECT_EQ(plan.nodes[0].backend, dev == "cpu" ? Backend::kCpu : Backend::kOpenCL);
    EXPECT_TRUE(same_halves(got[0], sat)) << dev << " saturating";
    // The model's own Cast: ONNX semantics, overflow to inf.
    ASSERT_TRUE(run_op(cast_spec(f32(x), DType::kFloat16, false), dev, &got).is_ok()) << dev;
    EXPECT_TRUE(same_halves(got[0], plain)) << dev << " ONNX Cast";
  }
}

TEST(CastSaturate, Fp16OpenclMatchesCpuAndFastPath) {
  std::mt19937 rng(61);
  HostTensor x = random_tensor(DType::kFloat32, {7, 3, 301}, rng, -2e5, 2e5);
  for (size_t i = 0; i < kEdges.size(); ++i) x.as<float>()[i * 97] = kEdges[i].x;
  const OpSpec s = cast_spec(x, DType::kFloat16, true);
  if (have_opencl()) EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  EXPECT_TRUE(cpu_fast_matches_reference(s, 0, 0));
  // And both equal the definition: clamp, then round to nearest even.
  std::vector<HostTensor> got;
  ASSERT_TRUE(run_op(s, "cpu", &got).is_ok());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float v = x.as<float>()[i];
    const float c = std::isinf(v) || std::isnan(v) ? v : std::fmin(std::fmax(v, -65504.f), 65504.f);
    const uint16_t want = float_to_half(c), g = got[0].as<uint16_t>()[i];
    ASSERT_TRUE(g == want || (std::isnan(v) && std::isnan(half_to_float(g)))) << i << " x=" << v;
  }
}

TEST(CastSaturate, Float64AndBFloat16Sources) {
  // float64 -> float16 clamps before narrowing to float (1e300 is not inf on the way);
  // float32 -> bfloat16 saturates at bfloat16's largest finite value (bits 0x7f7f).
  HostTensor d(DType::kFloat64, {4});
  const double dv[4] = {1e300, -1e300, 65519.99, std::numeric_limits<double>::infinity()};
  for (int i = 0; i < 4; ++i) d.as<double>()[i] = dv[i];
  const HostTensor b = f32({kMax, -kMax, kInf, 3.3895313e38f});
  for (const std::string& dev : devices()) {
    std::vector<HostTensor> got;
    Status st = run_op(cast_spec(d, DType::kFloat16, true), dev, &got);
    ASSERT_TRUE(st.is_ok()) << dev << ": " << st.message();
    EXPECT_TRUE(same_halves(got[0], {0x7bff, 0xfbff, 0x7bff, 0x7c00})) << dev;
    ASSERT_TRUE(run_op(cast_spec(b, DType::kBFloat16, true), dev, &got).is_ok()) << dev;
    ASSERT_EQ(got[0].dtype(), DType::kBFloat16);
    const uint16_t want[4] = {0x7f7f, 0xff7f, 0x7f80, 0x7f7f};
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got[0].as<uint16_t>()[i], want[i]) << dev << " " << i;
    ASSERT_TRUE(run_op(cast_spec(b, DType::kBFloat16, false), dev, &got).is_ok()) << dev;
    EXPECT_EQ(got[0].as<uint16_t>()[0], 0x7f80) << dev << ": ONNX Cast overflows";
  }
}

// Fused into an Elementwise program (a float32 Mul by float32's lowest, the saturating Cast,
// float16 arithmetic after it): the same bits fused and unfused, on both devices.
TEST(CastSaturate, FusedProgramMatchesSeparateNodes) {
  std::mt19937 rng(62);
  HostTensor keep = random_tensor(DType::kFloat32, {4, 50}, rng, 0, 1);
  for (int64_t i = 0; i < keep.numel(); ++i) keep.as<float>()[i] = keep.as<float>()[i] < 0.4f ? 0.f : 1.f;
  HostTensor k = random_tensor(DType::kFloat32, {4, 50}, rng, -8, 8);
  for (const std::string& dev : devices()) {
    std::vector<HostTensor> outs[2];
    for (int fuse = 0; fuse < 2; ++fuse) {
      ir::Graph g;
      g.name = "sat";
      g.opsets[""] = 17;
      const std::map<std::string, HostTensor> ins = {{"keep", keep}, {"k", k}};
      const std::map<std::string, HostTensor> consts = {{"lowest", f32({std::numeric_limits<float>::lowest()})}};
      for (const char* name : {"keep", "k", "lowest"}) named_value(&g, ins, consts, name);
      auto node = [&](const std::string& op, std::vector<std::string> in, const std::string& out, Attributes a) {
        ir::Node* n = g.add_node(op, op + "_" + out);
        for (const std::string& s : in) n->inputs.push_back(g.find_value(s));
        ir::Value* o = g.add_value(out);
        o->producer = n;
        n->outputs.push_back(o);
        n->attrs = std::move(a);
      };
      Attributes to16, sat16, to32;
      to16.set("to", int64_t{10});
      sat16 = to16;
      sat16.set(kCastSaturateAttr, int64_t{1});
      to32.set("to", int64_t{1});
      node("Mul", {"keep", "lowest"}, "m", {});
      node("Cast", {"m"}, "mh", sat16);
      node("Cast", {"k"}, "kh", to16);
      node("Add", {"mh", "kh"}, "s", {});
      node("Cast", {"s"}, "y", to32);
      g.outputs.push_back(g.find_value("y"));
      BuildOptions opts;
      opts.device = dev;
      opts.fuse = fuse != 0;
      auto plan = std::make_shared<Plan>();
      ASSERT_TRUE(build_plan_from_graph(g, opts, plan.get()).is_ok());
      if (fuse) {
        ASSERT_EQ(plan->nodes.size(), 1u) << dev;
        EXPECT_EQ(plan->nodes[0].backend, dev == "cpu" ? Backend::kCpu : Backend::kOpenCL);
      }
      std::unique_ptr<ExecutionContext> ctx;
      std::string notice;
      ASSERT_TRUE(ExecutionContext::create(plan, dev, &ctx, &notice).is_ok());
      ASSERT_TRUE(ctx->bind_input("keep", keep.dtype(), keep.shape(), keep.data(), keep.size_bytes()).is_ok());
      ASSERT_TRUE(ctx->bind_input("k", k.dtype(), k.shape(), k.data(), k.size_bytes()).is_ok());
      outs[fuse].emplace_back(DType::kFloat32, Shape{4, 50});
      ASSERT_TRUE(ctx->bind_output("y", outs[fuse].back().data(), outs[fuse].back().size_bytes()).is_ok());
      ASSERT_TRUE(ctx->run().is_ok());
    }
    EXPECT_TRUE(tensors_close(outs[1][0], outs[0][0], 0, 0)) << dev;
    // numpy: np.float16(np.float16(-65504 or 0) + np.float16(k)): finite everywhere.
    for (int64_t i = 0; i < keep.numel(); ++i) {
      const float mh = keep.as<float>()[i] != 0.f ? -65504.f : 0.f;
      const float kh = half_to_float(float_to_half(k.as<float>()[i]));
      EXPECT_EQ(outs[1][0].as<float>()[i], half_to_float(float_to_half(mh + kh))) << dev << " " << i;
    }
  }
}

// The rule (Program::validate, run on every loaded plan): CastSat converts float operands to
// float16/bfloat16 with p0 exactly that dtype's bound; anything else is refused.
TEST(CastSaturate, RuleRefusesMalformedInstructions) {
  auto check = [](DType in, DType out, float p0) {
    ew::Program p;
    p.inputs = {in};
    p.emit(ew::Op::CastSat, out, 0, -1, -1, p0);
    return p.validate();
  };
  EXPECT_TRUE(check(DType::kFloat32, DType::kFloat16, 65504.f).is_ok());
  EXPECT_TRUE(check(DType::kFloat64, DType::kFloat16, 65504.f).is_ok());
  EXPECT_TRUE(check(DType::kFloat32, DType::kBFloat16, ew::saturation_bound(DType::kBFloat16)).is_ok());
  EXPECT_FALSE(check(DType::kFloat32, DType::kFloat16, 1.f).is_ok());
  EXPECT_FALSE(check(DType::kFloat32, DType::kFloat16, std::numeric_limits<float>::quiet_NaN()).is_ok());
  EXPECT_FALSE(check(DType::kFloat32, DType::kFloat32, 65504.f).is_ok());
  EXPECT_FALSE(check(DType::kInt32, DType::kFloat16, 65504.f).is_ok());
  EXPECT_FALSE(check(DType::kFloat32, DType::kInt8, 65504.f).is_ok());
  EXPECT_EQ(float_to_bf16(ew::saturation_bound(DType::kBFloat16)), 0x7f7f);
}

}  // namespace
}  // namespace kiln::test
