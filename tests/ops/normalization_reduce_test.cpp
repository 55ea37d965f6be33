// Normalization family, the reductions beyond Sum/Mean/Max/Min: ReduceProd, ReduceL1, ReduceL2,
// ReduceSumSquare, ReduceLogSum, ReduceLogSumExp. OpenCL against the CPU on random shapes and
// axes (both kernel shapes: one work-item per output, one work-group per long row); the CPU
// against values worked out here (numpy: np.prod, np.abs().sum(), ...), including the integer
// forms constant folding uses, empty reductions and the stable LogSumExp.
#include <cmath>
#include <limits>

#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

const char* const kNewReductions[] = {"ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
                                      "ReduceLogSumExp"};

HostTensor floats(const Shape& shape, const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, shape);
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}

OpSpec reduce_spec(const std::string& op, int opset, HostTensor x, const std::vector<int64_t>& axes, bool keepdims) {
  OpSpec s;
  s.op_type = op;
  s.opset = opset;
  s.inputs = {std::move(x)};
  s.constant = {false};
  if (opset >= 18) {
    HostTensor a(DType::kInt64, {static_cast<int64_t>(axes.size())});
    for (size_t i = 0; i < axes.size(); ++i) a.as<int64_t>()[i] = axes[i];
    s.inputs.push_back(a);
    s.constant.push_back(true);
  } else if (!axes.empty()) {
    s.attrs.set("axes", axes);
  }
  s.attrs.set("keepdims", int64_t{keepdims ? 1 : 0});
  return s;
}

HostTensor run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.op_type << ": " << st.message();
  return out.empty() ? HostTensor() : out[0];
}

TEST(NormalizationReduce, ValuesOfEachKind) {
  const HostTensor x = floats({2, 3}, {1, -2, 3, 4, 5, -6});
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceProd", 13, x, {1}, false)), floats({2}, {-6, -120}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceL1", 18, x, {1}, true)), floats({2, 1}, {6, 15}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceL2", 11, x, {0}, false)),
                            floats({3}, {std::sqrt(17.f), std::sqrt(29.f), std::sqrt(45.f)}), 1e-6, 0));
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceSumSquare", 18, x, {}, false)), floats({}, {91}), 0, 0));
  const HostTensor p = floats({2, 2}, {1, 2, 3, 4});
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceLogSum", 13, p, {-1}, false)),
                            floats({2}, {std::log(3.f), std::log(7.f)}), 1e-6, 0));
  // LogSumExp of large values: a naive exp would overflow float32 and double alike.
  const HostTensor big = floats({1, 3}, {1000, 1000, -std::numeric_limits<float>::infinity()});
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceLogSumExp", 18, big, {1}, false)),
                            floats({1}, {1000 + std::log(2.f)}), 1e-6, 0));
}

TEST(NormalizationReduce, IntegersEmptySetsAndReductionsOverNothing) {
  // ReduceProd of a shape is its element count (shape arithmetic folds through it).
  HostTensor dims(DType::kInt64, {4});
  for (int i = 0; i < 4; ++i) dims.as<int64_t>()[i] = int64_t{1000} * (i + 1);
  HostTensor got = run_cpu(reduce_spec("ReduceProd", 13, dims, {0}, false));
  ASSERT_EQ(got.dtype(), DType::kInt64);
  EXPECT_EQ(got.as<int64_t>()[0], int64_t{24} * 1000 * 1000 * 1000 * 1000);
  HostTensor ints(DType::kInt32, {3});
  ints.as<int32_t>()[0] = -3, ints.as<int32_t>()[1] = 4, ints.as<int32_t>()[2] = -5;
  got = run_cpu(reduce_spec("ReduceL1", 13, ints, {0}, false));
  EXPECT_EQ(got.as<int32_t>()[0], 12);
  got = run_cpu(reduce_spec("ReduceSumSquare", 13, ints, {0}, false));
  EXPECT_EQ(got.as<int32_t>()[0], 50);
  // Empty reductions: the identity of each kind (np.prod([]) = 1, log(0) = -inf).
  const HostTensor empty(DType::kFloat32, {2, 0});
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceProd", 18, empty, {1}, false)), floats({2}, {1, 1}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceL2", 18, empty, {1}, false)), floats({2}, {0, 0}), 0, 0));
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceLogSumExp", 18, empty, {1}, false)), floats({2}, {ninf, ninf}), 0, 0));
  // A scalar reduced over all (no) axes still maps its element: |x|, x^2.
  EXPECT_TRUE(tensors_close(run_cpu(reduce_spec("ReduceL1", 13, floats({}, {-2.5f}), {}, true)), floats({}, {2.5f}), 0, 0));
  // noop_with_empty_axes leaves the input as it is, but ONNX's reference squares ReduceSumSquare's.
  OpSpec noop = reduce_spec("ReduceSumSquare", 18, floats({2}, {-3, 2}), {}, true);
  noop.attrs.set("noop_with_empty_axes", int64_t{1});
  EXPECT_TRUE(tensors_close(run_cpu(noop), floats({2}, {9, 4}), 0, 0));
  noop.op_type = "ReduceL1";
  EXPECT_TRUE(tensors_close(run_cpu(noop), floats({2}, {-3, 2}), 0, 0));
}

TEST(NormalizationReduce, LogReductionsRefuseIntegers) {
  HostTensor ints(DType::kInt64, {3});
  std::vector<HostTensor> out;
  Status st = run_op(reduce_spec("ReduceLogSumExp", 13, ints, {0}, false), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("ReduceLogSumExp_node"), std::string::npos) << st.message();
}

TEST(NormalizationReduce, OpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(61);
  for (int iter = 0; iter < 24; ++iter) {
    const int rank = 1 + iter % 4;
    const Shape x = random_shape(rank, rng, 6);
    std::vector<int64_t> axes;
    for (int d = 0; d < rank; ++d)
      if (rng() % 2) axes.push_back(rng() % 2 ? d : d - rank);
    const std::string op = kNewReductions[iter % 6];
    // Positive inputs for the logs; a narrow range keeps products of up to 6^4 terms finite.
    const double lo = op == "ReduceLogSum" ? 0.1 : op == "ReduceProd" ? 0.6 : -2;
    OpSpec s = reduce_spec(op, iter % 2 ? 18 : 13, random_tensor(DType::kFloat32, x, rng, lo, 1.6), axes, iter % 3 != 0);
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-5)) << op << " " << shape_str(x);
  }
}

TEST(NormalizationReduce, OpenCLLongRowsAndFloat16) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(62);
  // Long contiguous rows and several reduced dims (one work-group per output), many strided outputs.
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{3, 3000}, {1}}, {{40, 3, 50}, {0, 2}}, {{500, 20}, {0}}};
  for (const auto& c : cases)
    for (const char* op : kNewReductions) {
      const bool prod = std::string(op) == "ReduceProd";
      OpSpec s = reduce_spec(op, 18, random_tensor(DType::kFloat32, c.first, rng, prod ? 0.999 : 0.1, prod ? 1.001 : 2), c.second,
                             true);
      EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)) << op << " " << shape_str(c.first);
      s.precision = "fp16";
      EXPECT_TRUE(opencl_matches_cpu(s, 2e-3, 2e-3)) << op << " fp16 " << shape_str(c.first);
    }
}

}  // namespace
}  // namespace kiln::test
