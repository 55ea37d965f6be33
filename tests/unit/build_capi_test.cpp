// The compiler C API (include/kiln/kiln_build.h) end to end: typed options, calibration samples
// from a callback, the report through the log callback, a plan in memory that the runtime C API
// loads and runs; context options and profile records; every bad argument a status and a message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "kiln/kiln_build.h"
#include "runtime/core/fault_injection.h"
#include "unit_util.h"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

struct Samples {
  std::vector<std::vector<float>> data;
  int32_t calls = 0;
};

// n uniform [-1, 1) inputs of demo_cnn ([1, 3, 32, 32]).
Samples random_samples(int n, unsigned seed) {
  Samples samples;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int s = 0; s < n; ++s) {
    samples.data.emplace_back(3 * 32 * 32);
    for (float& v : samples.data.back()) v = u(rng);
  }
  return samples;
}


int32_t next_sample(void* user, int32_t index, kiln_build_tensors* sample) {
  auto* s = static_cast<Samples*>(user);
  ++s->calls;
  if (index >= static_cast<int32_t>(s->data.size())) return 0;
  const int64_t dims[4] = {1, 3, 32, 32};
  return kiln_build_tensors_add(sample, "input", KILN_DTYPE_FLOAT32, dims, 4, s->data[index].data(),
                                s->data[index].size() * sizeof(float)) == KILN_OK
             ? 1
             : -1;
}

int32_t failing_sample(void*, int32_t, kiln_build_tensors* sample) {
  kiln_build_tensors_set_error(sample, "the camera is unplugged");
  return -1;
}

void collect(int32_t level, const char* line, void* user) {
  static_cast<std::vector<std::pair<int32_t, std::string>>*>(user)->push_back({level, line});
}

// An INT8 build of demo_cnn from the callback's samples on the cpu, its report lines into *log.
kiln_build_options* int8_options(Samples* samples, std::vector<std::pair<int32_t, std::string>>* log) {
  kiln_build_options* o = nullptr;
  EXPECT_EQ(kiln_build_options_create(&o), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_device(o, "cpu"), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_precision(o, KILN_PRECISION_INT8), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_calib_source(o, next_sample, samples), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_log(o, collect, log), KILN_OK);
  return o;
}

// Runs the plan twice; with `profiling`, *backends (when given) gets each record's backend.
std::vector<float> run_demo(const void* plan_bytes, size_t size, const std::vector<float>& input, int profiling,
                            int32_t* records, std::vector<std::string>* backends = nullptr) {
  kiln_plan* plan = nullptr;
  EXPECT_EQ(kiln_plan_load_memory(plan_bytes, size, &plan), KILN_OK) << kiln_last_error();
  kiln_context_options* o = nullptr;
  EXPECT_EQ(kiln_context_options_create(&o), KILN_OK);
  EXPECT_EQ(kiln_context_options_set_device(o, "cpu"), KILN_OK);
  EXPECT_EQ(kiln_context_options_set_cpu_threads(o, 1), KILN_OK);
  EXPECT_EQ(kiln_context_options_set_profiling(o, profiling), KILN_OK);
  kiln_context* ctx = nullptr;
  EXPECT_EQ(kiln_context_create_with_options(plan, o, &ctx), KILN_OK) << kiln_last_error();
  kiln_context_options_release(o);
  std::vector<float> probs(10);
  const int64_t dims[4] = {1, 3, 32, 32};
  EXPECT_EQ(kiln_context_bind_input(ctx, "input", KILN_DTYPE_FLOAT32, dims, 4, input.data(), input.size() * 4), KILN_OK);
  EXPECT_EQ(kiln_context_bind_output(ctx, "probs", probs.data(), probs.size() * 4), KILN_OK);
  EXPECT_EQ(kiln_context_run(ctx), KILN_OK) << kiln_last_error();
  EXPECT_EQ(kiln_context_run(ctx), KILN_OK) << kiln_last_error();
  *records = kiln_context_profile_count(ctx);
  if (profiling) {
    kiln_profile_record r;
    EXPECT_EQ(kiln_context_profile_record(ctx, 0, &r), KILN_OK);
    EXPECT_EQ(r.run, 0);
    EXPECT_GE(r.end_ns, r.start_ns);
    EXPECT_EQ(kiln_context_profile_record(ctx, *records, &r), KILN_ERROR_INVALID_ARGUMENT);
    if (backends) {
      backends->clear();
      for (int32_t i = 0; i < *records; ++i)
        if (kiln_context_profile_record(ctx, i, &r) == KILN_OK) backends->push_back(r.backend);
    }
    EXPECT_EQ(kiln_context_profile_clear(ctx), KILN_OK);
    EXPECT_EQ(kiln_context_profile_count(ctx), 0);
  } else {
    kiln_profile_record r;
    EXPECT_EQ(kiln_context_profile_record(ctx, 0, &r), KILN_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(kiln_last_error()).find("profiling"), std::string::npos);
  }
  size_t needed = 0;
  EXPECT_EQ(kiln_plan_inspect_json(plan, nullptr, 0, &needed), KILN_OK);
  std::string json(needed, '\0');
  EXPECT_EQ(kiln_plan_inspect_json(plan, &json[0], json.size(), &needed), KILN_OK);
  EXPECT_EQ(json.find("{\"format_version\":"), 0u);
  EXPECT_NE(json.find("\"name\":\"probs\""), std::string::npos);
  kiln_context_release(ctx);
  kiln_plan_release(plan);
  return probs;
}

