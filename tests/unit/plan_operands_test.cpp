// A plan whose checksum is valid but whose nodes lack operands (hand-made or from a buggy
// writer) is refused when a context is created, naming the node: kernels never read past
// their argument lists.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/plan/plan_format.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

TEST(PlanOperands, NodesShortOfOperandsAreRefused) {
  Plan base;
  BuildOptions o;
  o.device = "cpu";
  ASSERT_TRUE(build_plan_from_file(test::model_path("demo_cnn.onnx"), o, &base).is_ok());
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !test::have_opencl()) continue;
    for (size_t n = 0; n < base.nodes.size(); ++n) {
      for (int mode = 0; mode < 3; ++mode) {
        Plan p = base;
        PlanNode& node = p.nodes[n];
        if (mode == 0) node.inputs.clear();
        else if (mode == 1) node.inputs[0] = -1;  // a required input left out
        else node.outputs.clear();
        const std::vector<uint8_t> bytes = serialize_plan(p);
        auto parsed = std::make_shared<Plan>();
        Status s = parse_plan(bytes.data(), bytes.size(), parsed.get());
        if (s.is_ok()) {
          std::unique_ptr<ExecutionContext> ctx;
          std::string notice;
          s = ExecutionContext::create(parsed, device, &ctx, &notice);
        }
        ASSERT_FALSE(s.is_ok()) << device << " node " << n << " mode " << mode;
        EXPECT_EQ(s.code(), StatusCode::kInvalidPlan) << s.message();
        // Missing outputs surface as the next reader's tensor never being produced.
        if (mode < 2) {
          EXPECT_NE(s.message().find(base.nodes[n].name), std::string::npos) << "mode " << mode << ": " << s.message();
        }
      }
    }
  }
}

// Every runtime op says with its registration how many operands its kernels read (CpuOp::arity),
// so the check above covers ops added later too.
TEST(PlanOperands, EveryRuntimeOpDeclaresItsOperands) {
  for (const auto& [op, info] : cpu_registry().all()) {
    EXPECT_GT(info.min_inputs, 0) << op;
    EXPECT_GT(info.min_outputs, 0) << op;
  }
}

}  // namespace
}  // namespace kiln
