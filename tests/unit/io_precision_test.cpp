// --io-precision fp16 (BuildOptions::io_dtype, compiler/passes/io_precision.cpp) on a small CNN
// with an integer side input and an output that later nodes also read: the plan's float inputs
// and outputs become float16, integer ones stay as they are, and its outputs equal the
// float32-IO plan's within half's rounding, in FP32, FP16 and INT8 plans on every device. FP16
// plans lose their boundary Casts and an INT8 plan's input QuantizeLinear reads the half input.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>

#include "compiler/compiler.h"
#include "compiler/quant/accuracy.h"
#include "runtime/device/devices.h"
#include "tests/ops/graph_builder.h"

namespace kiln::test {
namespace {

HostTensor normal(const Shape& s, std::mt19937& rng, double sd) {
  HostTensor t(DType::kFloat32, s);
  std::normal_distribution<float> n(0.f, static_cast<float>(sd));
  for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = n(rng);
  return t;
}

HostTensor offset_of(int32_t v) {
  HostTensor t(DType::kInt32, {1});
  t.as<int32_t>()[0] = v;
  return t;
}

CalibrationSample sample(uint32_t seed) {
  std::mt19937 rng(seed);
  return {{"x0", normal({2, 3, 12, 12}, rng, 1.0)}, {"x1", offset_of(static_cast<int32_t>(seed % 5))}};
}

// x [2,3,12,12] -> Conv 3x3 + Relu (output "features", also read on) -> Conv 1x1 -> + float(k)
// -> output "logits"; k: an int32 input.
Status build(const BuildOptions& o, std::shared_ptr<Plan>* plan, std::string* features, std::string* logits) {
  GraphBuilder b(17);
  std::mt19937 rng(3);
  const CalibrationSample s = sample(1);
  const std::string x = b.input(s.at("x0"));
  const std::string k = b.input(s.at("x1"));
  Attributes pad;
  pad.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  *features = b.node("Relu", {b.node("Conv", {x, b.constant(normal({8, 3, 3, 3}, rng, 0.3)),
                                              b.constant(normal({8}, rng, 0.1))}, pad)});
  Attributes to_float;
  to_float.set("to", static_cast<int64_t>(DType::kFloat32));
  const std::string conv2 = b.node("Conv", {*features, b.constant(normal({4, 8, 1, 1}, rng, 0.3))});
  *logits = b.node("Add", {conv2, b.node("Cast", {k}, to_float)});
  b.output(*features);
  b.output(*logits);
  return b.build(plan, o);
}

BuildOptions options(const std::string& device, const std::string& precision, DType io,
                     const std::shared_ptr<const std::vector<CalibrationSample>>& calib) {
  BuildOptions o;
  o.device = device;
  o.precision = precision;
  o.io_dtype = io;
  o.calib_samples = calib;
  o.accuracy_check = false;  // the comparison below is the check
  return o;
}

DType dtype_of(const Plan& p, const std::string& name) {
  const int32_t t = p.find_tensor(name);
  return t < 0 ? DType::kUndefined : p.tensors[t].dtype;
}

TEST(IoPrecision, Fp16InputsAndOutputsMatchTheFloat32Plan) {
  auto calib = std::make_shared<const std::vector<CalibrationSample>>(
      std::vector<CalibrationSample>{sample(11), sample(12), sample(13), sample(14)});
  const std::vector<CalibrationSample> held_out = {sample(21), sample(22)};
  std::vector<std::string> devices = {"cpu"};
  if (!opencl_devices().empty()) devices.push_back("opencl");
  for (const std::string& device : devices)
    for (const char* precision : {"fp32", "fp16", "int8"}) {
      SCOPED_TRACE(device + " " + precision);
      std::shared_ptr<Plan> wide, half;
      std::string features, logits;
      Status st = build(options(device, precision, DType::kFloat32, calib), &wide, &features, &logits);
      ASSERT_TRUE(st.is_ok()) << st.message();
      st = build(options(device, precision, DType::kFloat16, calib), &half, &features, &logits);
      ASSERT_TRUE(st.is_ok()) << st.message();

      EXPECT_EQ(dtype_of(*wide, "x0"), DType::kFloat32);
      EXPECT_EQ(dtype_of(*half, "x0"), DType::kFloat16);
      EXPECT_EQ(dtype_of(*half, "x1"), DType::kInt32);  // integer inputs stay as they are
      EXPECT_EQ(dtype_of(*half, features), DType::kFloat16);
      EXPECT_EQ(dtype_of(*half, logits), DType::kFloat16);

      // Boundary Casts: a Cast reading the float input or writing an output (standalone or
      // fused into an elementwise program, named after the value it converts).
      int boundary_casts = 0, half_quantize = 0;
      const int32_t x0 = half->find_tensor("x0");
      for (const PlanNode& n : half->nodes) {
        const bool cast = n.name.find("_to_fp") != std::string::npos;
        bool boundary = std::count(n.inputs.begin(), n.inputs.end(), x0) > 0;
        for (int32_t o : half->outputs) boundary |= std::count(n.outputs.begin(), n.outputs.end(), o) > 0;
        boundary_casts += cast && boundary;
        half_quantize += n.op == "QuantizeLinear" && n.inputs[0] == x0;
      }
      if (std::string(precision) == "fp16") {
        // The FP16 plan's own boundary Casts are gone: the first Conv reads the half input, and
        // both outputs are written in half by their producers.
        EXPECT_EQ(boundary_casts, 0);
      } else {
        // FP32: one Cast after the input, one before each output; INT8: the input's
        // QuantizeLinear widens the half input itself, the outputs are Cast.
        EXPECT_EQ(boundary_casts, std::string(precision) == "int8" ? 2 : 3);
      }
      EXPECT_EQ(half_quantize, std::string(precision) == "int8" ? 1 : 0);

      // run_on_samples feeds the half plan float16 and hands back float32: within half's
      // rounding of the float32-IO plan (relative L2 ~ 2^-11 per rounding, input and output).
      std::vector<std::vector<HostTensor>> got, want;
      st = run_on_samples(half, device, held_out, &got);
      ASSERT_TRUE(st.is_ok()) << st.message();
      st = run_on_samples(wide, device, held_out, &want);
      ASSERT_TRUE(st.is_ok()) << st.message();
      WorstError e;
      st = worst_output_error(*half, got, *wide, want, &e);
      ASSERT_TRUE(st.is_ok()) << st.message();
      std::printf("%s %s: fp16 I/O vs fp32 I/O worst relative L2 %.2e (%s)\n", device.c_str(), precision, e.rel_l2,
                  e.output.c_str());
      if (std::string(precision) == "fp16") {
        EXPECT_EQ(e.rel_l2, 0.0);  // the same rounding the FP16 plan did at its own boundaries
      } else {
        // INT8: an input rounded to half may cross a quantization step; far below a lost scale.
        EXPECT_LT(e.rel_l2, std::string(precision) == "int8" ? 2e-2 : 2e-3);
        EXPECT_GT(e.rel_l2, 0.0);  // the half plan really rounds (it is not the float32 plan)
      }
    }
}

// What the accuracy check and the search feed such a plan: its float16 inputs from float32
// samples (rounded to nearest), other inputs untouched.
TEST(IoPrecision, SamplesAreConvertedToThePlansInputDtype) {
  std::shared_ptr<Plan> plan;
  std::string features, logits;
  ASSERT_TRUE(build(options("cpu", "fp32", DType::kFloat16, nullptr), &plan, &features, &logits).is_ok());
  const CalibrationSample s = sample(5);
  std::deque<HostTensor> converted;
  const HostTensor& k = as_plan_input(*plan, "x1", s.at("x1"), &converted);
  EXPECT_EQ(&k, &s.at("x1"));  // the plan takes it as it is: no copy
  ASSERT_EQ(k.dtype(), DType::kInt32);
  const HostTensor& x = s.at("x0");
  const HostTensor& h = as_plan_input(*plan, "x0", x, &converted);
  EXPECT_EQ(converted.size(), 1u);
  ASSERT_EQ(h.dtype(), DType::kFloat16);
  const HostTensor back = to_float_dtype(h, DType::kFloat32);
  for (int64_t i = 0; i < x.numel(); ++i)
    ASSERT_NEAR(back.as<float>()[i], x.as<float>()[i], std::fabs(x.as<float>()[i]) * 0x1p-11 + 1e-7) << i;
}

}  // namespace
}  // namespace kiln::test
