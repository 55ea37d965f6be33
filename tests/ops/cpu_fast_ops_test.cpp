// The cpu fast path's other kernels (pooling, reductions, Softmax, LayerNormalization,
// Elementwise programs, Transpose) against the reference kernels on random shapes and
// attributes, and channels-last chains of fast nodes against the reference end to end.
#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <random>
#include <string>

#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

int64_t pick(std::mt19937& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

TEST(CpuFastOps, PoolRandom) {
  std::mt19937 rng(1201);
  for (int it = 0; it < 30; ++it) {
    const bool max = it % 2 == 0;
    const size_t sp = it % 5 == 4 ? 1 : 2;
    Shape x{pick(rng, 1, 3), pick(rng, 1, 20)};
    std::vector<int64_t> k, s, d, pads(2 * sp);
    for (size_t i = 0; i < sp; ++i) {
      k.push_back(pick(rng, 1, 3));
      s.push_back(pick(rng, 1, 2));
      d.push_back(max ? pick(rng, 1, 2) : 1);
      x.push_back(pick(rng, 5, 12));
      pads[i] = pick(rng, 0, k.back() - 1);
      pads[sp + i] = pick(rng, 0, k.back() - 1);
    }
    const DType dt = max && it % 3 == 0 ? DType::kInt8 : DType::kFloat32;
    OpSpec spec{max ? "MaxPool" : "AveragePool", 12, {}, {random_tensor(dt, x, rng, dt == DType::kInt8 ? -100 : -1,
                                                                          dt == DType::kInt8 ? 100 : 1)}, {false}};
    spec.attrs.set("kernel_shape", k);
    spec.attrs.set("strides", s);
    if (max) spec.attrs.set("dilations", d);
    spec.attrs.set("pads", pads);
    spec.attrs.set("ceil_mode", int64_t{it % 4 == 1});
    if (!max) spec.attrs.set("count_include_pad", int64_t{it % 3 == 1});
    SCOPED_TRACE(spec.op_type + " " + shape_str(x) + " it " + std::to_string(it));
    // The ceil-mode + count_include_pad windows oneDNN cannot match stay with the reference.
    const bool declined = !max && it % 4 == 1 && it % 3 == 1;
    if (declined) continue;
    EXPECT_TRUE(cpu_fast_matches_reference(spec, 1e-5, 1e-6));
  }
}

TEST(CpuFastOps, ReduceRandom) {
  std::mt19937 rng(1202);
  const char* ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare"};
  for (int it = 0; it < 28; ++it) {
    const int rank = static_cast<int>(pick(rng, 1, 4));
    Shape x = random_shape(rank, rng, 9);
    for (int64_t& d : x) d += 1;  // a reduced axis of 1 is a copy, which stays with the reference
    std::vector<int64_t> axes;
    for (int d = 0; d < rank; ++d)
      if (pick(rng, 0, 1)) axes.push_back(d);
    if (axes.empty()) axes.push_back(rank - 1);
    OpSpec spec{ops[it % 7], 13, {}, {random_tensor(DType::kFloat32, x, rng)}, {false}};
    spec.attrs.set("axes", axes);
    spec.attrs.set("keepdims", int64_t{it % 2});
    SCOPED_TRACE(spec.op_type + " " + shape_str(x));
    EXPECT_TRUE(cpu_fast_matches_reference(spec, 1e-5, 1e-5));
  }
}

// The loops behind GlobalAveragePool on channels-last data and BERT's mean pooling (a middle
// axis): plain layouts here (ChannelsLastChainMatchesReference covers the other).
TEST(CpuFastOps, ReduceMiddleAndSpatialAxes) {
  std::mt19937 rng(1208);
  const std::pair<Shape, std::vector<int64_t>> cases[] = {
      {{2, 37, 40}, {1}}, {{1, 128, 384}, {1}}, {{3, 5, 7, 9}, {2, 3}}, {{4, 6, 3, 16}, {1, 2}}};
  for (const auto& [x, axes] : cases)
    for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"}) {
      OpSpec spec{op, 13, {}, {random_tensor(DType::kFloat32, x, rng)}, {false}};
      spec.attrs.set("axes", axes);
      spec.attrs.set("keepdims", int64_t{1});
      SCOPED_TRACE(std::string(op) + " " + shape_str(x));
      EXPECT_TRUE(cpu_fast_matches_reference(spec, 1e-5, 1e-5));
    }
}