TEST(BuildCApi, AccuracyCheckOffSkipsTheLayerCheckAndTheOutputBudget) {
  const std::string model = read_file(kiln::test::model_path("demo_cnn.onnx"));
  Samples samples = random_samples(3, 4);
  std::vector<std::pair<int32_t, std::string>> log;
  kiln_build_options* o = int8_options(&samples, &log);
  ASSERT_EQ(kiln_build_options_set_accuracy_check(o, 0), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_accuracy_check(nullptr, 0), KILN_ERROR_INVALID_ARGUMENT);
  kiln_build_result* int8 = nullptr;
  ASSERT_EQ(kiln_build_from_memory(model.data(), model.size(), nullptr, o, &int8), KILN_OK) << kiln_build_last_error();
  bool skipped = false, budget = false;
  for (const auto& [level, line] : log) {
    skipped |= line == "layer check: skipped (--no-accuracy-check)";
    budget |= line.rfind("accuracy check", 0) == 0;
  }
  EXPECT_TRUE(skipped);
  EXPECT_FALSE(budget);
  kiln_build_result_release(int8);
  kiln_build_options_release(o);
}

TEST(BuildCApi, Int8FromCallbackEqualsFp32WithinQuantizationAndRuns) {
  const std::string model = read_file(kiln::test::model_path("demo_cnn.onnx"));
  Samples samples = random_samples(6, 3);
  std::vector<std::pair<int32_t, std::string>> log;
  kiln_build_options* o = int8_options(&samples, &log);
  ASSERT_EQ(kiln_build_options_set_calibrator(o, KILN_CALIBRATOR_MINMAX, 0), KILN_OK);
  kiln_build_result* int8 = nullptr;
  ASSERT_EQ(kiln_build_from_memory(model.data(), model.size(), nullptr, o, &int8), KILN_OK) << kiln_build_last_error();
  EXPECT_EQ(samples.calls, 7);  // six samples and the end
  bool table = false;
  for (const auto& [level, line] : log) table |= line.find("clipped") != std::string::npos;
  EXPECT_TRUE(table) << "no calibration table in the report";
  // The layer check runs on the callback's samples as on a --calib folder's.
  bool checked = false;
  for (const auto& [level, line] : log) checked |= line.rfind("layer check: ", 0) == 0 && line.find("within line") != std::string::npos;
  EXPECT_TRUE(checked) << "no layer check on the callback's samples";
  // So does the default output budget of a calibrated build.
  bool budget = false;
  for (const auto& [level, line] : log) budget |= line.rfind("accuracy check: relative L2 error <= 0.1", 0) == 0;
  EXPECT_TRUE(budget) << "no accuracy check on the callback's samples";
  EXPECT_NE(std::string(kiln_build_result_summary(int8)).find("nodes"), std::string::npos);

  ASSERT_EQ(kiln_build_options_set_precision(o, KILN_PRECISION_FP32), KILN_OK);
  kiln_build_result* fp32 = nullptr;
  ASSERT_EQ(kiln_build_from_file(kiln::test::model_path("demo_cnn.onnx").c_str(), o, &fp32), KILN_OK);
  size_t n8 = 0, n32 = 0;
  const void* d8 = kiln_build_result_data(int8, &n8);
  const void* d32 = kiln_build_result_data(fp32, &n32);
  int32_t records = 0;
  const std::vector<float> p8 = run_demo(d8, n8, samples.data[0], 1, &records);
  EXPECT_GT(records, 0);
  const std::vector<float> p32 = run_demo(d32, n32, samples.data[0], 0, &records);
  EXPECT_EQ(records, 0);
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(p8[i], p32[i], 0.05) << i;
  // A NaN input: the first convolution's fused Relu would drop it, so that node runs kiln's
  // reference kernel (which keeps the NaN) and its records say "cpu-ref"; a finite input has none.
  std::vector<std::string> backends;
  run_demo(d32, n32, samples.data[0], 1, &records, &backends);
  EXPECT_EQ(std::count(backends.begin(), backends.end(), "cpu-ref"), 0);
  EXPECT_GT(std::count(backends.begin(), backends.end(), "cpu"), 0);
  std::vector<float> with_nan = samples.data[0];
  with_nan[100] = std::nanf("");
  run_demo(d32, n32, with_nan, 1, &records, &backends);
  EXPECT_GT(std::count(backends.begin(), backends.end(), "cpu-ref"), 0) << "no record of the reference kernel";

  const std::string dir = kiln::test::scratch_dir("build_capi");
  ASSERT_EQ(kiln_build_result_write(fp32, (dir + "/p.plan").c_str()), KILN_OK);
  EXPECT_EQ(read_file(dir + "/p.plan"), std::string(static_cast<const char*>(d32), n32));
  EXPECT_EQ(kiln_build_result_write(fp32, (dir + "/no/such/dir/p.plan").c_str()), KILN_ERROR_IO);

  // A failing calibration source stops the build with its message.
  ASSERT_EQ(kiln_build_options_set_precision(o, KILN_PRECISION_INT8), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_calib_source(o, failing_sample, nullptr), KILN_OK);
  kiln_build_result* r = nullptr;
  EXPECT_NE(kiln_build_from_memory(model.data(), model.size(), nullptr, o, &r), KILN_OK);
  EXPECT_EQ(r, nullptr);
  EXPECT_NE(std::string(kiln_build_last_error()).find("the camera is unplugged"), std::string::npos)
      << kiln_build_last_error();
  kiln_build_result_release(int8);
  kiln_build_result_release(fp32);
  kiln_build_options_release(o);
}

