// FP8 linear ops (Fp8Conv, Fp8MatMul; runtime/backends/quantize_fp8_geometry.h): the CPU
// kernel against a naive double-precision convolution / matmul over the spec's decoded values
// followed by the spec's cast (runtime/core/float8.h, checked against onnx's reference in
// quantize_test.cpp), OpenCL == CPU bit for bit on random geometries and type mixes (both
// accumulate in float32 in the same order), saturation, and errors that name the node.
#include <cmath>

#include "runtime/core/float8.h"
#include "runtime/ops/kernel_api.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

const DType kE4 = DType::kFloat8E4M3FN, kE5 = DType::kFloat8E5M2, kF32 = DType::kFloat32;

// Uniform values in [lo, hi) stored as `dtype` (float8: the spec's saturating cast).
HostTensor values(DType dtype, const Shape& shape, std::mt19937& rng, double lo = -2, double hi = 2) {
  const HostTensor f = random_tensor(kF32, shape, rng, lo, hi);
  if (dtype == kF32) return f;
  HostTensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<uint8_t>()[i] = float_to_float8(dtype, f.as<float>()[i], true);
  return t;
}

double value_at(const HostTensor& t, int64_t i) {
  return t.dtype() == kF32 ? t.as<float>()[i] : float8_to_float(t.dtype(), t.as<uint8_t>()[i]);
}

struct ConvGeom {
  int64_t group = 1;
  std::vector<int64_t> strides, dil, pads;  // pads: begin..., end...
};

Attributes conv_attrs(const Shape& w, const ConvGeom& g) {
  Attributes a;
  a.set("group", g.group);
  a.set("kernel_shape", std::vector<int64_t>(w.begin() + 2, w.end()));
  a.set("strides", g.strides);
  a.set("dilations", g.dil);
  a.set("pads", g.pads);
  return a;
}

// Naive 2-D convolution in double over decoded values, with the scales and bias applied.
std::vector<double> naive_conv2d(const HostTensor& x, const HostTensor& w, double sx, const HostTensor& sw,
                                 const HostTensor* bias, const ConvGeom& g, Shape* out) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], M = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const int64_t OH = (H + g.pads[0] + g.pads[2] - ((KH - 1) * g.dil[0] + 1)) / g.strides[0] + 1;
  const int64_t OW = (W + g.pads[1] + g.pads[3] - ((KW - 1) * g.dil[1] + 1)) / g.strides[1] + 1;
  *out = {N, M, OH, OW};
  std::vector<double> y(static_cast<size_t>(N * M * OH * OW));
  const int64_t Mg = M / g.group;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = 0;
          const int64_t c0 = (m / Mg) * Cg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                const int64_t ih = oh * g.strides[0] - g.pads[0] + kh * g.dil[0];
                const int64_t iw = ow * g.strides[1] - g.pads[1] + kw * g.dil[1];
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += value_at(x, ((n * C + c0 + c) * H + ih) * W + iw) * value_at(w, ((m * Cg + c) * KH + kh) * KW + kw);
              }
          const double s = sx * sw.as<float>()[sw.numel() == 1 ? 0 : m];
          y[((n * M + m) * OH + oh) * OW + ow] = acc * s + (bias ? bias->as<float>()[m] : 0.0);
        }
  return y;
}

