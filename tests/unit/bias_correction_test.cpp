// Bias correction (compiler/quant/bias_correction.h): the output mean shift of rounded weights
// against a direct convolution / matrix product of the weight error, its calibration-cache
// lines (format 4), and a post-training INT8 build whose output mean error it removes.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "compiler/quant/bias_correction.h"
#include "compiler/quant/calibrate.h"
#include "runtime/core/npy.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/byte_io.h"
#include "tests/ops/graph_builder.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

HostTensor random_tensor(const Shape& s, std::mt19937& rng, float lo, float hi) {
  HostTensor t(DType::kFloat32, s);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = u(rng);
  return t;
}

// Weights rounded to a coarse grid (a stand-in for any quantizer: the shift must hold for any).
std::vector<float> rounded(const HostTensor& w, float step) {
  std::vector<float> r(static_cast<size_t>(w.numel()));
  for (int64_t i = 0; i < w.numel(); ++i) r[static_cast<size_t>(i)] = step * std::nearbyint(w.as<float>()[i] / step);
  return r;
}

struct ConvCase {
  const char* what;
  Shape x, w;  // x [N, C, spatial...], w [M, C/group, k...]
  int64_t group;
  std::vector<int64_t> strides, dilations, pads;
};

// mean over N and output positions of conv(x, w - r), per output channel, computed directly.
std::vector<double> direct_mean_shift(const ConvCase& c, const HostTensor& x, const HostTensor& w,
                                      const std::vector<float>& r, const Shape& y) {
  const size_t sp = c.x.size() - 2;
  const int64_t m = c.w[0], cg = c.w[1], cin = c.x[1];
  // Spatial extents padded to 2-D (a 1-D case has H = 1).
  auto dim = [&](const Shape& s, size_t d) { return d < sp ? s[2 + d] : int64_t{1}; };
  const int64_t ih = dim(c.x, 0), iw = dim(c.x, 1), oh = dim(y, 0), ow = dim(y, 1), kh = dim(c.w, 0), kw = dim(c.w, 1);
  auto at = [&](const std::vector<int64_t>& v, size_t d, int64_t def) { return d < sp ? v[d] : def; };
  std::vector<double> shift(static_cast<size_t>(m), 0.0);
  for (int64_t n = 0; n < c.x[0]; ++n)
    for (int64_t oc = 0; oc < m; ++oc)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = 0;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t yy = oy * at(c.strides, 0, 1) + ky * at(c.dilations, 0, 1) - at(c.pads, 0, 0);
                const int64_t xx = ox * at(c.strides, 1, 1) + kx * at(c.dilations, 1, 1) - at(c.pads, 1, 0);
                if (yy < 0 || yy >= ih || xx < 0 || xx >= iw) continue;
                const int64_t ch = (oc / (m / c.group)) * cg + ci;
                const int64_t wi = ((oc * cg + ci) * kh + ky) * kw + kx;
                s += (static_cast<double>(w.as<float>()[wi]) - r[static_cast<size_t>(wi)]) *
                     x.as<float>()[((n * cin + ch) * ih + yy) * iw + xx];
              }
          shift[static_cast<size_t>(oc)] += s / static_cast<double>(c.x[0] * oh * ow);
        }
  return shift;
}