TEST(CpuFastOps, SoftmaxAndLayerNormRandom) {
  std::mt19937 rng(1203);
  for (int it = 0; it < 24; ++it) {
    const int rank = static_cast<int>(pick(rng, 1, 4));
    const Shape x = random_shape(rank, rng, 12);
    const int64_t axis = pick(rng, 0, rank - 1);
    if (it % 3 < 2) {
      // Opset 11 Softmax flattens from `axis` (coerce_2d), opset 13 works on that axis alone.
      OpSpec spec{"Softmax", it % 2 ? 11 : 13, {},
                  {random_tensor(DType::kFloat32, x, rng, -5, 5)}, {false}};
      spec.attrs.set("axis", axis);
      SCOPED_TRACE(spec.op_type + " " + shape_str(x) + " axis " + std::to_string(axis));
      EXPECT_TRUE(cpu_fast_matches_reference(spec, 1e-5, 1e-6));
      continue;
    }
    const Shape norm(x.begin() + axis, x.end());
    OpSpec spec{"LayerNormalization", 17, {}, {random_tensor(DType::kFloat32, x, rng, -3, 3), random_tensor(DType::kFloat32, norm, rng)},
                {false, it % 2 == 0}};
    if (it % 4 != 2) {
      spec.inputs.push_back(random_tensor(DType::kFloat32, norm, rng));
      spec.constant.push_back(true);
    }
    spec.attrs.set("axis", axis);
    spec.attrs.set("epsilon", 1e-3f);
    SCOPED_TRACE("LayerNormalization " + shape_str(x) + " axis " + std::to_string(axis));
    EXPECT_TRUE(cpu_fast_matches_reference(spec, 1e-4, 1e-5));
  }
}

// Softmax over an axis that is not the innermost (kiln's column loop, fast_softmax.h) at
// YOLOv8's DFL shape with a batch of 3: the team's chunks of columns cross batch boundaries,
// and columns holding a NaN, -inf everywhere, or a +inf get ONNX's NaNs where the reference
// gives them.
TEST(CpuFastOps, SoftmaxOverAnInnerAxis) {
  std::mt19937 rng(1208);
  HostTensor x = random_tensor(DType::kFloat32, {3, 16, 4, 700}, rng, -8, 8);
  float* v = x.as<float>();
  auto at = [&](int64_t b, int64_t k, int64_t c, int64_t w) -> float& { return v[((b * 16 + k) * 4 + c) * 700 + w]; };
  at(1, 5, 2, 10) = std::numeric_limits<float>::quiet_NaN();
  for (int64_t k = 0; k < 16; ++k) at(2, k, 0, 3) = -std::numeric_limits<float>::infinity();
  at(0, 7, 1, 100) = std::numeric_limits<float>::infinity();
  at(0, 3, 3, 699) = -std::numeric_limits<float>::infinity();  // one -inf: an ordinary column
  for (int64_t axis : {1, 2}) {
    OpSpec spec{"Softmax", 13, {}, {x}, {false}};
    spec.attrs.set("axis", axis);
    SCOPED_TRACE("axis " + std::to_string(axis));
    EXPECT_TRUE(cpu_fast_matches_reference(spec, 1e-5, 1e-6));
    auto plan = std::make_shared<Plan>();
    ASSERT_TRUE(build_op_plan(spec, "cpu", plan.get()).is_ok());
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
    ASSERT_NE(ctx->fast_cpu(), nullptr);
    const char* kernel = ctx->fast_cpu()->kernel_name(0);
    EXPECT_STREQ(kernel ? kernel : "reference", "fast:softmax_columns");
  }
}

