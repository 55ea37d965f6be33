// The cpu fast path's INT8 kernels against the reference kernels, on both routes
// (dnnl_qlinear.h): oneDNN's int8 primitives with kiln's fused integer epilogue as output scales
// and post-ops (dnnl_qlinear.cpp, on hosts where they accumulate exactly), and oneDNN's float32
// primitives with kiln's loop epilogue (dnnl_qlinear_f32.cpp; everywhere with
// KILN_CPU_INT8_VIA_F32=1). Q/DQ graphs the compiler turns into fused integer kernels: random
// shapes, u8/s8 activations with zero points, per-channel weights, bias, residual (float or
// int8, before or after the activation), float outputs, and accumulators past 2^24.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/core/half.h"
#include "runtime/core/npy.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

int64_t pick(std::mt19937& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

struct Quantizer {
  GraphBuilder& g;
  std::mt19937& rng;
  // Q -> DQ of `v` with a random scale and zero point of dtype `t`.
  std::string qdq(const std::string& v, DType t, double scale) {
    const double zp = t == DType::kUInt8 ? static_cast<double>(pick(rng, 100, 150)) : static_cast<double>(pick(rng, -10, 10));
    const std::string s = g.constant(scalar_of(DType::kFloat32, scale)), z = g.constant(scalar_of(t, zp));
    return g.node("DequantizeLinear", {g.node("QuantizeLinear", {v, s, z}), s, z});
  }
  // DQ of random int8 weights with per-channel scales along `axis` (zero points 0).
  std::string weights(const Shape& shape, int64_t axis) {
    HostTensor w = random_tensor(DType::kInt8, shape, rng, -127, 127);
    HostTensor s(DType::kFloat32, {shape[axis]});
    for (int64_t i = 0; i < shape[axis]; ++i) s.as<float>()[i] = static_cast<float>(0.002 + 0.004 * (i % 7));
    HostTensor z(DType::kInt8, {shape[axis]});
    for (int64_t i = 0; i < shape[axis]; ++i) z.as<int8_t>()[i] = 0;
    Attributes a;
    a.set("axis", axis);
    return g.node("DequantizeLinear", {g.constant(w), g.constant(s), g.constant(z)}, a);
  }
};

// Compares integer-valued results up to one quantization step `step`: every element within a
// step, and at most `max_off` elements off at all.
::testing::AssertionResult within_one_step(const HostTensor& got, const HostTensor& want, double step, int64_t max_off) {
  int64_t off = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double d = std::fabs(static_cast<double>(got.as<float>()[i]) - want.as<float>()[i]);
    if (d > 1e-6 * std::fabs(want.as<float>()[i]) + 1e-6) ++off;
    if (d > step * 1.001 + 1e-6)
      return ::testing::AssertionFailure() << "element " << i << ": got " << got.as<float>()[i] << ", want "
                                           << want.as<float>()[i] << " (more than one step " << step << ")";
  }
  if (off > max_off) return ::testing::AssertionFailure() << off << " of " << got.numel() << " elements differ";
  return ::testing::AssertionSuccess();
}

// The routes this host runs: the float32 one everywhere, the int8 one where it is exact.
std::vector<bool> routes_via_f32() {
  std::vector<bool> r{true};
  if (dnnl_util::int8_accumulates_exactly()) r.push_back(false);
  return r;
}

// Selects a route for a scope (KILN_CPU_INT8_VIA_F32 is read when a plan's nodes are prepared).
struct ScopedRoute {
  explicit ScopedRoute(bool via_f32) : env("KILN_CPU_INT8_VIA_F32", via_f32 ? "1" : nullptr) {}
  ScopedEnv env;
};

// Whether every QLinearConv / QLinearMatMul node of `plan` gets a fast kernel of the route
// `via_f32` (prepared here, as a context would prepare them now).
::testing::AssertionResult integer_layers_on_route(const std::shared_ptr<const Plan>& plan, bool via_f32) {
  std::shared_ptr<FastCpuPlan> fast = FastCpuPlan::get(plan);
  size_t seen = 0;
  for (size_t n = 0; n < plan->nodes.size(); ++n) {
    const PlanNode& node = plan->nodes[n];
    if (node.op != "QLinearConv" && node.op != "QLinearMatMul") continue;
    ++seen;
    std::shared_ptr<const FastNodePlan> k;
    const Status st = fast->node(n, &k);
    if (!st) return ::testing::AssertionFailure() << node.name << ": " << st.message();
    if (!k) return ::testing::AssertionFailure() << node.name << " (" << node.op << ") runs its reference kernel";
    if ((std::string(k->name()).find("via_f32") != std::string::npos) != via_f32)
      return ::testing::AssertionFailure() << node.name << " runs " << k->name();
  }
  if (!seen) return ::testing::AssertionFailure() << "no integer layer";
  return ::testing::AssertionSuccess();
}

