// Quantize family: FP8 conversions checked bit-exactly against the ONNX float8 rules, integer
// rounding and saturation, hand-computed integer GEMM/conv results, OpenCL == CPU on random
// shapes/axes/blocks/zero points (exactly: both backends do the same integer and float32 math),
// and errors that name the node.
#include <cmath>
#include <limits>

#include "runtime/core/float8.h"
#include "runtime/core/half.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {


// Uniform random values of an integer-like dtype in [lo, hi] (float8: random codes, no NaN).
HostTensor random_q(DType dtype, const Shape& shape, std::mt19937& rng, int lo, int hi) {
  std::uniform_int_distribution<int> u(lo, hi);
  HostTensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int v = u(rng);
    switch (dtype) {
      case DType::kInt32: t.as<int32_t>()[i] = v; break;
      case DType::kInt16: t.as<int16_t>()[i] = static_cast<int16_t>(v); break;
      case DType::kUInt16: t.as<uint16_t>()[i] = static_cast<uint16_t>(v); break;
      case DType::kInt8: t.as<int8_t>()[i] = static_cast<int8_t>(v); break;
      case DType::kUInt8: t.as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      case DType::kFloat8E4M3FN: case DType::kFloat8E5M2: {
        uint8_t c = static_cast<uint8_t>(v);
        const int nan_from = dtype == DType::kFloat8E4M3FN ? 0x7F : 0x7D;
        if ((c & 0x7F) >= nan_from) c = static_cast<uint8_t>(c & 0x80);
        t.as<uint8_t>()[i] = c;
        break;
      }
      default: ADD_FAILURE() << "random_q(): dtype " << dtype_name(dtype);
    }
  }
  return t;
}

// Positive random scales (powers of two and odd fractions, so requantization hits exact ties too).
HostTensor random_scale(const Shape& shape, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.01f, 0.5f);
  HostTensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = (i % 3 == 0) ? 0.25f : u(rng);
  return t;
}

std::pair<int, int> int_range(DType t) {
  switch (t) {
    case DType::kInt8: return {-128, 127};
    case DType::kUInt8: return {0, 255};
    case DType::kInt16: return {-32768, 32767};
    case DType::kUInt16: return {0, 65535};
    case DType::kInt32: return {-100000, 100000};
    default: return {0, 255};  // float8 codes
  }
}

uint8_t code_at(const HostTensor& t, int64_t i) { return t.as<uint8_t>()[i]; }

