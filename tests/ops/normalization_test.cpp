// Normalization family: Softmax, LogSoftmax, BatchNormalization, InstanceNormalization,
// LayerNormalization, ReduceSum/Mean/Max/Min, MaxPool, AveragePool, GlobalAverage/MaxPool.
// OpenCL is checked against the CPU on random shapes and attributes (both row-parallel kernel
// shapes: short rows one work-item each, long rows one work-group each); the CPU is checked
// against values computed directly here.
#include <cmath>
#include <limits>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor ints(const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

HostTensor floats(const Shape& shape, const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, shape);
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}

OpSpec spec1(const std::string& op, int opset, HostTensor x) {
  OpSpec s;
  s.op_type = op;
  s.opset = opset;
  s.inputs = {std::move(x)};
  s.constant = {false};
  return s;
}

std::vector<HostTensor> run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return out;
}

// ---------------------------------------------------------------- softmax

TEST(NormalizationOps, SoftmaxOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(11);
  for (int iter = 0; iter < 12; ++iter) {
    const int rank = 1 + iter % 4;
    const Shape shape = random_shape(rank, rng, 6);
    const int64_t axis = std::uniform_int_distribution<int64_t>(-rank, rank - 1)(rng);
    for (const char* op : {"Softmax", "LogSoftmax"})
      for (int opset : {11, 13}) {
        OpSpec s = spec1(op, opset, random_tensor(DType::kFloat32, shape, rng, -4, 4));
        s.attrs.set("axis", axis);
        EXPECT_TRUE(opencl_matches_cpu(s)) << op << "-" << opset << " " << shape_str(shape) << " axis " << axis;
      }
  }
}

TEST(NormalizationOps, SoftmaxOpenCLLongAndStridedRows) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(12);
  // (shape, axis): long contiguous rows (group per row), long strided rows with few rows
  // (group per row), many short strided rows (item per row), long strided rows with many rows;
  // rows of 64..255 elements, several per group (8, 8, 4 and 8 strided), the last group partial.
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{3, 1000}, -1}, {{2, 700, 3}, 1}, {{40, 5, 30}, 1}, {{2, 100, 4100}, 1}, {{1, 1}, 0},
      {{37, 128}, -1}, {{5, 64}, -1},    {{3, 7, 200}, -1}, {{2, 90, 3}, 1}};
  for (const auto& c : cases)
    for (const char* op : {"Softmax", "LogSoftmax"}) {
      OpSpec s = spec1(op, 13, random_tensor(DType::kFloat32, c.first, rng, -8, 8));
      s.attrs.set("axis", c.second);
      EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-6)) << op << " " << shape_str(c.first);
    }
}

TEST(NormalizationOps, SoftmaxValuesAndOldCoercion) {
  std::mt19937 rng(13);
  // Stable for large inputs: softmax([1000, 1001, 1002]).
  OpSpec big = spec1("Softmax", 13, floats({1, 3}, {1000, 1001, 1002}));
  auto out = run_cpu(big);
  const double e0 = std::exp(-2.0), e1 = std::exp(-1.0), z = e0 + e1 + 1;
  EXPECT_TRUE(tensors_close(out[0], floats({1, 3}, {float(e0 / z), float(e1 / z), float(1 / z)}), 1e-6, 1e-7));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(big));
  }

  // Softmax-11 with axis=1 on 2x3x4 normalizes over the 12 values of each batch; Softmax-13
  // over the 3 values of dim 1 only.
  HostTensor x = random_tensor(DType::kFloat32, {2, 3, 4}, rng, -2, 2);
  const float* xv = x.as<float>();
  HostTensor want11(DType::kFloat32, {2, 3, 4}), want13(DType::kFloat32, {2, 3, 4});
  for (int b = 0; b < 2; ++b) {
    double z11 = 0;
    for (int j = 0; j < 12; ++j) z11 += std::exp(xv[b * 12 + j]);
    for (int j = 0; j < 12; ++j) want11.as<float>()[b * 12 + j] = float(std::exp(xv[b * 12 + j]) / z11);
    for (int k = 0; k < 4; ++k) {
      double z13 = 0;
      for (int c = 0; c < 3; ++c) z13 += std::exp(xv[b * 12 + c * 4 + k]);
      for (int c = 0; c < 3; ++c)
        want13.as<float>()[b * 12 + c * 4 + k] = float(std::exp(xv[b * 12 + c * 4 + k]) / z13);
    }
  }
  OpSpec s11 = spec1("Softmax", 11, x);
  s11.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(tensors_close(run_cpu(s11)[0], want11, 1e-5, 1e-7));
  OpSpec s13 = spec1("Softmax", 13, x);
  s13.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(tensors_close(run_cpu(s13)[0], want13, 1e-5, 1e-7));
  // Softmax-1 defaults to axis 1; LogSoftmax is the log of it.
  OpSpec s1 = spec1("LogSoftmax", 1, x);
  HostTensor log11 = want11;
  for (int i = 0; i < 24; ++i) log11.as<float>()[i] = std::log(want11.as<float>()[i]);
  EXPECT_TRUE(tensors_close(run_cpu(s1)[0], log11, 1e-5, 1e-6));
}