TEST(CpuFastQuant, QdqBlocksRandom) {
  std::mt19937 rng(1301);
  const char* acts[] = {"", "Relu", "Clip", "Sigmoid"};
  for (int it = 0; it < 24; ++it) {
    const bool conv = it % 3 != 2;
    const DType xt = it % 2 ? DType::kUInt8 : DType::kInt8;
    const std::string act = acts[it % 4];
    const int res = static_cast<int>(pick(rng, 0, 3));  // none, float before, int8 before, int8 after act
    GraphBuilder g;
    Quantizer q{g, rng};
    Shape xs, ys;
    const int64_t C = pick(rng, 1, 24), M = pick(rng, 1, 40);
    if (conv) {
      xs = {pick(rng, 1, 2), C, pick(rng, 3, 12), pick(rng, 3, 12)};
    } else {
      xs = {pick(rng, 1, 3), pick(rng, 1, 20), C};
    }
    const std::string x = g.input(random_tensor(DType::kFloat32, xs, rng, -1, 1));
    std::string v = q.qdq(x, xt, 2.0 / 250);
    if (conv) {
      const int64_t k = pick(rng, 1, 3), s = pick(rng, 1, 2);
      Attributes a;
      a.set("pads", std::vector<int64_t>(4, k / 2));
      a.set("strides", std::vector<int64_t>{s, s});
      v = g.node("Conv", {v, q.weights({M, C, k, k}, 0), g.constant(random_tensor(DType::kFloat32, {M}, rng, -0.2, 0.2))}, a);
      ys = {xs[0], M, (xs[2] + 2 * (k / 2) - k) / s + 1, (xs[3] + 2 * (k / 2) - k) / s + 1};
    } else {
      v = g.node("MatMul", {v, q.weights({C, M}, 1)});
      ys = {xs[0], xs[1], M};
    }
    // Q/DQ after the product (as exporters write it); the compiler folds the rest into the
    // integer kernel's epilogue (a MatMul's bias Add too).
    v = q.qdq(v, xt, 1.0 / 60);
    if (!conv) v = g.node("Add", {v, g.constant(random_tensor(DType::kFloat32, {M}, rng, -0.2, 0.2))});
    auto residual = [&](std::string in) {
      std::string r = g.input(random_tensor(DType::kFloat32, ys, rng, -0.5, 0.5));
      if (res >= 2) r = q.qdq(r, xt, 1.0 / 250);
      return g.node("Add", {in, r});
    };
    if (res == 1 || res == 2) v = residual(v);
    if (act == "Clip") {
      v = g.node("Clip", {v, g.constant(scalar_of(DType::kFloat32, -0.1)), g.constant(scalar_of(DType::kFloat32, 0.3))});
    } else if (!act.empty()) {
      v = g.node(act, {v});
    }
    if (res == 3) v = residual(v);
    // An int8 output (read by a second integer layer) or the float output of the last one.
    const double ystep = 1.0 / 100;
    v = q.qdq(v, xt, ystep);
    const bool second = it % 4 >= 2;
    double final_step = ystep;
    if (second && conv) {
      v = g.node("Conv", {v, q.weights({4, M, 1, 1}, 0)});
      final_step = 1.0 / 50;
      v = q.qdq(v, xt, final_step);
    }
    g.output(v);
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(g.build(&plan).is_ok());
    size_t qlinear = 0;
    for (const PlanNode& n : plan->nodes) qlinear += n.op == "QLinearConv" || n.op == "QLinearMatMul";
    std::string ops;
    for (const PlanNode& n : plan->nodes) ops += n.op + " ";
    ASSERT_GE(qlinear, 1u) << ops;
    SCOPED_TRACE(std::string(conv ? "conv" : "matmul") + " x " + shape_str(xs) + " " + dtype_name(xt) + " act '" + act +
                 "' residual " + std::to_string(res) + (second ? " + second layer" : "") + ", " +
                 std::to_string(plan->nodes.size()) + " nodes");
    std::vector<HostTensor> want, got;
    {
      ScopedEnv ref("KILN_CPU_REFERENCE", "1");
      ASSERT_TRUE(run_plan(plan, g.inputs(), &want).is_ok());
    }
    // Behind a second layer, a one-step difference of the first moves the second's
    // accumulation by less than one of its steps.
    const double step = second && conv ? 2 * final_step : ystep;
    for (bool via_f32 : routes_via_f32()) {
      SCOPED_TRACE(via_f32 ? "float32 route" : "int8 route");
      ScopedRoute route(via_f32);
      EXPECT_TRUE(integer_layers_on_route(plan, via_f32));
      ASSERT_TRUE(run_plan(plan, g.inputs(), &got).is_ok());
      // The float32 route is exact here (K <= 216: its accumulators stay below 2^24) and its
      // loop epilogue is the reference's. The int8 route is exact where oneDNN reproduces the
      // reference's arithmetic (no activation or a piecewise-linear one, no int8 residual's
      // multiply-add); else within one step on a few elements.
      const bool exact = via_f32 || ((act.empty() || act == "Relu" || act == "Clip") && res < 2);
      EXPECT_TRUE(within_one_step(got[0], want[0], step, exact ? 0 : std::max<int64_t>(2, got[0].numel() / 50)));
    }
  }
}