TEST(BiasCorrection, ConvShiftEqualsTheDirectConvolutionOfTheWeightError) {
  // Inputs constant per channel: then the mean of every tap is exactly the channel's mean times
  // the share of positions where the tap is inside the input, so the shift must match exactly,
  // padding, strides, dilations and groups included.
  const ConvCase cases[] = {
      {"3x3 pad 1", {2, 3, 7, 7}, {4, 3, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}},
      {"stride 2, asymmetric pads", {1, 4, 9, 8}, {5, 4, 3, 3}, 1, {2, 2}, {1, 1}, {0, 1, 2, 1}},
      {"depthwise 5x5 on 7x7", {1, 6, 7, 7}, {6, 1, 5, 5}, 6, {1, 1}, {1, 1}, {2, 2, 2, 2}},
      {"group 2, dilation 2", {1, 4, 8, 8}, {6, 2, 3, 3}, 2, {1, 1}, {2, 2}, {2, 2, 2, 2}},
      {"1x1", {3, 8, 5, 5}, {4, 8, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}},
      {"1-D, stride 3", {2, 3, 11}, {4, 3, 4}, 1, {3}, {1}, {1, 2}},
  };
  std::mt19937 rng(11);
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(c.what);
    const size_t sp = c.x.size() - 2;
    Shape y = {c.x[0], c.w[0]};
    for (size_t d = 0; d < sp; ++d) {
      const int64_t dk = (c.w[2 + d] - 1) * c.dilations[d] + 1;
      y.push_back((c.x[2 + d] + c.pads[d] + c.pads[d + sp] - dk) / c.strides[d] + 1);
    }
    HostTensor x(DType::kFloat32, c.x);
    std::vector<double> mean(static_cast<size_t>(c.x[1]));
    std::uniform_real_distribution<double> u(-2, 3);
    for (double& v : mean) v = u(rng);
    const int64_t inner = x.numel() / (c.x[0] * c.x[1]);
    for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = static_cast<float>(mean[static_cast<size_t>((i / inner) % c.x[1])]);
    for (double& v : mean) v = static_cast<float>(v);
    const HostTensor w = random_tensor(c.w, rng, -1, 1);
    const std::vector<float> r = rounded(w, 0.125f);

    ir::Graph g;
    ir::Value* xv = g.add_value("x");
    xv->shape = c.x;
    ir::Node* n = g.add_node("Conv", "conv");
    ir::Value* yv = g.add_value("y");
    yv->shape = y;
    n->inputs = {xv};
    n->outputs = {yv};
    n->attrs.set("group", c.group);
    n->attrs.set("strides", c.strides);
    n->attrs.set("dilations", c.dilations);
    n->attrs.set("pads", c.pads);
    std::vector<double> shift;
    ASSERT_TRUE(output_mean_shift(*n, w, r, mean, &shift));
    const std::vector<double> want = direct_mean_shift(c, x, w, r, y);
    ASSERT_EQ(shift.size(), want.size());
    double largest = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(shift[i], want[i], 1e-9 * (1 + std::fabs(want[i]))) << "channel " << i;
      largest = std::max(largest, std::fabs(want[i]));
    }
    EXPECT_GT(largest, 1e-3);  // the rounding does shift the mean: the comparison is not 0 == 0
  }
}

TEST(BiasCorrection, MatMulShiftIsTheMeanRowTimesTheWeightError) {
  std::mt19937 rng(12);
  const HostTensor x = random_tensor({9, 16}, rng, -0.5f, 2.f);
  const HostTensor w = random_tensor({16, 5}, rng, -1, 1);
  const std::vector<float> r = rounded(w, 0.1f);
  std::vector<double> mean(16, 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) mean[static_cast<size_t>(i % 16)] += x.as<float>()[i] / 9.0;
  ir::Graph g;
  ir::Value* xv = g.add_value("x");
  xv->shape = {9, 16};
  ir::Node* n = g.add_node("Gemm", "gemm");
  n->inputs = {xv};
  n->outputs = {g.add_value("y")};
  std::vector<double> shift;
  ASSERT_TRUE(output_mean_shift(*n, w, r, mean, &shift));
  ASSERT_EQ(shift.size(), 5u);
  for (int64_t c = 0; c < 5; ++c) {
    double want = 0;
    for (int64_t row = 0; row < 9; ++row)
      for (int64_t k = 0; k < 16; ++k)
        want += x.as<float>()[row * 16 + k] * (static_cast<double>(w.as<float>()[k * 5 + c]) - r[static_cast<size_t>(k * 5 + c)]) / 9.0;
    EXPECT_NEAR(shift[static_cast<size_t>(c)], want, 1e-9);
  }
  // Not applicable: a batched input (axis 1 is not the channel axis), means of another length.
  xv->shape = {2, 9, 16};
  EXPECT_FALSE(output_mean_shift(*n, w, r, mean, &shift));
  EXPECT_TRUE(shift.empty());
  xv->shape = {9, 16};
  EXPECT_FALSE(output_mean_shift(*n, w, r, std::vector<double>(15, 1.0), &shift));
  EXPECT_FALSE(output_mean_shift(*n, w, r, {}, &shift));
}

