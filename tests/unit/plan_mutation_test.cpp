// The plan fuzz target's edits (tests/fuzz/plan_mutator.h: attribute values, dims, dtypes,
// operand indices, op names and backends set to boundary values behind a valid checksum),
// replayed from fixed seeds on both devices: whatever the verifier accepts must run on the cpu
// and on PoCL and fail, if it fails, with a clear status, never a crash. libFuzzer explores the
// cpu side under ASan (scripts/fuzz.sh); this covers the OpenCL launchers in every build.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "runtime/core/text.h"
#include "runtime/plan/plan_format.h"
#include "tests/fuzz/plan_mutator.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

void mutate_and_run(const std::string& model, const std::string& device, int iterations) {
  Plan base;
  BuildOptions o;
  o.device = device;
  ASSERT_TRUE(build_plan_from_file(test::model_path(model), o, &base).is_ok());
  std::mt19937_64 rng(2026);
  int accepted = 0, ran = 0;
  for (int it = 0; it < iterations; ++it) {
    Plan p = base;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) fuzz::mutate_plan(p, rng);
    const std::vector<uint8_t> bytes = serialize_plan(p);
    auto plan = std::make_shared<Plan>();
    Status st = parse_plan(bytes.data(), bytes.size(), plan.get());
    if (st.is_ok()) {
      ++accepted;
      st = fuzz::run_once(plan, device);
      ran += st.is_ok();
    }
    if (!st.is_ok()) {
      ASSERT_NE(st.code(), StatusCode::kInternal) << "iteration " << it << ": " << st.message();
      ASSERT_FALSE(st.message().empty()) << "iteration " << it;
      ASSERT_LT(st.message().size(), 2000u) << "iteration " << it;
    }
  }
  // The edits must sometimes pass the verifier (else nothing ran the kernels).
  EXPECT_GT(accepted, iterations / 20) << device;
  EXPECT_GT(ran, 0) << device;
  std::printf("%s %s: %d of %d edited plans accepted, %d ran\n", model.c_str(), device.c_str(), accepted, iterations, ran);
}

TEST(PlanMutation, AcceptedEditsRunCleanlyOnTheCpu) { mutate_and_run("demo_cnn.onnx", "cpu", 3000); }

TEST(PlanMutation, AcceptedEditsRunCleanlyOnOpenCL) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  mutate_and_run("demo_cnn.onnx", "opencl", 1500);
}

}  // namespace
}  // namespace kiln