// kiln's output against the exact result `want` (before dividing by sy): FP8 outputs must be
// the spec's cast of it or, where float32 accumulation lands on the other side of a rounding
// midpoint, its neighbour code; most must be exact. Float32 outputs agree to float precision.
::testing::AssertionResult matches_reference(const HostTensor& got, const std::vector<double>& want, float sy,
                                             bool saturate = true) {
  int64_t exact = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double v = want[static_cast<size_t>(i)] / sy;
    if (got.dtype() == kF32) {
      if (std::fabs(got.as<float>()[i] - v) > 1e-5 + 1e-5 * std::fabs(v))
        return ::testing::AssertionFailure() << "element " << i << ": got " << got.as<float>()[i] << ", want " << v;
      ++exact;
      continue;
    }
    const uint8_t g = got.as<uint8_t>()[i], w = float_to_float8(got.dtype(), static_cast<float>(v), saturate);
    if (g == w) {
      ++exact;
      continue;
    }
    const bool neighbour = (g & 0x80) == (w & 0x80) && std::abs((g & 0x7F) - (w & 0x7F)) == 1;
    const bool zeros = (g & 0x7F) == 0 && (w & 0x7F) == 0;
    if (!neighbour && !zeros)
      return ::testing::AssertionFailure() << "element " << i << ": code 0x" << std::hex << int{g} << ", want 0x"
                                           << int{w} << std::dec << " (value " << v << ")";
  }
  if (exact < got.numel() * 98 / 100)
    return ::testing::AssertionFailure() << "only " << exact << " of " << got.numel() << " elements exact";
  return ::testing::AssertionSuccess();
}

TEST(QuantizeFp8Ops, ConvMatchesNaiveConvolution) {
  std::mt19937 rng(11);
  struct Case { DType x, w, y; int64_t group; bool bias; };
  const Case cases[] = {{kE4, kE4, kE4, 1, true}, {kE5, kE5, kE5, 2, false}, {kE4, kE5, kF32, 2, true},
                        {kF32, kE4, kF32, 1, true}, {kF32, kE5, kE4, 1, false}};
  for (const Case& c : cases) {
    SCOPED_TRACE(dtype_name(c.x) + " x " + dtype_name(c.w) + " -> " + dtype_name(c.y));
    ConvGeom g{c.group, {2, 1}, {1, 2}, {1, 0, 1, 2}};
    const HostTensor x = values(c.x, {2, 4, 9, 8}, rng), w = values(c.w, {6, 4 / c.group, 3, 2}, rng);
    const HostTensor sw = random_tensor(kF32, {6}, rng, 0.05, 0.5), bias = random_tensor(kF32, {6}, rng);
    const float sx = 0.375f, sy = c.y == kF32 ? 1.f : 0.0625f;
    Shape os;
    const std::vector<double> want = naive_conv2d(x, w, sx, sw, c.bias ? &bias : nullptr, g, &os);
    OpSpec s{"Fp8Conv", 19, conv_attrs(w.shape(), g), {x, scalar_f32(sx), w, sw, scalar_f32(sy)}, {false, true, true, true, true}};
    if (c.bias) s.inputs.push_back(bias), s.constant.push_back(true);
    s.attrs.set("output_dtype", static_cast<int64_t>(c.y));
    std::vector<HostTensor> out;
    Status st = run_op(s, "cpu", &out);
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_EQ(out[0].shape(), os);
    ASSERT_EQ(out[0].dtype(), c.y);
    EXPECT_TRUE(matches_reference(out[0], want, sy));
    if (have_opencl()) {
      EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
    }
  }
}

TEST(QuantizeFp8Ops, MatMulMatchesNaiveProduct) {
  std::mt19937 rng(12);
  for (DType t : {kE4, kE5}) {
    SCOPED_TRACE(dtype_name(t));
    const int64_t B = 3, M = 5, K = 37, N = 70;  // N past one 64-column tile
    const HostTensor a = values(t, {B, M, K}, rng), b = values(t == kE4 ? kE5 : kE4, {K, N}, rng);
    const HostTensor sb = random_tensor(kF32, {N}, rng, 0.05, 0.5), bias = random_tensor(kF32, {N}, rng);
    const float sa = 0.5f, sy = 0.125f;
    std::vector<double> want(static_cast<size_t>(B * M * N));
    for (int64_t r = 0; r < B * M; ++r)
      for (int64_t n = 0; n < N; ++n) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += value_at(a, r * K + k) * value_at(b, k * N + n);
        want[r * N + n] = acc * sa * sb.as<float>()[n] + bias.as<float>()[n];
      }
    OpSpec s{"Fp8MatMul", 19, {}, {a, scalar_f32(sa), b, sb, scalar_f32(sy), bias}, {false, true, true, true, true, true}};
    s.attrs.set("output_dtype", static_cast<int64_t>(t));
    std::vector<HostTensor> out;
    Status st = run_op(s, "cpu", &out);
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_EQ(out[0].shape(), (Shape{B, M, N}));
    EXPECT_TRUE(matches_reference(out[0], want, sy));
    if (have_opencl()) {
      EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
    }
  }
}

