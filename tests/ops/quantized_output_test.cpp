// A QuantizeLinear of a LayerNormalization's output, folded into the LayerNormalization on
// OpenCL targets (compiler/passes/fuse_quantize_output.cpp, runtime/ops/quantized_output.h):
// the plan has no QuantizeLinear left, and on both devices the quantized copy is exactly
// QuantizeLinear of Y as the plan stores it (computed here from the Y output), for int8, uint8,
// E4M3 and E5M2, float32 and float16 plans, rows the fused kernel takes (multiples of 8) and rows
// it leaves to QuantizeLinear's own kernel.
#include <cmath>
#include <map>
#include <memory>

#include "compiler/ops/op_schema.h"
#include "runtime/core/float8.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

struct Case {
  DType type;
  float scale;
  int zero_point;
  Shape x;
  bool bias;
  bool y_is_output;  // else Y is read by nothing but the quantization
  std::string precision;
};


struct Built {
  std::shared_ptr<Plan> plan;
  std::vector<HostTensor> inputs;
  std::string y, yq;
};

Status build(const Case& c, Built* out) {
  std::mt19937 rng(static_cast<unsigned>(c.x.back() * 7 + static_cast<int>(c.type)));
  GraphBuilder b(21);
  const Shape row(c.x.end() - 1, c.x.end());
  const std::string x = b.input(random_tensor(DType::kFloat32, c.x, rng, -2, 2));
  std::vector<std::string> ins = {x, b.constant(random_tensor(DType::kFloat32, row, rng, 0.5, 1.5))};
  if (c.bias) ins.push_back(b.constant(random_tensor(DType::kFloat32, row, rng, -0.5, 0.5)));
  Attributes ln;
  ln.set("axis", int64_t{-1});
  out->y = b.node("LayerNormalization", ins, ln);
  out->yq = b.node("QuantizeLinear", {out->y, b.constant(scalar_of(DType::kFloat32, c.scale)),
                                       b.constant(scalar_of(c.type, c.zero_point))});
  if (c.y_is_output) b.output(out->y);
  b.output(out->yq);
  BuildOptions opts;
  opts.device = "opencl";
  opts.precision = c.precision;
  KILN_TRY(b.build(&out->plan, opts));
  out->inputs = b.inputs();
  return Status::ok();
}

Status run(const Built& b, const std::string& device, std::map<std::string, HostTensor>* outs) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(b.plan, device, &ctx, &notice));
  for (size_t i = 0; i < b.plan->inputs.size(); ++i) {
    const HostTensor& t = b.inputs[i];
    KILN_TRY(ctx->bind_input(b.plan->tensors[b.plan->inputs[i]].name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
  }
  for (int32_t t : b.plan->outputs) {
    const PlanTensor& pt = b.plan->tensors[t];
    HostTensor& o = (*outs)[pt.name] = HostTensor(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, o.data(), o.size_bytes()));
  }
  return ctx->run();
}

// The values Y had as the plan stored them come from the Y output, or (Y not an output) from
// the same graph built with Y as an output.
TEST(QuantizedOutput, LayerNormWritesQuantizeLinearOfItsStoredOutput) {
  if (!have_opencl()) GTEST_SKIP() << "the fusion applies to OpenCL targets";
  if (!schema_registry().find("LayerNormalization")) GTEST_SKIP() << "needs the normalization op family";
  const std::vector<Case> cases = {
      {DType::kInt8, 0.02f, -3, {37, 768}, true, true, "fp32"},
      {DType::kUInt8, 0.015f, 128, {3, 4, 256}, false, true, "fp16"},
      {DType::kFloat8E4M3FN, 0.005f, 0, {9, 1024}, true, true, "fp16"},
      {DType::kFloat8E5M2, 0.01f, 0, {6, 128}, true, true, "fp32"},
      {DType::kInt8, 0.01f, 5, {5, 100}, true, true, "fp16"},   // rows of 100: QuantizeLinear's kernel
      {DType::kInt8, 0.02f, 0, {4, 768}, true, false, "fp16"},  // Y read by nothing else
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(dtype_name(c.type)) + " " + shape_str(c.x) + " " + c.precision);
    Built b;
    Status st = build(c, &b);
    ASSERT_TRUE(st.is_ok()) << st.message();
    int quantizes = 0, fused = 0;
    for (const PlanNode& n : b.plan->nodes) {
      quantizes += n.op == "QuantizeLinear";
      fused += n.op == "LayerNormalization" && n.attrs.get_int("quantized_output", 0) == 1;
    }
    EXPECT_EQ(quantizes, 0);
    EXPECT_EQ(fused, 1);
    Built with_y = b;
    if (!c.y_is_output) {
      Case shown = c;
      shown.y_is_output = true;
      ASSERT_TRUE(build(shown, &with_y).is_ok());
    }
    std::map<std::string, HostTensor> cl, cpu, cl_y;
    st = run(b, "opencl", &cl);
    ASSERT_TRUE(st.is_ok()) << st.message();
    ASSERT_TRUE(run(b, "cpu", &cpu).is_ok());
    ASSERT_TRUE(run(with_y, "opencl", &cl_y).is_ok());
    const HostTensor want = quantize_reference(cl_y.at(b.y), c.type, c.scale, c.zero_point);
    EXPECT_TRUE(tensors_close(cl.at(b.yq), want, 0, 0));
    if (c.y_is_output) {
      EXPECT_TRUE(tensors_close(cpu.at(b.yq), quantize_reference(cpu.at(b.y), c.type, c.scale, c.zero_point), 0, 0));
      EXPECT_TRUE(tensors_close(cpu.at(b.y), cl.at(b.y), 1e-3, 1e-3));
    }
    // The integer cases reach both ends: values that quantize to the zero point and values that
    // saturate.
    int at_zero = 0, saturated = 0;
    const uint8_t lo = c.type == DType::kInt8 ? 0x80 : 0, hi = c.type == DType::kInt8 ? 0x7F : 0xFF;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const uint8_t v = want.as<uint8_t>()[i];
      at_zero += v == static_cast<uint8_t>(c.zero_point);
      saturated += v == lo || v == hi;
    }
    if (!float8_is_supported(c.type)) {
      EXPECT_GT(at_zero, 0);
      EXPECT_GT(saturated, 0);
    }
  }
}

}  // namespace
}  // namespace kiln::test