TEST(NormalizationOps, SoftmaxBadAxisIsAClearError) {
  std::mt19937 rng(14);
  OpSpec s = spec1("Softmax", 13, random_tensor(DType::kFloat32, {2, 3}, rng));
  s.attrs.set("axis", int64_t{2});
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Softmax_node"), std::string::npos) << st.message();
}

// ---------------------------------------------------------------- batch / instance / layer norm

OpSpec batchnorm_spec(int opset, const Shape& x, int64_t params, std::mt19937& rng) {
  OpSpec s;
  s.op_type = "BatchNormalization";
  s.opset = opset;
  s.inputs = {random_tensor(DType::kFloat32, x, rng, -3, 3), random_tensor(DType::kFloat32, {params}, rng, 0.5, 2),
              random_tensor(DType::kFloat32, {params}, rng, -1, 1), random_tensor(DType::kFloat32, {params}, rng, -1, 1),
              random_tensor(DType::kFloat32, {params}, rng, 0.1, 2)};
  s.constant = {false, true, true, true, true};
  s.attrs.set("epsilon", 1e-3f);
  return s;
}

HostTensor batchnorm_expect(const OpSpec& s, int64_t inner, bool per_channel) {
  const HostTensor& x = s.inputs[0];
  HostTensor y(DType::kFloat32, x.shape());
  const int64_t c = x.shape()[1];
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t p = per_channel ? (i / inner) % c : i % (c * inner);
    const double v = (x.as<float>()[i] - s.inputs[3].as<float>()[p]) /
                         std::sqrt(double(s.inputs[4].as<float>()[p]) + 1e-3) * s.inputs[1].as<float>()[p] +
                     s.inputs[2].as<float>()[p];
    y.as<float>()[i] = float(v);
  }
  return y;
}

TEST(NormalizationOps, BatchNormValuesAndOpenCL) {
  std::mt19937 rng(21);
  OpSpec s = batchnorm_spec(15, {2, 3, 4, 5}, 3, rng);
  EXPECT_TRUE(tensors_close(run_cpu(s)[0], batchnorm_expect(s, 20, true), 1e-5, 1e-6));
  // Pre-9 spatial=0: one parameter per (channel, position).
  OpSpec old = batchnorm_spec(7, {2, 3, 4}, 12, rng);
  old.attrs.set("spatial", int64_t{0});
  EXPECT_TRUE(tensors_close(run_cpu(old)[0], batchnorm_expect(old, 4, false), 1e-5, 1e-6));
  if (!have_opencl()) return;
  EXPECT_TRUE(opencl_matches_cpu(s));
  EXPECT_TRUE(opencl_matches_cpu(old));
  for (int iter = 0; iter < 4; ++iter) {
    Shape x = random_shape(2 + iter % 3, rng, 6);
    EXPECT_TRUE(opencl_matches_cpu(batchnorm_spec(iter % 2 ? 9 : 14, x, x[1], rng))) << shape_str(x);
  }
}

TEST(NormalizationOps, BatchNormTrainingIsUnsupported) {
  std::mt19937 rng(22);
  OpSpec s = batchnorm_spec(15, {2, 3, 4}, 3, rng);
  s.attrs.set("training_mode", int64_t{1});
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("BatchNormalization_node"), std::string::npos) << st.message();
  OpSpec t = batchnorm_spec(9, {2, 3, 4}, 3, rng);
  t.num_outputs = 5;
  st = run_op(t, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.message();
}