TEST(BiasCorrection, CalibrationCacheKeepsChannelMeansAsVersion4) {
  const std::string path = ::testing::TempDir() + "kiln_cache_v4.cache";
  std::map<std::string, TensorRange> in;
  in["x"].amax = 3;
  in["x"].channel_mean = {-1.5, 0, 0.1};
  in["y"].amax = 1;
  ASSERT_TRUE(write_calibration_cache(path, "entropy", in).is_ok());
  {
    std::ifstream f(path);
    std::string header;
    std::getline(f, header);
    EXPECT_EQ(header, "kiln-calibration-cache 4");
  }
  std::map<std::string, TensorRange> out;
  Status st = read_calibration_cache(path, "entropy", &out);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(out["x"].channel_mean, in["x"].channel_mean);
  EXPECT_TRUE(out["y"].channel_mean.empty());
  const std::pair<std::string, std::string> bad[] = {
      {"kiln-calibration-cache 3\ncalibrator minmax\n0x1p+1 0x0p+0 x\nmeans 1 0x1p+0 x\n", "bad range"},
      {"kiln-calibration-cache 4\ncalibrator minmax\n0x1p+1 0x0p+0 x\nmeans 2 0x1p+0,nan x\n", "bad channel mean for 'x'"},
      {"kiln-calibration-cache 4\ncalibrator minmax\n0x1p+1 0x0p+0 x\nmeans 3 0x1p+0,-0x1p+0 x\n", "2 channel means, the line says 3"},
      {"kiln-calibration-cache 4\ncalibrator minmax\n0x1p+1 0x0p+0 x\nmeans 1 0x1p+0 z\n", "means for 'z', which has no range line"},
      {"kiln-calibration-cache 6\ncalibrator minmax\n0x1p+1 0x0p+0 x\n", "unknown header"},
  };
  for (const auto& [body, why] : bad) {
    write_checksummed_cache(path, body);
    st = read_calibration_cache(path, "minmax", &out);
    EXPECT_FALSE(st.is_ok()) << body;
    EXPECT_NE(st.message().find(why), std::string::npos) << st.message();
  }
}

// x [1, 8, 6, 6] -> Conv(w [6, 8, 3, 3], b, pad 1) -> y; inputs with a large positive mean, so
// the weights' rounding shifts the output mean well beyond the activations' rounding noise.
std::shared_ptr<Plan> conv_plan(const HostTensor& w, const HostTensor& b, const std::string& precision,
                                const std::string& calib, bool correct) {
  GraphBuilder gb;
  HostTensor x(DType::kFloat32, Shape{1, 8, 6, 6});
  Attributes a;
  a.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  const std::string xn = gb.input(x);
  gb.output(gb.node("Conv", {xn, gb.constant(w), gb.constant(b)}, a));
  BuildOptions o;
  o.precision = precision;
  o.calib_dir = calib;
  o.calibrator = "minmax";
  o.bias_correction = correct;
  std::shared_ptr<Plan> plan;
  Status st = gb.build(&plan, o);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return plan;
}

std::vector<float> run_plan(const std::shared_ptr<Plan>& plan, const HostTensor& x) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  EXPECT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  std::vector<float> y(6 * 36);
  EXPECT_TRUE(ctx->bind_input(plan->tensors[plan->inputs[0]].name, DType::kFloat32, x.shape(), x.data(), x.size_bytes()).is_ok());
  EXPECT_TRUE(ctx->bind_output(plan->tensors[plan->outputs[0]].name, y.data(), y.size() * 4).is_ok());
  Status st = ctx->run();
  EXPECT_TRUE(st.is_ok()) << st.message();
  return y;
}

TEST(BiasCorrection, Int8AndFp8BuildsLoseTheirOutputMeanError) {
  std::mt19937 rng(13);
  const HostTensor w = random_tensor({6, 8, 3, 3}, rng, -0.3f, 0.3f);
  const HostTensor b = random_tensor({6}, rng, -0.1f, 0.1f);
  const std::string dir = scratch_dir("bias_correction_calib");
  for (int i = 0; i < 16; ++i)
    ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy", random_tensor({1, 8, 6, 6}, rng, 2.f, 6.f)).is_ok());
  const auto fp32 = conv_plan(w, b, "fp32", "", false);
  for (const char* precision : {"int8", "fp8"}) {
    SCOPED_TRACE(precision);
    const auto plain = conv_plan(w, b, precision, dir, false);
    const auto corrected = conv_plan(w, b, precision, dir, true);
    // Mean error per output channel over held-out inputs of the same distribution.
    std::vector<double> err_plain(6, 0.0), err_corrected(6, 0.0);
    for (int i = 0; i < 16; ++i) {
      const HostTensor x = random_tensor({1, 8, 6, 6}, rng, 2.f, 6.f);
      const std::vector<float> want = run_plan(fp32, x), p = run_plan(plain, x), c = run_plan(corrected, x);
      for (size_t k = 0; k < want.size(); ++k) {
        err_plain[k / 36] += (p[k] - want[k]) / (16.0 * 36);
        err_corrected[k / 36] += (c[k] - want[k]) / (16.0 * 36);
      }
    }
    double plain_sum = 0, corrected_sum = 0;
    for (int c = 0; c < 6; ++c) plain_sum += std::fabs(err_plain[c]), corrected_sum += std::fabs(err_corrected[c]);
    EXPECT_GT(plain_sum, 0.0);
    EXPECT_LT(corrected_sum, 0.5 * plain_sum) << "mean |error| per channel: plain " << plain_sum / 6 << ", corrected "
                                              << corrected_sum / 6;
  }
}

}  // namespace
}  // namespace kiln::test