TEST(BuildCApi, BadArgumentsAreStatusesWithMessages) {
  kiln_build_options* o = nullptr;
  ASSERT_EQ(kiln_build_options_create(&o), KILN_OK);
  const int64_t dims[2] = {2, 3}, neg[2] = {2, -1}, lo[2] = {1, 3};
  float data[6] = {};
  EXPECT_EQ(kiln_build_options_set_device(nullptr, "cpu"), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(kiln_build_options_set_device(o, "opencl:77"), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_precision(o, static_cast<kiln_precision>(42)), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_layer_precision(o, "conv", KILN_PRECISION_BEST), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_layer_precision(o, nullptr, KILN_PRECISION_FP16), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_shape(o, "x", dims, 17), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_shape(o, "x", nullptr, 2), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_shape(o, "x", neg, 2), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_shape_range(o, "x", lo, neg, 2), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_freeze_input(o, "x", 99, dims, 2, data, sizeof data), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_freeze_input(o, "x", KILN_DTYPE_FLOAT32, dims, 2, data, 5), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_build_last_error()).find("needs 24 bytes, got 5"), std::string::npos);
  const int64_t huge[3] = {int64_t{1} << 40, int64_t{1} << 40, 1 << 20};
  EXPECT_EQ(kiln_build_options_freeze_input(o, "x", KILN_DTYPE_FLOAT32, huge, 3, data, 8), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_accuracy_budget(o, NAN), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_smooth_quant(o, 2), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_transfer_gbps(o, 0), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_calibrator(o, KILN_CALIBRATOR_PERCENTILE, 150), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_partition(o, static_cast<kiln_partition_policy>(9)), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_tune(o, 0, "cache.txt"), KILN_ERROR_INVALID_ARGUMENT);
  kiln_precision p;
  EXPECT_EQ(kiln_build_parse_precision("fp7", &p), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_parse_precision("fp8", &p), KILN_OK);
  EXPECT_EQ(p, KILN_PRECISION_FP8_E4M3);
  EXPECT_EQ(kiln_build_precision_name(static_cast<kiln_precision>(-1)), nullptr);

  kiln_build_result* r = nullptr;
  EXPECT_EQ(kiln_build_from_file(nullptr, o, &r), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_from_file("x.onnx", nullptr, &r), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_from_file("x.onnx", o, nullptr), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(kiln_build_from_file("/no/such/model.onnx", o, &r), KILN_OK);
  EXPECT_NE(std::string(kiln_build_last_error()).find("/no/such/model.onnx"), std::string::npos);
  EXPECT_EQ(kiln_build_from_memory("garbage", 7, nullptr, o, &r), KILN_ERROR_INVALID_MODEL) << kiln_build_last_error();
  EXPECT_EQ(kiln_build_from_memory(nullptr, 0, nullptr, o, &r), KILN_ERROR_INVALID_MODEL);
  EXPECT_EQ(r, nullptr);
  EXPECT_EQ(kiln_build_result_data(nullptr, nullptr), nullptr);
  EXPECT_EQ(kiln_build_result_write(nullptr, "x"), KILN_ERROR_INVALID_ARGUMENT);

  kiln_build_comparison* c = nullptr;
  EXPECT_EQ(kiln_build_compare("junk", 4, "m.onnx", nullptr, "cpu", 0, &c), KILN_ERROR_INVALID_PLAN);
  EXPECT_EQ(kiln_build_comparison_num_rows(nullptr), 0);
  EXPECT_EQ(kiln_build_comparison_values(nullptr, 0), nullptr);
  kiln_build_sweep* s = nullptr;
  const int32_t best = KILN_PRECISION_BEST;
  EXPECT_EQ(kiln_build_sweep_run("m.onnx", o, &best, 1, nullptr, nullptr, nullptr, 0, 1, &s),
            KILN_ERROR_INVALID_ARGUMENT);
  kiln_build_tensors* t = nullptr;
  ASSERT_EQ(kiln_build_tensors_create(&t), KILN_OK);
  EXPECT_EQ(kiln_build_tensors_add(t, "a", KILN_DTYPE_FLOAT32, dims, 2, data, sizeof data), KILN_OK);
  kiln_tensor_info info;
  const void* ptr = nullptr;
  EXPECT_EQ(kiln_build_tensors_get(t, 0, &info, &ptr), KILN_OK);
  EXPECT_EQ(std::string(info.name), "a");
  EXPECT_EQ(info.size_bytes, sizeof data);
  EXPECT_EQ(kiln_build_tensors_get(t, 1, &info, &ptr), KILN_ERROR_INVALID_ARGUMENT);
  kiln_build_tensors_release(t);
  kiln_build_options_release(o);
  kiln_build_options_release(nullptr);
  kiln_context_options* co = nullptr;
  ASSERT_EQ(kiln_context_options_create(&co), KILN_OK);
  EXPECT_EQ(kiln_context_options_set_cpu_threads(co, -2), KILN_ERROR_INVALID_ARGUMENT);
  kiln_context* ctx = nullptr;
  EXPECT_EQ(kiln_context_create_with_options(nullptr, co, &ctx), KILN_ERROR_INVALID_ARGUMENT);
  kiln_context_options_release(co);
  EXPECT_EQ(kiln_plan_inspect_json(nullptr, nullptr, 0, nullptr), KILN_ERROR_INVALID_ARGUMENT);
}

// The build options main grew after the C API was written (--tune/--tuning-cache for any
// precision, --allow-tf32) and the mse calibrator reach the build through their setters.
std::string plan_json(kiln_build_result* r) {
  size_t size = 0;
  const void* data = kiln_build_result_data(r, &size);
  kiln_plan* plan = nullptr;
  EXPECT_EQ(kiln_plan_load_memory(data, size, &plan), KILN_OK) << kiln_last_error();
  size_t needed = 0;
  EXPECT_EQ(kiln_plan_inspect_json(plan, nullptr, 0, &needed), KILN_OK);
  std::string json(needed, '\0');
  EXPECT_EQ(kiln_plan_inspect_json(plan, &json[0], json.size(), &needed), KILN_OK);
  kiln_plan_release(plan);
  return json;
}

// kiln_build_options_set_fallback_precision: FP16 makes an INT8 plan's unquantized Softmax
// (demo_cnn's last node) a float16 node, FP32 (the default) leaves it float32; other
// precisions are refused by name.
TEST(BuildCApi, FallbackPrecisionReachesTheBuildAndRefusesOthers) {
  const std::string model = read_file(kiln::test::model_path("demo_cnn.onnx"));
  Samples samples = random_samples(3, 4);
  std::vector<std::pair<int32_t, std::string>> log;
  kiln_build_options* o = int8_options(&samples, &log);
  auto softmax_precision = [&] {
    samples.calls = 0;
    kiln_build_result* r = nullptr;
    EXPECT_EQ(kiln_build_from_memory(model.data(), model.size(), nullptr, o, &r), KILN_OK) << kiln_build_last_error();
    const std::string json = r ? plan_json(r) : "";
    kiln_build_result_release(r);
    const size_t at = json.find("\"op\":\"Softmax\"");
    const size_t p = json.find("\"precision\":\"", at);
    return at == std::string::npos || p == std::string::npos ? std::string("no Softmax")
                                                              : json.substr(p + 13, json.find('"', p + 13) - p - 13);
  };
  EXPECT_EQ(softmax_precision(), "fp32");
  ASSERT_EQ(kiln_build_options_set_fallback_precision(o, KILN_PRECISION_FP16), KILN_OK) << kiln_build_last_error();
  EXPECT_EQ(softmax_precision(), "fp16");
  ASSERT_EQ(kiln_build_options_set_fallback_precision(o, KILN_PRECISION_FP32), KILN_OK);
  EXPECT_EQ(softmax_precision(), "fp32");
  EXPECT_EQ(kiln_build_options_set_fallback_precision(o, KILN_PRECISION_INT8), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_build_last_error()).find("must be fp32 or fp16, got int8"), std::string::npos)
      << kiln_build_last_error();
  EXPECT_EQ(kiln_build_options_set_fallback_precision(o, KILN_PRECISION_BEST), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_fallback_precision(o, static_cast<kiln_precision>(42)), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_build_last_error()).find("got 42"), std::string::npos) << kiln_build_last_error();
  EXPECT_EQ(kiln_build_options_set_fallback_precision(nullptr, KILN_PRECISION_FP16), KILN_ERROR_INVALID_ARGUMENT);
  kiln_build_options_release(o);
}

