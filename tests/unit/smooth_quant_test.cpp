// SmoothQuant's factors (compiler/quant/smooth_quant.h) and the calibration cache's per-channel
// maxima (format 2, compiler/quant/calibrate.h).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "compiler/quant/calibrate.h"
#include "compiler/quant/smooth_quant.h"
#include "runtime/plan/byte_io.h"
#include "tests/unit/unit_util.h"

namespace kiln {
using test::write_checksummed_cache;
namespace {

HostTensor matrix(int64_t k, int64_t n, std::vector<float> v) {
  HostTensor t(DType::kFloat32, Shape{k, n});
  std::copy(v.begin(), v.end(), t.as<float>());
  return t;
}

TEST(SmoothQuant, FactorsFollowTheFormulaAndGuardZeros) {
  // Rows: max|w| 2, 4, 0; activation maxima 4, 0, 1.
  const HostTensor w = matrix(3, 2, {1, -2, 3, 4, 0, 0});
  const std::vector<double> x = {4, 0, 1};
  std::vector<float> s = smooth_factors(x, w, 0.5);
  EXPECT_NEAR(s[0], std::sqrt(4.0) / std::sqrt(2.0), 1e-6);
  EXPECT_EQ(s[1], 1.f);  // no activation: unchanged
  EXPECT_EQ(s[2], 1.f);  // no weight: unchanged
  s = smooth_factors(x, w, 1.0);
  EXPECT_NEAR(s[0], 4.0, 1e-6);
  s = smooth_factors(x, w, 0.0);
  EXPECT_NEAR(s[0], 0.5, 1e-6);
  EXPECT_NEAR(smoothed_amax(x, {2.f, 1.f, 0.5f}), 2.0, 1e-12);
}

TEST(SmoothQuant, SmoothedProductEqualsTheOriginal) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  const int64_t m = 5, k = 16, n = 7;
  std::vector<float> xv(m * k), wv(k * n);
  for (float& v : xv) v = nd(rng);
  for (int64_t r = 0; r < m; ++r) xv[r * k + 2] *= 80;  // an outlier channel
  for (float& v : wv) v = nd(rng) * 0.1f;
  const HostTensor w = matrix(k, n, wv);
  std::vector<double> amax(k, 0);
  for (int64_t i = 0; i < m * k; ++i) amax[i % k] = std::max(amax[i % k], static_cast<double>(std::fabs(xv[i])));
  const std::vector<float> s = smooth_factors(amax, w, 0.5);
  const auto ws = scale_weight_rows(w, s);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) {
      double plain = 0, smoothed = 0;
      for (int64_t j = 0; j < k; ++j) {
        plain += xv[r * k + j] * wv[j * n + c];
        smoothed += (xv[r * k + j] / s[j]) * ws->as<float>()[j * n + c];
      }
      EXPECT_NEAR(smoothed, plain, 1e-4 * (1 + std::fabs(plain)));
    }
  // The outlier's spread moves into the weights: the smoothed range is far below the raw one.
  EXPECT_GT(channel_spread(amax), 20.0);
  EXPECT_LT(smoothed_amax(amax, s), 0.5 * *std::max_element(amax.begin(), amax.end()));
}

TEST(SmoothQuant, ChannelSpreadIsLargestOverMedian) {
  EXPECT_DOUBLE_EQ(channel_spread({1, 2, 2, 10}), 5.0);
  EXPECT_DOUBLE_EQ(channel_spread({0, 0, 0}), 1.0);
  EXPECT_TRUE(std::isinf(channel_spread({0, 0, 3})));
}

std::string temp_path(const char* name) { return ::testing::TempDir() + name; }

