// kiln build --tune (compiler/plan/select_kernels.cpp): a candidate the device cannot build or
// launch is skipped with a line in the report, and the rest are still timed; the portable kernel
// always competes.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "compiler/plan/select_kernels.h"
#include "runtime/core/fault_injection.h"
#include "runtime/device/devices.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

std::string read_all(std::FILE* f) {
  std::string s;
  std::rewind(f);
  char buf[512];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  return s;
}

TEST(Tune, SkipsACandidateThatFailsToBuild) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(3);
  const test::OpSpec gemm{"Gemm", 13, {},
                          {test::random_tensor(DType::kFloat32, {64, 96}, rng),
                           test::random_tensor(DType::kFloat32, {96, 80}, rng)},
                          {false, true}};
  Plan plan;
  ASSERT_TRUE(test::build_op_plan(gemm, "opencl", &plan).is_ok());
  ResolvedDevice dev;
  ASSERT_TRUE(resolve_device("opencl", &dev).is_ok());
  const std::vector<KernelChoice> cands = opencl_variants(plan.nodes[0], plan, dev.caps);
  ASSERT_FALSE(cands.empty()) << "the Gemm has no kernel variants to tune";

  std::FILE* report = std::tmpfile();
  ASSERT_NE(report, nullptr);
  KernelSelectOptions opts;
  opts.tune = true;
  opts.report = report;
  // The first candidate's program fails to build (the fault fires before the kernel cache).
  arm_fault(FaultSite::kProgramBuild, 1);
  const Status st = select_kernels(&plan, dev, opts);
  disarm_faults();
  const std::string text = read_all(report);
  std::fclose(report);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_NE(text.find(cands.front().str() + " "), std::string::npos) << text;
  EXPECT_NE(text.find("skipped: "), std::string::npos) << text;
  EXPECT_NE(text.find("(portable"), std::string::npos) << text;
  EXPECT_FALSE(plan.nodes[0].choice == cands.front()) << "the candidate that failed was chosen";

}

}  // namespace
}  // namespace kiln
