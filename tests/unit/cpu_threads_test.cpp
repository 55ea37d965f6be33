// Threads of the cpu device's fast path (runtime/backends/cpu/cpu_threads.h): the fair share of
// the cores between inferences in flight, the process default (--threads, KILN_CPU_THREADS),
// and the C API's per-context setting (kiln_context_set_threads and the context options, one
// setting); the measured CPU speed the partitioner uses.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "compiler/compiler.h"
#include "kiln/kiln.h"
#include "runtime/backends/cpu/cpu_threads.h"
#include "runtime/capi/capi_internal.h"
#include "runtime/plan/partition.h"
#include "runtime/plan/plan_format.h"
#include "runtime/profile/cpu_speed.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

TEST(CpuThreads, ConcurrentInferencesShareTheCores) {
  const int cores = physical_cores();
  ASSERT_GE(cores, 1);
  {
    CpuThreadShare alone(0);
    EXPECT_EQ(alone.threads(), std::min(cores, default_cpu_threads()));
    CpuThreadShare second(cores);
    EXPECT_EQ(second.threads(), std::max(1, cores / 2));
    CpuThreadShare third(cores);
    EXPECT_EQ(third.threads(), std::max(1, cores / 3));
  }
  // Released: a new inference gets the cores again; asking for more than the cores is granted.
  CpuThreadShare again(cores);
  EXPECT_EQ(again.threads(), cores);
  CpuThreadShare many(4 * cores);
  EXPECT_EQ(many.threads(), 2 * cores);  // budget 4 x cores over two inferences
}

TEST(CpuThreads, DefaultFollowsOptionThenEnvironment) {
  set_default_cpu_threads(0);
  {
    ScopedEnv env("KILN_CPU_THREADS", "3");
    EXPECT_EQ(default_cpu_threads(), 3);
    set_default_cpu_threads(5);
    EXPECT_EQ(default_cpu_threads(), 5);  // --threads wins over the environment
    set_default_cpu_threads(0);
  }
  ScopedEnv env("KILN_CPU_THREADS", nullptr);
  EXPECT_EQ(default_cpu_threads(), physical_cores());
}

TEST(CpuThreads, CApiSetsThreadsPerContext) {
  std::mt19937 rng(1401);
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {2, 96}, rng));
  g.output(g.node("Relu", {g.node("MatMul", {x, g.constant(random_tensor(DType::kFloat32, {96, 64}, rng))})}));
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  const std::vector<uint8_t> bytes = serialize_plan(*plan);
  kiln_plan* p = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &p), KILN_OK) << kiln_last_error();
  std::vector<std::vector<float>> outs;
  for (int threads : {1, 2, 0}) {
    kiln_context* c = nullptr;
    ASSERT_EQ(kiln_context_create(p, "cpu", &c), KILN_OK) << kiln_last_error();
    ASSERT_EQ(kiln_context_set_threads(c, threads), KILN_OK) << kiln_last_error();
    const int64_t dims[] = {2, 96};
    const HostTensor& in = g.inputs()[0];
    ASSERT_EQ(kiln_context_bind_input(c, plan->tensors[plan->inputs[0]].name.c_str(), KILN_DTYPE_FLOAT32, dims, 2,
                                      in.data(), in.size_bytes()),
              KILN_OK);
    outs.emplace_back(2 * 64);
    ASSERT_EQ(kiln_context_bind_output(c, plan->tensors[plan->outputs[0]].name.c_str(), outs.back().data(),
                                       outs.back().size() * 4),
              KILN_OK);
    ASSERT_EQ(kiln_context_run(c), KILN_OK) << kiln_last_error();
    kiln_context_release(c);
  }
  for (size_t i = 0; i < outs[0].size(); ++i) {
    EXPECT_NEAR(outs[1][i], outs[0][i], 1e-5f);
    EXPECT_NEAR(outs[2][i], outs[0][i], 1e-5f);
  }
  kiln_context* c = nullptr;
  ASSERT_EQ(kiln_context_create(p, "cpu", &c), KILN_OK);
  EXPECT_EQ(kiln_context_set_threads(c, -1), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_set_threads(nullptr, 1), KILN_ERROR_INVALID_ARGUMENT);
  kiln_context_release(c);
  kiln_plan_release(p);
}

