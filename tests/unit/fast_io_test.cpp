// Fast transfers through the C API: page-locked host buffers owned by a context, and
// device-resident tensors passed from one plan's context to another's without leaving the
// device. Results must equal the ordinary host-memory path bit for bit; misuse is an error
// naming the tensor.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kiln/kiln.h"
#include "runtime/device/cl_check.h"
#include "runtime/plan/plan_format.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

const int64_t kDims[3] = {4, 8, 16};
constexpr size_t kCount = 4 * 8 * 16, kBytes = kCount * sizeof(float);

// A one-node plan (input in0 float32 4x8x16 -> out0) for `device`, loaded through the C API.
kiln_plan* op_plan(const std::string& op, const std::string& device) {
  std::mt19937 rng(1);
  OpSpec s{op, 13, {}, {random_tensor(DType::kFloat32, {4, 8, 16}, rng)}, {false}};
  Plan p;
  Status st = build_op_plan(s, device, &p);
  EXPECT_TRUE(st.is_ok()) << st.message();
  const std::vector<uint8_t> bytes = serialize_plan(p);
  kiln_plan* plan = nullptr;
  EXPECT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK) << kiln_last_error();
  return plan;
}

std::vector<float> input_values() {
  std::vector<float> x(kCount);
  for (size_t i = 0; i < kCount; ++i) x[i] = std::sin(0.1f * i) * 3;
  return x;
}

// Runs `plan` on `device` from and to ordinary host memory.
std::vector<float> run_host(kiln_plan* plan, const char* device, const std::vector<float>& x) {
  kiln_context* c = nullptr;
  EXPECT_EQ(kiln_context_create(plan, device, &c), KILN_OK) << kiln_last_error();
  std::vector<float> y(kCount);
  EXPECT_EQ(kiln_context_bind_input(c, "in0", KILN_DTYPE_FLOAT32, kDims, 3, x.data(), kBytes), KILN_OK);
  EXPECT_EQ(kiln_context_bind_output(c, "out0", y.data(), kBytes), KILN_OK);
  EXPECT_EQ(kiln_context_run(c), KILN_OK) << kiln_last_error();
  kiln_context_release(c);
  return y;
}

TEST(FastIo, HostBuffersMatchOrdinaryMemory) {
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    SCOPED_TRACE(device);
    kiln_plan* plan = op_plan("Sigmoid", device);
    const std::vector<float> x = input_values(), want = run_host(plan, device, x);
    kiln_context* c = nullptr;
    ASSERT_EQ(kiln_context_create(plan, device, &c), KILN_OK) << kiln_last_error();
    void *in = nullptr, *out = nullptr;
    size_t in_bytes = 0, out_bytes = 0;
    ASSERT_EQ(kiln_context_host_buffer(c, "in0", &in, &in_bytes), KILN_OK) << kiln_last_error();
    ASSERT_EQ(kiln_context_host_buffer(c, "out0", &out, &out_bytes), KILN_OK) << kiln_last_error();
    ASSERT_EQ(in_bytes, kBytes);
    ASSERT_EQ(out_bytes, kBytes);
    void* again = nullptr;
    ASSERT_EQ(kiln_context_host_buffer(c, "in0", &again, &in_bytes), KILN_OK);
    EXPECT_EQ(again, in) << "a second call must return the same buffer";
    std::memcpy(in, x.data(), kBytes);
    ASSERT_EQ(kiln_context_bind_input(c, "in0", KILN_DTYPE_FLOAT32, kDims, 3, in, kBytes), KILN_OK);
    ASSERT_EQ(kiln_context_bind_output(c, "out0", out, kBytes), KILN_OK);
    for (int run = 0; run < 2; ++run) {
      std::memset(out, 0, kBytes);
      ASSERT_EQ(kiln_context_run(c), KILN_OK) << kiln_last_error();
      EXPECT_EQ(std::memcmp(out, want.data(), kBytes), 0) << "run " << run;
    }
    void* none = nullptr;
    EXPECT_EQ(kiln_context_host_buffer(c, "nope", &none, &in_bytes), KILN_ERROR_NOT_FOUND);
    EXPECT_NE(std::string(kiln_last_error()).find("'nope'"), std::string::npos) << kiln_last_error();
    kiln_context_release(c);
    kiln_plan_release(plan);
  }
}