TEST(QuantizeFp8Ops, OutputCastSaturatesOrOverflowsAsTheSpecSays) {
  // x * w = 16 * 32 = 512 per element, past E4M3FN's 448: saturate=1 gives 448, saturate=0 NaN;
  // in E5M2 (max 57344) y_scale 1/128 makes it 65536: 57344 or Inf.
  for (DType t : {kE4, kE5}) {
    for (int64_t sat : {1, 0}) {
      HostTensor a(kE4, {1, 1}), b(kE4, {1, 2});
      a.as<uint8_t>()[0] = float_to_float8(kE4, 16.f, true);
      b.as<uint8_t>()[0] = b.as<uint8_t>()[1] = float_to_float8(kE4, 32.f, true);
      OpSpec s{"Fp8MatMul", 19, {}, {a, scalar_f32(1), b, scalar_f32(1), scalar_f32(t == kE4 ? 1.f : 1.f / 128)},
               {false, true, true, true, true}};
      s.attrs.set("output_dtype", static_cast<int64_t>(t));
      s.attrs.set("saturate", sat);
      for (const char* dev : {"cpu", "opencl"}) {
        if (std::string(dev) == "opencl" && !have_opencl()) continue;
        std::vector<HostTensor> out;
        ASSERT_TRUE(run_op(s, dev, &out).is_ok());
        const float v = float8_to_float(t, out[0].as<uint8_t>()[0]);
        if (sat) EXPECT_EQ(v, t == kE4 ? 448.f : 57344.f) << dev;
        else if (t == kE4) EXPECT_TRUE(std::isnan(v)) << dev;
        else EXPECT_TRUE(std::isinf(v) && v > 0) << dev;
      }
    }
  }
}

TEST(QuantizeFp8Ops, OpenCLMatchesCpuOnRandomGeometries) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(21);
  const DType kinds[] = {kE4, kE5, kF32};
  for (int iter = 0; iter < 12; ++iter) {
    const int nd = 1 + iter % 3;
    std::uniform_int_distribution<int64_t> sp(3, nd == 3 ? 6 : 12), kd(1, 3), st(1, 2);
    const int64_t group = iter % 4 == 3 ? 2 : 1, Cg = 1 + iter % 3, Mg = 1 + (iter * 7) % 5;
    Shape x{1 + iter % 2, Cg * group}, w{Mg * group, Cg};
    ConvGeom g{group, {}, {}, std::vector<int64_t>(2 * nd)};
    for (int d = 0; d < nd; ++d) {
      x.push_back(sp(rng));
      w.push_back(kd(rng));
      g.strides.push_back(st(rng));
      g.dil.push_back(iter % 5 == 2 ? 2 : 1);
      g.pads[d] = iter % 2;
      g.pads[nd + d] = (iter / 2) % 2;
    }
    bool fits = true;
    for (int d = 0; d < nd; ++d) fits = fits && (w[2 + d] - 1) * g.dil[d] + 1 <= x[2 + d] + g.pads[d] + g.pads[nd + d];
    if (!fits) continue;
    SCOPED_TRACE("x " + shape_str(x) + " w " + shape_str(w));
    const DType tx = kinds[iter % 3], tw = kinds[iter % 2], ty = kinds[(iter / 3) % 3];
    OpSpec s{"Fp8Conv", 19, conv_attrs(w, g),
             {values(tx, x, rng), scalar_f32(0.25f), values(tw, w, rng),
              random_tensor(kF32, iter % 2 ? Shape{w[0]} : Shape{}, rng, 0.05, 1), scalar_f32(0.0625f),
              random_tensor(kF32, {w[0]}, rng)},
             {false, true, true, true, true, true}};
    if (iter % 4 == 1) s.inputs.pop_back(), s.constant.pop_back();
    s.attrs.set("output_dtype", static_cast<int64_t>(ty));
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  }
}