// Accumulators past 2^24, where the float32 route's sums round: a 3x3 convolution over 512
// channels (K = 4608) of positive activations (25..125) and weights (40..127), so accumulators
// are near 2^25, and so is the bias that brings the output back into its range. The uint8
// output is compared: within one step on a few elements.
TEST(CpuFastQuant, LargeAccumulatorsWithinOneStep) {
  std::mt19937 rng(1306);
  const int64_t C = 512, M = 24, K = C * 9;
  GraphBuilder g;
  auto u8_scalar = [&](double v) { return g.constant(scalar_of(DType::kUInt8, v)); };
  auto f32_scalar = [&](double v) { return g.constant(scalar_of(DType::kFloat32, v)); };
  const std::string x = g.input(random_tensor(DType::kFloat32, {1, C, 7, 7}, rng, 0.2, 1.0));
  const std::string xs = f32_scalar(2.0 / 250), xz = u8_scalar(0);
  const std::string xq = g.node("DequantizeLinear", {g.node("QuantizeLinear", {x, xs, xz}), xs, xz});
  HostTensor w = random_tensor(DType::kInt8, {M, C, 3, 3}, rng, 40, 127);
  HostTensor ws(DType::kFloat32, {M}), wz(DType::kInt8, {M}), bias(DType::kFloat32, {M});
  for (int64_t m = 0; m < M; ++m) {
    ws.as<float>()[m] = static_cast<float>(0.001 + 0.0002 * (m % 3));
    wz.as<int8_t>()[m] = 0;
    // Minus the expected sum (x averages 0.6): outputs center on 0.
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += w.as<int8_t>()[m * K + k];
    bias.as<float>()[m] = static_cast<float>(-0.6 * sum * ws.as<float>()[m]);
  }
  Attributes a;
  a.set("axis", int64_t{0});
  const std::string wq = g.node("DequantizeLinear", {g.constant(w), g.constant(ws), g.constant(wz)}, a);
  const std::string y = g.node("Conv", {xq, wq, g.constant(bias)});
  g.output(g.node("QuantizeLinear", {y, f32_scalar(0.05), u8_scalar(128)}));
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  ASSERT_EQ(plan->tensors[plan->outputs[0]].dtype, DType::kUInt8);
  auto widen = [](const HostTensor& t) {
    HostTensor f(DType::kFloat32, t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) f.as<float>()[i] = t.as<uint8_t>()[i];
    return f;
  };
  std::vector<HostTensor> want, got;
  {
    ScopedEnv ref("KILN_CPU_REFERENCE", "1");
    ASSERT_TRUE(run_plan(plan, g.inputs(), &want).is_ok());
  }
  int64_t in_range = 0;
  for (int64_t i = 0; i < want[0].numel(); ++i) in_range += want[0].as<uint8_t>()[i] != 0 && want[0].as<uint8_t>()[i] != 255;
  EXPECT_GT(in_range, want[0].numel() * 9 / 10);  // not a test of saturation
  for (bool via_f32 : routes_via_f32()) {
    SCOPED_TRACE(via_f32 ? "float32 route" : "int8 route");
    ScopedRoute route(via_f32);
    EXPECT_TRUE(integer_layers_on_route(plan, via_f32));
    ASSERT_TRUE(run_plan(plan, g.inputs(), &got).is_ok());
    EXPECT_TRUE(within_one_step(widen(got[0]), widen(want[0]), 1.0, std::max<int64_t>(2, got[0].numel() / 50)));
  }
}

