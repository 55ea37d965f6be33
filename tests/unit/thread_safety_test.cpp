// Thread safety as documented in kiln.h: one plan shared by 16 threads, each with its own
// context, 500 inferences each, on cpu and on opencl; every output bit-exact against a
// single-threaded run of the same input.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

#include "compiler/compiler.h"
#include "kiln/kiln.h"
#include "runtime/plan/plan_format.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

constexpr int kThreads = 16;
constexpr int kRunsPerThread = 500;
constexpr int kInputSize = 1 * 3 * 32 * 32;
constexpr int kOutputSize = 10;

void check_threads(const std::string& device) {
  Plan p;
  BuildOptions opts;
  opts.device = device;
  ASSERT_TRUE(build_plan_from_file(test::model_path("demo_cnn.onnx"), opts, &p).is_ok());
  const std::vector<uint8_t> bytes = serialize_plan(p);
  kiln_plan* plan = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK) << kiln_last_error();
  const int64_t dims[4] = {1, 3, 32, 32};

  // Each thread has its own input; the reference for it comes from a single-threaded run.
  std::vector<std::vector<float>> inputs(kThreads, std::vector<float>(kInputSize));
  std::vector<std::vector<float>> reference(kThreads, std::vector<float>(kOutputSize));
  {
    kiln_context* ctx = nullptr;
    ASSERT_EQ(kiln_context_create(plan, device.c_str(), &ctx), KILN_OK) << kiln_last_error();
    for (int t = 0; t < kThreads; ++t) {
      std::mt19937 rng(100 + t);
      std::uniform_real_distribution<float> u(0.f, 1.f);
      for (float& v : inputs[t]) v = u(rng);
      ASSERT_EQ(kiln_context_bind_input(ctx, "input", KILN_DTYPE_FLOAT32, dims, 4, inputs[t].data(), kInputSize * 4),
                KILN_OK);
      ASSERT_EQ(kiln_context_bind_output(ctx, "probs", reference[t].data(), kOutputSize * 4), KILN_OK);
      ASSERT_EQ(kiln_context_run(ctx), KILN_OK) << kiln_last_error();
    }
    kiln_context_release(ctx);
  }

  std::vector<int> mismatches(kThreads, 0), failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      kiln_context* ctx = nullptr;
      if (kiln_context_create(plan, device.c_str(), &ctx) != KILN_OK) {
        failures[t] = kRunsPerThread;
        return;
      }
      std::vector<float> out(kOutputSize);
      kiln_context_bind_input(ctx, "input", KILN_DTYPE_FLOAT32, dims, 4, inputs[t].data(), kInputSize * 4);
      kiln_context_bind_output(ctx, "probs", out.data(), kOutputSize * 4);
      for (int r = 0; r < kRunsPerThread; ++r) {
        std::fill(out.begin(), out.end(), -1.f);
        if (kiln_context_run(ctx) != KILN_OK) {
          ++failures[t];
          continue;
        }
        if (std::memcmp(out.data(), reference[t].data(), kOutputSize * 4) != 0) ++mismatches[t];
      }
      kiln_context_release(ctx);
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t << " on " << device;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t << " on " << device << ": outputs differ from the single-threaded run";
  }
  kiln_plan_release(plan);
}

TEST(ThreadSafety, SixteenThreadsOwnContextsCpu) { check_threads("cpu"); }

TEST(ThreadSafety, SixteenThreadsOwnContextsOpenCL) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  check_threads("opencl");
}

}  // namespace
}  // namespace kiln
