// Failures injected through the test hook (runtime/core/fault_injection.h): an OpenCL program
// that fails to build, device and host memory running out when a context is created and while
// it runs, a kernel launch failing in the middle of an inference. Each must come back as a
// status naming what failed; the context is then either reusable (the next run gives the
// reference results) or was never created; destroying it is clean (the sanitizer build checks
// for leaks).
#include <gtest/gtest.h>

#include <set>

#include "compiler/compiler.h"
#include "runtime/core/fault_injection.h"
#include "runtime/exec/execution_context.h"
#include "runtime/profile/profiler.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

struct Disarm {
  ~Disarm() { disarm_faults(); }
};

std::shared_ptr<const Plan> demo_plan(const std::string& device) {
  auto p = std::make_shared<Plan>();
  BuildOptions o;
  o.device = device;
  Status st = build_plan_from_file(test::model_path("demo_cnn.onnx"), o, p.get());
  EXPECT_TRUE(st.is_ok()) << st.message();
  return p;
}

// A context with its input and output bound; `y` receives the output.
Status open(const std::shared_ptr<const Plan>& p, const std::string& device, const HostTensor& x, HostTensor* y,
            std::unique_ptr<ExecutionContext>* ctx) {
  std::string notice;
  KILN_TRY(ExecutionContext::create(p, device, ctx, &notice));
  KILN_TRY((*ctx)->bind_input(p->tensors[p->inputs[0]].name, x.dtype(), x.shape(), x.data(), x.size_bytes()));
  const PlanTensor& out = p->tensors[p->outputs[0]];
  *y = HostTensor(out.dtype, out.shape);
  return (*ctx)->bind_output(out.name, y->data(), y->size_bytes());
}

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937 rng(3);
    x_ = test::random_tensor(DType::kFloat32, {1, 3, 32, 32}, rng);
    // The reference: the cpu device without faults.
    std::unique_ptr<ExecutionContext> ctx;
    ASSERT_TRUE(open(demo_plan("cpu"), "cpu", x_, &want_, &ctx).is_ok());
    ASSERT_TRUE(ctx->run().is_ok());
  }
  void expect_reference(const HostTensor& y) { EXPECT_TRUE(test::tensors_close(y, want_, 1e-4, 1e-5)); }

  Disarm disarm_;
  HostTensor x_, want_;
};

TEST_F(FaultInjection, ProgramBuildFailureIsAStatusAndTheNextRunBuildsIt) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  const auto plan = demo_plan("opencl");
  std::unique_ptr<ExecutionContext> ctx;
  HostTensor y;
  ASSERT_TRUE(open(plan, "opencl", x_, &y, &ctx).is_ok());
  // Programs are built on first use, per device context: this one has none yet unless another
  // context on the device is alive, which no other test leaves behind.
  arm_fault(FaultSite::kProgramBuild, 1);
  Status st = ctx->run();
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kDevice) << st.message();
  EXPECT_NE(st.message().find("CL_BUILD_PROGRAM_FAILURE"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("node '"), std::string::npos) << st.message();
  st = ctx->run();
  ASSERT_TRUE(st.is_ok()) << st.message();
  expect_reference(y);
}

TEST_F(FaultInjection, DeviceOutOfMemoryWhenAContextIsCreated) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  const auto plan = demo_plan("opencl");
  // The first, second and fifth device allocation: weights, then activation buffers.
  for (int nth : {1, 2, 5}) {
    arm_fault(FaultSite::kDeviceAlloc, nth);
    std::unique_ptr<ExecutionContext> ctx;
    HostTensor y;
    Status st = open(plan, "opencl", x_, &y, &ctx);
    disarm_faults();
    ASSERT_FALSE(st.is_ok()) << "allocation " << nth;
    EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.message();
    EXPECT_NE(st.message().find("CL_MEM_OBJECT_ALLOCATION_FAILURE"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("bytes for "), std::string::npos) << st.message();  // names what it was for
    EXPECT_EQ(ctx, nullptr);
  }
  // Nothing of the failed attempts lingers: a context now works.
  std::unique_ptr<ExecutionContext> ctx;
  HostTensor y;
  ASSERT_TRUE(open(plan, "opencl", x_, &y, &ctx).is_ok());
  ASSERT_TRUE(ctx->run().is_ok());
  expect_reference(y);
}

TEST_F(FaultInjection, HostArenaOutOfMemoryWhenAContextIsCreated) {
  const auto plan = demo_plan("cpu");
  arm_fault(FaultSite::kHostArena, 1);
  std::unique_ptr<ExecutionContext> ctx;
  HostTensor y;
  Status st = open(plan, "cpu", x_, &y, &ctx);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kOutOfMemory);
  EXPECT_NE(st.message().find("bytes of host activations"), std::string::npos) << st.message();
  ASSERT_TRUE(open(plan, "cpu", x_, &y, &ctx).is_ok());
  ASSERT_TRUE(ctx->run().is_ok());
  expect_reference(y);
}