// kiln's own post-training INT8 (--precision int8) of a ResNet-style graph: int8 residuals read
// by the integer kernels, float outputs of the last layers, u8/s8 chains kept channels-last.
TEST(CpuFastQuant, PtqResNetBlockMatchesReference) {
  std::mt19937 rng(1302);
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {1, 8, 16, 16}, rng));
  auto conv = [&](const std::string& in, int64_t cin, int64_t cout, int64_t stride) {
    Attributes a;
    a.set("pads", std::vector<int64_t>(4, 1));
    a.set("strides", std::vector<int64_t>{stride, stride});
    return g.node("Conv", {in, g.constant(random_tensor(DType::kFloat32, {cout, cin, 3, 3}, rng, -0.2, 0.2)),
                           g.constant(random_tensor(DType::kFloat32, {cout}, rng, -0.1, 0.1))},
                  a);
  };
  const std::string c1 = g.node("Relu", {conv(x, 8, 16, 1)});
  const std::string c2 = g.node("Relu", {conv(c1, 16, 16, 1)});
  const std::string b1 = g.node("Relu", {g.node("Add", {conv(c2, 16, 16, 1), c1})});
  const std::string c3 = g.node("Relu", {conv(b1, 16, 32, 2)});
  const std::string b2 = g.node("Relu", {g.node("Add", {conv(c3, 32, 32, 1), conv(b1, 16, 32, 2)})});
  const std::string gap = g.node("GlobalAveragePool", {b2});
  const std::string y = g.node("Gemm", {g.node("Flatten", {gap}), g.constant(random_tensor(DType::kFloat32, {32, 10}, rng))});
  g.output(y);
  const std::string dir = ::testing::TempDir() + "/kiln_cpu_fast_quant_calib";
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy", random_tensor(DType::kFloat32, {1, 8, 16, 16}, rng)).is_ok());
  BuildOptions o;
  o.precision = "int8";
  o.calib_dir = dir;
  std::shared_ptr<Plan> plan;
  Status st = g.build(&plan, o);
  ASSERT_TRUE(st.is_ok()) << st.message();
  size_t qlinear = 0, int8_residual = 0;
  for (const PlanNode& n : plan->nodes) {
    qlinear += n.op == "QLinearConv";
    int8_residual += n.op == "QLinearConv" && n.inputs.size() > 11;
  }
  EXPECT_GE(qlinear, 6u);
  EXPECT_GE(int8_residual, 1u);
  std::vector<HostTensor> want, got;
  {
    ScopedEnv ref("KILN_CPU_REFERENCE", "1");
    ASSERT_TRUE(run_plan(plan, g.inputs(), &want).is_ok());
  }
  for (bool via_f32 : routes_via_f32()) {
    SCOPED_TRACE(via_f32 ? "float32 route" : "int8 route");
    ScopedRoute route(via_f32);
    EXPECT_TRUE(integer_layers_on_route(plan, via_f32));
    ASSERT_TRUE(run_plan(plan, g.inputs(), &got).is_ok());
    // Bit-exact on the float32 route (K <= 288) and on an AMX host's int8 route; an int8 kernel
    // that fuses the int8 residual's multiply-add may move a value by one step.
    EXPECT_TRUE(tensors_close(got[0], want[0], 1e-3, 2e-3));
  }
}

