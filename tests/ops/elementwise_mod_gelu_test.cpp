// Elementwise family, Mod and Gelu (instructions of the Elementwise program). OpenCL against the
// CPU on random shapes, dtypes and broadcasting; the CPU against values worked out here (numpy's
// np.mod / np.fmod and the Gelu formulas in double).
#include <cmath>

#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

template <typename T>
HostTensor tensor(DType dt, const Shape& s, const std::vector<T>& v) {
  HostTensor t(dt, s);
  for (size_t i = 0; i < v.size(); ++i) t.as<T>()[i] = v[i];
  return t;
}

OpSpec mod_spec(HostTensor a, HostTensor b, int64_t fmod, int opset = 13) {
  OpSpec s;
  s.op_type = "Mod";
  s.opset = opset;
  s.inputs = {std::move(a), std::move(b)};
  s.constant = {false, false};
  s.attrs.set("fmod", fmod);
  return s;
}

std::vector<HostTensor> run_cpu(const OpSpec& s) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return out;
}

TEST(ElementwiseModGelu, ModValuesFollowNumpy) {
  // np.mod (fmod=0): the divisor's sign; np.fmod (fmod=1): the dividend's.
  // 2^40 mod 7 = 2 (2^3 = 1 mod 7).
  const HostTensor a = tensor<int64_t>(DType::kInt64, {6}, {-7, 7, -7, 7, 0, int64_t{1} << 40});
  const HostTensor b = tensor<int64_t>(DType::kInt64, {6}, {3, 3, -3, -3, 5, 7});
  auto out = run_cpu(mod_spec(a, b, 0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(tensors_close(out[0], tensor<int64_t>(DType::kInt64, {6}, {2, 1, -1, -2, 0, 2}), 0, 0));
  out = run_cpu(mod_spec(a, b, 1));
  EXPECT_TRUE(tensors_close(out[0], tensor<int64_t>(DType::kInt64, {6}, {-1, 1, -1, 1, 0, 2}), 0, 0));
  // Float fmod: fmod(-7.5, 2) = -1.5, fmod(7.5, -2) = 1.5; broadcast divisor.
  out = run_cpu(mod_spec(tensor<float>(DType::kFloat32, {2, 2}, {-7.5f, 7.5f, 5.25f, -0.5f}),
                         tensor<float>(DType::kFloat32, {2}, {2.f, -2.f}), 1));
  EXPECT_TRUE(tensors_close(out[0], tensor<float>(DType::kFloat32, {2, 2}, {-1.5f, 1.5f, 1.25f, -0.5f}), 0, 0));
  // Integer division by zero is undefined in C; kiln gives 0 instead of trapping.
  out = run_cpu(mod_spec(tensor<int32_t>(DType::kInt32, {2}, {5, -5}), tensor<int32_t>(DType::kInt32, {2}, {0, -1}), 0));
  EXPECT_TRUE(tensors_close(out[0], tensor<int32_t>(DType::kInt32, {2}, {0, 0}), 0, 0));
}

TEST(ElementwiseModGelu, ModFloatNeedsFmodNamingTheNode) {
  std::vector<HostTensor> out;
  Status st = run_op(mod_spec(tensor<float>(DType::kFloat32, {1}, {1.f}), tensor<float>(DType::kFloat32, {1}, {2.f}), 0),
                     "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Mod_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("fmod"), std::string::npos) << st.message();
}

TEST(ElementwiseModGelu, ModOpenCLMatchesCpuRandom) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(91);
  const std::vector<std::pair<DType, int64_t>> kinds = {{DType::kInt32, 0}, {DType::kInt64, 0}, {DType::kInt8, 1},
                                                        {DType::kUInt8, 0}, {DType::kFloat32, 1}, {DType::kInt64, 1}};
  for (int iter = 0; iter < 12; ++iter) {
    const auto& k = kinds[iter % kinds.size()];
    const Shape sa = random_shape(1 + iter % 3, rng, 5);
    Shape sb = sa;
    if (iter % 2) sb.back() = 1;  // broadcast the divisor
    // Integer divisors include 0 (-> 0) and negatives.
    OpSpec s = mod_spec(random_tensor(k.first, sa, rng, -40, 40), random_tensor(k.first, sb, rng, -6, 6), k.second);
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-6, 1e-6)) << dtype_name(k.first) << " fmod=" << k.second << " " << shape_str(sa);
  }
}

double gelu_ref(double x, bool tanh_form) {
  if (tanh_form) return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
  return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
}

OpSpec gelu_spec(HostTensor x, const std::string& approx) {
  OpSpec s;
  s.op_type = "Gelu";
  s.opset = 20;
  s.inputs = {std::move(x)};
  s.constant = {false};
  if (!approx.empty()) s.attrs.set("approximate", approx);
  return s;
}

TEST(ElementwiseModGelu, GeluValuesBothApproximations) {
  std::mt19937 rng(92);
  const HostTensor x = random_tensor(DType::kFloat32, {3, 50}, rng, -6, 6);
  for (const std::string approx : {"", "none", "tanh"}) {
    HostTensor want(DType::kFloat32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i)
      want.as<float>()[i] = static_cast<float>(gelu_ref(x.as<float>()[i], approx == "tanh"));
    auto out = run_cpu(gelu_spec(x, approx));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(tensors_close(out[0], want, 1e-6, 1e-7)) << approx;
    if (have_opencl()) {
      EXPECT_TRUE(opencl_matches_cpu(gelu_spec(x, approx), 1e-5, 1e-6)) << approx;
      OpSpec half = gelu_spec(x, approx);
      half.precision = "fp16";
      EXPECT_TRUE(opencl_matches_cpu(half, 1e-3, 1e-3)) << approx << " fp16";
    }
  }
}

TEST(ElementwiseModGelu, GeluUnknownApproximationIsRefused) {
  std::vector<HostTensor> out;
  Status st = run_op(gelu_spec(HostTensor(DType::kFloat32, {2}), "erf"), "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Gelu_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("approximate"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