TEST(CalibrationCache, RoundTripsChannelMaxima) {
  const std::string path = temp_path("kiln_cache_v2.cache");
  std::map<std::string, TensorRange> in;
  in["x"].amax = 3.5;
  in["x"].channel_amax = {1.25, 0, 3.5};
  in["y with space"].amax = 0.75;
  in["y with space"].clipped_share = 0.01;
  ASSERT_TRUE(write_calibration_cache(path, "entropy", in).is_ok());
  std::map<std::string, TensorRange> out;
  Status st = read_calibration_cache(path, "entropy", &out);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out["x"].amax, 3.5);
  EXPECT_EQ(out["x"].channel_amax, in["x"].channel_amax);
  EXPECT_TRUE(out["y with space"].channel_amax.empty());
  EXPECT_EQ(out["y with space"].clipped_share, 0.01);
}

TEST(CalibrationCache, RoundTripsUnsignedTensorsAsVersion3) {
  const std::string path = temp_path("kiln_cache_v3.cache");
  std::map<std::string, TensorRange> in;
  in["relu out"].amax = 6;
  in["relu out"].non_negative = true;
  in["x"].amax = 2;
  ASSERT_TRUE(write_calibration_cache(path, "entropy", in).is_ok());
  std::ifstream f(path);
  std::string header;
  std::getline(f, header);
  EXPECT_EQ(header, "kiln-calibration-cache 3");
  std::map<std::string, TensorRange> out;
  Status st = read_calibration_cache(path, "entropy", &out);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_TRUE(out["relu out"].non_negative);
  EXPECT_FALSE(out["x"].non_negative);
  // An unsigned line is a version 3 feature, and must name a tensor with a range.
  write_checksummed_cache(path, "kiln-calibration-cache 2\ncalibrator minmax\n0x1p+1 0x0p+0 x\nunsigned x\n");
  EXPECT_FALSE(read_calibration_cache(path, "minmax", &out).is_ok());
  write_checksummed_cache(path, "kiln-calibration-cache 3\ncalibrator minmax\n0x1p+1 0x0p+0 x\nunsigned y\n");
  st = read_calibration_cache(path, "minmax", &out);
  EXPECT_NE(st.message().find("'y' is marked unsigned but has no range line"), std::string::npos) << st.message();
}

TEST(CalibrationCache, ReadsVersion1AndRefusesBadChannelLines) {
  const std::string path = temp_path("kiln_cache_bad.cache");
  std::map<std::string, TensorRange> out;
  write_checksummed_cache(path, "kiln-calibration-cache 1\ncalibrator minmax\n0x1p+1 0x0p+0 x\n");
  ASSERT_TRUE(read_calibration_cache(path, "minmax", &out).is_ok());
  EXPECT_EQ(out["x"].amax, 2.0);
  EXPECT_TRUE(out["x"].channel_amax.empty());
  // Channel lines are a version 2 feature.
  write_checksummed_cache(path, "kiln-calibration-cache 1\ncalibrator minmax\n0x1p+1 0x0p+0 x\nchannels 1 0x1p+0 x\n");
  EXPECT_FALSE(read_calibration_cache(path, "minmax", &out).is_ok());
  const std::pair<std::string, std::string> bad[] = {
      {"channels 3 0x1p+0,0x1p+1 x\n", "2 channel maxima, the line says 3"},
      {"channels 2 0x1p+0,-0x1p+1 x\n", "bad channel maximum for 'x'"},
      {"channels 2 0x1p+0;0x1p+1 x\n", "bad channel list for 'x'"},
      {"channels 0 0x1p+0 x\n", "bad channel count for 'x'"},
      {"channels 1 0x1p+0 z\n", "'z', which has no range line"},
      {"channels 1 0x1p+0\n", "without a tensor name"},
  };
  for (const auto& [line, why] : bad) {
    write_checksummed_cache(path, "kiln-calibration-cache 2\ncalibrator minmax\n0x1p+1 0x0p+0 x\n" + line);
    Status st = read_calibration_cache(path, "minmax", &out);
    ASSERT_FALSE(st.is_ok()) << line;
    EXPECT_NE(st.message().find("corrupted"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(why), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace kiln