// FP8 post-training quantization (--precision fp8, fp8-e5m2): Fp8Conv / Fp8MatMul with the
// weights decoded once at plan load and oneDNN's float32 kernels; the reference's epilogue and
// float8 casts. Accumulation order differs, so an FP8 intermediate may move by one step.
TEST(CpuFastQuant, Fp8PtqMatchesReference) {
  std::mt19937 rng(1303);
  for (const char* precision : {"fp8", "fp8-e5m2"}) {
    GraphBuilder g;
    const std::string x = g.input(random_tensor(DType::kFloat32, {2, 6, 12, 12}, rng));
    Attributes pads;
    pads.set("pads", std::vector<int64_t>(4, 1));
    std::string v = g.node("Relu", {g.node("Conv", {x, g.constant(random_tensor(DType::kFloat32, {16, 6, 3, 3}, rng, -0.3, 0.3)),
                                                   g.constant(random_tensor(DType::kFloat32, {16}, rng, -0.1, 0.1))},
                                          pads)});
    v = g.node("Conv", {v, g.constant(random_tensor(DType::kFloat32, {8, 16, 3, 3}, rng, -0.2, 0.2))}, pads);
    v = g.node("Flatten", {g.node("GlobalAveragePool", {v})});
    v = g.node("Gemm", {v, g.constant(random_tensor(DType::kFloat32, {8, 5}, rng))});
    g.output(v);
    const std::string dir = ::testing::TempDir() + "/kiln_cpu_fast_fp8_calib";
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 3; ++i)
      ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy", random_tensor(DType::kFloat32, {2, 6, 12, 12}, rng)).is_ok());
    BuildOptions o;
    o.precision = precision;
    o.calib_dir = dir;
    std::shared_ptr<Plan> plan;
    Status st = g.build(&plan, o);
    ASSERT_TRUE(st.is_ok()) << st.message();
    size_t fp8 = 0;
    for (const PlanNode& n : plan->nodes) fp8 += n.op == "Fp8Conv" || n.op == "Fp8MatMul";
    ASSERT_GE(fp8, 2u);
    SCOPED_TRACE(precision);
    // The 6-channel first convolution is too narrow for FP8: it runs in FP16 (weights and output).
    const PlanNode* stem = nullptr;
    for (const PlanNode& n : plan->nodes)
      if (n.op == "Conv") stem = &n;
    ASSERT_NE(stem, nullptr);
    EXPECT_EQ(plan->tensors[stem->outputs[0]].dtype, DType::kFloat16);
    EXPECT_EQ(plan->tensors[stem->inputs[1]].dtype, DType::kFloat16);
    std::vector<HostTensor> want, got;
    {
      ScopedEnv ref("KILN_CPU_REFERENCE", "1");
      ASSERT_TRUE(run_plan(plan, g.inputs(), &want).is_ok());
    }
    size_t fast = 0;
    ASSERT_TRUE(run_plan(plan, g.inputs(), &got, &fast).is_ok());
    EXPECT_GE(fast, fp8);
    EXPECT_TRUE(tensors_close(got[0], want[0], 3e-2, 3e-2));
  }
}

// Post-training INT8 inserts a QuantizeLinear per layer: three projections of one tensor (an
// attention block's Q, K and V) share one after the build, and the plan still computes what
// the FP32 plan does to within INT8's error.
TEST(CpuFastQuant, ProjectionsOfOneTensorShareOneQuantizeLinear) {
  // The same graph twice (a build rewrites its GraphBuilder's graph): FP32 and INT8.
  auto make = [](GraphBuilder& g) {
    std::mt19937 rng(1404);
    const std::string x = g.input(random_tensor(DType::kFloat32, {2, 16, 32}, rng));
    std::string sum;
    for (int p = 0; p < 3; ++p) {
      const std::string y = g.node("MatMul", {x, g.constant(random_tensor(DType::kFloat32, {32, 32}, rng, -0.3, 0.3))});
      sum = sum.empty() ? y : g.node("Add", {sum, y});
    }
    g.output(sum);
  };
  GraphBuilder g32, g8;
  make(g32);
  make(g8);
  std::mt19937 rng(1405);
  const std::string dir = ::testing::TempDir() + "/kiln_cpu_fast_shared_q";
  std::filesystem::create_directories(dir);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy", random_tensor(DType::kFloat32, {2, 16, 32}, rng)).is_ok());
  std::shared_ptr<Plan> fp32, int8;
  ASSERT_TRUE(g32.build(&fp32).is_ok());
  BuildOptions o;
  o.precision = "int8";
  o.calib_dir = dir;
  o.calibrator = "minmax";
  o.accuracy_check = false;
  Status st = g8.build(&int8, o);
  ASSERT_TRUE(st.is_ok()) << st.message();
  size_t quantize = 0, matmul = 0;
  for (const PlanNode& n : int8->nodes) {
    quantize += n.op == "QuantizeLinear";
    matmul += n.op == "QLinearMatMul";
  }
  EXPECT_EQ(matmul, 3u);
  EXPECT_EQ(quantize, 1u);
  std::vector<HostTensor> want, got;
  ASSERT_TRUE(run_plan(fp32, g32.inputs(), &want).is_ok());
  ASSERT_TRUE(run_plan(int8, g32.inputs(), &got).is_ok());
  EXPECT_TRUE(tensors_close(got[0], want[0], 0.05, 0.05));
  // Quantizing the FP32 build's graph again (its residual Adds now fused into the MatMuls)
  // leaves those MatMuls in FP32 instead of dropping their fused residuals.
  std::shared_ptr<Plan> again;
  st = g32.build(&again, o);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_TRUE(run_plan(again, g32.inputs(), &got).is_ok());
  EXPECT_TRUE(tensors_close(got[0], want[0], 0.05, 0.05));
}

