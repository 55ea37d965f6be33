// softmax_row (the cpu fast path's vectorized softmax) against a double-precision softmax, on
// random rows of every length around the vector widths and on the rows ONNX defines specially.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "runtime/backends/cpu/fast_softmax.h"

namespace kiln {
namespace {

// The shift x - max rounds to float as in any float softmax (libm's too); the rest is exact.
std::vector<double> reference(const std::vector<float>& x) {
  float mx = -std::numeric_limits<float>::infinity();
  for (float v : x) mx = std::max(mx, v);
  std::vector<double> y(x.size());
  double sum = 0;
  for (size_t j = 0; j < x.size(); ++j) sum += y[j] = std::exp(static_cast<double>(x[j] - mx));
  for (double& v : y) v /= sum;
  return y;
}

TEST(FastSoftmax, MatchesDoublePrecisionOnRandomRows) {
  std::mt19937 rng(11);
  for (int64_t n : {1, 2, 7, 8, 15, 16, 17, 31, 33, 64, 100, 129, 512}) {
    for (float spread : {0.1f, 3.f, 30.f, 300.f}) {
      std::normal_distribution<float> d(0.f, spread);
      std::vector<float> x(n);
      for (float& v : x) v = d(rng);
      const std::vector<double> want = reference(x);
      softmax_row(x.data(), n);
      for (int64_t j = 0; j < n; ++j)
        // exp within 2 ulp, then the float sum of n terms (n half-ulps at worst, in any order).
        ASSERT_NEAR(x[j], want[j], (4e-7 + 6e-8 * n) * want[j] + 1e-30) << "n " << n << " spread " << spread << " j " << j;
    }
  }
}

TEST(FastSoftmax, MaskedScoresWeighExactlyZero) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1.f, -inf, 2.f, -1e4f, -90.f, 0.5f, -inf, 3.f, -88.f};
  softmax_row(x.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(x[1], 0.f);
  EXPECT_EQ(x[3], 0.f);
  EXPECT_EQ(x[6], 0.f);
  EXPECT_EQ(x[4], 0.f);  // exp(-93) is below float's normals
  float sum = 0;
  for (float v : x) sum += v;
  EXPECT_NEAR(sum, 1.f, 1e-6f);
}

TEST(FastSoftmax, RowsOnnxDefinesAsNaN) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (std::vector<float> x : {std::vector<float>(20, -inf), std::vector<float>{1.f, nan, 2.f},
                               std::vector<float>{1.f, inf, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f}}) {
    softmax_row(x.data(), static_cast<int64_t>(x.size()));
    for (float v : x) EXPECT_TRUE(std::isnan(v));
  }
}

}  // namespace
}  // namespace kiln
