// positional family: CumSum, Trilu, OneHot. The CPU against numpy's answers worked out here
// (np.cumsum with its exclusive/reverse variants, np.triu/np.tril, np.eye-style one-hot with
// negative and out-of-range indices); OpenCL against the CPU on random shapes, attributes and
// dtypes; errors name the node.
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

template <typename T>
HostTensor tensor(DType dt, const Shape& s, const std::vector<T>& v) {
  HostTensor t(dt, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<T>()[i] = v[i];
  return t;
}
HostTensor f32(const Shape& s, const std::vector<float>& v) { return tensor<float>(DType::kFloat32, s, v); }
HostTensor i64(const Shape& s, const std::vector<int64_t>& v) { return tensor<int64_t>(DType::kInt64, s, v); }

OpSpec spec(const std::string& op, int opset, std::vector<HostTensor> inputs, std::vector<bool> constant) {
  OpSpec s;
  s.op_type = op;
  s.opset = opset;
  s.inputs = std::move(inputs);
  s.constant = std::move(constant);
  return s;
}

OpSpec cumsum(HostTensor x, int64_t axis, int64_t exclusive, int64_t reverse) {
  OpSpec s = spec("CumSum", 14, {std::move(x), i64({}, {axis})}, {false, true});
  s.attrs.set("exclusive", exclusive);
  s.attrs.set("reverse", reverse);
  return s;
}

OpSpec trilu(HostTensor x, int64_t k, int64_t upper) {
  OpSpec s = spec("Trilu", 14, {std::move(x), i64({}, {k})}, {false, true});
  s.attrs.set("upper", upper);
  return s;
}

OpSpec onehot(HostTensor ind, int64_t depth, HostTensor values, int64_t axis) {
  OpSpec s = spec("OneHot", 11, {std::move(ind), i64({}, {depth}), std::move(values)}, {false, true, false});
  s.attrs.set("axis", axis);
  return s;
}

HostTensor run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.op_type << ": " << st.message();
  return out.empty() ? HostTensor() : out[0];
}

TEST(PositionalOps, CumSumValues) {
  const HostTensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(tensors_close(run_cpu(cumsum(x, 1, 0, 0)), f32({2, 3}, {1, 3, 6, 4, 9, 15}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(cumsum(x, -1, 1, 0)), f32({2, 3}, {0, 1, 3, 0, 4, 9}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(cumsum(x, 1, 0, 1)), f32({2, 3}, {6, 5, 3, 15, 11, 6}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(cumsum(x, 0, 1, 1)), f32({2, 3}, {4, 5, 6, 0, 0, 0}), 0, 0));
  // int64, e.g. position ids from an attention mask: cumsum(mask) - 1.
  EXPECT_TRUE(tensors_close(run_cpu(cumsum(i64({5}, {1, 1, 0, 1, int64_t{1} << 40}), 0, 0, 0)),
                            i64({5}, {1, 2, 2, 3, 3 + (int64_t{1} << 40)}), 0, 0));
}

TEST(PositionalOps, TriluValues) {
  const HostTensor x = i64({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  EXPECT_TRUE(tensors_close(run_cpu(trilu(x, 0, 1)), i64({3, 4}, {1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(trilu(x, 1, 0)), i64({3, 4}, {1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(trilu(x, -1, 1)), i64({3, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(trilu(x, -7, 0)), i64({3, 4}, std::vector<int64_t>(12, 0)), 0, 0));
  // k left out: the main diagonal.
  OpSpec nok = spec("Trilu", 14, {x}, {false});
  nok.attrs.set("upper", int64_t{0});
  EXPECT_TRUE(tensors_close(run_cpu(nok), i64({3, 4}, {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0}), 0, 0));
}

TEST(PositionalOps, OneHotValues) {
  // Index -1 counts from the end; 3 is out of range for depth 3: all off_value.
  const HostTensor ind = i64({3}, {0, -1, 3});
  EXPECT_TRUE(tensors_close(run_cpu(onehot(ind, 3, f32({2}, {-1, 5}), -1)),
                            f32({3, 3}, {5, -1, -1, -1, -1, 5, -1, -1, -1}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(onehot(ind, 3, i64({2}, {0, 1}), 0)), i64({3, 3}, {1, 0, 0, 0, 0, 0, 0, 1, 0}), 0, 0));
  // Float indices truncate toward zero (1.7 -> 1).
  EXPECT_TRUE(tensors_close(run_cpu(onehot(f32({1, 2}, {1.7f, 0.f}), 2, f32({2}, {0, 1}), 1)),
                            f32({1, 2, 2}, {0, 1, 1, 0}), 0, 0));
}

TEST(PositionalOps, ErrorsNameTheNode) {
  std::vector<HostTensor> out;
  OpSpec dynamic_depth = onehot(i64({1}, {0}), 2, f32({2}, {0, 1}), -1);
  dynamic_depth.constant = {false, false, false};
  Status st = run_op(dynamic_depth, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("OneHot_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("must be known at build time"), std::string::npos) << st.message();
  st = run_op(trilu(f32({3}, {1, 2, 3}), 0, 1), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Trilu_node"), std::string::npos) << st.message();
  st = run_op(cumsum(f32({3}, {1, 2, 3}), 1, 0, 0), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("axis 1 is out of range"), std::string::npos) << st.message();
}

TEST(PositionalOps, OpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(111);
  const DType dtypes[] = {DType::kFloat32, DType::kInt64, DType::kUInt8, DType::kBool};
  for (int iter = 0; iter < 12; ++iter) {
    const int rank = 1 + iter % 4;
    const Shape shape = random_shape(rank, rng, 7);
    OpSpec cs = cumsum(random_tensor(DType::kFloat32, shape, rng), static_cast<int64_t>(rng() % rank), iter % 2, (iter / 2) % 2);
    EXPECT_TRUE(opencl_matches_cpu(cs, 1e-5, 1e-5)) << "CumSum " << shape_str(shape);
    cs.precision = "fp16";
    EXPECT_TRUE(opencl_matches_cpu(cs, 2e-3, 2e-3)) << "CumSum fp16 " << shape_str(shape);
    const DType it = iter % 2 ? DType::kInt64 : DType::kInt32;
    EXPECT_TRUE(opencl_matches_cpu(cumsum(random_tensor(it, shape, rng, -100, 100), 0, iter % 3 == 0, iter % 2), 0, 0))
        << "CumSum " << dtype_name(it);

    Shape m = random_shape(2 + iter % 3, rng, 6);
    const DType dt = dtypes[iter % 4];
    EXPECT_TRUE(opencl_matches_cpu(trilu(random_tensor(dt, m, rng, -5, 5), static_cast<int64_t>(rng() % 9) - 4, iter % 2), 0, 0))
        << "Trilu " << shape_str(m) << " " << dtype_name(dt);

    const int64_t depth = 1 + rng() % 5;
    const DType idt = iter % 3 == 0 ? DType::kInt32 : iter % 3 == 1 ? DType::kInt64 : DType::kFloat32;
    HostTensor ind = random_tensor(idt, shape, rng, -static_cast<double>(depth) - 1, static_cast<double>(depth) + 1);
    OpSpec oh = onehot(ind, depth, random_tensor(dt, {2}, rng, -9, 9), static_cast<int64_t>(rng() % (rank + 1)) - (iter % 2 ? rank + 1 : 0));
    EXPECT_TRUE(opencl_matches_cpu(oh, 0, 0)) << "OneHot " << shape_str(shape) << " depth " << depth;
  }
}

}  // namespace
}  // namespace kiln::test
