// The cpu fast path's float GELU (fast_gelu.h) against GELU in double precision (std::erf /
// std::tanh) on a dense grid and random values, both forms; and exp_f against std::exp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "runtime/backends/cpu/fast_gelu.h"
#include "runtime/backends/cpu/fast_math.h"

namespace kiln {
namespace {

std::vector<float> inputs() {
  std::vector<float> x;
  for (int i = -20000; i <= 20000; ++i) x.push_back(static_cast<float>(i) * 1e-3f);  // [-20, 20]
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.f, 4.f);
  for (int i = 0; i < 20000; ++i) x.push_back(d(rng));
  for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 1e30f, -1e30f}) x.push_back(v);
  return x;
}

// Relative error bound where the result is a normal float; an absolute 1e-37 below that.
void expect_close(const std::vector<float>& x, const std::vector<float>& got, double (*want)(double), double rel) {
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = want(static_cast<double>(x[i]));
    const double err = std::fabs(got[i] - w);
    if (std::fabs(w) < 1e-37) {
      ASSERT_LE(err, 1e-37) << "x = " << x[i];
      continue;
    }
    worst = std::max(worst, err / std::fabs(w));
    ASSERT_LE(err, rel * std::fabs(w)) << "x = " << x[i] << " want " << w << " got " << got[i];
  }
  ::testing::Test::RecordProperty("worst_relative_error", std::to_string(worst));
}

TEST(FastGelu, ErfFormWithinHalfAMillionthOfDouble) {
  const std::vector<float> x = inputs();
  std::vector<float> y(x.size());
  gelu_erf(x.data(), y.data(), static_cast<int64_t>(x.size()));
  expect_close(x, y, [](double v) { return 0.5 * v * std::erfc(-v / std::sqrt(2.0)); }, 5e-7);
}

TEST(FastGelu, TanhFormWithinDoubleOverItsRange) {
  const std::vector<float> x = inputs();
  std::vector<float> y(x.size());
  gelu_tanh(x.data(), y.data(), static_cast<int64_t>(x.size()));
  // exp(-2u) grows like |x|^3 in the negative tail, where float's rounding of u costs ~|2u| ulps
  // of the (tiny) result; elsewhere the error is a few ulps.
  // 0.5 v (1 + tanh u) written as v / (1 + exp(-2u)), which does not cancel to 0 in the tail.
  const auto want = [](double v) { return v / (1.0 + std::exp(-2.0 * std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))); };
  for (size_t i = 0; i < x.size(); ++i) {
    const double w = want(x[i]);
    const double u = std::sqrt(2.0 / M_PI) * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
    const double rel = 5e-7 + (u < 0 ? 2.0 * -u * 3e-7 : 0.0);  // u carries ~2.5 ulps (x^3, the sum)
    if (std::fabs(w) < 1e-37) {
      ASSERT_LE(std::fabs(y[i] - w), 1e-37) << "x = " << x[i] << " want " << w << " got " << y[i];
      continue;
    }
    ASSERT_LE(std::fabs(y[i] - w), rel * std::fabs(w)) << "x = " << x[i] << " want " << w << " got " << y[i] << " rel " << rel;
  }
}

TEST(FastGelu, NonFiniteInputs) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {std::nanf(""), inf, -inf}, y(3), t(3);
  gelu_erf(x.data(), y.data(), 3);
  gelu_tanh(x.data(), t.data(), 3);
  for (const auto& r : {y, t}) {
    EXPECT_TRUE(std::isnan(r[0]));
    EXPECT_EQ(r[1], inf);
    EXPECT_TRUE(std::isnan(r[2]));  // -inf times a tail of exactly 0, as the interpreter computes it
  }
}

TEST(FastMath, ExpWithinTwoUlpOverFloatsRange) {
  for (float v = -87.f; v <= 88.f; v += 0.0013f) {
    const double w = std::exp(static_cast<double>(v));
    ASSERT_LE(std::fabs(fastmath::exp_f(v) - w), 2.5e-7 * w) << "x = " << v;
  }
  EXPECT_EQ(fastmath::exp_f(-100.f), 0.f);
  EXPECT_EQ(fastmath::exp_f(100.f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fastmath::exp_f(std::nanf(""))));
}

}  // namespace
}  // namespace kiln