void expect_error(const OpSpec& s, const std::string& needle) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok()) << "expected an error containing '" << needle << "'";
  EXPECT_NE(st.message().find(s.op_type + "_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
}

// ---------------------------------------------------------------- FP8 conversions

TEST(QuantizeOps, Float8E4M3FNDecodesAll256Codes) {
  for (int c = 0; c < 256; ++c) {
    const float v = float8e4m3fn_to_float(static_cast<uint8_t>(c));
    const int e = (c >> 3) & 0xF, m = c & 7;
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    // E4M3FN: bias 7, subnormals m * 2^-9, no infinities; every other code is finite.
    const double mag = e == 0 ? m * std::ldexp(1.0, -9) : (1.0 + m / 8.0) * std::ldexp(1.0, e - 7);
    EXPECT_EQ(v, (c & 0x80) ? -mag : mag) << "code " << c;
    EXPECT_EQ(float_to_float8e4m3fn(v, true), c) << "round trip of code " << c;
    EXPECT_EQ(float_to_float8e4m3fn(v, false), c) << "round trip of code " << c;
  }
  EXPECT_EQ(float8e4m3fn_to_float(0x7E), 448.f);
  EXPECT_EQ(float8e4m3fn_to_float(0x38), 1.f);
  EXPECT_EQ(float8e4m3fn_to_float(0x01), std::ldexp(1.f, -9));
  EXPECT_TRUE(std::signbit(float8e4m3fn_to_float(0x80)));
}

TEST(QuantizeOps, Float8E5M2DecodesAll256Codes) {
  for (int c = 0; c < 256; ++c) {
    const float v = float8e5m2_to_float(static_cast<uint8_t>(c));
    const int e = (c >> 2) & 0x1F, m = c & 3;
    if (e == 31) {
      if (m == 0) EXPECT_EQ(v, (c & 0x80) ? -INFINITY : INFINITY) << c;
      else EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    const double mag = e == 0 ? m * std::ldexp(1.0, -16) : (1.0 + m / 4.0) * std::ldexp(1.0, e - 15);
    EXPECT_EQ(v, (c & 0x80) ? -mag : mag) << "code " << c;
    EXPECT_EQ(float_to_float8e5m2(v, true), c) << "round trip of code " << c;
  }
  EXPECT_EQ(float8e5m2_to_float(0x7B), 57344.f);
  EXPECT_EQ(float8e5m2_to_float(0x3C), 1.f);
}

// Every midpoint between two adjacent finite codes rounds to the even code; a hair off it, to
// the nearer one.
void check_midpoints(DType t, int max_code) {
  for (int c = 0; c < max_code; ++c) {
    const float lo = float8_to_float(t, static_cast<uint8_t>(c)), hi = float8_to_float(t, static_cast<uint8_t>(c + 1));
    const float mid = (lo + hi) / 2;  // exact: float8 values have few significant bits
    const int even = (c % 2 == 0) ? c : c + 1;
    EXPECT_EQ(float_to_float8(t, mid, true), even) << dtype_name(t) << " midpoint of " << c << " and " << c + 1;
    EXPECT_EQ(float_to_float8(t, -mid, true), even | 0x80) << dtype_name(t) << " -midpoint after " << c;
    EXPECT_EQ(float_to_float8(t, std::nextafter(mid, 0.f), true), c) << dtype_name(t) << " below midpoint " << c;
    EXPECT_EQ(float_to_float8(t, std::nextafter(mid, INFINITY), true), c + 1) << dtype_name(t) << " above " << c;
  }
}

TEST(QuantizeOps, Float8RoundsToNearestEven) {
  check_midpoints(DType::kFloat8E4M3FN, 0x7E);
  check_midpoints(DType::kFloat8E5M2, 0x7B);
  // Below half the smallest subnormal: zero, keeping the sign.
  EXPECT_EQ(float_to_float8e4m3fn(std::ldexp(1.f, -10), true), 0x00);
  EXPECT_EQ(float_to_float8e4m3fn(-std::ldexp(1.f, -11), true), 0x80);
  EXPECT_EQ(float_to_float8e5m2(1e-7f, true), 0x00);
  EXPECT_EQ(float_to_float8e4m3fn(std::numeric_limits<float>::denorm_min(), true), 0x00);
}

TEST(QuantizeOps, Float8SaturationFollowsTheSpec) {
  const float inf = INFINITY, nan = NAN;
  // E4M3FN: max 448; 464 is the tie between 448 and the (NaN) 480 pattern -> 448.
  EXPECT_EQ(float_to_float8e4m3fn(464.f, false), 0x7E);
  EXPECT_EQ(float_to_float8e4m3fn(465.f, true), 0x7E);
  EXPECT_EQ(float_to_float8e4m3fn(465.f, false), 0x7F);
  EXPECT_EQ(float_to_float8e4m3fn(1e6f, true), 0x7E);
  EXPECT_EQ(float_to_float8e4m3fn(-1e6f, true), 0xFE);
  EXPECT_EQ(float_to_float8e4m3fn(-1e6f, false) & 0x7F, 0x7F);
  EXPECT_EQ(float_to_float8e4m3fn(inf, true), 0x7E);
  EXPECT_EQ(float_to_float8e4m3fn(-inf, true), 0xFE);
  EXPECT_EQ(float_to_float8e4m3fn(inf, false), 0x7F);
  EXPECT_EQ(float_to_float8e4m3fn(nan, true) & 0x7F, 0x7F);
  // E5M2: max 57344 (odd mantissa), Inf exists; 61440 is the tie between max and the even
  // 65536 pattern, so it rounds up into overflow.
  EXPECT_EQ(float_to_float8e5m2(61439.f, false), 0x7B);
  EXPECT_EQ(float_to_float8e5m2(61440.f, false), 0x7C);
  EXPECT_EQ(float_to_float8e5m2(61440.f, true), 0x7B);
  EXPECT_EQ(float_to_float8e5m2(1e9f, true), 0x7B);
  EXPECT_EQ(float_to_float8e5m2(-1e9f, false), 0xFC);
  EXPECT_EQ(float_to_float8e5m2(inf, true), 0x7B);
  EXPECT_EQ(float_to_float8e5m2(-inf, false), 0xFC);
  EXPECT_TRUE(std::isnan(float8e5m2_to_float(float_to_float8e5m2(nan, false))));
}

// ---------------------------------------------------------------- QuantizeLinear / DequantizeLinear

TEST(QuantizeOps, IntQuantizeRoundsHalfToEvenAndSaturates) {
  const std::vector<double> x = {0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 300, -300, 3.49, 126.5};
  OpSpec s{"QuantizeLinear", 13, {}, {tensor_of(DType::kFloat32, {10}, x), scalar_of(DType::kFloat32, 1),
                                      scalar_of(DType::kInt8, 0)}, {false, true, true}};
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kInt8, {10}, {0, 2, 2, 0, -2, -2, 127, -128, 3, 126}), 0, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  }
  // uint8 with zero point 128: the zero point is added after rounding.
  s.inputs[1] = scalar_of(DType::kFloat32, 0.5);
  s.inputs[2] = scalar_of(DType::kUInt8, 128);
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kUInt8, {10}, {129, 131, 133, 127, 125, 123, 255, 0, 135, 255}), 0, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  }
}

