// Asynchronous inference through the C API: several contexts on one plan, events, callbacks.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "kiln/kiln.h"
#include "runtime/core/alloc_stats.h"
#include "runtime/plan/plan_format.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

// x[4,6] -> Reshape -> Reshape -> y[3,8], built for `device`.
std::vector<uint8_t> two_reshape_plan(const std::string& device) {
  ir::Graph g;
  g.opsets[""] = 17;
  ir::Value* x = g.add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = {4, 6};
  x->has_shape = true;
  x->is_graph_input = true;
  g.inputs.push_back(x);
  ir::Value* prev = x;
  const std::vector<Shape> shapes = {{2, 12}, {3, 8}};
  for (size_t i = 0; i < shapes.size(); ++i) {
    auto s = std::make_shared<HostTensor>(DType::kInt64, Shape{2});
    s->as<int64_t>()[0] = shapes[i][0];
    s->as<int64_t>()[1] = shapes[i][1];
    ir::Value* sv = g.add_value("shape" + std::to_string(i));
    sv->dtype = DType::kInt64;
    sv->shape = {2};
    sv->has_shape = true;
    sv->constant = s;
    ir::Node* n = g.add_node("Reshape", "r" + std::to_string(i));
    ir::Value* out = g.add_value(i + 1 == shapes.size() ? "y" : "t" + std::to_string(i));
    out->producer = n;
    n->inputs = {prev, sv};
    n->outputs = {out};
    prev = out;
  }
  g.outputs.push_back(prev);
  BuildOptions opts;
  opts.device = device;
  Plan plan;
  EXPECT_TRUE(build_plan_from_graph(g, opts, &plan).is_ok());
  return serialize_plan(plan);
}

void run_many_async(const std::string& device) {
  std::vector<uint8_t> bytes = two_reshape_plan(device);
  kiln_plan* plan = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK) << kiln_last_error();
  constexpr int kContexts = 4, kPerContext = 25;
  std::vector<kiln_context*> ctxs(kContexts);
  std::vector<std::vector<float>> in(kContexts, std::vector<float>(24)), out(kContexts, std::vector<float>(24));
  const int64_t dims[2] = {4, 6};
  for (int c = 0; c < kContexts; ++c) {
    ASSERT_EQ(kiln_context_create(plan, device.c_str(), &ctxs[c]), KILN_OK) << kiln_last_error();
    for (int i = 0; i < 24; ++i) in[c][i] = static_cast<float>(c * 100 + i);
    ASSERT_EQ(kiln_context_bind_input(ctxs[c], "x", KILN_DTYPE_FLOAT32, dims, 2, in[c].data(), 24 * 4), KILN_OK);
    ASSERT_EQ(kiln_context_bind_output(ctxs[c], "y", out[c].data(), 24 * 4), KILN_OK);
  }
  std::atomic<int> callbacks{0};
  std::vector<kiln_event*> events;
  for (int r = 0; r < kPerContext; ++r)
    for (int c = 0; c < kContexts; ++c) {
      kiln_event* ev = nullptr;
      ASSERT_EQ(kiln_enqueue(ctxs[c], &ev), KILN_OK) << kiln_last_error();
      ASSERT_EQ(kiln_event_set_callback(
                    ev, [](kiln_status s, const char*, void* u) {
                      if (s == KILN_OK) static_cast<std::atomic<int>*>(u)->fetch_add(1);
                    },
                    &callbacks),
                KILN_OK);
      events.push_back(ev);
    }
  for (kiln_event* ev : events) {
    EXPECT_EQ(kiln_wait(ev), KILN_OK) << kiln_last_error();
    EXPECT_EQ(kiln_event_is_done(ev), 1);
    kiln_event_release(ev);
  }
  EXPECT_EQ(callbacks.load(), kContexts * kPerContext);
  for (int c = 0; c < kContexts; ++c) {
    EXPECT_EQ(out[c], in[c]) << "context " << c;  // reshapes keep the bytes
    kiln_context_release(ctxs[c]);
  }
  kiln_plan_release(plan);
}

TEST(AsyncInference, ManyContextsCpu) { run_many_async("cpu"); }

TEST(AsyncInference, ManyContextsOpenCL) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  run_many_async("opencl");
}

TEST(AsyncInference, FailedInferenceReportsAndContextStaysUsable) {
  std::vector<uint8_t> bytes = two_reshape_plan("cpu");
  kiln_plan* plan = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK);
  kiln_context* ctx = nullptr;
  ASSERT_EQ(kiln_context_create(plan, "cpu", &ctx), KILN_OK);
  kiln_event* ev = nullptr;
  ASSERT_EQ(kiln_enqueue(ctx, &ev), KILN_OK);  // nothing bound: the inference itself fails
  EXPECT_EQ(kiln_wait(ev), KILN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(kiln_last_error()).find("input 'x' was not bound"), std::string::npos) << kiln_last_error();
  kiln_event_release(ev);
  std::vector<float> in(24, 1.5f), out(24, 0.f);
  const int64_t dims[2] = {4, 6};
  ASSERT_EQ(kiln_context_bind_input(ctx, "x", KILN_DTYPE_FLOAT32, dims, 2, in.data(), 96), KILN_OK);
  ASSERT_EQ(kiln_context_bind_output(ctx, "y", out.data(), 96), KILN_OK);
  ASSERT_EQ(kiln_enqueue(ctx, &ev), KILN_OK);
  EXPECT_EQ(kiln_wait(ev), KILN_OK) << kiln_last_error();
  EXPECT_EQ(out, in);
  kiln_event_release(ev);
  kiln_context_release(ctx);
  kiln_plan_release(plan);
}

void check_no_allocations_after_warmup(const std::string& device) {
  std::vector<uint8_t> bytes = two_reshape_plan(device);
  kiln_plan* plan = nullptr;
  ASSERT_EQ(kiln_plan_load_memory(bytes.data(), bytes.size(), &plan), KILN_OK);
  kiln_context* ctx = nullptr;
  ASSERT_EQ(kiln_context_create(plan, device.c_str(), &ctx), KILN_OK) << kiln_last_error();
  std::vector<float> in(24, 2.f), out(24);
  const int64_t dims[2] = {4, 6};
  ASSERT_EQ(kiln_context_bind_input(ctx, "x", KILN_DTYPE_FLOAT32, dims, 2, in.data(), 96), KILN_OK);
  ASSERT_EQ(kiln_context_bind_output(ctx, "y", out.data(), 96), KILN_OK);
  ASSERT_EQ(kiln_context_run(ctx), KILN_OK) << kiln_last_error();
  const uint64_t before = runtime_allocations();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(kiln_context_run(ctx), KILN_OK);
  EXPECT_EQ(runtime_allocations(), before) << "inference allocated buffers after warm-up on " << device;
  kiln_context_release(ctx);
  kiln_plan_release(plan);
}

TEST(Allocations, NoneAfterWarmupCpu) { check_no_allocations_after_warmup("cpu"); }
TEST(Allocations, NoneAfterWarmupOpenCL) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  check_no_allocations_after_warmup("opencl");
}

}  // namespace
}  // namespace kiln
