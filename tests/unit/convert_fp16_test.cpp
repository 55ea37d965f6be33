// The fp16 conversion's boundaries (compiler/passes/convert_fp16.cpp) on a graph where one
// fp16 value feeds an fp16 node, an fp32 node and a graph output:
//   x -> MatMul a (fp16) -> A;  A -> MatMul b (--layer-precision b=fp32) -> B;
//   Add(A, B) (fp16) -> C;  graph outputs A and C.
// a and the Add read and write float16 (half weights), b stays float32, exactly one Cast
// brings A back to float32 (shared by b and the output A), graph I/O stays float32, and the
// outputs match the FP32 plan to half precision.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

void build(const BuildOptions& opts, Plan* out, const HostTensor& wa, const HostTensor& wb) {
  ir::Graph g;
  g.opsets[""] = 17;
  ir::Value* x = g.add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = {8, 16};
  x->has_shape = true;
  x->is_graph_input = true;
  g.inputs.push_back(x);
  auto constant = [&](const std::string& name, const HostTensor& t) {
    ir::Value* w = g.add_value(name);
    w->dtype = t.dtype();
    w->shape = t.shape();
    w->has_shape = true;
    w->constant = std::make_shared<HostTensor>(t);
    return w;
  };
  auto node = [&](const std::string& op, const std::string& name, std::vector<ir::Value*> ins) {
    ir::Node* nd = g.add_node(op, name);
    ir::Value* v = g.add_value(name + "_out");
    v->producer = nd;
    nd->inputs = std::move(ins);
    nd->outputs = {v};
    return v;
  };
  ir::Value* a = node("MatMul", "a", {x, constant("wa", wa)});
  ir::Value* b = node("MatMul", "b", {a, constant("wb", wb)});
  ir::Value* c = node("Add", "add", {a, b});
  g.outputs = {a, c};
  ASSERT_TRUE(build_plan_from_graph(g, opts, out).is_ok());
}

DType out_dtype(const Plan& p, const std::string& node) {
  for (const PlanNode& n : p.nodes)
    if (n.name == node) return p.tensors[n.outputs[0]].dtype;
  ADD_FAILURE() << "no node " << node;
  return DType::kUndefined;
}

std::vector<HostTensor> run(const Plan& p, const std::string& device, const HostTensor& x) {
  auto plan = std::make_shared<Plan>(p);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  EXPECT_TRUE(ExecutionContext::create(plan, device, &ctx, &notice).is_ok());
  std::vector<HostTensor> outs;
  outs.reserve(2);
  EXPECT_TRUE(ctx->bind_input("x", x.dtype(), x.shape(), x.data(), x.size_bytes()).is_ok());
  for (const char* name : {"a_out", "add_out"}) {
    outs.emplace_back(DType::kFloat32, Shape{8, 16});
    EXPECT_TRUE(ctx->bind_output(name, outs.back().data(), outs.back().size_bytes()).is_ok());
  }
  EXPECT_TRUE(ctx->run().is_ok());
  return outs;
}