TEST(NormalizationOps, InstanceNormValuesAndOpenCL) {
  std::mt19937 rng(31);
  for (const Shape& x : std::vector<Shape>{{2, 3, 4, 5}, {1, 2, 3000}, {3, 4, 7}, {2, 2}}) {
    OpSpec s;
    s.op_type = "InstanceNormalization";
    s.opset = 6;
    s.inputs = {random_tensor(DType::kFloat32, x, rng, -2, 5), random_tensor(DType::kFloat32, {x[1]}, rng),
                random_tensor(DType::kFloat32, {x[1]}, rng)};
    s.constant = {false, true, true};
    s.attrs.set("epsilon", 1e-4f);
    const int64_t inner = shape_numel(x) / (x[0] * x[1]);
    HostTensor want(DType::kFloat32, x);
    for (int64_t p = 0; p < x[0] * x[1]; ++p) {
      const float* xr = s.inputs[0].as<float>() + p * inner;
      double m = 0, v = 0;
      for (int64_t i = 0; i < inner; ++i) m += xr[i];
      m /= inner;
      for (int64_t i = 0; i < inner; ++i) v += (xr[i] - m) * (xr[i] - m);
      v /= inner;
      for (int64_t i = 0; i < inner; ++i)
        want.as<float>()[p * inner + i] =
            float((xr[i] - m) / std::sqrt(v + 1e-4) * s.inputs[1].as<float>()[p % x[1]] + s.inputs[2].as<float>()[p % x[1]]);
    }
    EXPECT_TRUE(tensors_close(run_cpu(s)[0], want, 1e-4, 1e-5)) << shape_str(x);
    if (have_opencl()) {
      EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)) << shape_str(x);
    }
  }
}

OpSpec layernorm_spec(const Shape& x, int64_t axis, bool bias, int outputs, std::mt19937& rng, double offset = 0) {
  OpSpec s;
  s.op_type = "LayerNormalization";
  s.opset = 17;
  const int64_t a = axis < 0 ? axis + static_cast<int64_t>(x.size()) : axis;
  const Shape norm(x.begin() + a, x.end());
  s.inputs = {random_tensor(DType::kFloat32, x, rng, offset - 1, offset + 1), random_tensor(DType::kFloat32, norm, rng)};
  s.constant = {false, true};
  if (bias) {
    s.inputs.push_back(random_tensor(DType::kFloat32, norm, rng));
    s.constant.push_back(true);
  }
  s.attrs.set("axis", axis);
  s.num_outputs = outputs;
  return s;
}

TEST(NormalizationOps, LayerNormValuesWithStatistics) {
  std::mt19937 rng(41);
  // A large offset checks the two-pass variance (E[x^2] - E[x]^2 would lose it in float).
  OpSpec s = layernorm_spec({3, 4, 50}, 1, true, 3, rng, 1000.0);
  const int64_t rows = 3, n = 200;
  HostTensor y(DType::kFloat32, {3, 4, 50}), mean(DType::kFloat32, {3, 1, 1}), inv(DType::kFloat32, {3, 1, 1});
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = s.inputs[0].as<float>() + r * n;
    double m = 0, v = 0;
    for (int64_t i = 0; i < n; ++i) m += xr[i];
    m /= n;
    for (int64_t i = 0; i < n; ++i) v += (xr[i] - m) * (xr[i] - m);
    v /= n;
    const double iv = 1 / std::sqrt(v + 1e-5);
    mean.as<float>()[r] = float(m);
    inv.as<float>()[r] = float(iv);
    for (int64_t i = 0; i < n; ++i)
      y.as<float>()[r * n + i] = float((xr[i] - m) * iv * s.inputs[1].as<float>()[i] + s.inputs[2].as<float>()[i]);
  }
  auto out = run_cpu(s);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(tensors_close(out[0], y, 1e-4, 1e-4));
  EXPECT_TRUE(tensors_close(out[1], mean, 1e-6, 0));
  EXPECT_TRUE(tensors_close(out[2], inv, 1e-4, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-3, 1e-3));
  }
}