TEST(FastIo, DevicePipelineStaysOnTheDevice) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  kiln_plan* a = op_plan("Sigmoid", "opencl");
  kiln_plan* b = op_plan("Exp", "opencl");
  const std::vector<float> x = input_values();
  const std::vector<float> want = run_host(b, "opencl", run_host(a, "opencl", x));

  kiln_context *ca = nullptr, *cb = nullptr;
  ASSERT_EQ(kiln_context_create(a, "opencl", &ca), KILN_OK) << kiln_last_error();
  ASSERT_EQ(kiln_context_create(b, "opencl", &cb), KILN_OK) << kiln_last_error();
  ASSERT_EQ(kiln_context_bind_input(ca, "in0", KILN_DTYPE_FLOAT32, kDims, 3, x.data(), kBytes), KILN_OK);
  void* mem = nullptr;
  ASSERT_EQ(kiln_context_output_device(ca, "out0", &mem), KILN_OK) << kiln_last_error();
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(kiln_context_bind_input_device(cb, "in0", mem), KILN_OK) << kiln_last_error();
  std::vector<float> y(kCount);
  ASSERT_EQ(kiln_context_bind_output(cb, "out0", y.data(), kBytes), KILN_OK);
  for (int run = 0; run < 2; ++run) {
    std::fill(y.begin(), y.end(), 0.f);
    ASSERT_EQ(kiln_context_run(ca), KILN_OK) << kiln_last_error();
    ASSERT_EQ(kiln_context_run(cb), KILN_OK) << kiln_last_error();
    EXPECT_EQ(std::memcmp(y.data(), want.data(), kBytes), 0) << "run " << run;
  }
  // Rebinding host memory undoes the device binding.
  const std::vector<float> sig = run_host(a, "opencl", x);
  ASSERT_EQ(kiln_context_bind_input(cb, "in0", KILN_DTYPE_FLOAT32, kDims, 3, sig.data(), kBytes), KILN_OK);
  ASSERT_EQ(kiln_context_run(cb), KILN_OK) << kiln_last_error();
  EXPECT_EQ(std::memcmp(y.data(), want.data(), kBytes), 0);
  kiln_context_release(cb);
  kiln_context_release(ca);
  kiln_plan_release(b);
  kiln_plan_release(a);
}

TEST(FastIo, DeviceBindingMisuseIsAnError) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  kiln_plan* a = op_plan("Sigmoid", "opencl");
  kiln_context *gpu = nullptr, *cpu = nullptr;
  ASSERT_EQ(kiln_context_create(a, "opencl", &gpu), KILN_OK) << kiln_last_error();
  ASSERT_EQ(kiln_context_create(a, "cpu", &cpu), KILN_OK) << kiln_last_error();
  void* mem = nullptr;
  ASSERT_EQ(kiln_context_output_device(gpu, "out0", &mem), KILN_OK) << kiln_last_error();
  EXPECT_EQ(kiln_context_output_device(cpu, "out0", &mem), KILN_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(kiln_last_error()).find("output 'out0'"), std::string::npos) << kiln_last_error();
  EXPECT_EQ(kiln_context_bind_input_device(cpu, "in0", mem), KILN_ERROR_UNSUPPORTED);
  EXPECT_EQ(kiln_context_bind_input_device(gpu, "out0", mem), KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(kiln_context_bind_input_device(gpu, "in0", nullptr), KILN_ERROR_INVALID_ARGUMENT);
  // A buffer of another OpenCL context, and one too small, are refused by name.
  cl_platform_id plat = nullptr;
  cl_device_id dev = nullptr;
  ASSERT_EQ(clGetPlatformIDs(1, &plat, nullptr), CL_SUCCESS);
  ASSERT_EQ(clGetDeviceIDs(plat, CL_DEVICE_TYPE_ALL, 1, &dev, nullptr), CL_SUCCESS);
  cl_int err = CL_SUCCESS;
  cl_context other = clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &err);
  ASSERT_EQ(err, CL_SUCCESS);
  cl_mem foreign = clCreateBuffer(other, CL_MEM_READ_WRITE, kBytes, nullptr, &err);
  ASSERT_EQ(err, CL_SUCCESS);
  EXPECT_EQ(kiln_context_bind_input_device(gpu, "in0", foreign), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error()).find("another OpenCL context"), std::string::npos) << kiln_last_error();
  cl_context kilns = nullptr;
  ASSERT_EQ(clGetMemObjectInfo(static_cast<cl_mem>(mem), CL_MEM_CONTEXT, sizeof kilns, &kilns, nullptr), CL_SUCCESS);
  cl_mem tiny = clCreateBuffer(kilns, CL_MEM_READ_WRITE, kBytes / 2, nullptr, &err);
  ASSERT_EQ(err, CL_SUCCESS);
  EXPECT_EQ(kiln_context_bind_input_device(gpu, "in0", tiny), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error()).find("the input needs 2048"), std::string::npos) << kiln_last_error();
  clReleaseMemObject(tiny);
  kiln_plan* b = op_plan("Exp", "opencl");
  kiln_context* small = nullptr;
  ASSERT_EQ(kiln_context_create(b, "opencl", &small), KILN_OK);
  // Another context's device output binds; a run then still needs this one's output bound.
  std::vector<float> y(kCount);
  ASSERT_EQ(kiln_context_bind_input_device(small, "in0", mem), KILN_OK) << kiln_last_error();
  EXPECT_EQ(kiln_context_run(small), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error()).find("output 'out0' was not bound"), std::string::npos) << kiln_last_error();
  clReleaseMemObject(foreign);
  clReleaseContext(other);
  kiln_context_release(small);
  kiln_context_release(cpu);
  kiln_context_release(gpu);
  kiln_plan_release(b);
  kiln_plan_release(a);
}

}  // namespace
}  // namespace kiln::test