// Quotients at and one float step around every rounding tie (k + 0.5): the OpenCL kernels round
// x * (1 / scale) except near ties, where they divide (kernels/rint_div.cl); the results must be
// the CPU's correctly rounded x / scale, bit for bit.
TEST(QuantizeOps, QuotientsAtRoundingTiesMatchTheDivision) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  for (float scale : {0.1f, 0.37f, 2.0f, 3e-3f}) {
    std::vector<double> x;
    for (int k = -140; k <= 140; ++k) {
      const float tie = (static_cast<float>(k) + 0.5f) * scale;
      for (float v : {tie, std::nextafter(tie, -1e9f), std::nextafter(tie, 1e9f)}) x.push_back(v);
    }
    for (DType qt : {DType::kInt8, DType::kUInt8}) {
      SCOPED_TRACE(dtype_name(qt) + " scale " + std::to_string(scale));
      OpSpec s{"QuantizeLinear", 13, {}, {tensor_of(DType::kFloat32, {static_cast<int64_t>(x.size())}, x),
                                          scalar_of(DType::kFloat32, scale), scalar_of(qt, qt == DType::kUInt8 ? 128 : 0)},
               {false, true, true}};
      EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
    }
  }
}

// Every midpoint between neighbouring float8 codes (subnormal, normal, and past the largest
// finite code), one float step either side, zeros, +-Inf and NaN of both signs, both saturate
// modes: the OpenCL conversion (one cvt.rn.satfinite instruction on NVIDIA where saturating) must
// give the CPU's codes bit for bit.
TEST(QuantizeOps, Float8MidpointsMatchTheCpu) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  for (DType qt : {DType::kFloat8E4M3FN, DType::kFloat8E5M2}) {
    const bool e4 = qt == DType::kFloat8E4M3FN;
    auto decode = [&](int c) {
      const uint8_t code = static_cast<uint8_t>(c);
      return e4 ? float8e4m3fn_to_float(code) : float8e5m2_to_float(code);
    };
    const int max_code = e4 ? 0x7E : 0x7B;
    std::vector<double> x = {0.0, -0.0, INFINITY, -INFINITY, NAN, -NAN, 1e-42, -1e-42, 1e30, -1e30};
    for (int c = 0; c <= max_code; ++c) {
      const float lo = decode(c);
      // Past the largest code: where the next code would be (one more exponent step).
      const float hi = c < max_code ? decode(c + 1) : lo + (lo - decode(c - 1));
      const float mid = lo + (hi - lo) / 2;
      for (float v : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f), hi}) {
        x.push_back(v);
        x.push_back(-v);
      }
    }
    for (int sat : {0, 1}) {
      SCOPED_TRACE(dtype_name(qt) + " saturate " + std::to_string(sat));
      OpSpec s{"QuantizeLinear", 19, {}, {tensor_of(DType::kFloat32, {static_cast<int64_t>(x.size())}, x),
                                          scalar_of(DType::kFloat32, 1), scalar_of(qt, 0)}, {false, true, true}};
      s.attrs.set("saturate", int64_t{sat});
      EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
    }
  }
}

TEST(QuantizeOps, Float8QuantizeSaturateAttribute) {
  const std::vector<double> x = {1.0, 1000.0, -1000.0, 0.0625, 1e-9};
  for (int sat : {0, 1}) {
    OpSpec s{"QuantizeLinear", 19, {}, {tensor_of(DType::kFloat32, {5}, x), scalar_of(DType::kFloat32, 2),
                                        scalar_of(DType::kFloat8E4M3FN, 0)}, {false, true, true}};
    s.attrs.set("saturate", int64_t{sat});
    std::vector<HostTensor> out;
    ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
    ASSERT_EQ(out[0].dtype(), DType::kFloat8E4M3FN);
    EXPECT_EQ(code_at(out[0], 0), 0x30);  // 0.5
    EXPECT_EQ(code_at(out[0], 1), sat ? 0x7E : 0x7F);  // 500: max or NaN
    EXPECT_EQ(code_at(out[0], 2), sat ? 0xFE : 0xFF);
    EXPECT_EQ(code_at(out[0], 3), 0x10);  // 2^-5
    EXPECT_EQ(code_at(out[0], 4), 0x00);
    if (have_opencl()) {
      EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
    }
  }
}