TEST(CpuFastOps, TransposeRandom) {
  std::mt19937 rng(1204);
  for (int it = 0; it < 16; ++it) {
    const int rank = static_cast<int>(pick(rng, 2, 5));
    const Shape x = random_shape(rank, rng, 7);
    std::vector<int64_t> perm(rank);
    for (int i = 0; i < rank; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    const DType dt = it % 4 == 3 ? DType::kUInt8 : DType::kFloat32;
    OpSpec spec{"Transpose", 13, {}, {random_tensor(dt, x, rng, 0, 200)}, {false}};
    spec.attrs.set("perm", perm);
    SCOPED_TRACE("Transpose " + shape_str(x));
    EXPECT_TRUE(cpu_fast_matches_reference(spec, 0, 0));
  }
}

// Elementwise chains run the reference interpreter on several threads: bit-identical.
TEST(CpuFastOps, ElementwiseThreadedIsExact) {
  std::mt19937 rng(1205);
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {3, 70, 130}, rng, -4, 4));
  const std::string b = g.input(random_tensor(DType::kFloat32, {70, 1}, rng));
  std::string v = g.node("Mul", {x, g.constant(random_tensor(DType::kFloat32, {}, rng))});
  v = g.node("Add", {v, b});
  v = g.node("Sigmoid", {v});
  v = g.node("Sqrt", {g.node("Abs", {v})});
  g.output(v);
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 0, 0, plan->nodes.size()));
}

// GELU in its exporters' Erf form (and spelled with a multiplication) runs as oneDNN's gelu.
TEST(CpuFastOps, GeluPatternsMatchReference) {
  std::mt19937 rng(1206);
  for (int form = 0; form < 3; ++form) {
    GraphBuilder g;
    const std::string x = g.input(random_tensor(DType::kFloat32, {4, 33, 65}, rng, -6, 6));
    auto scalar = [&](float v) {
      HostTensor t(DType::kFloat32, {});
      t.as<float>()[0] = v;
      return g.constant(t);
    };
    std::string e;
    if (form == 0) e = g.node("Div", {x, scalar(1.4142135f)});
    else e = g.node("Mul", {scalar(0.70710678f), x});
    e = g.node("Add", {g.node("Erf", {e}), scalar(1.f)});
    std::string y = form == 2 ? g.node("Mul", {g.node("Mul", {x, scalar(0.5f)}), e}) : g.node("Mul", {g.node("Mul", {x, e}), scalar(0.5f)});
    g.output(y);
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(g.build(&plan).is_ok());
    ASSERT_EQ(plan->nodes.size(), 1u) << "the chain fuses into one Elementwise program";
    SCOPED_TRACE("form " + std::to_string(form));
    EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 2e-6, 2e-6, 1));
  }
}

// SiLU as exporters write it (Sigmoid then Mul, either operand order) runs as kiln's vectorized
// SiLU within a few ulps of the reference interpreter; a program that is not SiLU
// (x * sigmoid(2x)) keeps the interpreter.
TEST(CpuFastOps, SiluPatternsMatchReference) {
  std::mt19937 rng(1209);
  for (int form = 0; form < 3; ++form) {
    GraphBuilder g;
    const std::string x = g.input(random_tensor(DType::kFloat32, {2, 16, 37, 41}, rng, -20, 20));
    HostTensor two(DType::kFloat32, {});
    two.as<float>()[0] = 2.f;
    const std::string s = g.node("Sigmoid", {form == 2 ? g.node("Mul", {x, g.constant(two)}) : x});
    g.output(form == 1 ? g.node("Mul", {s, x}) : g.node("Mul", {x, s}));
    std::shared_ptr<Plan> plan;
    ASSERT_TRUE(g.build(&plan).is_ok());
    ASSERT_EQ(plan->nodes.size(), 1u) << "the chain fuses into one Elementwise program";
    SCOPED_TRACE("form " + std::to_string(form));
    EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 1e-6, 1e-7, 1));
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
    ASSERT_NE(ctx->fast_cpu(), nullptr);
    const char* kernel = ctx->fast_cpu()->kernel_name(0);
    EXPECT_STREQ(kernel ? kernel : "reference", form == 2 ? "fast:elementwise" : "fast:silu");
  }
}

