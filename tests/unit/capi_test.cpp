// The C API (include/kiln/kiln.h) as an embedding application uses it: load, query, bind, run,
// and every misuse answered with a status and a message, never a crash. The plan comes from
// the committed copy-ops model (x float32[2,3,4] -> Reshape [4,6] -> y; ids int64[5] -> ids_out).
#include <gtest/gtest.h>

#include <cctype>

#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "compiler/compiler.h"
#include "kiln/kiln.h"
#include "runtime/core/sha256.h"
#include "runtime/plan/plan_format.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

std::string msg() { return kiln_last_error(); }

::testing::AssertionResult has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not in: " << text;
}

class CApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Plan p;
    BuildOptions opts;
    opts.device = "cpu";
    Status st = build_plan_from_file(model_path("copy_two_inputs.onnx"), opts, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    bytes_ = new std::vector<uint8_t>(serialize_plan(p));
    path_ = new std::string(scratch_dir("capi") + "/copy.plan");
    ASSERT_TRUE(write_plan_file(p, *path_).is_ok());
  }
  static void TearDownTestSuite() {
    delete bytes_;
    delete path_;
  }
  void SetUp() override {
    ASSERT_EQ(kiln_plan_load_memory(bytes_->data(), bytes_->size(), &plan_), KILN_OK) << msg();
    ASSERT_EQ(kiln_context_create(plan_, "cpu", &ctx_), KILN_OK) << msg();
    for (int i = 0; i < 24; ++i) x_[i] = 0.5f * i;
    for (int i = 0; i < 5; ++i) ids_[i] = 100 + i;
  }
  void TearDown() override {
    kiln_context_release(ctx_);
    kiln_plan_release(plan_);
  }
  kiln_status bind_x() { return kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, kXDims, 3, x_, sizeof x_); }
  kiln_status bind_ids() {
    return kiln_context_bind_input(ctx_, "ids", KILN_DTYPE_INT64, kIdsDims, 1, ids_, sizeof ids_);
  }
  kiln_status bind_outputs() {
    kiln_status s = kiln_context_bind_output(ctx_, "y", y_, sizeof y_);
    return s != KILN_OK ? s : kiln_context_bind_output(ctx_, "ids_out", ids_out_, sizeof ids_out_);
  }
  void expect_outputs() {
    for (int i = 0; i < 24; ++i) EXPECT_EQ(y_[i], x_[i]);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ids_out_[i], ids_[i]);
  }

  static constexpr int64_t kXDims[3] = {2, 3, 4};
  static constexpr int64_t kIdsDims[1] = {5};
  static std::vector<uint8_t>* bytes_;
  static std::string* path_;
  kiln_plan* plan_ = nullptr;
  kiln_context* ctx_ = nullptr;
  float x_[24];
  int64_t ids_[5];
  float y_[24] = {};
  int64_t ids_out_[5] = {};
};
std::vector<uint8_t>* CApi::bytes_ = nullptr;
std::string* CApi::path_ = nullptr;
constexpr int64_t CApi::kXDims[3];
constexpr int64_t CApi::kIdsDims[1];

TEST_F(CApi, LoadFromFileAndMemoryAgree) {
  kiln_plan* f = nullptr;
  ASSERT_EQ(kiln_plan_load_file(path_->c_str(), &f), KILN_OK) << msg();
  EXPECT_EQ(kiln_plan_num_inputs(f), kiln_plan_num_inputs(plan_));
  EXPECT_EQ(kiln_plan_num_outputs(f), kiln_plan_num_outputs(plan_));
  EXPECT_STREQ(kiln_plan_target_device(f), "host cpu");
  EXPECT_STREQ(kiln_plan_target_device(plan_), "host cpu");
  kiln_plan_release(f);
}