TEST(QuantizeFp8Ops, ErrorsNameTheNode) {
  std::mt19937 rng(3);
  auto expect_error = [](const OpSpec& s, const std::string& needle) {
    std::vector<HostTensor> out;
    Status st = run_op(s, "cpu", &out);
    ASSERT_FALSE(st.is_ok()) << "expected an error containing '" << needle << "'";
    EXPECT_NE(st.message().find(s.op_type + "_node"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  const HostTensor a = values(kE4, {2, 3}, rng), b = values(kE4, {3, 4}, rng);
  OpSpec bias{"Fp8MatMul", 19, {}, {a, scalar_f32(1), b, scalar_f32(1), scalar_f32(1), random_tensor(kF32, {3}, rng)},
              {false, true, true, true, true, true}};
  expect_error(bias, "bias shape 3 must be [4]");
  OpSpec int_w{"Fp8MatMul", 19, {}, {a, scalar_f32(1), HostTensor(DType::kInt8, {3, 4}), scalar_f32(1), scalar_f32(1)},
               {false, true, true, true, true}};
  expect_error(int_w, "input 2 has dtype int8");
  OpSpec scale{"Fp8MatMul", 19, {}, {a, scalar_f32(1), b, random_tensor(kF32, {3}, rng), scalar_f32(1)},
               {false, true, true, true, true}};
  expect_error(scale, "b_scale shape 3 is neither a scalar nor [4]");
  OpSpec conv{"Fp8Conv", 19, {}, {values(kE4, {1, 2, 5, 5}, rng), scalar_f32(1), values(kE4, {3, 2, 3, 3}, rng),
                                  scalar_f32(1), scalar_f32(1)}, {false, true, true, true, true}};
  expect_error(conv, "must be explicit");
}

TEST(QuantizeFp8Ops, MalformedPlanNodesAreRefusedByName) {
  // A plan is untrusted: the kernel checks the geometry before reading anything.
  std::mt19937 rng(4);
  HostTensor x = values(kE4, {1, 4, 5, 5}, rng), w = values(kE4, {6, 2, 3, 3}, rng), s = scalar_f32(1);
  PlanNode node;
  node.name = "bad_conv";
  node.op = "Fp8Conv";
  node.attrs = conv_attrs(w.shape(), {2, {1, 1}, {1, 1}, {0, 0, 0, 0}});
  auto run = [&](const Shape& out_shape) {
    HostTensor y(kE4, out_shape);
    return run_cpu_kernel(node, {x.view(), s.view(), w.view(), s.view(), s.view()}, {y.view()});
  };
  ASSERT_TRUE(run({1, 6, 3, 3}).is_ok());
  Status st = run({1, 6, 4, 4});
  EXPECT_NE(st.message().find("bad_conv"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("does not match"), std::string::npos) << st.message();
  node.attrs.set("group", int64_t{0});
  st = run({1, 6, 3, 3});
  EXPECT_NE(st.message().find("bad_conv"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("group 0"), std::string::npos) << st.message();
  node.attrs.set("group", int64_t{2});
  HostTensor wrong_scale = random_tensor(kF32, {5}, rng);
  HostTensor y(kE4, {1, 6, 3, 3});
  st = run_cpu_kernel(node, {x.view(), s.view(), w.view(), wrong_scale.view(), s.view()}, {y.view()});
  EXPECT_NE(st.message().find("w_scale has 5 elements, expected 1 or 6"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