TEST_F(FaultInjection, OutOfMemoryWhileRunningOnTheCpu) {
  const auto plan = demo_plan("cpu");
  std::unique_ptr<ExecutionContext> ctx;
  HostTensor y;
  ASSERT_TRUE(open(plan, "cpu", x_, &y, &ctx).is_ok());
  for (int nth : {1, 3}) {
    arm_fault(FaultSite::kKernelScratch, nth);  // a CPU kernel's scratch allocation
    Status st = ctx->run();
    disarm_faults();
    ASSERT_FALSE(st.is_ok());
    EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.message();
    EXPECT_NE(st.message().find("node '"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("scratch"), std::string::npos) << st.message();
    ASSERT_TRUE(ctx->run().is_ok());
    expect_reference(y);
  }
}

// A CPU kernel that finds no oneDNN primitive it can create at run time (oneDNN 2.6 offers some
// it then cannot create on some CPUs: dnnl_common.h's creation_guard) leaves its node to the
// reference kernel: the run succeeds with the reference's outputs, so do later runs, and the
// profile names the node that fell back (kiln profile's "cpu-ref").
TEST_F(FaultInjection, KernelWithoutPrimitiveRunsTheReference) {
  const auto plan = demo_plan("cpu");
  auto fell_back = [](const Profiler& p, int run) {
    std::set<int32_t> nodes;
    for (const ProfileEvent& e : p.events())
      if (e.run == run && e.cpu_reference) nodes.insert(e.node);
    return nodes;
  };
  std::set<int32_t> first;
  for (int nth : {1, 2}) {
    std::unique_ptr<ExecutionContext> ctx;
    HostTensor y;
    ASSERT_TRUE(open(plan, "cpu", x_, &y, &ctx).is_ok());
    Profiler prof;
    ctx->set_profiler(&prof);
    arm_fault(FaultSite::kKernelCreate, nth);
    const Status st = ctx->run();
    disarm_faults();
    ASSERT_TRUE(st.is_ok()) << st.message();
    expect_reference(y);
    ASSERT_TRUE(ctx->run().is_ok());
    expect_reference(y);
    ctx->set_profiler(nullptr);
    // The n-th kernel made its primitives: that node, and only it, ran the reference both times.
    const std::set<int32_t> now = fell_back(prof, 0);
    ASSERT_EQ(now.size(), 1u) << "the injected creation failure did not reach a kernel (nth " << nth << ")";
    EXPECT_EQ(fell_back(prof, 1), now);
    EXPECT_NE(now, first) << "the first and the second kernel to be made are the same node";
    first = now;
  }
}

// A convolution wide enough to run as im2col + GEMM on OpenCL, whose column buffer is a device
// allocation made while the inference runs.
TEST_F(FaultInjection, DeviceOutOfMemoryWhileRunning) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(5);
  test::OpSpec conv{"Conv", 11, {}, {test::random_tensor(DType::kFloat32, {1, 32, 24, 24}, rng),
                                      test::random_tensor(DType::kFloat32, {64, 32, 3, 3}, rng)},
                    {false, true}};
  conv.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  std::vector<HostTensor> want;
  ASSERT_TRUE(test::run_op(conv, "cpu", &want).is_ok());
  auto plan = std::make_shared<Plan>();
  ASSERT_TRUE(test::build_op_plan(conv, "opencl", plan.get()).is_ok());
  ASSERT_EQ(plan->nodes[0].backend, Backend::kOpenCL);
  std::unique_ptr<ExecutionContext> ctx;
  HostTensor y;
  ASSERT_TRUE(open(plan, "opencl", conv.inputs[0], &y, &ctx).is_ok());
  arm_fault(FaultSite::kDeviceAlloc, 1);
  Status st = ctx->run();
  disarm_faults();
  ASSERT_FALSE(st.is_ok()) << "the convolution allocated nothing on the device while running";
  EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.message();
  EXPECT_NE(st.message().find("CL_MEM_OBJECT_ALLOCATION_FAILURE"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("scratch for"), std::string::npos) << st.message();
  ASSERT_TRUE(ctx->run().is_ok());
  EXPECT_TRUE(test::tensors_close(y, want[0], 1e-4, 1e-4));
}

TEST_F(FaultInjection, KernelLaunchFailureMidInference) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  const auto plan = demo_plan("opencl");
  std::unique_ptr<ExecutionContext> ctx;
  HostTensor y;
  ASSERT_TRUE(open(plan, "opencl", x_, &y, &ctx).is_ok());
  ASSERT_TRUE(ctx->run().is_ok());
  for (int nth : {1, 2, 3}) {
    arm_fault(FaultSite::kKernelLaunch, nth);
    Status st = ctx->run();
    disarm_faults();
    ASSERT_FALSE(st.is_ok()) << "launch " << nth;
    // cl_status (runtime/device/cl_check.h) counts CL_OUT_OF_RESOURCES as running out of memory.
    EXPECT_EQ(st.code(), StatusCode::kOutOfMemory) << st.message();
    EXPECT_NE(st.message().find("CL_OUT_OF_RESOURCES"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("node '"), std::string::npos) << st.message();
    // The queue was drained: the same context runs again, right.
    st = ctx->run();
    ASSERT_TRUE(st.is_ok()) << st.message();
    expect_reference(y);
  }
  // An asynchronous inference reports it through its event, and the context stays usable.
  arm_fault(FaultSite::kKernelLaunch, 2);
  auto ev = ctx->enqueue();
  std::string msg;
  EXPECT_EQ(ev->wait(&msg), static_cast<int>(StatusCode::kOutOfMemory)) << msg;
  EXPECT_NE(msg.find("CL_OUT_OF_RESOURCES"), std::string::npos) << msg;
  disarm_faults();
  ASSERT_TRUE(ctx->run().is_ok());
  expect_reference(y);
}

}  // namespace
}  // namespace kiln