// Concat and Split (fast_concat_split.cpp) on random shapes, axes and dtypes, against the
// reference kernels: exact.
TEST(CpuFastOps, ConcatAndSplitRandom) {
  std::mt19937 rng(1210);
  for (int it = 0; it < 24; ++it) {
    const int rank = static_cast<int>(pick(rng, 1, 5));
    Shape s = random_shape(rank, rng, 7);
    const int64_t axis = pick(rng, -rank, rank - 1), a = axis < 0 ? axis + rank : axis;
    const DType dt = it % 3 == 0 ? DType::kInt8 : it % 3 == 1 ? DType::kFloat32 : DType::kInt64;
    const int parts = static_cast<int>(pick(rng, 2, 4));  // one part compiles to a copy
    SCOPED_TRACE("rank " + std::to_string(rank) + " axis " + std::to_string(axis) + " parts " + std::to_string(parts) +
                 " " + dtype_name(dt));
    if (it % 2 == 0) {
      OpSpec spec{"Concat", 13, {}, {}, {}};
      for (int i = 0; i < parts; ++i) {
        Shape p = s;
        p[a] = pick(rng, 1, 5);
        spec.inputs.push_back(random_tensor(dt, p, rng, -100, 100));
        spec.constant.push_back(false);
      }
      spec.attrs.set("axis", axis);
      EXPECT_TRUE(cpu_fast_matches_reference(spec, 0, 0));
    } else {
      std::vector<int64_t> sizes;
      s[a] = 0;
      for (int i = 0; i < parts; ++i) s[a] += sizes.emplace_back(pick(rng, 1, 4));
      HostTensor split(DType::kInt64, {parts});
      for (int i = 0; i < parts; ++i) split.as<int64_t>()[i] = sizes[i];
      OpSpec spec{"Split", 13, {}, {random_tensor(dt, s, rng, -100, 100), split}, {false, true}};
      spec.attrs.set("axis", axis);
      spec.num_outputs = parts;
      EXPECT_TRUE(cpu_fast_matches_reference(spec, 0, 0));
    }
  }
}

// Nearest Resize by whole factors along H and W (fast_resize.cpp), exact against the reference,
// alone (plain) and between two convolutions (channels-last: no reorder around it).
TEST(CpuFastOps, NearestUpsamplingByWholeFactors) {
  std::mt19937 rng(1212);
  for (int it = 0; it < 6; ++it) {
    const float sh = static_cast<float>(pick(rng, 1, 3)), sw = static_cast<float>(pick(rng, 1, 3));
    if (sh == 1 && sw == 1) continue;  // an identity compiles to a copy
    const DType dt = it % 2 ? DType::kFloat32 : DType::kUInt8;
    HostTensor scales(DType::kFloat32, {4});
    const float sv[4] = {1, 1, sh, sw};
    std::copy(sv, sv + 4, scales.as<float>());
    OpSpec spec{"Resize", 13, {}, {random_tensor(dt, random_shape(4, rng, 9), rng, 0, 100), HostTensor(), scales},
                {false, true, true}};
    spec.attrs.set("mode", std::string("nearest"));
    SCOPED_TRACE("scales " + std::to_string(sh) + " x " + std::to_string(sw) + " " + dtype_name(dt));
    EXPECT_TRUE(cpu_fast_matches_reference(spec, 0, 0));
  }
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {2, 8, 6, 7}, rng));
  auto conv = [&](const std::string& in) {
    Attributes a;
    a.set("pads", std::vector<int64_t>(4, 1));
    return g.node("Conv", {in, g.constant(random_tensor(DType::kFloat32, {8, 8, 3, 3}, rng, -0.3, 0.3))}, a);
  };
  HostTensor scales(DType::kFloat32, {4});
  const float sv[4] = {1, 1, 2, 2};
  std::copy(sv, sv + 4, scales.as<float>());
  Attributes nearest;
  nearest.set("mode", std::string("nearest"));
  const std::string up = g.node("Resize", {conv(x), "", g.constant(scales)}, nearest);
  g.output(conv(up));
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 1e-5, 1e-6, plan->nodes.size()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  ASSERT_NE(ctx->fast_cpu(), nullptr);
  for (size_t n = 0; n < plan->nodes.size(); ++n) {
    if (plan->nodes[n].op != "Resize") continue;
    EXPECT_STREQ(ctx->fast_cpu()->kernel_name(n), "fast:resize_repeat");
    for (int32_t t : {plan->nodes[n].inputs[0], plan->nodes[n].outputs[0]})
      EXPECT_EQ(ctx->fast_cpu()->tensor_layouts()[t], HostLayout::kChannelsLast) << plan->tensors[t].name;
  }
}