// Standalone per-tensor QuantizeLinear / DequantizeLinear: the fast path's vectorized loops give
// the reference's bits on halfway values (round half to even), values past the integer range,
// NaN, infinities and -0, for int8 and uint8 with and without a zero point, on a tensor large
// enough to be split over the team.
TEST(CpuFastQuant, QuantizeDequantizeBitExact) {
  std::mt19937 rng(91);
  const float specials[] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 127.5f, -128.5f, 255.5f, 1e9f, -1e9f, -0.f,
                            std::nanf(""), INFINITY, -INFINITY};
  for (DType t : {DType::kInt8, DType::kUInt8}) {
    for (bool with_zp : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + (with_zp ? " zp" : " no zp"));
      GraphBuilder g;
      HostTensor x = random_tensor(DType::kFloat32, {3, 50000}, rng, -300, 300);
      for (size_t i = 0; i < std::size(specials); ++i) x.as<float>()[i * 7919] = specials[i];
      for (int64_t i = 0; i < 200; ++i) x.as<float>()[i * 701 + 3] = static_cast<float>(pick(rng, -300, 300)) + 0.5f;
      const std::string in = g.input(x);
      const std::string s = g.constant(scalar_of(DType::kFloat32, 1.0));
      std::vector<std::string> qi = {in, s};
      if (with_zp) qi.push_back(g.constant(scalar_of(t, t == DType::kUInt8 ? 120 : -7)));
      const std::string q = g.node("QuantizeLinear", qi);
      std::vector<std::string> di = {q, g.constant(scalar_of(DType::kFloat32, 0.37))};
      if (with_zp) di.push_back(qi[2]);
      g.output(q);
      g.output(g.node("DequantizeLinear", di));
      std::shared_ptr<Plan> plan;
      ASSERT_TRUE(g.build(&plan).is_ok());
      EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 0, 0, 2));
    }
  }
}

TEST(CpuFastQuant, Float16InputQuantizesBitExact) {
  // --fallback-precision fp16 plans hand QuantizeLinear a float16 tensor: the fast path runs it
  // (on the widened float32 view, runtime/backends/cpu/fast_float16.cpp) as the reference does.
  std::mt19937 rng(92);
  for (DType t : {DType::kInt8, DType::kUInt8}) {
    SCOPED_TRACE(dtype_name(t));
    GraphBuilder g;
    HostTensor x32 = random_tensor(DType::kFloat32, {3, 30001}, rng, -200, 200);
    HostTensor x(DType::kFloat16, x32.shape());
    for (int64_t i = 0; i < x.numel(); ++i) x.as<uint16_t>()[i] = float_to_half(x32.as<float>()[i]);
    const std::string q = g.node("QuantizeLinear", {g.input(x), g.constant(scalar_of(DType::kFloat32, 0.75)),
                                                    g.constant(scalar_of(t, t == DType::kUInt8 ? 120 : -7))});
    g.output(q);
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(g.build(&plan).is_ok());
    EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 0, 0, 1));
  }
}

}  // namespace
}  // namespace kiln::test