TEST(NormalizationOps, LayerNormOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(42);
  for (int iter = 0; iter < 10; ++iter) {
    const int rank = 1 + iter % 4;
    const Shape x = random_shape(rank, rng, 7);
    const int64_t axis = std::uniform_int_distribution<int64_t>(-rank, rank - 1)(rng);
    OpSpec s = layernorm_spec(x, axis, iter % 2 == 0, 1 + iter % 3, rng);
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)) << shape_str(x) << " axis " << axis;
  }
  // Long rows: one work-group per row.
  EXPECT_TRUE(opencl_matches_cpu(layernorm_spec({4, 768}, -1, true, 3, rng), 1e-4, 1e-4));
  // Rows of a multiple of 8 values (rownorm_x8): a warp per row with 3 and 4 (the last partial)
  // groups of 8 values a work-item, no bias, and 4096-wide rows over a slice of 4 warps.
  EXPECT_TRUE(opencl_matches_cpu(layernorm_spec({37, 768}, -1, true, 1, rng), 1e-4, 1e-4));
  EXPECT_TRUE(opencl_matches_cpu(layernorm_spec({9, 1000}, -1, false, 3, rng), 1e-4, 1e-4));
  EXPECT_TRUE(opencl_matches_cpu(layernorm_spec({3, 16, 256}, 1, true, 3, rng, 50.0), 1e-4, 1e-4));
  EXPECT_TRUE(opencl_matches_cpu(layernorm_spec({5, 4096}, -1, true, 2, rng), 1e-4, 1e-4));
  EXPECT_TRUE(opencl_matches_cpu(layernorm_spec({2, 3, 40, 40}, 1, false, 2, rng), 1e-4, 1e-4));
}

// Runs LayerNormalization with outputs Y, (no Mean), InvStdDev: the plan then lists two
// outputs, and the kernels must find InvStdDev in the second slot.
Status run_layernorm_skip_mean(const OpSpec& s, const std::string& device, std::vector<HostTensor>* outs) {
  ir::Graph g;
  g.opsets[""] = 17;
  ir::Node* n = g.add_node("LayerNormalization", "ln");
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    ir::Value* v = g.add_value("in" + std::to_string(i));
    v->dtype = s.inputs[i].dtype();
    v->shape = s.inputs[i].shape();
    v->has_shape = true;
    if (i == 0) {
      v->is_graph_input = true;
      g.inputs.push_back(v);
    } else {
      v->constant = std::make_shared<HostTensor>(s.inputs[i]);
    }
    n->inputs.push_back(v);
  }
  n->attrs = s.attrs;
  ir::Value* y = g.add_value("y");
  ir::Value* inv = g.add_value("inv");
  n->outputs = {y, nullptr, inv};
  y->producer = inv->producer = n;
  g.outputs = {y, inv};
  BuildOptions opts;
  opts.device = device;
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_plan_from_graph(g, opts, plan.get()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  KILN_TRY(ctx->bind_input("in0", s.inputs[0].dtype(), s.inputs[0].shape(), s.inputs[0].data(), s.inputs[0].size_bytes()));
  outs->clear();
  outs->reserve(2);
  for (int32_t t : plan->outputs) {
    outs->emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
    KILN_TRY(ctx->bind_output(plan->tensors[t].name, outs->back().data(), outs->back().size_bytes()));
  }
  return ctx->run();
}

TEST(NormalizationOps, LayerNormSkippedMeanOutput) {
  std::mt19937 rng(43);
  OpSpec s = layernorm_spec({5, 6}, -1, true, 3, rng);
  auto full = run_cpu(s);
  for (const char* dev : {"cpu", "opencl"}) {
    if (std::string(dev) == "opencl" && !have_opencl()) continue;
    std::vector<HostTensor> got;
    Status st = run_layernorm_skip_mean(s, dev, &got);
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(tensors_close(got[0], full[0], 1e-4, 1e-5)) << dev;
    EXPECT_TRUE(tensors_close(got[1], full[2], 1e-4, 1e-5)) << dev;
  }
}

// ---------------------------------------------------------------- reductions

OpSpec reduce_spec(const std::string& op, int opset, HostTensor x, const std::vector<int64_t>& axes, bool keepdims) {
  OpSpec s = spec1(op, opset, std::move(x));
  const bool input_form = op == "ReduceSum" ? opset >= 13 : opset >= 18;
  if (input_form) {
    s.inputs.push_back(ints(axes));
    s.constant.push_back(true);
  } else if (!axes.empty()) {
    s.attrs.set("axes", axes);
  }
  s.attrs.set("keepdims", int64_t{keepdims ? 1 : 0});
  return s;
}

