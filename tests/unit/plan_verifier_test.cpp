// Plans edited behind a valid checksum (issue 10): each crash or silent wrong result found by
// editing a compiled plan is reproduced here and must now be refused when the plan is loaded,
// naming the node. Without the op rules these plans ran: the MaxPool wrote past the host arena
// (SIGSEGV), the OpenCL ReduceSum wrote 2048 floats into an 8-float buffer, dilations 0
// divided by zero, huge strides/pads/steps overflowed int64, and a renamed `activation`
// attribute dropped the fused Relu (exit 0, wrong numbers).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>

#include "compiler/compiler.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan_format.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

Plan demo_plan(const std::string& device) {
  Plan p;
  BuildOptions o;
  o.device = device;
  Status st = build_plan_from_file(test::model_path("demo_cnn.onnx"), o, &p);
  EXPECT_TRUE(st.is_ok()) << st.message();
  return p;
}

PlanNode& node_named(Plan& p, const std::string& name) {
  for (PlanNode& n : p.nodes)
    if (n.name == name) return n;
  ADD_FAILURE() << "no node " << name;
  return p.nodes[0];
}

// Serializes (a valid checksum) and loads the plan, then creates a context on `device`: the
// edit must be refused at one of the two, never reach a kernel.
Status load_and_create(const Plan& edited, const std::string& device) {
  const std::vector<uint8_t> bytes = serialize_plan(edited);
  auto parsed = std::make_shared<Plan>();
  Status st = parse_plan(bytes.data(), bytes.size(), parsed.get());
  if (!st) return st;
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  return ExecutionContext::create(parsed, device, &ctx, &notice);
}

void expect_refused(const Plan& edited, const std::string& device, const std::string& node,
                    const std::string& detail) {
  const std::vector<uint8_t> bytes = serialize_plan(edited);
  Plan q;
  Status st = parse_plan(bytes.data(), bytes.size(), &q);
  ASSERT_FALSE(st.is_ok()) << "the edited plan loaded (" << detail << ")";
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << st.message();
  EXPECT_NE(st.message().find("node '" + node + "'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(detail), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  // A Plan handed to a context in memory gets the same checks.
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  Status c = ExecutionContext::create(std::make_shared<Plan>(edited), device, &ctx, &notice);
  EXPECT_EQ(c.code(), StatusCode::kInvalidPlan) << c.message();
}

TEST(PlanVerifier, CompiledPlansPass) {
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !test::have_opencl()) continue;
    Plan p = demo_plan(device);
    EXPECT_TRUE(verify_plan(p).is_ok()) << verify_plan(p).message();
    EXPECT_TRUE(load_and_create(p, device).is_ok()) << device;
  }
}

TEST(PlanVerifier, MaxPoolOutputShapeThatDisagreesWithItsInput) {
  Plan p = demo_plan("cpu");
  PlanNode& pool = node_named(p, "maxpool");
  p.tensors[pool.outputs[0]].shape = {1, 1, 128, 128};  // 16384 floats from a 1x8x32x32 input
  expect_refused(p, "cpu", "maxpool", "output 0 is float32 1x1x128x128 in the plan");
}

TEST(PlanVerifier, ReduceAxesEditedOnOpenCL) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  Plan p = demo_plan("opencl");
  PlanNode& gap = node_named(p, "gap");
  gap.attrs.set("axes", std::vector<int64_t>{1});  // 1x1x16x16 written into a 1x8x1x1 buffer
  expect_refused(p, "opencl", "gap", "output 0 is float32 1x8x1x1 in the plan");
  gap.attrs.set("axes", std::vector<int64_t>{3, 2});
  expect_refused(p, "opencl", "gap", "must be ascending");
  gap.attrs.set("axes", std::vector<int64_t>{2, 7});
  expect_refused(p, "opencl", "gap", "within rank 4");
}

TEST(PlanVerifier, PoolAndConvGeometryOutOfRange) {
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  struct Edit {
    const char* node;
    const char* attr;
    std::vector<int64_t> value;
    const char* detail;
  };
  const Edit edits[] = {
      {"maxpool", "dilations", {0, 1}, "must be in [1, 2^31)"},
      {"maxpool", "strides", {int64_t{1} << 62, 2}, "must be in [1, 2^31)"},
      {"maxpool", "pads", {kMax, 0, 0, 0}, "must be in [0, 2^31)"},
      {"maxpool", "kernel_shape", {2}, "do not match the 2 spatial dims"},
      {"block1_conv", "strides", {int64_t{1} << 62, 1}, "has no valid extent"},
      {"block1_conv", "dilations", {0, 1}, "has no valid extent"},
      {"block1_conv", "pads", {kMax, 1, kMax, 1}, "has no valid extent"},
      {"block1_conv", "pads", {-1, 1, 1, 1}, "has no valid extent"},
  };
  for (const Edit& e : edits) {
    Plan p = demo_plan("cpu");
    node_named(p, e.node).attrs.set(e.attr, e.value);
    SCOPED_TRACE(std::string(e.node) + "." + e.attr);
    expect_refused(p, "cpu", e.node, e.detail);
  }
  Plan p = demo_plan("cpu");
  node_named(p, "block1_conv").attrs.set("group", int64_t{0});
  expect_refused(p, "cpu", "block1_conv", "group");
}

