// The cpu device's oneDNN Conv, ConvTranspose, Gemm and MatMul (runtime/backends/cpu/dnnl_*.cpp)
// against the reference kernels on random shapes and attributes, fused epilogues included.
#include <gtest/gtest.h>

#include <cmath>
#include <iterator>
#include <random>
#include <string>

#include <dnnl.hpp>

#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

struct Act {
  const char* name;
  float alpha, beta;
};
const Act kActs[] = {{"", 0, 0},           {"Relu", 0, 0},         {"LeakyRelu", 0.1f, 0},  {"Clip", -0.4f, 0.5f},
                     {"HardSigmoid", 0.2f, 0.5f}, {"HardSwish", 0, 0}, {"Sigmoid", 0, 0}, {"Tanh", 0, 0},
                     {"Elu", 0.7f, 0},     {"Selu", 1.67326f, 1.0507f}, {"Softplus", 0, 0},
                     {"Gelu", 0, 0},       {"GeluTanh", 0, 0}};

// Adds kiln's fused epilogue (what the fusion passes write) to `s`: activation `act`, and a
// residual of `out` shape before (mode 1) or after (mode 2) it.
void add_epilogue(OpSpec* s, const Act& act, int mode, const Shape& out, std::mt19937& rng) {
  if (*act.name) {
    s->attrs.set("activation", std::string(act.name));
    s->attrs.set("activation_alpha", act.alpha);
    s->attrs.set("activation_beta", act.beta);
  }
  if (mode == 0) return;
  s->attrs.set("residual", int64_t{mode});
  while (s->inputs.size() < 3) {
    s->inputs.push_back(HostTensor());
    s->constant.push_back(false);
  }
  s->inputs.push_back(random_tensor(DType::kFloat32, out, rng));
  s->constant.push_back(false);
}

