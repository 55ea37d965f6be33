// Movement family, Upsample (opsets 7-9; deprecated at 10): runs as Resize-10. The CPU against
// np.repeat (nearest with integer scales, what ONNX's reference computes) and hand-worked
// linear values (asymmetric coordinates, the edge sample repeated); version 9 against Resize-10
// on the same input; OpenCL against the CPU; errors name the node.
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor f32(const Shape& s, const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<float>()[i] = v[i];
  return t;
}

OpSpec upsample(int opset, HostTensor x, const std::vector<float>& scales, const std::string& mode) {
  OpSpec s;
  s.op_type = "Upsample";
  s.opset = opset;
  s.inputs = {std::move(x)};
  s.constant = {false};
  s.attrs.set("mode", mode);
  if (opset >= 9) {
    s.inputs.push_back(f32({static_cast<int64_t>(scales.size())}, scales));
    s.constant.push_back(true);
  } else if (opset >= 7) {
    s.attrs.set("scales", scales);
  } else {
    s.attrs.set("height_scale", scales[2]);
    s.attrs.set("width_scale", scales[3]);
  }
  return s;
}

HostTensor run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << s.op_type << "-" << s.opset << ": " << st.message();
  return out.empty() ? HostTensor() : out[0];
}

TEST(MovementUpsample, NearestIsNumpyRepeat) {
  std::mt19937 rng(131);
  const HostTensor x = random_tensor(DType::kFloat32, {1, 2, 3, 2}, rng);
  // np.repeat(np.repeat(x, 2, axis=2), 3, axis=3)
  HostTensor want(DType::kFloat32, {1, 2, 6, 6});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t y = 0; y < 6; ++y)
      for (int64_t w = 0; w < 6; ++w) want.as<float>()[(c * 6 + y) * 6 + w] = x.as<float>()[(c * 3 + y / 2) * 2 + w / 3];
  for (int opset : {7, 9}) EXPECT_TRUE(tensors_close(run_cpu(upsample(opset, x, {1, 1, 2, 3}, "nearest")), want, 0, 0)) << opset;
  EXPECT_TRUE(tensors_close(run_cpu(upsample(1, x, {1, 1, 2, 3}, "nearest")), want, 0, 0));
}

TEST(MovementUpsample, LinearAndResize10Agree) {
  // x_in = x_out / 2: samples 0, 0.5, 1, 1.5 of [1, 3] -> 1, 2, 3, 3 (the last clamps to the edge).
  const HostTensor x = f32({1, 1, 1, 2}, {1, 3});
  EXPECT_TRUE(tensors_close(run_cpu(upsample(7, x, {1, 1, 1, 2}, "linear")), f32({1, 1, 1, 4}, {1, 2, 3, 3}), 0, 0));
  EXPECT_TRUE(tensors_close(run_cpu(upsample(1, x, {1, 1, 1, 2}, "bilinear")), f32({1, 1, 1, 4}, {1, 2, 3, 3}), 0, 0));
  std::mt19937 rng(132);
  const HostTensor r = random_tensor(DType::kFloat32, {2, 3, 4, 5}, rng);
  for (const char* mode : {"nearest", "linear"}) {
    OpSpec resize = upsample(9, r, {1, 1, 2.5f, 1.5f}, mode);
    resize.op_type = "Resize";
    resize.opset = 10;
    EXPECT_TRUE(tensors_close(run_cpu(upsample(9, r, {1, 1, 2.5f, 1.5f}, mode)), run_cpu(resize), 0, 0)) << mode;
    if (have_opencl()) {
      EXPECT_TRUE(opencl_matches_cpu(upsample(9, r, {1, 1, 2.5f, 1.5f}, mode), 1e-5, 1e-6)) << mode;
    }
  }
}

TEST(MovementUpsample, DeprecatedAndBadScalesNameTheNode) {
  std::vector<HostTensor> out;
  Status st = run_op(upsample(10, f32({1, 1, 1, 2}, {1, 2}), {1, 1, 1, 2}, "nearest"), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Upsample_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("deprecated"), std::string::npos) << st.message();
  st = run_op(upsample(7, f32({1, 1, 1, 2}, {1, 2}), {1, 1, 2}, "nearest"), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("scales has 3 entries"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
