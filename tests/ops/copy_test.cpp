#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor ints(const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

TEST(CopyOps, ReshapeKeepsDataAndInfersMinusOne) {
  std::mt19937 rng(1);
  OpSpec s{"Reshape", 17, {}, {random_tensor(DType::kFloat32, {2, 3, 4}, rng), ints({0, -1})}, {false, true}};
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  ASSERT_EQ(out[0].shape(), (Shape{2, 12}));
  EXPECT_TRUE(tensors_close(out[0], [&] { HostTensor t = s.inputs[0]; t.reshape({2, 12}); return t; }(), 0, 0));
  if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 0, 0)); }
}

TEST(CopyOps, SqueezeUnsqueezeFlattenShapes) {
  std::mt19937 rng(2);
  std::vector<HostTensor> out;
  OpSpec sq{"Squeeze", 13, {}, {random_tensor(DType::kFloat32, {1, 3, 1, 2}, rng), ints({0, -2})}, {false, true}};
  ASSERT_TRUE(run_op(sq, "cpu", &out).is_ok());
  EXPECT_EQ(out[0].shape(), (Shape{3, 2}));
  OpSpec un{"Unsqueeze", 11, {}, {random_tensor(DType::kFloat32, {3, 2}, rng)}, {false}};
  un.attrs.set("axes", std::vector<int64_t>{0, 3});
  ASSERT_TRUE(run_op(un, "cpu", &out).is_ok());
  EXPECT_EQ(out[0].shape(), (Shape{1, 3, 2, 1}));
  OpSpec fl{"Flatten", 13, {}, {random_tensor(DType::kFloat32, {2, 3, 4}, rng)}, {false}};
  fl.attrs.set("axis", int64_t{-1});
  ASSERT_TRUE(run_op(fl, "cpu", &out).is_ok());
  EXPECT_EQ(out[0].shape(), (Shape{6, 4}));
}

TEST(CopyOps, BadReshapeIsAClearError) {
  std::mt19937 rng(3);
  OpSpec s{"Reshape", 17, {}, {random_tensor(DType::kFloat32, {2, 3}, rng), ints({4, 2})}, {false, true}};
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Reshape_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cannot reshape 2x3"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