int64_t pick(std::mt19937& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

TEST(CpuFastLinear, ConvRandom) {
  std::mt19937 rng(1101);
  for (int it = 0; it < 40; ++it) {
    const bool transpose = it % 4 == 3;
    const size_t sp = it % 7 == 5 ? 1 : (it % 11 == 9 ? 3 : 2);
    const int64_t kind = pick(rng, 0, 2);  // plain, grouped, depthwise
    const int64_t group = kind == 0 ? 1 : kind == 1 ? 2 : pick(rng, 3, 8);
    // oneDNN's deconvolutions need 16 output channels a group (dnnl_conv.cpp), fewer run the reference.
    const int64_t cg = kind == 2 ? 1 : pick(rng, 1, 9),
                  mg = transpose ? pick(rng, 16, 20) : kind == 2 ? pick(rng, 1, 2) : pick(rng, 1, 12);
    const int64_t N = pick(rng, 1, 3), C = cg * group, M = mg * group;
    Shape x{N, C}, w;
    std::vector<int64_t> strides, dil, pads(2 * sp), out_pad;
    Shape y{N, M};
    w = transpose ? Shape{C, mg} : Shape{M, cg};
    for (size_t d = 0; d < sp; ++d) {
      const int64_t k = pick(rng, 1, 3), s = pick(rng, 1, 2), dl = transpose ? 1 : pick(rng, 1, 2);
      const int64_t in = pick(rng, std::max<int64_t>(k * dl, 3), sp == 3 ? 6 : 11);
      const int64_t pb = pick(rng, 0, k - 1), pe = pick(rng, 0, k - 1);
      x.push_back(in);
      w.push_back(k);
      strides.push_back(s);
      dil.push_back(dl);
      pads[d] = pb;
      pads[sp + d] = pe;
      const int64_t op = transpose ? pick(rng, 0, std::min<int64_t>(s - 1, pe)) : 0;
      out_pad.push_back(op);
      const int64_t dk = (k - 1) * dl + 1;
      y.push_back(transpose ? s * (in - 1) + op + dk - pb - pe : (in + pb + pe - dk) / s + 1);
    }
    OpSpec s{transpose ? "ConvTranspose" : "Conv", 11, {}, {random_tensor(DType::kFloat32, x, rng), random_tensor(DType::kFloat32, w, rng)},
             {false, true}};
    s.attrs.set("group", group);
    s.attrs.set("strides", strides);
    s.attrs.set("dilations", dil);
    s.attrs.set("pads", pads);
    if (transpose) s.attrs.set("output_padding", out_pad);
    if (it % 3 != 2) {
      s.inputs.push_back(random_tensor(DType::kFloat32, {M}, rng));
      s.constant.push_back(it % 5 != 4);  // mostly constant, sometimes a run-time bias
    }
    const Act& act = kActs[it % std::size(kActs)];
    add_epilogue(&s, act, static_cast<int>(pick(rng, 0, 2)), y, rng);
    SCOPED_TRACE(s.op_type + " x " + shape_str(x) + " w " + shape_str(w) + " -> " + shape_str(y) + " group " +
                 std::to_string(group) + " act '" + act.name + "' residual " + std::to_string(s.attrs.get_int("residual", 0)));
    EXPECT_TRUE(cpu_fast_matches_reference(s, 1e-4, 2e-5));
  }
}

TEST(CpuFastLinear, GemmRandom) {
  std::mt19937 rng(1102);
  for (int it = 0; it < 30; ++it) {
    const int64_t M = pick(rng, 1, 70), N = pick(rng, 1, 70), K = pick(rng, 1, 90);
    const bool ta = it % 2, tb = (it / 2) % 2;
    OpSpec s{"Gemm", 13, {}, {random_tensor(DType::kFloat32, ta ? Shape{K, M} : Shape{M, K}, rng),
                              random_tensor(DType::kFloat32, tb ? Shape{N, K} : Shape{K, N}, rng)},
             {false, it % 5 != 1}};
    s.attrs.set("transA", int64_t{ta});
    s.attrs.set("transB", int64_t{tb});
    const int bias = it % 5;  // none, [N], [M, 1], [M, N], scalar
    if (it % 7 == 3) s.attrs.set("alpha", 0.5f);
    if (it % 6 == 2) s.attrs.set("beta", 2.f);
    if (bias) {
      const Shape bs = bias == 1 ? Shape{N} : bias == 2 ? Shape{M, 1} : bias == 3 ? Shape{M, N} : Shape{};
      s.inputs.push_back(random_tensor(DType::kFloat32, bs, rng));
      s.constant.push_back(true);
    }
    const Act& act = kActs[it % std::size(kActs)];
    add_epilogue(&s, act, it % 3, {M, N}, rng);
    SCOPED_TRACE("Gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " ta " +
                 std::to_string(ta) + " tb " + std::to_string(tb) + " bias " + std::to_string(bias) + " act '" + act.name +
                 "'");
    EXPECT_TRUE(cpu_fast_matches_reference(s, 1e-4, 3e-5));
  }
}

// MatMul's bias and epilogue come from the fusion passes: MatMul -> Add(bias) -> act -> Add(R)
// (or Add(R) before the act), built as a graph.
TEST(CpuFastLinear, MatMulRandom) {
  std::mt19937 rng(1103);
  const char* acts[] = {"", "Relu", "Sigmoid", "Tanh"};
  for (int it = 0; it < 30; ++it) {
    const int64_t M = pick(rng, 1, 40), N = pick(rng, 1, 40), K = pick(rng, 1, 50);
    Shape a{M, K}, b{K, N};
    const int form = it % 5;  // 2-D, batched A with 2-D weights, both batched, broadcast batch, vectors
    if (form == 1) a.insert(a.begin(), {pick(rng, 1, 3), pick(rng, 1, 4)});
    if (form == 2) {
      const int64_t bt = pick(rng, 1, 4);
      a.insert(a.begin(), bt);
      b.insert(b.begin(), bt);
    }
    if (form == 3) {
      a.insert(a.begin(), {pick(rng, 2, 3), 1});
      b.insert(b.begin(), {1, pick(rng, 2, 3)});
    }
    if (form == 4) {
      if (it % 2) a = {K};
      else b = {K};
    }
    Shape y, ab(a.begin(), a.end() - std::min<size_t>(2, a.size())), bb(b.begin(), b.end() - std::min<size_t>(2, b.size()));
    ASSERT_TRUE(broadcast_shapes(ab, bb, &y).is_ok());
    if (a.size() > 1) y.push_back(M);
    if (b.size() > 1) y.push_back(N);
    GraphBuilder g;
    const std::string A = g.input(random_tensor(DType::kFloat32, a, rng));
    const bool b_const = form != 2 && it % 3 != 1;
    const HostTensor bt = random_tensor(DType::kFloat32, b, rng);
    std::string v = g.node("MatMul", {A, b_const ? g.constant(bt) : g.input(bt)});
    if (y.size() >= 2 && it % 2 == 0)
      v = g.node("Add", {v, g.constant(random_tensor(DType::kFloat32, it % 4 == 0 ? Shape{N} : Shape{M, N}, rng))});
    const int mode = y.size() >= 2 ? it % 3 : 0;
    if (mode == 1) v = g.node("Add", {v, g.input(random_tensor(DType::kFloat32, y, rng))});
    const std::string act = acts[it % 4];
    if (!act.empty()) v = g.node(act, {v});
    if (mode == 2) v = g.node("Add", {g.input(random_tensor(DType::kFloat32, y, rng)), v});
    g.output(v);
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(g.build(&plan).is_ok());
    SCOPED_TRACE("MatMul " + shape_str(a) + " x " + shape_str(b) + " act '" + act + "' residual " + std::to_string(mode) +
                 ", " + std::to_string(plan->nodes.size()) + " node(s)");
    // Everything fuses into the MatMul node, so the fast kernel runs the whole epilogue.
    EXPECT_EQ(plan->nodes.size(), 1u);
    EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 1e-4, 3e-5, 1));
  }
}