TEST(ConvertFp16, BoundariesBetweenFp16AndFp32Nodes) {
  std::mt19937 rng(5);
  const HostTensor wa = test::random_tensor(DType::kFloat32, {16, 16}, rng);
  const HostTensor wb = test::random_tensor(DType::kFloat32, {16, 16}, rng);
  const HostTensor x = test::random_tensor(DType::kFloat32, {8, 16}, rng);
  std::vector<std::string> devices = {"cpu"};
  if (test::have_opencl()) devices.push_back("opencl");
  for (const std::string& dev : devices) {
    SCOPED_TRACE(dev);
    BuildOptions opts;
    opts.device = dev;
    opts.fuse = false;  // keep the Add a node of its own
    Plan fp32, fp16;
    build(opts, &fp32, wa, wb);
    opts.precision = "fp16";
    opts.layer_precision["b"] = "fp32";
    build(opts, &fp16, wa, wb);

    EXPECT_EQ(out_dtype(fp16, "a"), DType::kFloat16);
    EXPECT_EQ(out_dtype(fp16, "b"), DType::kFloat32);
    EXPECT_EQ(out_dtype(fp16, "add"), DType::kFloat16);
    int casts = 0;
    size_t weight_bytes = 0;
    for (const PlanNode& n : fp16.nodes) casts += n.op == "Elementwise" && n.name != "add";
    for (const PlanTensor& t : fp16.tensors)
      if (t.kind == TensorKind::kConstant) weight_bytes += t.bytes();
    // x -> fp16, A -> fp32 (one, for b and the output), B -> fp16, C -> fp32.
    EXPECT_EQ(casts, 4);
    EXPECT_EQ(weight_bytes, 16 * 16 * 2 + 16 * 16 * 4u) << "wa as half, wb (fp32 node) as float";
    for (int32_t t : fp16.inputs) EXPECT_EQ(fp16.tensors[t].dtype, DType::kFloat32);
    for (int32_t t : fp16.outputs) EXPECT_EQ(fp16.tensors[t].dtype, DType::kFloat32);

    const std::vector<HostTensor> want = run(fp32, dev, x), got = run(fp16, dev, x);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_TRUE(test::tensors_close(got[i], want[i], 4e-3, 4e-3)) << "output " << i;
      EXPECT_FALSE(test::tensors_close(got[i], want[i], 0, 0)) << "output " << i << " is not rounded to half";
    }
  }
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// torch's attention-mask pattern: (1 - mask) * float32's lowest, added to the scores. In
// float16 the constant is -inf and 0 * -inf is NaN; the Mul must stay float32 (so unmasked
// positions add -0) and the output stay finite.
TEST(ConvertFp16, ConstantsBeyondHalfRangeStayFloat32) {
  ir::Graph g;
  g.opsets[""] = 17;
  auto input = [&](const std::string& name) {
    ir::Value* v = g.add_value(name);
    v->dtype = DType::kFloat32;
    v->shape = {4};
    v->has_shape = true;
    v->is_graph_input = true;
    g.inputs.push_back(v);
    return v;
  };
  ir::Value* keep = input("keep");  // 1 where attended, 0 where masked
  ir::Value* scores = input("scores");
  auto scalar = [&](const std::string& name, float x) {
    ir::Value* c = g.add_value(name);
    auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{});
    t->as<float>()[0] = x;
    c->dtype = DType::kFloat32;
    c->has_shape = true;
    c->constant = t;
    return c;
  };
  auto node = [&](const std::string& op, std::vector<ir::Value*> ins) {
    ir::Node* nd = g.add_node(op, op);
    ir::Value* v = g.add_value(op + "_out");
    v->producer = nd;
    nd->inputs = std::move(ins);
    nd->outputs = {v};
    return v;
  };
  ir::Value* inv = node("Sub", {scalar("one", 1.f), keep});
  ir::Value* bias = node("Mul", {inv, scalar("lowest", -3.4028234663852886e38f)});
  g.outputs = {node("Add", {scores, bias})};
  BuildOptions opts;
  opts.device = "cpu";
  opts.precision = "fp16";
  opts.fuse = false;
  Plan p;
  ASSERT_TRUE(build_plan_from_graph(g, opts, &p).is_ok());
  EXPECT_EQ(out_dtype(p, "Mul"), DType::kFloat32);
  auto plan = std::make_shared<Plan>(p);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "cpu", &ctx, &notice).is_ok());
  const float k[4] = {1, 1, 0, 1}, s[4] = {0.5f, -1.f, 2.f, 3.f};
  float out[4];
  ASSERT_TRUE(ctx->bind_input("keep", DType::kFloat32, {4}, k, sizeof k).is_ok());
  ASSERT_TRUE(ctx->bind_input("scores", DType::kFloat32, {4}, s, sizeof s).is_ok());
  ASSERT_TRUE(ctx->bind_output("Add_out", out, sizeof out).is_ok());
  ASSERT_TRUE(ctx->run().is_ok());
  for (int i : {0, 1, 3}) EXPECT_NEAR(out[i], s[i], 1e-3) << i;  // attended: the score itself
  // Masked: float32's lowest reaches the float16 Add through the boundary Cast, which
  // saturates it to half's lowest (an ONNX Cast would give -inf).
  EXPECT_EQ(out[2], -65504.f);
}

// A data mover whose only readers run in float16 moves float16: the Cast goes before it (a
// Transpose from a graph input into an FP16 MatMul reads the cast input), unless it writes fewer
// elements than it reads (a Slice of another input keeps reading float32 and its output is
// cast). The values are the same either way: moves and casts commute.
TEST(ConvertFp16, CastsGoBeforeMoversThatFeedFloat16Only) {
  std::mt19937 rng(9);
  const HostTensor x = test::random_tensor(DType::kFloat32, {4, 6}, rng);
  const HostTensor x2 = test::random_tensor(DType::kFloat32, {4, 6}, rng);
  const HostTensor w1 = test::random_tensor(DType::kFloat32, {4, 3}, rng);
  const HostTensor w2 = test::random_tensor(DType::kFloat32, {6, 3}, rng);
  auto ints = [](std::vector<int64_t> v) {
    HostTensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.as<int64_t>());
    return t;
  };
  std::string transpose, slice;
  auto build_with = [&](const std::string& precision, std::shared_ptr<Plan>* plan) {
    test::GraphBuilder b(17);
    const std::string in = b.input(x);
    Attributes perm;
    perm.set("perm", std::vector<int64_t>{1, 0});
    transpose = b.node("Transpose", {in}, perm);
    b.output(b.node("MatMul", {transpose, b.constant(w1)}));
    slice = b.node("Slice", {b.input(x2), b.constant(ints({0})), b.constant(ints({2})), b.constant(ints({0}))});
    b.output(b.node("MatMul", {slice, b.constant(w2)}));
    BuildOptions o;
    o.precision = precision;
    return b.build(plan, o);
  };
  std::shared_ptr<Plan> fp16, fp32;
  ASSERT_TRUE(build_with("fp16", &fp16).is_ok());
  ASSERT_TRUE(build_with("fp32", &fp32).is_ok());
  auto input_dtype = [&](const std::string& node) {
    for (const PlanNode& n : fp16->nodes)
      if (n.name == node) return fp16->tensors[n.inputs[0]].dtype;
    ADD_FAILURE() << "no node " << node;
    return DType::kUndefined;
  };
  EXPECT_EQ(input_dtype(transpose), DType::kFloat16);
  EXPECT_EQ(out_dtype(*fp16, transpose), DType::kFloat16);
  EXPECT_EQ(input_dtype(slice), DType::kFloat32);
  EXPECT_EQ(out_dtype(*fp16, slice), DType::kFloat32);
  std::vector<HostTensor> got, want;
  ASSERT_TRUE(test::run_plan(fp16, {x, x2}, &got).is_ok());
  ASSERT_TRUE(test::run_plan(fp32, {x, x2}, &want).is_ok());
  ASSERT_EQ(got.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_TRUE(test::tensors_close(got[i], want[i], 1e-2, 1e-2)) << i;
}

}  // namespace
}  // namespace kiln
