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

TEST(Calibrator, AllZeroTensorHasZeroRange) {
  std::vector<float> x(100, 0.f);
  AbsHistogram h = histogram_of(x);
  EXPECT_EQ(calibrate_amax(h, {CalibratorSpec::Kind::kEntropy}), 0.0);
}

}  // namespace
}  // namespace kiln