// oneDNN's Winograd convolutions (dnnl_conv.cpp: 3x3, stride 1, >= 64 channels) in a ResNet
// basic block, its residual and ReLUs fused: against the reference within what Winograd's
// transforms add to float32 rounding; the 32-channel stem keeps the direct convolution.
TEST(CpuFastLinear, WinogradBasicBlockMatchesReference) {
  std::mt19937 rng(1105);
  // oneDNN picks F(2x2,3x3) for the first shape and F(4x4,3x3), whose transforms round more,
  // for the second (on AVX-512; perf/results/2026-12-08-cpu-winograd.md).
  for (const Shape& in : {Shape{2, 32, 14, 14}, Shape{4, 32, 16, 16}}) {
    SCOPED_TRACE(shape_str(in));
    GraphBuilder g;
    const std::string x = g.input(random_tensor(DType::kFloat32, in, rng));
    auto conv = [&](const std::string& from, int64_t cin, int64_t cout) {
      Attributes a;
      a.set("pads", std::vector<int64_t>(4, 1));
      const double w = 1.0 / std::sqrt(9.0 * static_cast<double>(cin));  // activations stay O(1)
      return g.node("Conv", {from, g.constant(random_tensor(DType::kFloat32, {cout, cin, 3, 3}, rng, -w, w)),
                             g.constant(random_tensor(DType::kFloat32, {cout}, rng))},
                    a);
    };
    const std::string stem = g.node("Relu", {conv(x, 32, 64)});
    const std::string c1 = g.node("Relu", {conv(stem, 64, 64)});
    g.output(g.node("Relu", {g.node("Add", {conv(c1, 64, 64), stem})}));
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(g.build(&plan).is_ok());
    // Winograd's sums landed within 9.5e-7 of the reference's on these O(1) outputs (both
    // shapes); 1e-5 leaves room for another CPU's kernels, not for a wrong tap or channel.
    EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 1e-5, 1e-5, plan->nodes.size()));

    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
    ASSERT_NE(ctx->fast_cpu(), nullptr);
    auto kernel = [&](size_t n) {
      const char* name = ctx->fast_cpu()->kernel_name(n);
      return std::string(name ? name : "reference");
    };
    std::vector<std::string> kernels;
    for (size_t n = 0; n < plan->nodes.size(); ++n)
      if (plan->nodes[n].op == "Conv") kernels.push_back(kernel(n));
    ASSERT_EQ(kernels.size(), 3u);
    EXPECT_EQ(kernels[0], "onednn:convolution");  // 32 input channels: direct
    // oneDNN's Winograd kernels are AVX-512's; elsewhere every convolution is direct.
    const bool avx512 = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
    const std::string wide = avx512 ? "onednn:convolution(winograd)" : "onednn:convolution";
    EXPECT_EQ(kernels[1], wide);
    EXPECT_EQ(kernels[2], wide);

    // Read when a plan's kernels are prepared (once per plan, for all its contexts).
    ScopedEnv direct("KILN_CPU_WINOGRAD", "0");
    ASSERT_TRUE(g.build(&plan).is_ok());
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
    for (size_t n = 0; n < plan->nodes.size(); ++n)
      if (plan->nodes[n].op == "Conv") EXPECT_EQ(kernel(n), "onednn:convolution");
  }
}