// kiln_build_options_set_io_precision: FP16 gives demo_cnn's plan a float16 input and output,
// read back through the runtime C API; other precisions are refused by name.
TEST(BuildCApi, IoPrecisionReachesThePlanAndRefusesOthers) {
  const std::string model = read_file(kiln::test::model_path("demo_cnn.onnx"));
  kiln_build_options* o = nullptr;
  ASSERT_EQ(kiln_build_options_create(&o), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_device(o, "cpu"), KILN_OK);
  auto io_dtypes = [&] {
    kiln_build_result* r = nullptr;
    EXPECT_EQ(kiln_build_from_memory(model.data(), model.size(), nullptr, o, &r), KILN_OK) << kiln_build_last_error();
    size_t size = 0;
    const void* data = r ? kiln_build_result_data(r, &size) : nullptr;
    kiln_plan* plan = nullptr;
    EXPECT_EQ(kiln_plan_load_memory(data, size, &plan), KILN_OK) << kiln_last_error();
    kiln_tensor_info in{}, out{};
    EXPECT_EQ(kiln_plan_input_info(plan, 0, &in), KILN_OK);
    EXPECT_EQ(kiln_plan_output_info(plan, 0, &out), KILN_OK);
    kiln_plan_release(plan);
    kiln_build_result_release(r);
    return std::pair{in.dtype, out.dtype};
  };
  EXPECT_EQ(io_dtypes(), std::pair(int32_t{KILN_DTYPE_FLOAT32}, int32_t{KILN_DTYPE_FLOAT32}));
  ASSERT_EQ(kiln_build_options_set_io_precision(o, KILN_PRECISION_FP16), KILN_OK) << kiln_build_last_error();
  EXPECT_EQ(io_dtypes(), std::pair(int32_t{KILN_DTYPE_FLOAT16}, int32_t{KILN_DTYPE_FLOAT16}));
  ASSERT_EQ(kiln_build_options_set_io_precision(o, KILN_PRECISION_FP32), KILN_OK);
  EXPECT_EQ(io_dtypes(), std::pair(int32_t{KILN_DTYPE_FLOAT32}, int32_t{KILN_DTYPE_FLOAT32}));
  EXPECT_EQ(kiln_build_options_set_io_precision(o, KILN_PRECISION_INT8), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_build_last_error()).find("must be fp32 or fp16, got int8"), std::string::npos)
      << kiln_build_last_error();
  EXPECT_EQ(kiln_build_options_set_io_precision(o, static_cast<kiln_precision>(42)), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_build_options_set_io_precision(nullptr, KILN_PRECISION_FP16), KILN_ERROR_INVALID_ARGUMENT);
  kiln_build_options_release(o);
}