// A YOLOv8 C2f block (Split the channels, a bottleneck on one half, Concat the three): with the
// fast Split and Concat every 4-D activation between the first and last convolutions stays
// channels-last (no reorders around the block), and the outputs equal the reference's.
TEST(CpuFastOps, ChannelsLastThroughSplitAndConcat) {
  std::mt19937 rng(1211);
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {2, 16, 10, 12}, rng));
  auto conv = [&](const std::string& in, int64_t cin, int64_t cout, int64_t k) {
    Attributes a;
    a.set("pads", std::vector<int64_t>(4, k / 2));
    return g.node("Relu", {g.node("Conv", {in, g.constant(random_tensor(DType::kFloat32, {cout, cin, k, k}, rng, -0.3, 0.3)),
                                           g.constant(random_tensor(DType::kFloat32, {cout}, rng))},
                                  a)});
  };
  const std::string c1 = conv(x, 16, 32, 1);
  Attributes split;
  split.set("axis", int64_t{1});
  HostTensor halves(DType::kInt64, {2});
  halves.as<int64_t>()[0] = halves.as<int64_t>()[1] = 16;
  const std::string s = g.node("Split", {c1, g.constant(halves)}, split, 2);
  const std::string b = conv(conv(s + ":1", 16, 16, 3), 16, 16, 3);
  Attributes cat;
  cat.set("axis", int64_t{1});
  const std::string joined = g.node("Concat", {s, s + ":1", b}, cat);
  g.output(conv(joined, 48, 24, 1));
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 1e-5, 1e-6, plan->nodes.size()));

  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  ASSERT_NE(ctx->fast_cpu(), nullptr);
  const std::vector<HostLayout>& layouts = ctx->fast_cpu()->tensor_layouts();
  for (const PlanNode& n : plan->nodes) {
    if (n.op != "Split" && n.op != "Concat") continue;
    for (const std::vector<int32_t>* ts : {&n.inputs, &n.outputs})
      for (int32_t t : *ts)
        if (t >= 0 && plan->tensors[t].kind == TensorKind::kActivation)
          EXPECT_EQ(layouts[t], HostLayout::kChannelsLast) << n.op << " operand " << plan->tensors[t].name;
  }
}