// A deconvolution with fewer than 16 output channels a group keeps kiln's reference kernel
// (oneDNN 2.6's ran PP-OCR det's 24 -> 1 channel layer 30x slower); 16 take oneDNN's.
TEST(CpuFastLinear, NarrowDeconvolutionsStayOnTheReference) {
  std::mt19937 rng(1106);
  for (int64_t m : {1, 16}) {
    OpSpec s{"ConvTranspose", 11, {}, {random_tensor(DType::kFloat32, {1, 24, 10, 10}, rng),
                                        random_tensor(DType::kFloat32, {24, m, 2, 2}, rng)},
             {false, true}};
    s.attrs.set("strides", std::vector<int64_t>{2, 2});
    auto plan = std::make_shared<Plan>();
    ASSERT_TRUE(build_op_plan(s, "cpu", plan.get()).is_ok());
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
    // No fast node at all: the context has no fast path.
    const char* kernel = ctx->fast_cpu() ? ctx->fast_cpu()->kernel_name(0) : nullptr;
    EXPECT_STREQ(kernel ? kernel : "reference", m == 1 ? "reference" : "onednn:deconvolution") << m << " channels";
  }
}

// FP16 plans (--precision fp16): the nodes run on float16 tensors; the fast path widens their
// weights once at plan load and only the activations per run, like the reference's float32
// arithmetic, and rounds the results to half.
TEST(CpuFastLinear, Float16NodesWidenedOnce) {
  std::mt19937 rng(1104);
  OpSpec conv{"Conv", 13, {}, {random_tensor(DType::kFloat32, {2, 6, 9, 9}, rng), random_tensor(DType::kFloat32, {8, 6, 3, 3}, rng),
                               random_tensor(DType::kFloat32, {8}, rng)},
              {false, true, true}};
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  OpSpec gemm{"Gemm", 13, {}, {random_tensor(DType::kFloat32, {7, 33}, rng), random_tensor(DType::kFloat32, {21, 33}, rng),
                               random_tensor(DType::kFloat32, {21}, rng)},
              {false, true, true}};
  gemm.attrs.set("transB", int64_t{1});
  OpSpec matmul{"MatMul", 13, {}, {random_tensor(DType::kFloat32, {3, 5, 40}, rng), random_tensor(DType::kFloat32, {40, 24}, rng)},
                {false, true}};
  OpSpec softmax{"Softmax", 13, {}, {random_tensor(DType::kFloat32, {4, 50}, rng, -3, 3)}, {false}};
  for (OpSpec* s : {&conv, &gemm, &matmul, &softmax}) {
    s->precision = "fp16";
    SCOPED_TRACE(s->op_type);
    // Both sides compute in float32 from the same half inputs; summation orders differ.
    EXPECT_TRUE(cpu_fast_matches_reference(*s, 2e-3, 2e-3));
  }
}

}  // namespace
}  // namespace kiln::test