TEST(PlanVerifier, SliceStepsThatOverflow) {
  test::OpSpec s{"Slice", 13, {}, {}, {false, true, true, true, true}};
  HostTensor x(DType::kFloat32, {4, 6});
  auto ints = [](std::vector<int64_t> v) {
    HostTensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.as<int64_t>()[i] = v[i];
    return t;
  };
  s.inputs = {x, ints({0, 1}), ints({4, 6}), ints({0, 1}), ints({2, 2})};
  Plan base;
  ASSERT_TRUE(test::build_op_plan(s, "cpu", &base).is_ok());
  ASSERT_EQ(base.nodes.size(), 1u);
  ASSERT_EQ(base.nodes[0].op, "Slice");
  for (int64_t step : {std::numeric_limits<int64_t>::min(), int64_t{1} << 62, int64_t{0}, int64_t{5}}) {
    Plan p = base;
    p.nodes[0].attrs.set("steps", std::vector<int64_t>{step, 2});
    SCOPED_TRACE(step);
    expect_refused(p, "cpu", p.nodes[0].name, "step");
  }
  Plan p = base;
  p.nodes[0].attrs.set("starts", std::vector<int64_t>{3, 1});  // rows 3 and 5 of 4
  expect_refused(p, "cpu", p.nodes[0].name, "leave the input");
}

TEST(PlanVerifier, RenamedFusedActivationIsNotDroppedSilently) {
  Plan p = demo_plan("cpu");
  PlanNode& conv = node_named(p, "block1_conv");
  ASSERT_EQ(conv.attrs.get_string("activation", ""), "Relu");
  const AttrValue v = conv.attrs.all().at("activation");
  conv.attrs.erase("activation");
  conv.attrs.set("activatiom", v);  // one byte of the name changed
  expect_refused(p, "cpu", "block1_conv", "unknown attribute 'activatiom'");
  // A known name with the wrong kind would be read as its default by the kernels.
  Plan q = demo_plan("cpu");
  node_named(q, "block1_conv").attrs.set("activation", int64_t{1});
  expect_refused(q, "cpu", "block1_conv", "attribute 'activation' is an int, expected a string");
}

TEST(PlanVerifier, DtypeAndOperandEdits) {
  {
    Plan p = demo_plan("cpu");
    PlanNode& pool = node_named(p, "maxpool");
    p.tensors[pool.outputs[0]].dtype = DType::kInt8;
    expect_refused(p, "cpu", "maxpool", "int8");
  }
  {
    Plan p = demo_plan("cpu");
    PlanNode& conv = node_named(p, "block2_conv");
    conv.inputs.pop_back();  // the fused residual
    expect_refused(p, "cpu", "block2_conv", "residual");
  }
  {
    Plan p = demo_plan("cpu");
    node_named(p, "fc").inputs.push_back(node_named(p, "fc").inputs[0]);  // a residual that is not one
    expect_refused(p, "cpu", "fc", "inputs");
  }
}

// A node the OpenCL kernel does not take (integer ReduceSum) moved onto OpenCL in a plan built
// for OpenCL: the plan's own assignment is not trusted.
TEST(PlanVerifier, OpenCLNodeTheKernelDeclines) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  test::OpSpec s{"ReduceSum", 13, {}, {}, {false, true}};
  HostTensor x(DType::kInt64, {3, 4});
  HostTensor axes(DType::kInt64, {1});
  axes.as<int64_t>()[0] = 1;
  s.inputs = {x, axes};
  Plan p;
  ASSERT_TRUE(test::build_op_plan(s, "opencl", &p).is_ok());
  ASSERT_EQ(p.target.kind, "opencl");
  ASSERT_EQ(p.nodes[0].backend, Backend::kCpu);
  p.nodes[0].backend = Backend::kOpenCL;
  p.segments = compute_segments(p);
  if (p.required_caps.empty()) p.required_caps.push_back("opencl");
  Status st = load_and_create(p, "opencl");
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << st.message();
  EXPECT_NE(st.message().find("assigned to OpenCL"), std::string::npos) << st.message();
}

// A dynamic plan whose shape expression agrees with the stored shapes at the max point (all
// that load-time checks can see) but not at smaller inputs: refused when a context reshapes.
TEST(PlanVerifier, DynamicShapesAreReverifiedOnReshape) {
  BuildOptions o;
  o.device = "cpu";
  o.min_shapes["x"] = {1, 3, 4};
  o.max_shapes["x"] = {6, 3, 4};
  o.shapes["x"] = {2, 3, 4};
  Plan p;
  ASSERT_TRUE(build_plan_from_file(test::model_path("dynamic_batch.onnx"), o, &p).is_ok());
  const int32_t y = p.outputs[0];
  bool edited = false;
  for (DynExpr& e : p.dyn_exprs)
    if (e.target == DynTarget::kTensorDim && e.index == y && e.pos == 0) {
      e.terms = {DynTerm{0, 6}};  // always 6: right at the max, wrong below it
      edited = true;
    }
  ASSERT_TRUE(edited);
  const std::vector<uint8_t> bytes = serialize_plan(p);
  auto parsed = std::make_shared<Plan>();
  ASSERT_TRUE(parse_plan(bytes.data(), bytes.size(), parsed.get()).is_ok());
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(parsed, "cpu", &ctx, &notice).is_ok());
  Status st = ctx->set_input_shape("x", {2, 3, 4});
  EXPECT_EQ(st.code(), StatusCode::kInvalidPlan) << st.message();
  EXPECT_NE(st.message().find("elements"), std::string::npos) << st.message();
  // The context is left at the shapes it had, and still runs at them.
  EXPECT_EQ(ctx->tensor_shape(parsed->inputs[0]), (Shape{6, 3, 4}));
  EXPECT_TRUE(ctx->set_input_shape("x", {6, 3, 4}).is_ok());
}

}  // namespace
}  // namespace kiln