TEST(NormalizationOps, ReduceOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(51);
  const std::vector<std::pair<std::string, int>> ops = {
      {"ReduceSum", 11}, {"ReduceSum", 13}, {"ReduceMean", 13}, {"ReduceMean", 18},
      {"ReduceMax", 13}, {"ReduceMax", 18}, {"ReduceMin", 11}, {"ReduceMin", 20}};
  for (int iter = 0; iter < 24; ++iter) {
    const int rank = 1 + iter % 4;
    const Shape x = random_shape(rank, rng, 6);
    std::vector<int64_t> axes;
    for (int d = 0; d < rank; ++d)
      if (rng() % 2) axes.push_back(rng() % 2 ? d : d - rank);
    const auto& op = ops[iter % ops.size()];
    OpSpec s = reduce_spec(op.first, op.second, random_tensor(DType::kFloat32, x, rng), axes, iter % 3 != 0);
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-5)) << op.first << "-" << op.second << " " << shape_str(x);
  }
}

TEST(NormalizationOps, ReduceOpenCLLongRows) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(52);
  // Contiguous long rows, strided long rows with few outputs, many strided outputs, several
  // non-adjacent reduced dims, everything at once.
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{4, 5000}, {1}}, {{3000, 2}, {0}}, {{200, 5000}, {0}}, {{70, 3, 50}, {0, 2}}, {{8, 9, 10, 11}, {}},
      {{2, 64, 7, 7}, {2, 3}}};
  for (const auto& c : cases)
    for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"}) {
      OpSpec s = reduce_spec(op, 18, random_tensor(DType::kFloat32, c.first, rng), c.second, true);
      if (std::string(op) == "ReduceSum") s = reduce_spec(op, 13, s.inputs[0], c.second, false);
      EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)) << op << " " << shape_str(c.first);
    }
}

TEST(NormalizationOps, ReduceValues) {
  HostTensor x = floats({2, 3}, {1, -2, 3, 4, 5, -6});
  auto out = run_cpu(reduce_spec("ReduceSum", 13, x, {1}, true));
  EXPECT_TRUE(tensors_close(out[0], floats({2, 1}, {2, 3}), 0, 0));
  out = run_cpu(reduce_spec("ReduceMean", 11, x, {0}, false));
  EXPECT_TRUE(tensors_close(out[0], floats({3}, {2.5f, 1.5f, -1.5f}), 1e-6, 0));
  out = run_cpu(reduce_spec("ReduceMax", 18, x, {}, false));  // empty axes: all
  EXPECT_TRUE(tensors_close(out[0], floats({}, {5}), 0, 0));
  out = run_cpu(reduce_spec("ReduceMin", 13, x, {-1}, true));
  EXPECT_TRUE(tensors_close(out[0], floats({2, 1}, {-2, -6}), 0, 0));
  // noop_with_empty_axes: the input passes through.
  OpSpec noop = reduce_spec("ReduceSum", 13, x, {}, true);
  noop.attrs.set("noop_with_empty_axes", int64_t{1});
  out = run_cpu(noop);
  EXPECT_TRUE(tensors_close(out[0], x, 0, 0));
  // Integer reductions (constant folding of shape arithmetic uses them).
  HostTensor xi(DType::kInt64, {2, 2});
  for (int i = 0; i < 4; ++i) xi.as<int64_t>()[i] = int64_t{1} << (40 + i);
  out = run_cpu(reduce_spec("ReduceSum", 13, xi, {0}, false));
  ASSERT_EQ(out[0].dtype(), DType::kInt64);
  EXPECT_EQ(out[0].as<int64_t>()[0], (int64_t{1} << 40) + (int64_t{1} << 42));
  HostTensor x32(DType::kInt32, {3});
  x32.as<int32_t>()[0] = 7, x32.as<int32_t>()[1] = -9, x32.as<int32_t>()[2] = 4;
  out = run_cpu(reduce_spec("ReduceMax", 13, x32, {0}, true));
  EXPECT_EQ(out[0].as<int32_t>()[0], 7);
}