// A deployment pins the plan's content: the SHA-256 of the file (as kiln inspect prints it).
TEST_F(CApi, PinnedPlanHash) {
  const std::string sum = sha256_hex(std::string(bytes_->begin(), bytes_->end()));
  kiln_plan* p = nullptr;
  ASSERT_EQ(kiln_plan_load_file_pinned(path_->c_str(), sum.c_str(), &p), KILN_OK) << msg();
  EXPECT_EQ(kiln_plan_release(p), KILN_OK);
  std::string upper = sum;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_EQ(kiln_plan_load_file_pinned(path_->c_str(), upper.c_str(), &p), KILN_OK) << msg();
  EXPECT_EQ(kiln_plan_release(p), KILN_OK);
  ASSERT_EQ(kiln_plan_load_file_pinned(path_->c_str(), "", &p), KILN_OK) << msg();  // "" pins nothing
  EXPECT_EQ(kiln_plan_release(p), KILN_OK);
  std::string other = sum;
  other[10] = other[10] == '0' ? '1' : '0';
  EXPECT_EQ(kiln_plan_load_file_pinned(path_->c_str(), other.c_str(), &p), KILN_ERROR_INVALID_PLAN);
  EXPECT_TRUE(has(msg(), "has SHA-256 " + sum + ", not the pinned " + other)) << msg();
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(kiln_plan_load_file_pinned(path_->c_str(), "abc", &p), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "not 64 hex digits")) << msg();
}

TEST_F(CApi, LoadMemoryCopiesTheBytes) {
  std::vector<uint8_t> copy = *bytes_;
  kiln_plan* p = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(copy.data(), copy.size(), &p), KILN_OK) << msg();
  std::fill(copy.begin(), copy.end(), 0);
  kiln_tensor_info info;
  ASSERT_EQ(kiln_plan_input_info(p, 0, &info), KILN_OK);
  EXPECT_STREQ(info.name, "x");
  kiln_plan_release(p);
}

TEST_F(CApi, MissingAndBrokenPlanFiles) {
  kiln_plan* p = reinterpret_cast<kiln_plan*>(0x1);
  EXPECT_EQ(kiln_plan_load_file("/nonexistent/dir/model.plan", &p), KILN_ERROR_NOT_FOUND);
  EXPECT_TRUE(has(msg(), "/nonexistent/dir/model.plan"));
  EXPECT_EQ(p, nullptr);  // *out is cleared on failure

  const std::string dir = scratch_dir("capi_bad");
  std::ofstream(dir + "/trunc.plan", std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes_->data()), 100);
  EXPECT_EQ(kiln_plan_load_file((dir + "/trunc.plan").c_str(), &p), KILN_ERROR_INVALID_PLAN);
  EXPECT_TRUE(has(msg(), "trunc.plan"));
  EXPECT_TRUE(has(msg(), "truncated"));
  std::ofstream(dir + "/empty.plan", std::ios::binary).flush();
  EXPECT_EQ(kiln_plan_load_file((dir + "/empty.plan").c_str(), &p), KILN_ERROR_INVALID_PLAN);

  std::vector<uint8_t> bad = *bytes_;
  bad[bad.size() / 2] ^= 0x55;
  EXPECT_EQ(kiln_plan_load_memory(bad.data(), bad.size(), &p), KILN_ERROR_INVALID_PLAN);
  EXPECT_TRUE(has(msg(), "checksum"));
  EXPECT_EQ(kiln_plan_load_memory(bytes_->data(), 10, &p), KILN_ERROR_INVALID_PLAN);
  EXPECT_EQ(kiln_plan_load_memory(nullptr, 0, &p), KILN_ERROR_INVALID_PLAN);
}