// A float16 x (what the FP16 pass hands a QuantizeLinear after a float16 producer, Fp16::kReads)
// quantizes exactly as its float32 value does, on both backends, per tensor and per axis.
TEST(QuantizeOps, Float16InputQuantizesLikeItsFloat32Value) {
  std::mt19937 rng(16);
  for (DType qt : {DType::kInt8, DType::kUInt8, DType::kFloat8E4M3FN, DType::kFloat8E5M2}) {
    for (int per_axis : {0, 1}) {
      SCOPED_TRACE(dtype_name(qt) + (per_axis ? " per axis" : " per tensor"));
      const bool fp8 = qt == DType::kFloat8E4M3FN || qt == DType::kFloat8E5M2;
      const Shape x_shape{3, 5, 71};  // per tensor: 133 groups of 8 values and one more
      // Mostly within range (scales are 0.01 to 0.5), some saturating.
      HostTensor x32 = random_tensor(DType::kFloat32, x_shape, rng, fp8 ? -300 : -40, fp8 ? 300 : 40);
      HostTensor x16(DType::kFloat16, x_shape);
      for (int64_t i = 0; i < x32.numel(); ++i) {
        x16.as<uint16_t>()[i] = float_to_half(x32.as<float>()[i]);
        x32.as<float>()[i] = half_to_float(x16.as<uint16_t>()[i]);
      }
      const Shape ss = per_axis ? Shape{5} : Shape{};
      HostTensor scale = random_scale(ss, rng);
      OpSpec s16{"QuantizeLinear", 21, {}, {x16, scale, fp8 ? tensor_of(qt, ss, {0}) : tensor_of(qt, ss, {qt == DType::kUInt8 ? 128.0 : 3.0})},
                 {false, true, true}};
      if (per_axis) s16.attrs.set("axis", int64_t{1});
      OpSpec s32 = s16;
      s32.inputs[0] = x32;
      std::vector<HostTensor> want, got;
      ASSERT_TRUE(run_op(s32, "cpu", &want).is_ok());
      Status st = run_op(s16, "cpu", &got);
      ASSERT_TRUE(st.is_ok()) << st.message();
      EXPECT_TRUE(tensors_close(got[0], want[0], 0, 0));
      if (have_opencl()) {
        EXPECT_TRUE(opencl_matches_cpu(s16, 0, 0));
      }
    }
  }
}

// Scale shapes for a mode: 0 per-tensor, 1 per-axis, 2 blocked.
Shape scale_shape(int mode, const Shape& x, int64_t axis, int64_t block) {
  if (mode == 0) return {};
  if (mode == 1) return {x[axis]};
  Shape s = x;
  s[axis] = (x[axis] + block - 1) / block;
  return s;
}

TEST(QuantizeOps, QuantizeDequantizeOpenCLMatchesCpu) {
  std::mt19937 rng(7);
  const DType types[] = {DType::kUInt8, DType::kInt8, DType::kInt16, DType::kUInt16, DType::kFloat8E4M3FN,
                         DType::kFloat8E5M2};
  for (int iter = 0; iter < 36; ++iter) {
    const DType qt = types[iter % 6];
    const int mode = (iter / 6) % 3;
    const Shape x = random_shape(1 + iter % 4, rng, 7);
    const int64_t rank = static_cast<int64_t>(x.size());
    const int64_t axis = std::uniform_int_distribution<int64_t>(-rank, rank - 1)(rng);
    const int64_t ax = axis < 0 ? axis + rank : axis;
    const int64_t block = std::uniform_int_distribution<int64_t>(1, 4)(rng);
    const Shape ss = scale_shape(mode, x, ax, block);
    const bool fp8 = qt == DType::kFloat8E4M3FN || qt == DType::kFloat8E5M2;
    const auto range = int_range(qt);
    HostTensor zp = fp8 ? tensor_of(qt, ss, {0}) : random_q(qt, ss, rng, range.first, range.second);
    Attributes attrs;
    attrs.set("axis", axis);
    if (mode == 2) attrs.set("block_size", block);
    const int opset = fp8 || mode == 2 || qt == DType::kInt16 || qt == DType::kUInt16 ? 21 : 13;
    SCOPED_TRACE(dtype_name(qt) + " mode " + std::to_string(mode) + " x " + shape_str(x) + " axis " +
                 std::to_string(axis) + " block " + std::to_string(block));
    const double amp = fp8 ? 600.0 : (range.second - range.first) * 0.6;
    OpSpec q{"QuantizeLinear", opset, attrs, {random_tensor(DType::kFloat32, x, rng, -amp, amp),
                                             random_scale(ss, rng), zp}, {false, false, iter % 2 == 0}};
    EXPECT_TRUE(opencl_matches_cpu(q, 0, 0));
    OpSpec d{"DequantizeLinear", opset, attrs, {random_q(qt, x, rng, range.first, range.second),
                                               random_scale(ss, rng), zp}, {false, false, iter % 2 == 0}};
    EXPECT_TRUE(opencl_matches_cpu(d, 0, 0));
  }
  // Per-tensor QuantizeLinear to 8-bit types, eight values a work-item: whole groups and a tail.
  for (DType qt : {DType::kUInt8, DType::kInt8, DType::kFloat8E4M3FN, DType::kFloat8E5M2}) {
    for (int64_t n : {int64_t{4096}, int64_t{2 * 1001}}) {
      SCOPED_TRACE(dtype_name(qt) + " per tensor, " + std::to_string(n) + " values");
      const bool fp8 = qt == DType::kFloat8E4M3FN || qt == DType::kFloat8E5M2;
      const auto range = int_range(qt);
      const double amp = fp8 ? 600.0 : (range.second - range.first) * 0.6;
      OpSpec q{"QuantizeLinear", 21, {}, {random_tensor(DType::kFloat32, {n}, rng, -amp, amp), random_scale({}, rng),
                                          fp8 ? tensor_of(qt, {}, {0}) : random_q(qt, {}, rng, range.first, range.second)},
               {false, true, true}};
      EXPECT_TRUE(opencl_matches_cpu(q, 0, 0));
    }
  }
  // int32 DequantizeLinear (no zero point).
  OpSpec d{"DequantizeLinear", 13, {}, {random_q(DType::kInt32, {3, 5}, rng, -100000, 100000),
                                       random_scale({5}, rng)}, {false, true}};
  d.attrs.set("axis", int64_t{1});
  EXPECT_TRUE(opencl_matches_cpu(d, 0, 0));
}