TEST(NormalizationOps, GlobalPoolsMatch) {
  std::mt19937 rng(53);
  HostTensor x = random_tensor(DType::kFloat32, {2, 3, 4, 5}, rng);
  auto avg = run_cpu(spec1("GlobalAveragePool", 1, x));
  auto mx = run_cpu(spec1("GlobalMaxPool", 1, x));
  ASSERT_EQ(avg[0].shape(), (Shape{2, 3, 1, 1}));
  for (int p = 0; p < 6; ++p) {
    double s = 0;
    float m = -INFINITY;
    for (int i = 0; i < 20; ++i) {
      s += x.as<float>()[p * 20 + i];
      m = std::max(m, x.as<float>()[p * 20 + i]);
    }
    EXPECT_NEAR(avg[0].as<float>()[p], s / 20, 1e-6);
    EXPECT_EQ(mx[0].as<float>()[p], m);
  }
  if (!have_opencl()) return;
  for (const Shape& sh : std::vector<Shape>{{2, 3, 4, 5}, {1, 8, 32, 32}, {2, 4, 9}, {1, 2, 3, 4, 5}})
    for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"})
      EXPECT_TRUE(opencl_matches_cpu(spec1(op, 1, random_tensor(DType::kFloat32, sh, rng)), 1e-4, 1e-5)) << op;
}

// ---------------------------------------------------------------- pooling

// A direct reference for 2-D pooling with explicit pads (windows clipped to the input).
HostTensor pool2d_reference(const HostTensor& x, const Shape& y_shape, int kh, int kw, int sh, int sw, int ph, int pw,
                            int dh, int dw, bool avg, bool count_pad, std::vector<int64_t>* idx) {
  HostTensor y(DType::kFloat32, y_shape);
  const int64_t H = x.shape()[2], W = x.shape()[3];
  int64_t o = 0;
  for (int64_t p = 0; p < x.shape()[0] * x.shape()[1]; ++p)
    for (int64_t oh = 0; oh < y_shape[2]; ++oh)
      for (int64_t ow = 0; ow < y_shape[3]; ++ow, ++o) {
        double sum = 0;
        float best = -INFINITY;
        int64_t best_at = -1, n = 0;
        for (int a = 0; a < kh; ++a)
          for (int b = 0; b < kw; ++b) {
            const int64_t h = oh * sh - ph + a * dh, w = ow * sw - pw + b * dw;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const float v = x.as<float>()[p * H * W + h * W + w];
            sum += v;
            ++n;
            if (v > best || best_at < 0) best = v, best_at = p * H * W + h * W + w;
          }
        if (count_pad) n = kh * kw;
        y.as<float>()[o] = avg ? float(sum / n) : best;
        if (idx) idx->push_back(best_at);
      }
  return y;
}

TEST(NormalizationOps, PoolValues) {
  std::mt19937 rng(61);
  HostTensor x = random_tensor(DType::kFloat32, {1, 2, 6, 7}, rng);
  OpSpec mp = spec1("MaxPool", 12, x);
  mp.attrs.set("kernel_shape", std::vector<int64_t>{3, 2});
  mp.attrs.set("strides", std::vector<int64_t>{2, 2});
  mp.attrs.set("pads", std::vector<int64_t>{1, 0, 1, 1});
  mp.attrs.set("dilations", std::vector<int64_t>{1, 2});
  mp.num_outputs = 2;
  // H: (6 + 2 - 3) / 2 + 1 = 3; W: (7 + 1 - 3) / 2 + 1 = 3.
  std::vector<int64_t> idx;
  HostTensor want = pool2d_reference(x, {1, 2, 3, 3}, 3, 2, 2, 2, 1, 0, 1, 2, false, false, &idx);
  auto out = run_cpu(mp);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(tensors_close(out[0], want, 0, 0));
  ASSERT_EQ(out[1].shape(), (Shape{1, 2, 3, 3}));
  for (size_t i = 0; i < idx.size(); ++i) EXPECT_EQ(out[1].as<int64_t>()[i], idx[i]) << i;

  OpSpec ap = spec1("AveragePool", 11, x);
  ap.attrs.set("kernel_shape", std::vector<int64_t>{2, 3});
  ap.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  for (int cip = 0; cip < 2; ++cip) {
    ap.attrs.set("count_include_pad", int64_t{cip});
    HostTensor w = pool2d_reference(x, {1, 2, 7, 7}, 2, 3, 1, 1, 1, 1, 1, 1, true, cip != 0, nullptr);
    EXPECT_TRUE(tensors_close(run_cpu(ap)[0], w, 1e-6, 1e-7)) << "count_include_pad " << cip;
  }

  // ceil_mode: 1x1x5x5, kernel 2, stride 2 -> 3x3; the last window holds one row/column.
  OpSpec ceil = spec1("AveragePool", 10, random_tensor(DType::kFloat32, {1, 1, 5, 5}, rng));
  ceil.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
  ceil.attrs.set("strides", std::vector<int64_t>{2, 2});
  ceil.attrs.set("ceil_mode", int64_t{1});
  out = run_cpu(ceil);
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 3, 3}));
  EXPECT_FLOAT_EQ(out[0].as<float>()[8], ceil.inputs[0].as<float>()[24]);

  // storage_order=1: column-major spatial index.
  HostTensor x2 = floats({1, 1, 2, 3}, {1, 9, 2, 3, 4, 5});
  OpSpec so = spec1("MaxPool", 12, x2);
  so.attrs.set("kernel_shape", std::vector<int64_t>{2, 3});
  so.attrs.set("storage_order", int64_t{1});
  so.num_outputs = 2;
  out = run_cpu(so);
  EXPECT_EQ(out[0].as<float>()[0], 9);
  EXPECT_EQ(out[1].as<int64_t>()[0], 2);  // (h=0, w=1) -> h + w * H = 2
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(mp, 0, 0));
    EXPECT_TRUE(opencl_matches_cpu(ap, 1e-5, 1e-6));
    EXPECT_TRUE(opencl_matches_cpu(ceil, 1e-5, 1e-6));
    EXPECT_TRUE(opencl_matches_cpu(so, 0, 0));
  }
}