TEST_F(CApi, InputAndOutputInfo) {
  ASSERT_EQ(kiln_plan_num_inputs(plan_), 2);
  ASSERT_EQ(kiln_plan_num_outputs(plan_), 2);
  kiln_tensor_info info;
  ASSERT_EQ(kiln_plan_input_info(plan_, 0, &info), KILN_OK);
  EXPECT_STREQ(info.name, "x");
  EXPECT_EQ(info.dtype, KILN_DTYPE_FLOAT32);
  ASSERT_EQ(info.rank, 3);
  EXPECT_EQ(info.dims[0], 2);
  EXPECT_EQ(info.dims[1], 3);
  EXPECT_EQ(info.dims[2], 4);
  EXPECT_EQ(info.size_bytes, 96u);
  ASSERT_EQ(kiln_plan_input_info(plan_, 1, &info), KILN_OK);
  EXPECT_STREQ(info.name, "ids");
  EXPECT_EQ(info.dtype, KILN_DTYPE_INT64);
  EXPECT_EQ(info.size_bytes, 40u);
  ASSERT_EQ(kiln_plan_output_info(plan_, 0, &info), KILN_OK);
  EXPECT_STREQ(info.name, "y");
  ASSERT_EQ(info.rank, 2);
  EXPECT_EQ(info.dims[0], 4);
  EXPECT_EQ(info.dims[1], 6);
  ASSERT_EQ(kiln_plan_output_info(plan_, 1, &info), KILN_OK);
  EXPECT_STREQ(info.name, "ids_out");

  EXPECT_EQ(kiln_plan_input_info(plan_, 2, &info), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input index 2 out of range"));
  EXPECT_EQ(kiln_plan_input_info(plan_, -1, &info), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_output_info(plan_, 7, &info), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "output index 7 out of range"));
}

TEST_F(CApi, BindRunAndRunAgain) {
  ASSERT_EQ(bind_x(), KILN_OK) << msg();
  ASSERT_EQ(bind_ids(), KILN_OK) << msg();
  ASSERT_EQ(bind_outputs(), KILN_OK) << msg();
  ASSERT_EQ(kiln_context_run(ctx_), KILN_OK) << msg();
  EXPECT_STREQ(kiln_last_error(), "");
  expect_outputs();
  // Bindings are borrowed: new values in the same memory are picked up by the next run.
  for (int i = 0; i < 24; ++i) x_[i] = -1.0f * i;
  ASSERT_EQ(kiln_context_run(ctx_), KILN_OK) << msg();
  expect_outputs();
  EXPECT_STREQ(kiln_context_device(ctx_), "cpu");
}

TEST_F(CApi, BindWrongDtypeNamesInputExpectedAndGot) {
  double xd[24] = {};
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT64, kXDims, 3, xd, sizeof xd),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'x'"));
  EXPECT_TRUE(has(msg(), "expected float32 2x3x4"));
  EXPECT_TRUE(has(msg(), "got float64 2x3x4"));
  // An integer code that is no dtype at all.
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", 999, kXDims, 3, x_, sizeof x_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'x'"));
  EXPECT_TRUE(has(msg(), "999"));
}

TEST_F(CApi, BindWrongShapeNamesInputExpectedAndGot) {
  const int64_t swapped[3] = {3, 2, 4};
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, swapped, 3, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'x': expected float32 2x3x4, got float32 3x2x4"));
  const int64_t flat[1] = {24};  // same element count, other rank: still refused (no reshapes)
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, flat, 1, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "got float32 24"));
  EXPECT_EQ(kiln_context_bind_input(ctx_, "ids", KILN_DTYPE_INT64, nullptr, 0, ids_, sizeof ids_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'ids': expected int64 5, got int64 scalar"));
}

TEST_F(CApi, BindWrongSizeNamesInputExpectedAndGot) {
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, kXDims, 3, x_, 95),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'x': expected 96 bytes, got 95"));
  EXPECT_EQ(kiln_context_bind_output(ctx_, "y", y_, 1000), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "output 'y': expected 96 bytes, got 1000"));
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, kXDims, 3, nullptr, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'x': data is NULL"));
  EXPECT_EQ(kiln_context_bind_output(ctx_, "y", nullptr, sizeof y_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "output 'y': data is NULL"));
}

TEST_F(CApi, UnknownNamesAreNamed) {
  EXPECT_EQ(kiln_context_bind_input(ctx_, "nope", KILN_DTYPE_FLOAT32, kXDims, 3, x_, sizeof x_),
            KILN_ERROR_NOT_FOUND);
  EXPECT_TRUE(has(msg(), "no input named 'nope'"));
  // An output name is not an input name, and the other way round.
  EXPECT_EQ(kiln_context_bind_input(ctx_, "y", KILN_DTYPE_FLOAT32, kXDims, 3, x_, sizeof x_),
            KILN_ERROR_NOT_FOUND);
  EXPECT_EQ(kiln_context_bind_output(ctx_, "x", y_, sizeof y_), KILN_ERROR_NOT_FOUND);
  EXPECT_TRUE(has(msg(), "no output named 'x'"));
}