TEST(QuantizeOps, BlockedDequantizeByHand) {
  // x [2, 5] blocked by 2 along axis 1 -> scale [2, 3]; the last block is partial.
  OpSpec d{"DequantizeLinear", 21, {}, {tensor_of(DType::kInt8, {2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}),
                                       tensor_of(DType::kFloat32, {2, 3}, {1, 2, 4, 8, 16, 32}),
                                       tensor_of(DType::kInt8, {2, 3}, {0, 1, 2, 3, 4, 5})}, {false, true, true}};
  d.attrs.set("axis", int64_t{1});
  d.attrs.set("block_size", int64_t{2});
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(d, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kFloat32, {2, 5}, {1, 2, 4, 6, 12, 24, 32, 64, 80, 160}), 0, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(d, 0, 0));
  }
}

// ---------------------------------------------------------------- DynamicQuantizeLinear

TEST(QuantizeOps, DynamicQuantizeLinear) {
  OpSpec s{"DynamicQuantizeLinear", 11, {}, {tensor_of(DType::kFloat32, {6}, {0, 2, -3, -2.5, 1.34, 0.5})}, {false}, 3};
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  // From the ONNX reference: scale = 5/255, zero point = rint(3 / scale) = 153.
  EXPECT_TRUE(tensors_close(out[1], scalar_of(DType::kFloat32, 5.0f / 255.0f), 0, 0));
  EXPECT_TRUE(tensors_close(out[2], scalar_of(DType::kUInt8, 153), 0, 0));
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kUInt8, {6}, {153, 255, 0, 26, 221, 179}), 0, 0));
  if (!have_opencl()) return;
  EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  std::mt19937 rng(11);
  // Single-work-group and multi-group (> 65536 elements) paths; all-positive and all-zero data.
  for (const Shape& shape : {Shape{3, 7}, Shape{300, 301}, Shape{2, 70000}}) {
    OpSpec r{"DynamicQuantizeLinear", 11, {}, {random_tensor(DType::kFloat32, shape, rng, -3.0, 7.0)}, {false}, 3};
    EXPECT_TRUE(opencl_matches_cpu(r, 0, 0)) << shape_str(shape);
    r.inputs[0] = random_tensor(DType::kFloat32, shape, rng, 0.5, 2.0);
    EXPECT_TRUE(opencl_matches_cpu(r, 0, 0)) << shape_str(shape);
  }
  OpSpec z{"DynamicQuantizeLinear", 11, {}, {tensor_of(DType::kFloat32, {4}, {0})}, {false}, 3};
  ASSERT_TRUE(run_op(z, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kUInt8, {4}, {0}), 0, 0));
  EXPECT_TRUE(opencl_matches_cpu(z, 0, 0));
}

// ---------------------------------------------------------------- integer GEMM / conv

