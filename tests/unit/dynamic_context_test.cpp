// Reshaping contexts of a dynamic plan through the C API: the committed dynamic_batch model
// (x float32[N,3,4] -> Flatten -> y[N,12]) built once for N in [1, 6] and run at several N on
// each device: results, shape queries, range errors, stale bindings, and no allocation after
// warm-up however often the shape changes.
#include <gtest/gtest.h>

#include <vector>

#include "compiler/compiler.h"
#include "kiln/kiln.h"
#include "kiln/kiln.hpp"
#include "runtime/core/alloc_stats.h"
#include "runtime/plan/plan_format.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

std::vector<uint8_t> dynamic_batch_plan(const std::string& device) {
  BuildOptions opts;
  opts.device = device;
  opts.min_shapes["x"] = {1, 3, 4};
  opts.max_shapes["x"] = {6, 3, 4};
  opts.shapes["x"] = {2, 3, 4};
  Plan p;
  Status st = build_plan_from_file(model_path("dynamic_batch.onnx"), opts, &p);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return serialize_plan(p);
}

std::string err() { return kiln_last_error(); }

void reshape_and_run(const std::string& device) {
  const std::vector<uint8_t> bytes = dynamic_batch_plan(device);
  kiln_plan* plan = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK) << err();
  int64_t lo[KILN_MAX_RANK], hi[KILN_MAX_RANK];
  ASSERT_EQ(kiln_plan_input_range(plan, 0, lo, hi), KILN_OK) << err();
  EXPECT_EQ(std::vector<int64_t>(lo, lo + 3), (std::vector<int64_t>{1, 3, 4}));
  EXPECT_EQ(std::vector<int64_t>(hi, hi + 3), (std::vector<int64_t>{6, 3, 4}));
  kiln_context* ctx = nullptr;
  ASSERT_EQ(kiln_context_create(plan, device.c_str(), &ctx), KILN_OK) << err();
  kiln_tensor_info info;
  ASSERT_EQ(kiln_context_output_info(ctx, 0, &info), KILN_OK);
  EXPECT_EQ(info.dims[0], 6) << "a fresh context is at the max shapes";

  std::vector<float> in(72), out(72);
  for (size_t i = 0; i < in.size(); ++i) in[i] = 0.25f * static_cast<float>(i) - 3.f;
  auto run_at = [&](int64_t n) {
    const int64_t dims[3] = {n, 3, 4};
    ASSERT_EQ(kiln_context_bind_input(ctx, "x", KILN_DTYPE_FLOAT32, dims, 3, in.data(), n * 48), KILN_OK) << err();
    ASSERT_EQ(kiln_context_output_info(ctx, 0, &info), KILN_OK);
    ASSERT_EQ(info.rank, 2);
    EXPECT_EQ(info.dims[0], n);
    EXPECT_EQ(info.dims[1], 12);
    EXPECT_EQ(info.size_bytes, static_cast<size_t>(n * 48));
    std::fill(out.begin(), out.end(), -99.f);
    ASSERT_EQ(kiln_context_bind_output(ctx, "y", out.data(), info.size_bytes), KILN_OK) << err();
    ASSERT_EQ(kiln_context_run(ctx), KILN_OK) << err();
    // Flatten keeps the row-major order; nothing past N*12 is written.
    for (int64_t i = 0; i < n * 12; ++i) ASSERT_EQ(out[i], in[i]) << "N=" << n << " element " << i;
    for (int64_t i = n * 12; i < 72; ++i) ASSERT_EQ(out[i], -99.f) << "N=" << n << " wrote past its output";
  };
  for (int64_t n : {2, 5, 1, 6, 3}) run_at(n);

  // After one run at each shape, switching shapes allocates nothing.
  const uint64_t before = runtime_allocations();
  for (int r = 0; r < 3; ++r)
    for (int64_t n : {4, 1, 6, 2}) run_at(n);
  EXPECT_EQ(runtime_allocations(), before) << "reshaping allocated buffers on " << device;

  // Out of range and fixed dims: named errors; the context keeps its shapes and still runs.
  const int64_t too_big[3] = {7, 3, 4}, bad_fixed[3] = {2, 3, 5}, zero[3] = {0, 3, 4};
  EXPECT_EQ(kiln_context_set_input_shape(ctx, "x", too_big, 3), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(err().find("input 'x' dim 0 ('N') = 7 is outside the plan's range [1, 6]"), std::string::npos) << err();
  EXPECT_EQ(kiln_context_set_input_shape(ctx, "x", zero, 3), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(kiln_context_set_input_shape(ctx, "x", bad_fixed, 3), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(err().find("dim 2 is fixed to 4"), std::string::npos) << err();
  EXPECT_EQ(kiln_context_set_input_shape(ctx, "nope", too_big, 3), KILN_ERROR_NOT_FOUND);
  ASSERT_EQ(kiln_context_output_info(ctx, 0, &info), KILN_OK);
  EXPECT_EQ(info.dims[0], 2);
  ASSERT_EQ(kiln_context_run(ctx), KILN_OK) << err();

  // Reshaping without rebinding: the bound buffers no longer match, and run says so.
  const int64_t four[3] = {4, 3, 4};
  ASSERT_EQ(kiln_context_set_input_shape(ctx, "x", four, 3), KILN_OK) << err();
  EXPECT_EQ(kiln_context_run(ctx), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(err().find("rebind it"), std::string::npos) << err();
  run_at(4);

  // The asynchronous path at two shapes in turn.
  for (int64_t n : {3, 6}) {
    const int64_t dims[3] = {n, 3, 4};
    ASSERT_EQ(kiln_context_bind_input(ctx, "x", KILN_DTYPE_FLOAT32, dims, 3, in.data(), n * 48), KILN_OK);
    ASSERT_EQ(kiln_context_bind_output(ctx, "y", out.data(), n * 48), KILN_OK);
    kiln_event* ev = nullptr;
    ASSERT_EQ(kiln_enqueue(ctx, &ev), KILN_OK);
    EXPECT_EQ(kiln_wait(ev), KILN_OK) << err();
    kiln_event_release(ev);
    for (int64_t i = 0; i < n * 12; ++i) ASSERT_EQ(out[i], in[i]);
  }
  kiln_context_release(ctx);
  kiln_plan_release(plan);
}

TEST(DynamicContext, ReshapeAndRunCpu) { reshape_and_run("cpu"); }
TEST(DynamicContext, ReshapeAndRunOpenCL) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  reshape_and_run("opencl");
}

TEST(DynamicContext, CppWrapperReportsCurrentShapes) {
  const std::vector<uint8_t> bytes = dynamic_batch_plan("cpu");
  PlanHandle plan = PlanHandle::load_memory(bytes.data(), bytes.size());
  ContextHandle ctx(plan, "cpu");
  ctx.set_input_shape("x", {3, 3, 4});
  EXPECT_EQ(ctx.inputs()[0].dims[0], 3);
  EXPECT_EQ(ctx.outputs()[0].dims[0], 3);
  EXPECT_EQ(ctx.outputs()[0].size_bytes, 3u * 48);
  EXPECT_EQ(plan.outputs()[0].dims[0], 6) << "the plan reports the max shapes";
  EXPECT_THROW(ctx.set_input_shape("x", {9, 3, 4}), Error);
}

// Expressions that a damaged (but checksummed) plan could carry: each still agrees with the
// stored shapes at the max point, so the verifier passes, but gives other values inside the
// range. Every reshape then either runs or fails with an error, and no output grows past the
// memory planned for it.
TEST(DynamicContext, DamagedExpressionsAreErrorsNotCrashes) {
  const std::vector<uint8_t> good = dynamic_batch_plan("cpu");
  Plan base;
  ASSERT_TRUE(parse_plan(good.data(), good.size(), &base).is_ok());
  ASSERT_FALSE(base.dyn_exprs.empty());
  std::vector<float> in(72, 1.f), out(72);
  int refused = 0;
  for (size_t e = 0; e < base.dyn_exprs.size(); ++e)
    for (int64_t delta : {-3, -1, 1, 2, 7}) {
      Plan p = base;
      DynExpr& x = p.dyn_exprs[e];
      // u = N - 1 is 5 at the max: moving `delta` from the N term to the constant keeps the max.
      bool has_var = false;
      for (DynTerm& t : x.terms)
        if (t.vars) t.coef += delta, has_var = true;
      if (!has_var) x.terms.push_back({1, delta});
      bool has_const = false;
      for (DynTerm& t : x.terms)
        if (!t.vars) t.coef -= 5 * delta, has_const = true;
      if (!has_const) x.terms.push_back({0, -5 * delta});
      const std::vector<uint8_t> bytes = serialize_plan(p);
      kiln_plan* plan = nullptr;
      if (kiln_plan_load_memory(bytes.data(), bytes.size(), &plan) != KILN_OK) {
        ++refused;
        continue;
      }
      kiln_context* ctx = nullptr;
      ASSERT_EQ(kiln_context_create(plan, "cpu", &ctx), KILN_OK) << err();
      for (int64_t n = 1; n <= 6; ++n) {
        const int64_t dims[3] = {n, 3, 4};
        if (kiln_context_bind_input(ctx, "x", KILN_DTYPE_FLOAT32, dims, 3, in.data(), n * 48) != KILN_OK) {
          ++refused;
          continue;
        }
        kiln_tensor_info info;
        ASSERT_EQ(kiln_context_output_info(ctx, 0, &info), KILN_OK);
        if (info.size_bytes > out.size() * 4) {
          ADD_FAILURE() << "output larger than planned: " << info.size_bytes;
          continue;
        }
        if (kiln_context_bind_output(ctx, "y", out.data(), info.size_bytes) != KILN_OK ||
            kiln_context_run(ctx) != KILN_OK)
          ++refused;
      }
      kiln_context_release(ctx);
      kiln_plan_release(plan);
    }
  EXPECT_GT(refused, 0) << "some damaged expressions must be caught";
}

TEST(DynamicContext, StaticPlanRefusesOtherShapes) {
  BuildOptions opts;
  opts.device = "cpu";
  opts.shapes["x"] = {2, 3, 4};
  Plan p;
  ASSERT_TRUE(build_plan_from_file(model_path("dynamic_batch.onnx"), opts, &p).is_ok());
  EXPECT_FALSE(p.is_dynamic());
  const std::vector<uint8_t> bytes = serialize_plan(p);
  kiln_plan* plan = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK);
  kiln_context* ctx = nullptr;
  ASSERT_EQ(kiln_context_create(plan, "cpu", &ctx), KILN_OK);
  const int64_t dims[3] = {3, 3, 4};
  EXPECT_EQ(kiln_context_set_input_shape(ctx, "x", dims, 3), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(err().find("fixed shape 2x3x4"), std::string::npos) << err();
  kiln_context_release(ctx);
  kiln_plan_release(plan);
}

}  // namespace
}  // namespace kiln::test