TEST(BuildCApi, TuneAllowTf32AndMseReachTheBuild) {
  if (kiln_device_count() == 0) GTEST_SKIP() << "no OpenCL device";
  const std::string model = kiln::test::model_path("demo_cnn.onnx");
  const std::string dir = kiln::test::scratch_dir("build_capi_options");
  std::vector<std::pair<int32_t, std::string>> log;
  kiln_build_options* o = nullptr;
  ASSERT_EQ(kiln_build_options_create(&o), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_device(o, "opencl"), KILN_OK) << kiln_build_last_error();
  ASSERT_EQ(kiln_build_options_set_log(o, collect, &log), KILN_OK);
  auto build = [&] {
    kiln_build_result* r = nullptr;
    EXPECT_EQ(kiln_build_from_file(model.c_str(), o, &r), KILN_OK) << kiln_build_last_error();
    const std::string json = r ? plan_json(r) : "";
    kiln_build_result_release(r);
    return json;
  };
  // FP32 linear nodes carry the TF32 permission only when it is given.
  EXPECT_EQ(build().find("allow_tf32=1"), std::string::npos);
  ASSERT_EQ(kiln_build_options_set_allow_tf32(o, 1), KILN_OK);
  EXPECT_NE(build().find("allow_tf32=1"), std::string::npos);
  ASSERT_EQ(kiln_build_options_set_allow_tf32(o, 0), KILN_OK);
  EXPECT_EQ(kiln_build_options_set_allow_tf32(nullptr, 1), KILN_ERROR_INVALID_ARGUMENT);

  // --tune with a cache, in FP32: the variants are timed (the report says so) and the timings kept.
  const std::string cache = dir + "/tuning.cache";
  ASSERT_EQ(kiln_build_options_set_tune(o, 1, cache.c_str()), KILN_OK);
  log.clear();
  build();
  bool tuned = false;
  for (const auto& [level, line] : log) tuned |= line.rfind("tune: ", 0) == 0 && line.find("portable") != std::string::npos;
  EXPECT_TRUE(tuned) << "no tune: line in the report";
  const std::string timings = read_file(cache);
  EXPECT_EQ(timings.rfind("kiln tuning cache 1\n", 0), 0u) << timings.substr(0, 40);
  ASSERT_EQ(kiln_build_options_set_tune(o, 0, nullptr), KILN_OK);

  // The mse calibrator: INT8 calibrated on a folder, the cache records which calibrator.
  Samples samples;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int s = 0; s < 4; ++s) {
    samples.data.emplace_back(3 * 32 * 32);
    for (float& v : samples.data.back()) v = u(rng);
  }
  const std::string calib_cache = dir + "/calib.cache";
  ASSERT_EQ(kiln_build_options_set_device(o, "cpu"), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_precision(o, KILN_PRECISION_INT8), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_calibrator(o, KILN_CALIBRATOR_MSE, 0), KILN_OK) << kiln_build_last_error();
  ASSERT_EQ(kiln_build_options_set_calib_source(o, next_sample, &samples), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_calib_cache(o, calib_cache.c_str()), KILN_OK);
  EXPECT_NE(build().find("\"precision\":\"int8\""), std::string::npos);
  const std::string ranges = read_file(calib_cache);
  EXPECT_NE(ranges.find("\ncalibrator mse\n"), std::string::npos) << ranges.substr(0, 80);
  EXPECT_EQ(kiln_build_options_set_calibrator(o, static_cast<kiln_calibrator>(5), 0), KILN_ERROR_INVALID_ARGUMENT);
  kiln_build_options_release(o);
}

