// compiler/passes/pack_qkv.cpp on a BERT-style encoder layer, in each precision that fuses its
// attention: the Q, K and V projections become one product whose output the Attention reads as
// all three (attngeo::kAttrQkvPacked), and the plan computes what the plan with three separate
// projections computes (BuildOptions::pack_qkv off). On OpenCL both attention kernels read the
// packed operand: the portable one here, the tensor-core one under ctest mma_variant_emulated
// (hence the MmaVariant name) and on the GPU machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>

#include "compiler/compiler.h"
#include "compiler/quant/accuracy.h"
#include "runtime/backends/attention_geometry.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/encoder_layer.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

using namespace encoder_layer;

Status build(const BuildOptions& o, std::shared_ptr<Plan>* plan) {
  GraphBuilder b(17);
  encoder(&b, samples(1, 99)[0].at("x0"));
  return b.build(plan, o);
}

bool linear(const PlanNode& n) { return n.op == "MatMul" || n.op == "QLinearMatMul" || n.op == "Fp8MatMul"; }

size_t count_linear(const Plan& p) { return std::count_if(p.nodes.begin(), p.nodes.end(), linear); }

TEST(MmaVariant, PackedQkvProjectionsMatchSeparateOnes) {
  auto calib = std::make_shared<const std::vector<CalibrationSample>>(samples(8, 5));
  const std::vector<CalibrationSample> held_out = samples(2, 77);
  std::vector<std::string> devices{"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  for (const std::string& device : devices)
    for (const char* precision : {"fp32", "fp16", "int8", "fp8"}) {
      SCOPED_TRACE(device + " " + precision);
      BuildOptions o;
      o.device = device;
      o.precision = precision;
      // INT8/FP8 plans: float16 attention on OpenCL, where the projections write float16 for
      // it (on the cpu they write float32 and a Cast stands between: nothing packs there).
      if (device == "opencl") o.fallback_precision = FallbackPrecision::kFp16;
      o.calib_samples = calib;
      std::shared_ptr<Plan> packed, separate;
      Status st = build(o, &packed);
      ASSERT_TRUE(st.is_ok()) << st.message();
      o.pack_qkv = false;
      st = build(o, &separate);
      ASSERT_TRUE(st.is_ok()) << st.message();

      // One Attention reading one [B, S, 3H, D] tensor as Q, K and V, written by one product
      // that carries the three projections' names; two linear nodes fewer.
      const PlanNode* at = nullptr;
      for (const PlanNode& n : packed->nodes)
        if (n.op == attngeo::kOp) at = &n;
      ASSERT_NE(at, nullptr);
      EXPECT_EQ(at->attrs.get_int(attngeo::kAttrQkvPacked, 0), 1);
      ASSERT_GE(at->inputs.size(), 3u);
      EXPECT_EQ(at->inputs[1], at->inputs[0]);
      EXPECT_EQ(at->inputs[2], at->inputs[0]);
      EXPECT_EQ(packed->tensors[at->inputs[0]].shape, (Shape{kBatch, kSeq, 3 * kHeads, kHeadDim}));
      EXPECT_EQ(count_linear(*packed) + 2, count_linear(*separate));
      int three = 0;
      for (const PlanNode& n : packed->nodes)
        three += linear(n) && packed->tensors[n.outputs[0]].shape == Shape{kBatch, kSeq, 3 * kDim};
      EXPECT_EQ(three, 1);

      // The same values: each output column of the packed product is the separate product's
      // (same weights, scales and bias per column); only the float products' summation order
      // may differ with the wider matrix. FP8 on Hopper: the wider product may take the other
      // tensor-core instruction (wgmma, which sums FP8 products in less than float32 precision,
      // vs mma.sync), and a sum off by that moves the next layer's FP8 input by a code: there
      // the relative L2 error the other FP8 tests allow.
      std::vector<std::vector<HostTensor>> got, want;
      st = run_on_samples(packed, device, held_out, &got);
      ASSERT_TRUE(st.is_ok()) << st.message();
      st = run_on_samples(separate, device, held_out, &want);
      ASSERT_TRUE(st.is_ok()) << st.message();
      if (std::string(precision) == "fp8") {
        WorstError e;
        ASSERT_TRUE(worst_output_error(*packed, got, *separate, want, &e).is_ok());
        EXPECT_LT(e.rel_l2, 0.03);
        continue;
      }
      const bool fp32 = std::string(precision) == "fp32";
      for (size_t s = 0; s < held_out.size(); ++s)
        EXPECT_TRUE(tensors_close(got[s][0], want[s][0], fp32 ? 1e-5 : 2e-3, fp32 ? 1e-5 : 2e-3)) << "sample " << s;
    }
}

// A plan whose Attention claims packed operands it does not have is refused with the reason.
TEST(PackQkv, MalformedPackedAttentionIsRefused) {
  BuildOptions o;
  o.device = "cpu";
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(build(o, &plan).is_ok());
  PlanNode* at = nullptr;
  for (PlanNode& n : plan->nodes)
    if (n.op == attngeo::kOp) at = &n;
  ASSERT_NE(at, nullptr);
  // Packed operands are stored [batch, seq, 3 * heads, dim]: a plan that says K is stored
  // [batch, heads, seq, dim] contradicts it.
  at->attrs.set(attngeo::kAttrBshd, attngeo::kBshdAll & ~attngeo::kBshdK);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  Status st = ExecutionContext::create(plan, "cpu", &ctx, &notice);
  if (st.is_ok()) {
    std::vector<std::vector<HostTensor>> out;
    st = run_on_samples(plan, "cpu", samples(1, 3), &out);
  }
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("qkv_packed"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
