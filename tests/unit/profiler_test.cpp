// The profiler's device timings (runtime/profile/profiler.h): a replayed OpenCL node is timed by
// its own kernels' events, so on an in-order queue the nodes of a run follow each other without
// overlapping, each within its run, and a profiled context goes back to a queue without
// timestamps (and the same results) once the profiler is detached.
#include <gtest/gtest.h>

#include <memory>

#include "runtime/exec/execution_context.h"
#include "runtime/profile/profiler.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

// Three LayerNormalizations in a chain (nothing fuses them: three replayed nodes).
std::shared_ptr<Plan> chain_plan(test::GraphBuilder* b) {
  std::mt19937 rng(3);
  std::string x = b->input(test::random_tensor(DType::kFloat32, {64, 256}, rng));
  const std::string w = b->constant(test::random_tensor(DType::kFloat32, {256}, rng));
  Attributes a;
  a.set("axis", int64_t{-1});
  for (int i = 0; i < 3; ++i) x = b->node("LayerNormalization", {x, w}, a);
  b->output(x);
  BuildOptions opts;
  opts.device = "opencl";
  std::shared_ptr<Plan> plan;
  EXPECT_TRUE(b->build(&plan, opts).is_ok());
  return plan;
}

TEST(Profiler, ReplayedNodesAreTimedByTheirKernels) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  test::GraphBuilder b(17);
  std::shared_ptr<Plan> plan = chain_plan(&b);
  ASSERT_TRUE(plan);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "opencl", &ctx, &notice).is_ok());
  const HostTensor& in = b.inputs()[0];
  const PlanTensor& out_t = plan->tensors[plan->outputs[0]];
  HostTensor plain(out_t.dtype, out_t.shape), profiled(out_t.dtype, out_t.shape);
  ASSERT_TRUE(ctx->bind_input(plan->tensors[plan->inputs[0]].name, in.dtype(), in.shape(), in.data(), in.size_bytes()).is_ok());
  ASSERT_TRUE(ctx->bind_output(out_t.name, plain.data(), plain.size_bytes()).is_ok());
  ASSERT_TRUE(ctx->run().is_ok());
  Profiler prof;
  ctx->set_profiler(&prof);
  ASSERT_TRUE(ctx->bind_output(out_t.name, profiled.data(), profiled.size_bytes()).is_ok());
  constexpr int kRuns = 3;
  for (int r = 0; r < kRuns; ++r) ASSERT_TRUE(ctx->run().is_ok());
  ctx->set_profiler(nullptr);
  EXPECT_TRUE(test::tensors_close(profiled, plain, 0, 0));
  for (int r = 0; r < kRuns; ++r) {
    int nodes = 0;
    int64_t last_end = 0;
    for (const ProfileEvent& e : prof.events()) {
      if (e.run != r || e.kind != ProfileEvent::Kind::kNode || e.backend != Backend::kOpenCL) continue;
      ++nodes;
      EXPECT_LE(e.start_ns, e.end_ns) << "run " << r << " node " << e.node;
      // In queue order: a node starts after the one before it ended (the clocks are one).
      if (last_end) {
        EXPECT_GE(e.start_ns, last_end) << "run " << r << " node " << e.node;
      }
      last_end = e.end_ns;
    }
    EXPECT_EQ(nodes, 3) << "run " << r;
  }
  // Detached: runs go on, on a queue without timestamps, with the same results.
  HostTensor again(out_t.dtype, out_t.shape);
  ASSERT_TRUE(ctx->bind_output(out_t.name, again.data(), again.size_bytes()).is_ok());
  ASSERT_TRUE(ctx->run().is_ok());
  EXPECT_TRUE(test::tensors_close(again, plain, 0, 0));
  EXPECT_GT(ctx->opencl_issue_time().launches, 0);
}

}  // namespace
}  // namespace kiln