// A ResNet-style chain: the tensors between fast nodes are stored channels-last, and only the
// ends reorder; results match the reference kernels, and a tensor observer (kiln compare
// --per-layer, calibration) sees plain tensors equal to the reference's.
TEST(CpuFastOps, ChannelsLastChainMatchesReference) {
  std::mt19937 rng(1207);
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {2, 8, 12, 12}, rng));
  auto conv = [&](const std::string& in, int64_t cin, int64_t cout, int64_t k) {
    Attributes a;
    a.set("pads", std::vector<int64_t>(4, k / 2));
    return g.node("Conv", {in, g.constant(random_tensor(DType::kFloat32, {cout, cin, k, k}, rng, -0.3, 0.3)),
                           g.constant(random_tensor(DType::kFloat32, {cout}, rng))},
                  a);
  };
  const std::string c1 = g.node("Relu", {conv(x, 8, 16, 3)});
  const std::string c2 = g.node("Relu", {g.node("Add", {conv(c1, 16, 16, 3), c1})});
  Attributes pool;
  pool.set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.set("strides", std::vector<int64_t>{2, 2});
  const std::string p1 = g.node("MaxPool", {c2}, pool);
  HostTensor two(DType::kFloat32, {});
  two.as<float>()[0] = 2.f;
  const std::string e1 = g.node("Sigmoid", {g.node("Mul", {p1, g.constant(two)})});
  const std::string c3 = conv(e1, 16, 32, 1);
  const std::string gap = g.node("GlobalAveragePool", {c3});
  const std::string flat = g.node("Flatten", {gap});
  const std::string y = g.node("Gemm", {flat, g.constant(random_tensor(DType::kFloat32, {32, 10}, rng)),
                                        g.constant(random_tensor(DType::kFloat32, {10}, rng))});
  g.output(y);
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  EXPECT_TRUE(cpu_fast_matches_reference(plan, g.inputs(), 1e-4, 1e-5, plan->nodes.size() - 1));  // all but Flatten

  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  ASSERT_NE(ctx->fast_cpu(), nullptr);
  int channels_last = 0;
  for (HostLayout l : ctx->fast_cpu()->tensor_layouts()) channels_last += l == HostLayout::kChannelsLast;
  // conv1 -> conv2 (and its residual) -> MaxPool -> Elementwise -> conv3 -> GlobalAveragePool.
  EXPECT_GE(channels_last, 4);

  // Observed runs keep every tensor plain.
  auto observe = [&](bool reference, std::map<int32_t, HostTensor>* seen) {
    ScopedEnv env("KILN_CPU_REFERENCE", reference ? "1" : nullptr);
    std::unique_ptr<ExecutionContext> c;
    ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &c, &notice).is_ok());
    const HostTensor& in = g.inputs()[0];
    ASSERT_TRUE(c->bind_input(plan->tensors[plan->inputs[0]].name, in.dtype(), in.shape(), in.data(), in.size_bytes()).is_ok());
    HostTensor out(DType::kFloat32, {2, 10});
    ASSERT_TRUE(c->bind_output(plan->tensors[plan->outputs[0]].name, out.data(), out.size_bytes()).is_ok());
    c->set_tensor_observer([&](int32_t t, const TensorView& v) {
      HostTensor h(v.dtype, v.shape);
      std::memcpy(h.data(), v.data, h.size_bytes());
      seen->emplace(t, std::move(h));
      return Status::ok();
    });
    ASSERT_TRUE(c->run().is_ok());
  };
  std::map<int32_t, HostTensor> want, got;
  observe(true, &want);
  observe(false, &got);
  ASSERT_EQ(want.size(), got.size());
  for (auto& [t, w] : want) {
    SCOPED_TRACE("tensor " + plan->tensors[t].name);
    EXPECT_TRUE(tensors_close(got.at(t), w, 1e-4, 1e-5));
  }
}

