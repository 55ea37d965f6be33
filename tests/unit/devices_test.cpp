// The --device syntax shared by every verb and kiln_context_create: cpu, opencl, opencl:N,
// auto; a missing device names how many exist, a malformed spec says what is expected.
#include <gtest/gtest.h>

#include <string>

#include "runtime/device/devices.h"

namespace kiln::test {
namespace {

::testing::AssertionResult has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not in: " << text;
}

TEST(DeviceSpec, Cpu) {
  ResolvedDevice d;
  ASSERT_TRUE(resolve_device("cpu", &d).is_ok());
  EXPECT_EQ(d.backend, Backend::kCpu);
  EXPECT_EQ(d.opencl_index, -1);
  EXPECT_EQ(d.label, "cpu");
  EXPECT_EQ(d.caps.kind, "cpu");
  EXPECT_GE(d.caps.compute_units, 1u);
}

TEST(DeviceSpec, OpenClAndIndex) {
  const size_t n = opencl_devices().size();
  for (const char* spec : {"opencl", "opencl:0"}) {
    ResolvedDevice d;
    Status st = resolve_device(spec, &d);
    if (n == 0) {
      EXPECT_EQ(st.code(), StatusCode::kNotFound) << spec;
      EXPECT_TRUE(has(st.message(), "no OpenCL device found"));
      continue;
    }
    ASSERT_TRUE(st.is_ok()) << spec << ": " << st.message();
    EXPECT_EQ(d.backend, Backend::kOpenCL);
    EXPECT_EQ(d.opencl_index, 0);
    EXPECT_EQ(d.caps.kind, "opencl");
    EXPECT_EQ(d.caps.name, opencl_devices()[0].caps.name);
    EXPECT_TRUE(has(d.label, "opencl:0 ("));
  }
  if (n > 1) {
    ResolvedDevice d;
    ASSERT_TRUE(resolve_device("opencl:" + std::to_string(n - 1), &d).is_ok());
    EXPECT_EQ(d.opencl_index, static_cast<int>(n - 1));
  }
}

TEST(DeviceSpec, MissingIndexNamesTheCount) {
  const size_t n = opencl_devices().size();
  for (const char* spec : {"opencl:99", "opencl:123456"}) {
    ResolvedDevice d;
    Status st = resolve_device(spec, &d);
    EXPECT_EQ(st.code(), StatusCode::kNotFound) << spec;
    EXPECT_TRUE(has(st.message(), std::string("device '") + spec + "'"));
    if (n > 0) {
      EXPECT_TRUE(has(st.message(), "only " + std::to_string(n) + " OpenCL device(s) found"));
    }
  }
}

TEST(DeviceSpec, MalformedSpecsAreInvalid) {
  for (const char* spec : {"gpu", "GPU", "cuda", "opencl:x", "opencl:-1", "opencl:1.0", "opencl:9999999",
                           "cpu:0", " cpu", "opencl0"}) {
    ResolvedDevice d;
    Status st = resolve_device(spec, &d);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << spec << ": " << st.message();
    EXPECT_TRUE(has(st.message(), std::string("bad device '") + spec + "'"));
    EXPECT_TRUE(has(st.message(), "expected"));
  }
}

TEST(DeviceSpec, AutoPrefersOpenCl) {
  for (const char* spec : {"auto", ""}) {
    ResolvedDevice d;
    ASSERT_TRUE(resolve_device(spec, &d).is_ok());
    if (opencl_devices().empty()) {
      EXPECT_EQ(d.backend, Backend::kCpu);
    } else {
      EXPECT_EQ(d.backend, Backend::kOpenCL);
      bool any_gpu = false;
      for (const auto& c : opencl_devices()) any_gpu |= (c.type & CL_DEVICE_TYPE_GPU) != 0;
      if (any_gpu) {
        EXPECT_TRUE(opencl_devices()[d.opencl_index].type & CL_DEVICE_TYPE_GPU);
      }
    }
  }
}

TEST(DeviceSpec, Capabilities) {
  EXPECT_TRUE(device_capabilities(cpu_device_caps()).empty());
  if (opencl_devices().empty()) return;
  const auto caps = device_capabilities(opencl_devices()[0].caps);
  ASSERT_FALSE(caps.empty());
  EXPECT_EQ(caps[0], "opencl");
}

}  // namespace
}  // namespace kiln::test