TEST(NormalizationOps, PoolOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(62);
  const char* auto_pads[] = {"NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  int ran = 0;
  for (int iter = 0; iter < 40; ++iter) {
    const int nsp = 1 + iter % 3;
    Shape x = {1 + int64_t(rng() % 2), 1 + int64_t(rng() % 3)};
    std::vector<int64_t> k, s, d, p(2 * nsp);
    for (int i = 0; i < nsp; ++i) {
      x.push_back(3 + rng() % (nsp == 3 ? 5 : 9));
      k.push_back(1 + rng() % 3);
      s.push_back(1 + rng() % 2);
      d.push_back(1 + rng() % 2);
      p[i] = rng() % k.back();
      p[i + nsp] = rng() % k.back();
    }
    const bool is_max = iter % 2 == 0;
    const std::string auto_pad = auto_pads[(iter / 2) % 5];
    const int opset = is_max ? 12 : 19;
    const DType dt = is_max && iter % 8 == 4 ? DType::kUInt8 : DType::kFloat32;
    OpSpec sp = spec1(is_max ? "MaxPool" : "AveragePool", opset, random_tensor(dt, x, rng, -5, 5));
    sp.attrs.set("kernel_shape", k);
    sp.attrs.set("strides", s);
    sp.attrs.set("dilations", d);
    sp.attrs.set("auto_pad", auto_pad);
    if (auto_pad == "NOTSET") {
      sp.attrs.set("pads", p);
      sp.attrs.set("ceil_mode", int64_t(rng() % 2));
    }
    if (!is_max) sp.attrs.set("count_include_pad", int64_t(rng() % 2));
    if (is_max && iter % 4 == 2) {
      sp.num_outputs = 2;
      sp.attrs.set("storage_order", int64_t(rng() % 2));
    }
    std::vector<HostTensor> probe;
    if (!run_op(sp, "cpu", &probe).is_ok()) continue;  // window larger than the padded input
    ++ran;
    EXPECT_TRUE(opencl_matches_cpu(sp, 1e-5, 1e-6)) << sp.op_type << " " << shape_str(x) << " " << sp.attrs.to_string();
  }
  EXPECT_GT(ran, 25);
}

TEST(NormalizationOps, PoolErrorsNameTheNode) {
  std::mt19937 rng(63);
  OpSpec s = spec1("MaxPool", 12, random_tensor(DType::kFloat32, {1, 1, 4, 4}, rng));
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("MaxPool_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("kernel_shape"), std::string::npos) << st.message();
  s.attrs.set("kernel_shape", std::vector<int64_t>{5, 5});
  st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("does not fit"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