// NaN and Inf through fused Relu/Clip/HardSigmoid convolutions (oneDNN's min/max post-ops would
// turn a NaN into the bound): the nodes holding non-finite inputs run their reference kernels,
// also on channels-last operands between two convolutions, so NaNs land where the reference
// kernels put them.
TEST(CpuFastOps, NonFiniteInputsKeepNaNThroughFusedActivations) {
  std::mt19937 rng(77);
  GraphBuilder g;
  HostTensor in = random_tensor(DType::kFloat32, {1, 4, 9, 9}, rng);
  float* v = in.as<float>();
  v[5] = std::nanf("");
  v[100] = INFINITY;
  v[200] = -INFINITY;
  const std::string x = g.input(in);
  auto conv = [&](const std::string& src, int64_t cin, int64_t cout) {
    Attributes a;
    a.set("pads", std::vector<int64_t>(4, 1));
    return g.node("Conv", {src, g.constant(random_tensor(DType::kFloat32, {cout, cin, 3, 3}, rng, -0.3, 0.3)),
                           g.constant(random_tensor(DType::kFloat32, {cout}, rng))},
                  a);
  };
  Attributes clip;
  HostTensor lo(DType::kFloat32, {}), hi(DType::kFloat32, {});
  lo.as<float>()[0] = -0.5f;
  hi.as<float>()[0] = 0.5f;
  const std::string c1 = g.node("Relu", {conv(x, 4, 8)});
  const std::string c2 = g.node("Clip", {conv(c1, 8, 8), g.constant(lo), g.constant(hi)});
  const std::string c3 = g.node("HardSigmoid", {conv(c2, 8, 4)});
  g.output(c3);
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  ASSERT_EQ(plan->nodes.size(), 3u) << "each activation fuses into its convolution";
  std::vector<HostTensor> fast, ref;
  ASSERT_TRUE(run_plan(plan, g.inputs(), &fast).is_ok());
  {
    ScopedEnv env("KILN_CPU_REFERENCE", "1");
    ASSERT_TRUE(run_plan(plan, g.inputs(), &ref).is_ok());
  }
  int nans = 0;
  for (int64_t i = 0; i < ref[0].numel(); ++i) nans += std::isnan(ref[0].as<float>()[i]);
  EXPECT_GT(nans, 0) << "the NaN reaches the output";
  EXPECT_TRUE(tensors_close(fast[0], ref[0], 1e-4, 1e-5));
}

// The scan is split over the team for large tensors and kept per tensor within a run: a NaN in
// the last chunk of a big input that two convolutions read must reach both outputs, and runs
// of the same context before and after must not reuse another run's answer.
TEST(CpuFastOps, NonFiniteScanOfLargeSharedInput) {
  std::mt19937 rng(78);
  GraphBuilder g;
  HostTensor in = random_tensor(DType::kFloat32, {1, 4, 256, 256}, rng);
  const std::string x = g.input(in);
  auto conv_relu = [&](const std::string& src) {
    Attributes a;
    a.set("pads", std::vector<int64_t>(4, 1));
    return g.node("Relu", {g.node("Conv", {src, g.constant(random_tensor(DType::kFloat32, {2, 4, 3, 3}, rng, -0.3, 0.3)),
                                           g.constant(random_tensor(DType::kFloat32, {2}, rng))},
                                  a)});
  };
  g.output(conv_relu(x));
  g.output(conv_relu(x));
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  std::vector<HostTensor> inputs = g.inputs();
  auto nans = [](const HostTensor& t) {
    int n = 0;
    for (int64_t i = 0; i < t.numel(); ++i) n += std::isnan(t.as<float>()[i]);
    return n;
  };
  // One context, three runs over the same bound buffers: finite, NaN, finite again.
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  const PlanTensor& pin = plan->tensors[plan->inputs[0]];
  ASSERT_TRUE(ctx->bind_input(pin.name, DType::kFloat32, inputs[0].shape(), inputs[0].data(), inputs[0].size_bytes()).is_ok());
  std::vector<HostTensor> out;
  for (int32_t t : plan->outputs) {
    out.emplace_back(DType::kFloat32, plan->tensors[t].shape);
    ASSERT_TRUE(ctx->bind_output(plan->tensors[t].name, out.back().data(), out.back().size_bytes()).is_ok());
  }
  float* last = inputs[0].as<float>() + inputs[0].numel() - 3;
  const float saved = *last;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("run " + std::to_string(round));
    *last = round == 1 ? std::nanf("") : saved;
    ASSERT_TRUE(ctx->run().is_ok());
    std::vector<HostTensor> ref;
    {
      ScopedEnv env("KILN_CPU_REFERENCE", "1");
      ASSERT_TRUE(run_plan(plan, inputs, &ref).is_ok());
    }
    for (size_t o = 0; o < 2; ++o) {
      EXPECT_EQ(nans(ref[o]) > 0, round == 1) << "output " << o;
      EXPECT_TRUE(tensors_close(out[o], ref[o], 1e-4, 1e-5)) << "output " << o;
    }
  }
}

}  // namespace
}  // namespace kiln::test