TEST(QuantizeOps, MatMulIntegerByHand) {
  // A [2,3] uint8 with per-row zero points, B [3,2] int8 with per-column zero points.
  OpSpec s{"MatMulInteger", 10, {}, {tensor_of(DType::kUInt8, {2, 3}, {1, 2, 3, 4, 5, 6}),
                                     tensor_of(DType::kInt8, {3, 2}, {-1, 2, 3, -4, 5, 6}),
                                     tensor_of(DType::kUInt8, {2}, {1, 2}), tensor_of(DType::kInt8, {2}, {1, -1})},
           {false, false, true, true}};
  // A - za = [[0,1,2],[2,3,4]]; B - zb = [[-2,3],[2,-3],[4,7]].
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kInt32, {2, 2}, {10, 11, 18, 25}), 0, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  }
}

TEST(QuantizeOps, MatMulFamilyOpenCLMatchesCpu) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(21);
  for (int iter = 0; iter < 16; ++iter) {
    const DType ta = iter % 2 ? DType::kInt8 : DType::kUInt8, tb = iter % 4 < 2 ? DType::kUInt8 : DType::kInt8;
    std::uniform_int_distribution<int64_t> dim(1, iter < 12 ? 40 : 90);
    const int64_t M = dim(rng), K = dim(rng), N = dim(rng);
    Shape a{M, K}, b{K, N};
    if (iter % 3 == 1) { a.insert(a.begin(), 3); b.insert(b.begin(), {2, 1}); }  // batch broadcast
    if (iter % 5 == 4) a = {K};                                                 // 1-D A
    const bool rowzp = iter % 2 == 0 && a.size() > 1;
    const auto ra = int_range(ta), rb = int_range(tb);
    HostTensor za = rowzp ? random_q(ta, {M}, rng, ra.first, ra.second) : random_q(ta, {}, rng, ra.first, ra.second);
    HostTensor zb = iter % 3 == 0 ? random_q(tb, {N}, rng, rb.first, rb.second) : random_q(tb, {}, rng, rb.first, rb.second);
    SCOPED_TRACE("A " + shape_str(a) + " B " + shape_str(b));
    OpSpec mi{"MatMulInteger", 10, {}, {random_q(ta, a, rng, ra.first, ra.second), random_q(tb, b, rng, rb.first, rb.second),
                                        za, zb}, {false, false, true, false}};
    EXPECT_TRUE(opencl_matches_cpu(mi, 0, 0));
    const DType ty = iter % 3 ? DType::kUInt8 : DType::kInt8;
    const auto ry = int_range(ty);
    OpSpec ql{"QLinearMatMul", iter % 2 ? 21 : 10, {},
              {mi.inputs[0], random_scale(rowzp ? Shape{M} : Shape{}, rng), za, mi.inputs[1],
               random_scale(zb.shape(), rng), zb, tensor_of(DType::kFloat32, {}, {std::ldexp(1.0, 6 + iter % 5)}),
               random_q(ty, {}, rng, ry.first, ry.second)},
              {false, true, true, false, true, true, true, true}};
    EXPECT_TRUE(opencl_matches_cpu(ql, 0, 0));
  }
}

TEST(QuantizeOps, QLinearMatMulBatchedPerRowParameters) {
  // a [2, 2, 3] with per-row scales and zero points that differ per batch ([2, 2, 1]).
  OpSpec s{"QLinearMatMul", 10, {},
           {tensor_of(DType::kUInt8, {2, 2, 3}, {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}),
            tensor_of(DType::kFloat32, {2, 2, 1}, {0.5, 0.25, 1, 2}), tensor_of(DType::kUInt8, {2, 2, 1}, {10, 20, 30, 40}),
            tensor_of(DType::kInt8, {3, 2}, {1, -1, 2, -2, 3, -3}), scalar_of(DType::kFloat32, 1), scalar_of(DType::kInt8, 0),
            scalar_of(DType::kFloat32, 8), scalar_of(DType::kUInt8, 100)},
           {false, true, true, true, true, true, true, true}};
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  // Row sums of (a - za) . [1, 2, 3] (and the negation for column 1), times scale / 8, + 100.
  // batch 0: rows [0,10,20] -> 80 * 0.5/8 = 5; [20,30,40] -> 200 * 0.25/8 = 6.25
  // batch 1: rows [40,50,60] -> 320 * 1/8 = 40; [60,70,80] -> 440 * 2/8 = 110 (column 1: -10 -> 0)
  EXPECT_TRUE(tensors_close(out[0], tensor_of(DType::kUInt8, {2, 2, 2}, {105, 95, 106, 94, 140, 60, 210, 0}), 0, 0));
  if (have_opencl()) {
    std::vector<HostTensor> cl;  // batch-varying parameters run on the CPU under the opencl device
    ASSERT_TRUE(run_op(s, "opencl", &cl).is_ok());
    EXPECT_TRUE(tensors_close(cl[0], out[0], 0, 0));
  }
  s.inputs[2] = tensor_of(DType::kUInt8, {2}, {1, 2});
  expect_error(s, "a_scale shape [2x2x1] and a_zero_point shape [2] must be the same");
}

