// Normalization family, GroupNormalization (version 18: scale and bias per group; 21: per
// channel). The CPU against the formula evaluated here in double; OpenCL against the CPU on
// random shapes, short rows (one work-item each) and long rows (one work-group each), FP32 and
// FP16.
#include <cmath>

#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

OpSpec group_spec(int opset, HostTensor x, HostTensor scale, HostTensor bias, int64_t groups, float eps) {
  OpSpec s;
  s.op_type = "GroupNormalization";
  s.opset = opset;
  s.inputs = {std::move(x), std::move(scale), std::move(bias)};
  s.constant = {false, true, true};
  s.attrs.set("num_groups", groups);
  s.attrs.set("epsilon", eps);
  return s;
}

// numpy: x.reshape(N, G, -1); (x - mean) / sqrt(var + eps); then * scale + bias per channel
// (or per group for version 18).
HostTensor reference(const HostTensor& x, const HostTensor& scale, const HostTensor& bias, int64_t groups, double eps,
                     bool per_group) {
  HostTensor y(DType::kFloat32, x.shape());
  const int64_t n = x.shape()[0], c = x.shape()[1], inner = x.numel() / (n * c), cg = c / groups;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < groups; ++g) {
      const float* xr = x.as<float>() + (b * c + g * cg) * inner;
      float* yr = y.as<float>() + (b * c + g * cg) * inner;
      const int64_t len = cg * inner;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < len; ++i) mean += xr[i];
      mean /= len;
      for (int64_t i = 0; i < len; ++i) var += (xr[i] - mean) * (xr[i] - mean);
      var /= len;
      for (int64_t i = 0; i < len; ++i) {
        const int64_t p = per_group ? g : g * cg + i / inner;
        yr[i] = static_cast<float>((xr[i] - mean) / std::sqrt(var + eps) * scale.as<float>()[p] + bias.as<float>()[p]);
      }
    }
  return y;
}

TEST(NormalizationGroup, ValuesBothVersions) {
  std::mt19937 rng(71);
  const HostTensor x = random_tensor(DType::kFloat32, {2, 6, 3, 4}, rng, -3, 5);
  for (int opset : {18, 21}) {
    const int64_t groups = 3, params = opset == 18 ? groups : 6;
    const HostTensor scale = random_tensor(DType::kFloat32, {params}, rng, 0.5, 2);
    const HostTensor bias = random_tensor(DType::kFloat32, {params}, rng);
    std::vector<HostTensor> out;
    Status st = run_op(group_spec(opset, x, scale, bias, groups, 1e-3f), "cpu", &out);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_TRUE(tensors_close(out[0], reference(x, scale, bias, groups, 1e-3, opset == 18), 1e-5, 1e-5)) << opset;
  }
}

TEST(NormalizationGroup, OpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(72);
  // Short rows, then long rows (one work-group per (sample, group)).
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{1, 4, 5}, 2}, {{3, 6, 2, 2}, 6}, {{2, 8}, 4}, {{1, 32, 16, 16}, 8}, {{2, 4, 40, 40}, 1}};
  for (const auto& c : cases)
    for (int opset : {18, 21}) {
      const int64_t params = opset == 18 ? c.second : c.first[1];
      OpSpec s = group_spec(opset, random_tensor(DType::kFloat32, c.first, rng, -2, 3),
                            random_tensor(DType::kFloat32, {params}, rng), random_tensor(DType::kFloat32, {params}, rng),
                            c.second, 1e-5f);
      EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)) << shape_str(c.first) << " G=" << c.second << " v" << opset;
      s.precision = "fp16";
      EXPECT_TRUE(opencl_matches_cpu(s, 2e-3, 2e-3)) << shape_str(c.first) << " fp16";
    }
}

TEST(NormalizationGroup, BadGroupsOrParametersNameTheNode) {
  const HostTensor x(DType::kFloat32, {1, 6, 2});
  std::vector<HostTensor> out;
  // 4 groups do not divide 6 channels.
  Status st = run_op(group_spec(21, x, HostTensor(DType::kFloat32, {6}), HostTensor(DType::kFloat32, {6}), 4, 1e-5f), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("GroupNormalization_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("num_groups"), std::string::npos) << st.message();
  // Version 21 wants one scale per channel, not per group.
  st = run_op(group_spec(21, x, HostTensor(DType::kFloat32, {3}), HostTensor(DType::kFloat32, {3}), 3, 1e-5f), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("one per channel"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
