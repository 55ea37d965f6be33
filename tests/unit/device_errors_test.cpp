// Run-time values an OpenCL kernel must refuse (issue 10): a Gather index out of range returned
// 0 on OpenCL where the cpu device refuses it. The kernel now records it in the device error
// flag and the run fails naming the node and the index, like the CPU kernel; the context stays
// usable and the next good run is right.
#include <gtest/gtest.h>

#include <random>

#include "runtime/exec/execution_context.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

HostTensor ints64(std::vector<int64_t> v) {
  HostTensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
  return t;
}

TEST(DeviceErrors, OpenCLGatherRefusesOutOfRangeIndicesLikeTheCpu) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(7);
  const HostTensor x = test::random_tensor(DType::kFloat32, {5, 3}, rng);
  test::OpSpec spec{"Gather", 13, {}, {x, ints64({1, 2})}, {false, false}};
  auto plan = std::make_shared<Plan>();
  ASSERT_TRUE(test::build_op_plan(spec, "opencl", plan.get()).is_ok());
  ASSERT_EQ(plan->nodes[0].backend, Backend::kOpenCL);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "opencl", &ctx, &notice).is_ok());
  HostTensor y(DType::kFloat32, {2, 3});
  ASSERT_TRUE(ctx->bind_input("in0", DType::kFloat32, x.shape(), x.data(), x.size_bytes()).is_ok());
  ASSERT_TRUE(ctx->bind_output(plan->tensors[plan->outputs[0]].name, y.data(), y.size_bytes()).is_ok());

  for (const std::vector<int64_t>& bad : {std::vector<int64_t>{1, 5}, {-6, 0}, {int64_t{1} << 40, 2}}) {
    const HostTensor ind = ints64(bad);
    ASSERT_TRUE(ctx->bind_input("in1", DType::kInt64, ind.shape(), ind.data(), ind.size_bytes()).is_ok());
    Status st = ctx->run();
    ASSERT_FALSE(st.is_ok()) << "index " << bad[0] << ", " << bad[1] << " ran";
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();
    const int64_t refused = bad[0] >= -5 && bad[0] < 5 ? bad[1] : bad[0];
    EXPECT_NE(st.message().find("index " + std::to_string(refused) + " is out of range for axis 0 of size 5"),
              std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find(plan->nodes[0].name), std::string::npos) << st.message();
    // The cpu device says the same about the same indices.
    std::vector<HostTensor> out;
    test::OpSpec cpu{"Gather", 13, {}, {x, ind}, {false, false}};
    Status c = test::run_op(cpu, "cpu", &out);
    EXPECT_EQ(c.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(c.message().find("index " + std::to_string(refused)), std::string::npos) << c.message();
  }
  // The flag was cleared: good indices run, with the right rows, on the same context.
  const HostTensor good = ints64({4, -1});
  ASSERT_TRUE(ctx->bind_input("in1", DType::kInt64, good.shape(), good.data(), good.size_bytes()).is_ok());
  Status st = ctx->run();
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(y.as<float>()[c], x.as<float>()[4 * 3 + c]);
    EXPECT_EQ(y.as<float>()[3 + c], x.as<float>()[4 * 3 + c]);
  }
}

}  // namespace
}  // namespace kiln
