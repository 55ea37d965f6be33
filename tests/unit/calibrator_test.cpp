#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "compiler/quant/calibrator.h"

namespace kiln {
namespace {

AbsHistogram histogram_of(const std::vector<float>& x) {
  AbsHistogram h;
  h.observe_range(x.data(), x.size());
  h.add(x.data(), x.size());
  return h;
}

TEST(Calibrator, ParsesSpecs) {
  CalibratorSpec s;
  ASSERT_TRUE(parse_calibrator("percentile=99.9", &s).is_ok());
  EXPECT_EQ(s.kind, CalibratorSpec::Kind::kPercentile);
  EXPECT_DOUBLE_EQ(s.percentile, 99.9);
  EXPECT_FALSE(parse_calibrator("percentile=120", &s).is_ok());
  EXPECT_FALSE(parse_calibrator("kl", &s).is_ok());
}

TEST(Calibrator, MinMaxIsTheLargestMagnitude) {
  std::vector<float> x = {0.5f, -3.25f, 1.0f, 2.0f};
  AbsHistogram h = histogram_of(x);
  EXPECT_DOUBLE_EQ(calibrate_amax(h, {CalibratorSpec::Kind::kMinMax}), 3.25);
  EXPECT_DOUBLE_EQ(h.clipped_share(3.25), 0.0);
}

TEST(Calibrator, PercentileMatchesSortedData) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(200000);
  for (auto& v : x) v = u(rng);
  AbsHistogram h = histogram_of(x);
  std::vector<float> a(x.size());
  std::transform(x.begin(), x.end(), a.begin(), [](float v) { return std::fabs(v); });
  std::sort(a.begin(), a.end());
  for (double p : {50.0, 90.0, 99.0}) {
    CalibratorSpec s{CalibratorSpec::Kind::kPercentile, p};
    const double want = a[static_cast<size_t>(p / 100.0 * a.size()) - 1];
    EXPECT_NEAR(calibrate_amax(h, s), want, 2 * h.bin_width()) << "percentile " << p;
    EXPECT_NEAR(h.clipped_share(want), 1.0 - p / 100.0, 0.005);
  }
}

TEST(Calibrator, EntropyClipsGaussianTailsButNotUniformData) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(400000);
  for (auto& v : x) v = g(rng);
  x[0] = 40.f;  // one far outlier: minmax would waste almost all of the 8-bit range on it
  AbsHistogram h = histogram_of(x);
  const double amax = calibrate_amax(h, {CalibratorSpec::Kind::kEntropy});
  EXPECT_GT(amax, 2.0);
  EXPECT_LT(amax, 8.0);
  EXPECT_LT(h.clipped_share(amax), 0.01);

  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (auto& v : x) v = u(rng);
  AbsHistogram hu = histogram_of(x);
  EXPECT_GT(calibrate_amax(hu, {CalibratorSpec::Kind::kEntropy}), 0.9 * hu.max_abs());
}

TEST(Calibrator, EntropyKeepsTheFullRangeOfSmallTensors) {
  // 160 logits: too few values for a 2048-bin histogram; the narrowest range must not win.
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(160);
  for (auto& v : x) v = g(rng);
  AbsHistogram h = histogram_of(x);
  EXPECT_DOUBLE_EQ(calibrate_amax(h, {CalibratorSpec::Kind::kEntropy}), h.max_abs());
}

TEST(Calibrator, EntropyIsNotDecidedByTheZerosOfARelu) {
  // A ReLU6 output as EfficientNet-Lite0 has them: most values exactly 0, a spike at 6, the
  // rest spread between. Left in bin 0, the zeros made the KL divergence pick a range of ~0.7.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 6.f);
  std::vector<float> x(400000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % 10 < 6 ? 0.f : i % 10 == 6 ? 6.f : u(rng);
  AbsHistogram h = histogram_of(x);
  const double amax = calibrate_amax(h, {CalibratorSpec::Kind::kEntropy});
  EXPECT_GT(amax, 5.9);
  EXPECT_LT(h.clipped_share(amax), 0.001);
  // A ReLU of Gaussian data: half zeros; the range must keep most of the positive tail.
  std::normal_distribution<float> g(0.f, 1.f);
  for (auto& v : x) v = std::max(0.f, g(rng));
  AbsHistogram hr = histogram_of(x);
  EXPECT_GT(calibrate_amax(hr, {CalibratorSpec::Kind::kEntropy}), 2.5);
}

TEST(Calibrator, QuantizationErrorMatchesTheRoundingNoise) {
  // Uniform data on [0, 1] with amax 1: INT8 rounding noise s^2/12 (s = 1/127) over E[x^2] = 1/3.
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> x(400000);
  for (auto& v : x) v = u(rng);
  AbsHistogram h = histogram_of(x);
  const double s = h.max_abs() / 127.0;
  EXPECT_NEAR(quantization_error(h, h.max_abs(), QuantGrid::kInt8), (s * s / 12) * 3, 0.25 * (s * s / 12) * 3);
  // Clipping at 0.5 loses the upper half: E[(x-0.5)^2; x>0.5] / E[x^2] = (1/24) / (1/3) = 1/8.
  EXPECT_NEAR(quantization_error(h, 0.5, QuantGrid::kInt8), 0.125, 0.01);
  // FP8 E4M3 keeps 3 mantissa bits: coarser than INT8 on uniform data, much finer than clipping.
  const double e4m3 = quantization_error(h, h.max_abs(), QuantGrid::kFp8E4M3);
  EXPECT_GT(e4m3, quantization_error(h, h.max_abs(), QuantGrid::kInt8));
  EXPECT_LT(e4m3, 1e-3);
}

TEST(Calibrator, MseFindsTheRangeOfLeastError) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> x(400000);
  for (auto& v : x) v = g(rng);
  x[0] = 40.f;  // minmax spends the grid on this one value
  AbsHistogram h = histogram_of(x);
  // One outlier in 400,000 still weighs: (40 - amax)^2 against the rounding noise of all the
  // others, which grows with amax. The optimum lies between.
  const double mse = calibrate_amax(h, {CalibratorSpec::Kind::kMse});
  EXPECT_GT(mse, 4.0);
  EXPECT_LT(mse, 25.0);
  const double e = quantization_error(h, mse, QuantGrid::kInt8);
  for (double other : {h.max_abs(), calibrate_amax(h, {CalibratorSpec::Kind::kEntropy}), 0.8 * mse, 1.25 * mse})
    EXPECT_LE(e, quantization_error(h, other, QuantGrid::kInt8) * 1.0001) << "amax " << other;
  // On the FP8 grid the rounding error is relative, so clipping buys little: the range stays wide.
  EXPECT_GT(calibrate_amax(h, {CalibratorSpec::Kind::kMse}, QuantGrid::kFp8E4M3), mse);
  CalibratorSpec parsed;
  ASSERT_TRUE(parse_calibrator("mse", &parsed).is_ok());
  EXPECT_EQ(parsed.kind, CalibratorSpec::Kind::kMse);
}

TEST(Calibrator, AllZeroTensorHasZeroRange) {
  std::vector<float> x(100, 0.f);
  AbsHistogram h = histogram_of(x);
  EXPECT_EQ(calibrate_amax(h, {CalibratorSpec::Kind::kEntropy}), 0.0);
}

}  // namespace
}  // namespace kiln