// Kernel launches into demo_cnn's tuning (on PoCL) where the cut comes: past the candidates of
// the first layer it times (each over a few runs), before the last one's.
constexpr int kTuneLaunchesBeforeCut = 20;

// A tuning run cut off part-way (here a kernel launch fails while a later layer is timed) keeps
// the timings of the layers it finished: the cache is written after each layer.
TEST(BuildCApi, TuningCutOffKeepsFinishedLayers) {
  if (kiln_device_count() == 0) GTEST_SKIP() << "no OpenCL device";
  const std::string model = kiln::test::model_path("demo_cnn.onnx");
  const std::string cache = kiln::test::scratch_dir("build_capi_tune_cut") + "/tuning.cache";
  std::remove(cache.c_str());
  kiln_build_options* o = nullptr;
  ASSERT_EQ(kiln_build_options_create(&o), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_device(o, "opencl"), KILN_OK);
  ASSERT_EQ(kiln_build_options_set_tune(o, 1, cache.c_str()), KILN_OK);
  kiln::arm_fault(kiln::FaultSite::kKernelLaunch, kTuneLaunchesBeforeCut);
  kiln_build_result* r = nullptr;
  const kiln_status st = kiln_build_from_file(model.c_str(), o, &r);
  kiln::disarm_faults();
  kiln_build_result_release(r);
  kiln_build_options_release(o);
  ASSERT_NE(st, KILN_OK) << "the tuning finished in fewer launches than the cut";
  EXPECT_NE(std::string(kiln_build_last_error()).find("tuning node"), std::string::npos) << kiln_build_last_error();
  const std::string timings = read_file(cache);
  ASSERT_EQ(timings.rfind("kiln tuning cache 1\n", 0), 0u) << "no cache written before the cut";
  EXPECT_GE(std::count(timings.begin(), timings.end(), '\n'), 3) << timings;
}

}  // namespace