// Naive direct 2-D convolution (int32, zero points subtracted, padding adds 0) for one image.
std::vector<int32_t> naive_conv2d(const HostTensor& x, const HostTensor& w, int xzp, const std::vector<int>& wzp,
                                  int64_t group, int64_t stride, int64_t pad, int64_t dil, Shape* out_shape) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const int64_t C = xs[1], H = xs[2], W = xs[3], M = ws[0], Cg = ws[1], KH = ws[2], KW = ws[3];
  const int64_t OH = (H + 2 * pad - (KH - 1) * dil - 1) / stride + 1, OW = (W + 2 * pad - (KW - 1) * dil - 1) / stride + 1;
  *out_shape = {1, M, OH, OW};
  std::vector<int32_t> y(static_cast<size_t>(M * OH * OW), 0);
  for (int64_t m = 0; m < M; ++m) {
    const int64_t g = m / (M / group);
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int32_t acc = 0;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t kh = 0; kh < KH; ++kh)
            for (int64_t kw = 0; kw < KW; ++kw) {
              const int64_t ih = oh * stride - pad + kh * dil, iw = ow * stride - pad + kw * dil;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              const int32_t xv = x.as<uint8_t>()[((g * Cg + c) * H + ih) * W + iw] - xzp;
              const int32_t wv = w.as<int8_t>()[((m * Cg + c) * KH + kh) * KW + kw] - wzp[m % wzp.size()];
              acc += xv * wv;
            }
        y[static_cast<size_t>((m * OH + oh) * OW + ow)] = acc;
      }
  }
  (void)C;
  return y;
}

TEST(QuantizeOps, ConvIntegerMatchesNaiveConvolution) {
  std::mt19937 rng(5);
  const HostTensor x = random_q(DType::kUInt8, {1, 4, 9, 8}, rng, 0, 255);
  const HostTensor w = random_q(DType::kInt8, {6, 2, 3, 2}, rng, -128, 127);
  const HostTensor wzp = random_q(DType::kInt8, {6}, rng, -5, 5);
  std::vector<int> wz(6);
  for (int i = 0; i < 6; ++i) wz[i] = wzp.as<int8_t>()[i];
  Shape os;
  const std::vector<int32_t> want = naive_conv2d(x, w, 7, wz, 2, 2, 1, 2, &os);
  OpSpec s{"ConvInteger", 10, {}, {x, w, scalar_of(DType::kUInt8, 7), wzp}, {false, true, true, true}};
  s.attrs.set("group", int64_t{2});
  s.attrs.set("strides", std::vector<int64_t>{2, 2});
  s.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  s.attrs.set("dilations", std::vector<int64_t>{2, 2});
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  ASSERT_EQ(out[0].shape(), os);
  HostTensor wt(DType::kInt32, os);
  std::copy(want.begin(), want.end(), wt.as<int32_t>());
  EXPECT_TRUE(tensors_close(out[0], wt, 0, 0));
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, 0, 0));
  }
}