// kiln_context_set_threads and kiln_context_options_set_cpu_threads set the one per-context
// setting, and an inference's kernels see its share of it on their thread (here: through a
// tensor observer, which runs inside the inference).
TEST(CpuThreads, OptionsAndSetThreadsAreOneSetting) {
  std::mt19937 rng(1402);
  GraphBuilder g;
  const std::string x = g.input(random_tensor(DType::kFloat32, {2, 16}, rng));
  g.output(g.node("Relu", {g.node("MatMul", {x, g.constant(random_tensor(DType::kFloat32, {16, 8}, rng))})}));
  std::shared_ptr<Plan> plan;
  ASSERT_TRUE(g.build(&plan).is_ok());
  const std::vector<uint8_t> bytes = serialize_plan(*plan);
  kiln_plan* p = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &p), KILN_OK) << kiln_last_error();
  kiln_context_options* o = nullptr;
  ASSERT_EQ(kiln_context_options_create(&o), KILN_OK);
  ASSERT_EQ(kiln_context_options_set_device(o, "cpu"), KILN_OK);
  ASSERT_EQ(kiln_context_options_set_cpu_threads(o, 3), KILN_OK);
  kiln_context* c = nullptr;
  ASSERT_EQ(kiln_context_create_with_options(p, o, &c), KILN_OK) << kiln_last_error();
  kiln_context_options_release(o);
  std::shared_ptr<ExecutionContext> ctx = capi::context_of(c);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->cpu_threads(), 3);
  ASSERT_EQ(kiln_context_set_threads(c, 2), KILN_OK);
  EXPECT_EQ(ctx->cpu_threads(), 2);
  EXPECT_EQ(kiln_context_set_threads(c, 1025), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(ctx->cpu_threads(), 2);

  const HostTensor& in = g.inputs()[0];
  const int64_t dims[] = {2, 16};
  ASSERT_EQ(kiln_context_bind_input(c, plan->tensors[plan->inputs[0]].name.c_str(), KILN_DTYPE_FLOAT32, dims, 2,
                                    in.data(), in.size_bytes()),
            KILN_OK);
  std::vector<float> out(2 * 8);
  ASSERT_EQ(kiln_context_bind_output(c, plan->tensors[plan->outputs[0]].name.c_str(), out.data(), out.size() * 4),
            KILN_OK);
  int seen = -1;
  ctx->set_tensor_observer([&](int32_t, const TensorView&) {
    seen = inference_cpu_threads();
    return Status::ok();
  });
  for (int threads : {1, physical_cores()}) {
    ASSERT_EQ(kiln_context_set_threads(c, threads), KILN_OK);
    ASSERT_EQ(kiln_context_run(c), KILN_OK) << kiln_last_error();
    EXPECT_EQ(seen, threads);  // alone: the whole of what it asks for
  }
  EXPECT_EQ(inference_cpu_threads(), 0);  // released with the inference
  kiln_context_release(c);
  kiln_plan_release(p);
}

// The partitioner's CPU model is this host's measured speed, not a guess.
TEST(CpuThreads, PartitionerUsesTheMeasuredCpuSpeed) {
  const CpuSpeed& s = measured_cpu_speed();
  EXPECT_GT(s.gflops, 0.5);
  EXPECT_GT(s.gflops_one_thread, 0.1);
  EXPECT_GT(s.gbps, 0.1);
  EXPECT_LT(s.launch_us, 1000.0);
  const BackendModel m = backend_model(Backend::kCpu, DeviceCaps{});
  EXPECT_EQ(m.gflops, s.gflops);
  EXPECT_EQ(m.gbps, s.gbps);
  EXPECT_EQ(m.launch_us, s.launch_us);
}

}  // namespace
}  // namespace kiln::test