TEST_F(CApi, RunWithoutBindingNamesTheUnboundTensor) {
  EXPECT_EQ(kiln_context_run(ctx_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'x' was not bound"));
  ASSERT_EQ(bind_x(), KILN_OK);
  EXPECT_EQ(kiln_context_run(ctx_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "input 'ids' was not bound"));
  ASSERT_EQ(bind_ids(), KILN_OK);
  EXPECT_EQ(kiln_context_run(ctx_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "output 'y' was not bound"));
}

TEST_F(CApi, ContextUsableAfterFailures) {
  // A failed run, a failed bind, then the real thing on the same context.
  EXPECT_NE(kiln_context_run(ctx_), KILN_OK);
  ASSERT_EQ(bind_x(), KILN_OK);
  EXPECT_NE(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_INT64, kXDims, 3, x_, sizeof x_), KILN_OK);
  ASSERT_EQ(bind_ids(), KILN_OK);
  ASSERT_EQ(bind_outputs(), KILN_OK);
  EXPECT_NE(kiln_context_bind_output(ctx_, "y", y_, 3), KILN_OK);  // keeps the earlier binding
  ASSERT_EQ(kiln_context_run(ctx_), KILN_OK) << msg();
  expect_outputs();
  EXPECT_STREQ(kiln_last_error(), "");
}

TEST_F(CApi, NullArgumentsAreErrorsNotCrashes) {
  kiln_plan* p = nullptr;
  kiln_context* c = nullptr;
  kiln_tensor_info info;
  EXPECT_EQ(kiln_plan_load_file(nullptr, &p), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "NULL"));
  EXPECT_EQ(kiln_plan_load_file(path_->c_str(), nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_load_memory(nullptr, 100, &p), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_load_memory(bytes_->data(), bytes_->size(), nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_num_inputs(nullptr), 0);
  EXPECT_EQ(kiln_plan_num_outputs(nullptr), 0);
  EXPECT_EQ(kiln_plan_input_info(nullptr, 0, &info), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_input_info(plan_, 0, nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_output_info(nullptr, 0, &info), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_output_info(plan_, 0, nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(kiln_plan_target_device(nullptr), "");
  EXPECT_EQ(kiln_context_create(nullptr, "cpu", &c), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_create(plan_, "cpu", nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_input(nullptr, "x", KILN_DTYPE_FLOAT32, kXDims, 3, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_input(ctx_, nullptr, KILN_DTYPE_FLOAT32, kXDims, 3, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, nullptr, 3, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, kXDims, -1, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_input(ctx_, "x", KILN_DTYPE_FLOAT32, kXDims, KILN_MAX_RANK + 1, x_, sizeof x_),
            KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_output(nullptr, "y", y_, sizeof y_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_output(ctx_, nullptr, y_, sizeof y_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_run(nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(kiln_context_device(nullptr), "");
  EXPECT_EQ(kiln_plan_release(nullptr), KILN_OK);
  EXPECT_EQ(kiln_context_release(nullptr), KILN_OK);
  EXPECT_EQ(kiln_event_release(nullptr), KILN_OK);
}

// Issue 10: a second release of a context, plan or event crashed (SIGSEGV, SIGABRT, SIGBUS).
// Every handle is now checked against the live ones.
TEST_F(CApi, ReleasedAndForeignHandlesAreErrorsNotCrashes) {
  kiln_plan* p = nullptr;
  kiln_context* c = nullptr;
  kiln_event* e = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes_->data(), bytes_->size(), &p), KILN_OK) << msg();
  ASSERT_EQ(kiln_context_create(p, "cpu", &c), KILN_OK) << msg();
  ASSERT_EQ(kiln_context_bind_input(c, "x", KILN_DTYPE_FLOAT32, kXDims, 3, x_, sizeof x_), KILN_OK);
  ASSERT_EQ(kiln_context_bind_input(c, "ids", KILN_DTYPE_INT64, kIdsDims, 1, ids_, sizeof ids_), KILN_OK);
  ASSERT_EQ(kiln_context_bind_output(c, "y", y_, sizeof y_), KILN_OK);
  ASSERT_EQ(kiln_context_bind_output(c, "ids_out", ids_out_, sizeof ids_out_), KILN_OK);
  ASSERT_EQ(kiln_enqueue(c, &e), KILN_OK) << msg();
  ASSERT_EQ(kiln_wait(e), KILN_OK) << msg();
  expect_outputs();

  EXPECT_EQ(kiln_event_release(e), KILN_OK);
  EXPECT_EQ(kiln_event_release(e), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "kiln_event_release: the event handle is NULL or was already released")) << msg();
  EXPECT_EQ(kiln_wait(e), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_event_is_done(e), 0);
  EXPECT_EQ(kiln_event_set_callback(e, [](kiln_status, const char*, void*) {}, nullptr), KILN_ERROR_INVALID_ARGUMENT);

  // The plan may go first: its contexts keep what they need.
  EXPECT_EQ(kiln_plan_release(p), KILN_OK);
  EXPECT_EQ(kiln_plan_release(p), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "plan handle")) << msg();
  kiln_tensor_info info;
  EXPECT_EQ(kiln_plan_input_info(p, 0, &info), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_num_inputs(p), 0);
  kiln_context* c2 = nullptr;
  EXPECT_EQ(kiln_context_create(p, "cpu", &c2), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(c2, nullptr);
  EXPECT_EQ(kiln_context_run(c), KILN_OK) << msg();

  EXPECT_EQ(kiln_context_release(c), KILN_OK);
  EXPECT_EQ(kiln_context_release(c), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "context handle")) << msg();
  EXPECT_EQ(kiln_context_run(c), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_enqueue(c, &e), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_bind_output(c, "y", y_, sizeof y_), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(kiln_context_device(c), "");

  // Pointers that were never handles (another handle's type, stack memory).
  int junk[16] = {};
  EXPECT_EQ(kiln_context_run(reinterpret_cast<kiln_context*>(plan_)), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_plan_release(reinterpret_cast<kiln_plan*>(ctx_)), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_event_release(reinterpret_cast<kiln_event*>(junk)), KILN_ERROR_INVALID_ARGUMENT);
  // The fixture's own handles are untouched by all of this.
  ASSERT_EQ(bind_x(), KILN_OK);
  ASSERT_EQ(bind_ids(), KILN_OK);
  ASSERT_EQ(bind_outputs(), KILN_OK);
  ASSERT_EQ(kiln_context_run(ctx_), KILN_OK) << msg();
}

// An event released before its inference completes: the inference still finishes, and a
// context released with inferences in flight waits for them.
TEST_F(CApi, ReleasingEventsAndContextsWithWorkInFlight) {
  ASSERT_EQ(bind_x(), KILN_OK);
  ASSERT_EQ(bind_ids(), KILN_OK);
  ASSERT_EQ(bind_outputs(), KILN_OK);
  for (int i = 0; i < 20; ++i) {
    kiln_event* e = nullptr;
    ASSERT_EQ(kiln_enqueue(ctx_, &e), KILN_OK) << msg();
    EXPECT_EQ(kiln_event_release(e), KILN_OK);
  }
  kiln_context* c = nullptr;
  ASSERT_EQ(kiln_context_create(plan_, "cpu", &c), KILN_OK) << msg();
  std::swap(c, ctx_);
  EXPECT_EQ(kiln_context_release(c), KILN_OK);  // waits for the 20 inferences
  EXPECT_EQ(kiln_context_release(c), KILN_ERROR_INVALID_ARGUMENT);
  expect_outputs();
}

TEST_F(CApi, ContextOnAnotherDevice) {
  kiln_context* c = reinterpret_cast<kiln_context*>(0x1);
  EXPECT_EQ(kiln_context_create(plan_, "gpu", &c), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(has(msg(), "bad device 'gpu'"));
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(kiln_context_create(plan_, "opencl:99", &c), KILN_ERROR_NOT_FOUND);
  EXPECT_TRUE(has(msg(), "opencl:99"));
  if (kiln_device_count() == 0) return;
  // A cpu-built plan runs on OpenCL too (the nodes the OpenCL backend supports go there).
  ASSERT_EQ(kiln_context_create(plan_, "opencl:0", &c), KILN_OK) << msg();
  std::swap(c, ctx_);
  kiln_context_release(c);
  EXPECT_TRUE(has(kiln_context_device(ctx_), "opencl:0"));
  ASSERT_EQ(bind_x(), KILN_OK);
  ASSERT_EQ(bind_ids(), KILN_OK);
  ASSERT_EQ(bind_outputs(), KILN_OK);
  ASSERT_EQ(kiln_context_run(ctx_), KILN_OK) << msg();
  expect_outputs();
}

// Plans that pass verify_plan but that this runtime or device cannot run: refused when the
// context is created, naming what is missing, never at run time.
std::vector<uint8_t> edited_plan(const std::string& device, void (*edit)(Plan&)) {
  Plan p;
  BuildOptions opts;
  opts.device = device;
  EXPECT_TRUE(build_plan_from_file(model_path("copy_two_inputs.onnx"), opts, &p).is_ok());
  edit(p);
  return serialize_plan(p);
}

TEST_F(CApi, UnknownRuntimeOpIsRefusedAtLoad) {
  // The verifier re-derives every node when the plan is loaded, so an op this runtime lacks is
  // refused there, naming the node and the op.
  const std::vector<uint8_t> bytes = edited_plan("cpu", [](Plan& p) { p.nodes[0].op = "FutureOp"; });
  kiln_plan* p = nullptr;
  EXPECT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &p), KILN_ERROR_UNSUPPORTED);
  EXPECT_TRUE(has(msg(), "node 'reshape'"));
  EXPECT_TRUE(has(msg(), "no op 'FutureOp'"));
  EXPECT_EQ(p, nullptr);
}

TEST_F(CApi, MissingDeviceCapabilityIsNamed) {
  if (kiln_device_count() == 0) GTEST_SKIP() << "no OpenCL device";
  const std::vector<uint8_t> bytes =
      edited_plan("opencl:0", [](Plan& p) { p.required_caps.push_back("cl_kiln_imaginary_ext"); });
  kiln_plan* p = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &p), KILN_OK) << msg();
  kiln_context* c = nullptr;
  EXPECT_EQ(kiln_context_create(p, "opencl:0", &c), KILN_ERROR_UNSUPPORTED);
  EXPECT_TRUE(has(msg(), "lacks capability 'cl_kiln_imaginary_ext'"));
  EXPECT_TRUE(has(msg(), "rebuild the plan"));
  // The cpu backend needs no OpenCL capability: the same plan runs there.
  ASSERT_EQ(kiln_context_create(p, "cpu", &c), KILN_OK) << msg();
  kiln_context_release(c);
  kiln_plan_release(p);
}

TEST_F(CApi, LastErrorIsPerThread) {
  EXPECT_NE(kiln_context_run(ctx_), KILN_OK);
  const std::string mine = msg();
  ASSERT_FALSE(mine.empty());
  std::string theirs = "unset";
  std::thread t([&] { theirs = kiln_last_error(); });
  t.join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(msg(), mine);
}

TEST_F(CApi, LibraryQueries) {
  EXPECT_STRNE(kiln_version(), "");
  for (int s = KILN_OK; s <= KILN_ERROR_INTERNAL; ++s) {
    ASSERT_NE(kiln_status_string(static_cast<kiln_status>(s)), nullptr);
    EXPECT_STRNE(kiln_status_string(static_cast<kiln_status>(s)), "");
  }
  EXPECT_STREQ(kiln_status_string(KILN_ERROR_INVALID_PLAN), "invalid plan");
  EXPECT_NE(kiln_status_string(static_cast<kiln_status>(1234)), nullptr);
  const int32_t n = kiln_device_count();
  EXPECT_GE(n, 0);
  for (int32_t i = 0; i < n; ++i) EXPECT_NE(kiln_device_name(i), nullptr);
  EXPECT_EQ(kiln_device_name(n), nullptr);
  EXPECT_EQ(kiln_device_name(-1), nullptr);
}

}  // namespace
}  // namespace kiln::test