TEST(QuantizeOps, ConvFamilyOpenCLMatchesCpu) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(9);
  const char* auto_pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  for (int iter = 0; iter < 16; ++iter) {
    const int nd = 1 + iter % 3;
    std::uniform_int_distribution<int64_t> sp(3, nd == 3 ? 6 : 12), kd(1, 3), st(1, 2);
    const int64_t group = iter % 4 == 3 ? 2 : 1, Cg = 1 + iter % 3, Mg = 1 + (iter * 7) % 5;
    Shape x{1 + iter % 2, Cg * group}, w{Mg * group, Cg};
    std::vector<int64_t> strides, dil, pads(2 * nd);
    for (int d = 0; d < nd; ++d) {
      x.push_back(sp(rng));
      w.push_back(kd(rng));
      strides.push_back(st(rng));
      dil.push_back(iter % 5 == 2 ? 2 : 1);
      pads[d] = iter % 2;
      pads[nd + d] = (iter / 2) % 2;
    }
    const DType tx = iter % 2 ? DType::kInt8 : DType::kUInt8, tw = iter % 3 ? DType::kInt8 : DType::kUInt8;
    const auto rx = int_range(tx), rw = int_range(tw);
    Attributes attrs;
    attrs.set("group", group);
    attrs.set("strides", strides);
    attrs.set("dilations", dil);
    const std::string ap = auto_pads[iter % 4];
    if (ap == "NOTSET") attrs.set("pads", pads);
    else attrs.set("auto_pad", ap);
    // Skip geometries whose (dilated) kernel does not fit.
    bool fits = true;
    for (int d = 0; d < nd; ++d) fits = fits && (w[2 + d] - 1) * dil[d] + 1 <= x[2 + d];
    if (!fits) continue;
    SCOPED_TRACE("x " + shape_str(x) + " w " + shape_str(w) + " auto_pad " + ap);
    const HostTensor wzp = iter % 2 ? random_q(tw, {w[0]}, rng, rw.first / 8, rw.second / 8)
                                    : random_q(tw, {}, rng, rw.first, rw.second);
    OpSpec ci{"ConvInteger", 10, attrs, {random_q(tx, x, rng, rx.first, rx.second), random_q(tw, w, rng, rw.first, rw.second),
                                         random_q(tx, {}, rng, rx.first, rx.second), wzp}, {false, true, true, true}};
    EXPECT_TRUE(opencl_matches_cpu(ci, 0, 0));
    const DType ty = iter % 3 == 1 ? DType::kInt8 : DType::kUInt8;
    const auto ry = int_range(ty);
    OpSpec qc{"QLinearConv", 10, attrs,
              {ci.inputs[0], random_scale({}, rng), ci.inputs[2], ci.inputs[1],
               random_scale(iter % 2 ? Shape{w[0]} : Shape{}, rng), wzp, tensor_of(DType::kFloat32, {}, {16.0 + iter}),
               random_q(ty, {}, rng, ry.first, ry.second), random_q(DType::kInt32, {w[0]}, rng, -5000, 5000)},
              {false, true, true, true, true, true, true, true, true}};
    if (iter % 4 == 1) qc.inputs.pop_back(), qc.constant.pop_back();  // without bias
    EXPECT_TRUE(opencl_matches_cpu(qc, 0, 0));
  }
}

// ---------------------------------------------------------------- errors


TEST(QuantizeOps, ErrorsNameTheNode) {
  std::mt19937 rng(3);
  const HostTensor x = random_tensor(DType::kFloat32, {2, 3, 4}, rng);
  OpSpec axis_bad{"QuantizeLinear", 13, {}, {x, random_scale({4}, rng), random_q(DType::kUInt8, {4}, rng, 0, 9)},
                  {false, true, true}};
  axis_bad.attrs.set("axis", int64_t{1});
  expect_error(axis_bad, "y_scale has 4 elements but x [2x3x4] has 3 along axis 1");
  OpSpec block_bad{"DequantizeLinear", 21, {}, {random_q(DType::kInt8, {2, 3, 4}, rng, -9, 9), random_scale({2, 3, 3}, rng)},
                   {false, true}};
  block_bad.attrs.set("axis", int64_t{2});
  block_bad.attrs.set("block_size", int64_t{2});
  expect_error(block_bad, "blocked by 2 along axis 2");
  OpSpec zp_type{"DequantizeLinear", 13, {}, {random_q(DType::kInt8, {3}, rng, -9, 9), random_scale({}, rng),
                                              scalar_of(DType::kUInt8, 1)}, {false, true, true}};
  expect_error(zp_type, "x_zero_point has dtype uint8, x has int8");
  OpSpec fnuz{"QuantizeLinear", 19, {}, {x, random_scale({}, rng), HostTensor(DType::kFloat8E4M3FNUZ, {})},
              {false, true, true}};
  expect_error(fnuz, "not the FNUZ variants");
  OpSpec old_fp8{"QuantizeLinear", 13, {}, {x, random_scale({}, rng), scalar_of(DType::kFloat8E4M3FN, 0)}, {false, true, true}};
  expect_error(old_fp8, "does not accept");
  OpSpec v23{"QuantizeLinear", 23, {}, {x, random_scale({}, rng)}, {false, true}};
  expect_error(v23, "changed after opset 21");
  OpSpec mm{"MatMulInteger", 10, {}, {random_q(DType::kUInt8, {2, 3}, rng, 0, 9), random_q(DType::kUInt8, {3, 4}, rng, 0, 9),
                                      random_q(DType::kUInt8, {3}, rng, 0, 9)}, {false, false, true}};
  expect_error(mm, "a_zero_point has 3 elements");
  OpSpec conv{"ConvInteger", 10, {}, {random_q(DType::kUInt8, {1, 3, 5, 5}, rng, 0, 9), random_q(DType::kUInt8, {4, 2, 3, 3}, rng, 0, 9)},
              {false, true}};
  expect_error(conv, "expects 2 input channels");
}

}  // namespace
}  // namespace kiln::test
