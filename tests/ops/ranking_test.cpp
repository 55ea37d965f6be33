// ranking family: ArgMax, ArgMin, TopK. OpenCL against the CPU on random shapes, axes and
// attributes, with many ties (values drawn from a few integers) so the tie rules are exercised;
// the CPU against numpy's answers worked out here (np.argmax, np.argsort(kind="stable")),
// including NaN, select_last_index, integer inputs and K = 0.
#include <cmath>
#include <limits>

#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor f32(const Shape& s, const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}
HostTensor i64(const Shape& s, const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

OpSpec arg_spec(const std::string& op, HostTensor x, int64_t axis, int64_t keepdims, int64_t last) {
  OpSpec s;
  s.op_type = op;
  s.opset = 13;
  s.inputs = {std::move(x)};
  s.constant = {false};
  s.attrs.set("axis", axis);
  s.attrs.set("keepdims", keepdims);
  s.attrs.set("select_last_index", last);
  return s;
}

OpSpec topk_spec(HostTensor x, int64_t k, int64_t axis, int64_t largest) {
  OpSpec s;
  s.op_type = "TopK";
  s.opset = 11;
  s.inputs = {std::move(x), i64({1}, {k})};
  s.constant = {false, true};
  s.attrs.set("axis", axis);
  s.attrs.set("largest", largest);
  s.num_outputs = 2;
  return s;
}

std::vector<HostTensor> run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.op_type << ": " << st.message();
  return out;
}

TEST(RankingOps, ArgValuesTiesAndNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const HostTensor x = f32({2, 4}, {3, 7, 7, 1, 2, nan, 9, nan});
  // np.argmax / np.argmin: the first extreme; a NaN wins both.
  EXPECT_TRUE(tensors_close(run_cpu(arg_spec("ArgMax", x, 1, 0, 0))[0], i64({2}, {1, 1}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(arg_spec("ArgMax", x, -1, 1, 1))[0], i64({2, 1}, {2, 3}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(arg_spec("ArgMin", x, 1, 0, 0))[0], i64({2}, {3, 1}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(arg_spec("ArgMin", x, 0, 1, 0))[0], i64({1, 4}, {1, 1, 0, 1}), 0, 0));
  // Integer input (constant folding of index arithmetic).
  EXPECT_TRUE(tensors_close(run_cpu(arg_spec("ArgMin", i64({3}, {5, -2, -2}), 0, 0, 1))[0], i64({}, {2}), 0, 0));
}

TEST(RankingOps, TopKValuesTiesSmallestAndEmpty) {
  const HostTensor x = f32({2, 5}, {1, 4, 4, 2, 9, 3, 3, 3, 0, 1});
  auto out = run_cpu(topk_spec(x, 3, -1, 1));
  ASSERT_EQ(out.size(), 2u);
  // Equal values keep the lower index first (np.argsort(-x, kind="stable")[:, :3]).
  EXPECT_TRUE(tensors_close(out[0], f32({2, 3}, {9, 4, 4, 3, 3, 3}), 0, 0));
  EXPECT_TRUE(tensors_close(out[1], i64({2, 3}, {4, 1, 2, 0, 1, 2}), 0, 0));
  out = run_cpu(topk_spec(x, 2, 1, 0));
  EXPECT_TRUE(tensors_close(out[0], f32({2, 2}, {1, 2, 0, 1}), 0, 0));
  EXPECT_TRUE(tensors_close(out[1], i64({2, 2}, {0, 3, 3, 4}), 0, 0));
  out = run_cpu(topk_spec(x, 1, 0, 1));
  EXPECT_TRUE(tensors_close(out[1], i64({1, 5}, {1, 0, 0, 0, 0}), 0, 0));
  out = run_cpu(topk_spec(i64({4}, {7, -1, 7, 3}), 2, 0, 1));
  EXPECT_TRUE(tensors_close(out[0], i64({2}, {7, 7}), 0, 0));
  EXPECT_TRUE(tensors_close(out[1], i64({2}, {0, 2}), 0, 0));
  out = run_cpu(topk_spec(x, 0, 1, 1));
  EXPECT_EQ(out[0].shape(), Shape({2, 0}));
}

TEST(RankingOps, BadKNamesTheNode) {
  std::vector<HostTensor> out;
  Status st = run_op(topk_spec(f32({3}, {1, 2, 3}), 4, 0, 1), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("TopK_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("K = 4"), std::string::npos) << st.message();
  OpSpec dynamic_k = topk_spec(f32({3}, {1, 2, 3}), 1, 0, 1);
  dynamic_k.constant = {false, false};
  st = run_op(dynamic_k, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("must be known at build time"), std::string::npos) << st.message();
}

TEST(RankingOps, OpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(101);
  for (int iter = 0; iter < 16; ++iter) {
    const int rank = 1 + iter % 4;
    const Shape shape = random_shape(rank, rng, 7);
    const int64_t axis = static_cast<int64_t>(rng() % rank) - (iter % 2 ? rank : 0);
    // Few distinct values: many ties.
    HostTensor x = random_tensor(DType::kInt64, shape, rng, -3, 3);
    HostTensor xf(DType::kFloat32, shape);
    for (int64_t i = 0; i < x.numel(); ++i) xf.as<float>()[i] = static_cast<float>(x.as<int64_t>()[i]);
    for (const char* op : {"ArgMax", "ArgMin"}) {
      EXPECT_TRUE(opencl_matches_cpu(arg_spec(op, xf, axis, iter % 3 ? 1 : 0, iter % 2), 0, 0)) << op << shape_str(shape);
      // int64 and int32 inputs run on OpenCL too.
      HostTensor xi = x;
      if (iter % 2) {
        xi = HostTensor(DType::kInt32, shape);
        for (int64_t i = 0; i < x.numel(); ++i) xi.as<int32_t>()[i] = static_cast<int32_t>(x.as<int64_t>()[i]);
      }
      EXPECT_TRUE(opencl_matches_cpu(arg_spec(op, xi, axis, 1, iter % 3 == 0), 0, 0)) << op << " " << dtype_name(xi.dtype());
    }
    const int64_t n = shape[axis < 0 ? axis + rank : axis];
    OpSpec t = topk_spec(iter % 2 ? xf : random_tensor(DType::kFloat32, shape, rng), static_cast<int64_t>(rng() % (n + 1)),
                         axis, iter % 3 ? 1 : 0);
    EXPECT_TRUE(opencl_matches_cpu(t, 0, 0)) << "TopK " << shape_str(shape) << " axis " << axis;
    t.precision = "fp16";
    EXPECT_TRUE(opencl_matches_cpu(t, 0, 0)) << "TopK fp16 " << shape_str(shape);
    EXPECT_TRUE(opencl_matches_cpu(topk_spec(x, t.inputs[1].as<int64_t>()[0], axis, iter % 2), 0, 0)) << "TopK int64";
  }
  // NaNs: the same winners and order on both backends.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const HostTensor x = f32({3, 4}, {nan, 1, nan, 2, 5, nan, 5, -1, 0, 0, 0, 0});
  for (const char* op : {"ArgMax", "ArgMin"})
    for (int64_t last : {0, 1}) EXPECT_TRUE(opencl_matches_cpu(arg_spec(op, x, 1, 1, last), 0, 0)) << op << " NaN";
  for (int64_t largest : {0, 1}) EXPECT_TRUE(opencl_matches_cpu(topk_spec(x, 3, 1, largest), 0, 0)) << "TopK NaN";
}

}  // namespace
}  // namespace kiln::test
