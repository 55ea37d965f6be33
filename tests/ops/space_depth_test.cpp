// space_depth family: DepthToSpace (DCR and CRD) and SpaceToDepth. The CPU against numpy's
// reshape/transpose definitions (values computed with numpy and written here); OpenCL against
// the CPU on random shapes, block sizes and dtypes; a round trip; errors name the node.
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor iota_i64(const Shape& s) {
  HostTensor t(DType::kInt64, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<int64_t>()[i] = i;
  return t;
}
HostTensor i64(const Shape& s, const std::vector<int64_t>& v) {
  HostTensor t(DType::kInt64, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

OpSpec spec(const std::string& op, HostTensor x, int64_t b, const std::string& mode = "") {
  OpSpec s;
  s.op_type = op;
  s.opset = 13;
  s.inputs = {std::move(x)};
  s.constant = {false};
  s.attrs.set("blocksize", b);
  if (!mode.empty()) s.attrs.set("mode", mode);
  return s;
}

HostTensor run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.op_type << ": " << st.message();
  return out.empty() ? HostTensor() : out[0];
}

TEST(SpaceDepthOps, NumpyValues) {
  // x = np.arange(16).reshape(1, 8, 1, 2), b = 2:
  // DCR: x.reshape(1, 2, 2, 2, 1, 2).transpose(0, 3, 4, 1, 5, 2).reshape(1, 2, 2, 4)
  const HostTensor x = iota_i64({1, 8, 1, 2});
  EXPECT_TRUE(tensors_close(run_cpu(spec("DepthToSpace", x, 2)),
                            i64({1, 2, 2, 4}, {0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15}), 0, 0));
  // CRD: x.reshape(1, 2, 2, 2, 1, 2).transpose(0, 1, 4, 2, 5, 3).reshape(1, 2, 2, 4)
  EXPECT_TRUE(tensors_close(run_cpu(spec("DepthToSpace", x, 2, "CRD")),
                            i64({1, 2, 2, 4}, {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15}), 0, 0));
  // y = np.arange(32).reshape(1, 2, 4, 4):
  // y.reshape(1, 2, 2, 2, 2, 2).transpose(0, 3, 5, 1, 2, 4).reshape(1, 8, 2, 2)
  EXPECT_TRUE(tensors_close(run_cpu(spec("SpaceToDepth", iota_i64({1, 2, 4, 4}), 2)),
                            i64({1, 8, 2, 2}, {0,  2,  8,  10, 16, 18, 24, 26, 1,  3,  9,  11, 17, 19, 25, 27,
                                               4,  6,  12, 14, 20, 22, 28, 30, 5,  7,  13, 15, 21, 23, 29, 31}),
                            0, 0));
}

TEST(SpaceDepthOps, RoundTripAndOpenCLMatchesCpuRandom) {
  std::mt19937 rng(121);
  const DType dtypes[] = {DType::kFloat32, DType::kUInt8, DType::kInt64, DType::kFloat32};
  for (int iter = 0; iter < 8; ++iter) {
    const int64_t b = 1 + iter % 3;
    auto pick = [&](int n) { return 1 + static_cast<int64_t>(rng() % n); };
    const Shape s = {pick(2), pick(3), b * pick(3), b * pick(4)};
    const HostTensor x = random_tensor(dtypes[iter % 4], s, rng, -50, 50);
    // DCR DepthToSpace inverts SpaceToDepth.
    const HostTensor d = run_cpu(spec("SpaceToDepth", x, b));
    EXPECT_TRUE(tensors_close(run_cpu(spec("DepthToSpace", d, b)), x, 0, 0)) << shape_str(s) << " b=" << b;
    if (!have_opencl()) continue;
    EXPECT_TRUE(opencl_matches_cpu(spec("SpaceToDepth", x, b), 0, 0)) << shape_str(s);
    for (const char* mode : {"DCR", "CRD"}) EXPECT_TRUE(opencl_matches_cpu(spec("DepthToSpace", d, b, mode), 0, 0)) << mode;
  }
}

TEST(SpaceDepthOps, ShapeErrorsNameTheNode) {
  std::vector<HostTensor> out;
  Status st = run_op(spec("DepthToSpace", iota_i64({1, 6, 2, 2}), 2), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("DepthToSpace_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("multiple of blocksize"), std::string::npos) << st.message();
  st = run_op(spec("SpaceToDepth", iota_i64({1, 1, 3, 4}), 2), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("SpaceToDepth_node"), std::string::npos) << st.message();
  st = run_op(spec("DepthToSpace", iota_i64({1, 4, 2, 2}), 2, "XYZ"), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("mode"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
