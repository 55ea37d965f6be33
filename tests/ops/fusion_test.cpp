// The linear fusion passes (fold_batchnorm, fuse_residual_add, fuse_activation) on a small
// model: Conv+BN+Add(residual)+Relu, depthwise Conv+Clip, Gemm+Add(bias)+Sigmoid and
// MatMul+Add(bias)+Tanh+Add(residual). Fused and unfused plans must agree on cpu and opencl,
// and the plan must show the fused groups.
#include <map>
#include <memory>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "compiler/ops/op_schema.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

struct Model {
  std::map<std::string, HostTensor> inputs;   // runtime inputs by name
  std::map<std::string, HostTensor> weights;  // initializers by name
};

Model make_model() {
  std::mt19937 rng(7);
  Model m;
  m.inputs["X"] = random_tensor(DType::kFloat32, {2, 4, 9, 9}, rng);
  m.inputs["R"] = random_tensor(DType::kFloat32, {2, 8, 9, 9}, rng);
  m.inputs["G"] = random_tensor(DType::kFloat32, {5, 16}, rng);
  m.inputs["A"] = random_tensor(DType::kFloat32, {3, 5, 16}, rng);
  m.inputs["RM"] = random_tensor(DType::kFloat32, {3, 5, 12}, rng);
  m.weights["W1"] = random_tensor(DType::kFloat32, {8, 4, 3, 3}, rng);
  m.weights["B1"] = random_tensor(DType::kFloat32, {8}, rng);
  m.weights["bn_scale"] = random_tensor(DType::kFloat32, {8}, rng, 0.5, 1.5);
  m.weights["bn_bias"] = random_tensor(DType::kFloat32, {8}, rng);
  m.weights["bn_mean"] = random_tensor(DType::kFloat32, {8}, rng);
  m.weights["bn_var"] = random_tensor(DType::kFloat32, {8}, rng, 0.5, 2.0);
  m.weights["W2"] = random_tensor(DType::kFloat32, {8, 1, 3, 3}, rng, -2, 2);
  m.weights["clip_min"] = HostTensor(DType::kFloat32, {});
  m.weights["clip_min"].as<float>()[0] = 0.f;
  m.weights["clip_max"] = HostTensor(DType::kFloat32, {});
  m.weights["clip_max"].as<float>()[0] = 0.8f;
  m.weights["Wg"] = random_tensor(DType::kFloat32, {16, 12}, rng);
  m.weights["bg"] = random_tensor(DType::kFloat32, {12}, rng);
  m.weights["Wm"] = random_tensor(DType::kFloat32, {16, 12}, rng);
  m.weights["bm"] = random_tensor(DType::kFloat32, {1, 12}, rng);
  return m;
}

// Builds the graph (opset 13) from `m`: outputs Y (conv chain), YG (gemm chain), YM (matmul).
void build_graph(const Model& m, ir::Graph* g) {
  g->name = "fusion_test";
  g->opsets[""] = 13;
  auto value = [&](const std::string& name) { return named_value(g, m.inputs, m.weights, name); };
  auto node = [&](const std::string& op, const std::string& name, std::vector<std::string> ins, const std::string& out,
                  Attributes a = {}) {
    ir::Node* n = g->add_node(op, name);
    for (const std::string& i : ins) n->inputs.push_back(value(i));
    ir::Value* o = value(out);
    o->producer = n;
    n->outputs.push_back(o);
    n->attrs = std::move(a);
  };
  Attributes conv1;
  conv1.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  node("Conv", "conv1", {"X", "W1", "B1"}, "c1", conv1);
  node("BatchNormalization", "bn1", {"c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, "b1");
  node("Add", "add1", {"R", "b1"}, "a1");
  node("Relu", "relu1", {"a1"}, "r1");
  Attributes conv2;
  conv2.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv2.set("group", int64_t{8});
  node("Conv", "conv2", {"r1", "W2"}, "c2", conv2);
  node("Clip", "clip2", {"c2", "clip_min", "clip_max"}, "Y");
  node("Gemm", "gemm", {"G", "Wg"}, "g1");
  node("Add", "gadd", {"g1", "bg"}, "g2");
  node("Sigmoid", "gsig", {"g2"}, "YG");
  node("MatMul", "mm", {"A", "Wm"}, "m1");
  node("Add", "madd", {"m1", "bm"}, "m2");
  node("Tanh", "mtanh", {"m2"}, "m3");
  node("Add", "mres", {"m3", "RM"}, "YM");
  for (const char* o : {"Y", "YG", "YM"}) g->outputs.push_back(g->find_value(o));
}

using Builder = void (*)(const Model&, ir::Graph*);

// Second model (opset 13): ConvTranspose(group 2)+BN+LeakyRelu, Gemm(transB, C MxN)+BN+
// HardSigmoid, Conv+Relu+Add (residual after the activation), and a Conv whose Add partner is
// computed after it (must stay unfused).
Model make_model2() {
  std::mt19937 rng(8);
  Model m;
  m.inputs["X"] = random_tensor(DType::kFloat32, {1, 4, 5, 6}, rng);
  m.inputs["G"] = random_tensor(DType::kFloat32, {6, 10}, rng);
  m.inputs["Z"] = random_tensor(DType::kFloat32, {1, 4, 5, 6}, rng);
  m.weights["Wt"] = random_tensor(DType::kFloat32, {4, 3, 3, 3}, rng);
  m.weights["Wg"] = random_tensor(DType::kFloat32, {7, 10}, rng);
  m.weights["Cg"] = random_tensor(DType::kFloat32, {6, 7}, rng);
  m.weights["W3"] = random_tensor(DType::kFloat32, {4, 4, 3, 3}, rng);
  for (const char* p : {"t", "g"}) {
    const int64_t c = *p == 't' ? 6 : 7;
    m.weights[std::string(p) + "_scale"] = random_tensor(DType::kFloat32, {c}, rng, 0.5, 1.5);
    m.weights[std::string(p) + "_bias"] = random_tensor(DType::kFloat32, {c}, rng);
    m.weights[std::string(p) + "_mean"] = random_tensor(DType::kFloat32, {c}, rng);
    m.weights[std::string(p) + "_var"] = random_tensor(DType::kFloat32, {c}, rng, 0.5, 2.0);
  }
  return m;
}

void build_graph2(const Model& m, ir::Graph* g) {
  g->name = "fusion_test2";
  g->opsets[""] = 13;
  auto value = [&](const std::string& name) { return named_value(g, m.inputs, m.weights, name); };
  auto node = [&](const std::string& op, const std::string& name, std::vector<std::string> ins, const std::string& out,
                  Attributes a = {}) {
    ir::Node* n = g->add_node(op, name);
    for (const std::string& i : ins) n->inputs.push_back(value(i));
    ir::Value* o = value(out);
    o->producer = n;
    n->outputs.push_back(o);
    n->attrs = std::move(a);
  };
  Attributes ct;
  ct.set("group", int64_t{2});
  ct.set("strides", std::vector<int64_t>{2, 2});
  ct.set("pads", std::vector<int64_t>{1, 0, 0, 1});
  node("ConvTranspose", "convt", {"X", "Wt"}, "t1", ct);
  node("BatchNormalization", "bnt", {"t1", "t_scale", "t_bias", "t_mean", "t_var"}, "t2");
  Attributes lr;
  lr.set("alpha", 0.2f);
  node("LeakyRelu", "lrelu", {"t2"}, "YT", lr);
  Attributes gm;
  gm.set("transB", int64_t{1});
  gm.set("beta", 0.5f);
  node("Gemm", "gemm", {"G", "Wg", "Cg"}, "g1", gm);
  node("BatchNormalization", "bng", {"g1", "g_scale", "g_bias", "g_mean", "g_var"}, "g2");
  Attributes hs;
  hs.set("alpha", 0.3f);
  node("HardSigmoid", "hsig", {"g2"}, "YG", hs);
  Attributes c3;
  c3.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  node("Conv", "conv3", {"X", "W3"}, "c1", c3);
  node("Relu", "relu3", {"c1"}, "c2");
  node("Add", "res3", {"c2", "Z"}, "YC");
  node("Conv", "conv4", {"Z", "W3"}, "d1", c3);
  node("Sigmoid", "late", {"X"}, "d2");  // runs after conv4: its Add cannot move into conv4
  node("Add", "res4", {"d1", "d2"}, "YD");
  for (const char* o : {"YT", "YG", "YC", "YD"}) g->outputs.push_back(g->find_value(o));
}

Status run_model(const Model& m, const std::string& device, bool fuse, std::map<std::string, HostTensor>* outs,
                 Plan* plan_out, Builder build = build_graph) {
  ir::Graph g;
  build(m, &g);
  BuildOptions opts;
  opts.device = device;
  opts.fuse = fuse;
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_plan_from_graph(g, opts, plan.get()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  for (int32_t t : plan->inputs) {
    const HostTensor& src = m.inputs.at(plan->tensors[t].name);
    KILN_TRY(ctx->bind_input(plan->tensors[t].name, src.dtype(), src.shape(), src.data(), src.size_bytes()));
  }
  outs->clear();
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    HostTensor& o = (*outs)[pt.name] = HostTensor(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, o.data(), o.size_bytes()));
  }
  KILN_TRY(ctx->run());
  *plan_out = *plan;
  return Status::ok();
}

bool have_schemas() {
  for (const char* op : {"BatchNormalization", "Add", "Relu", "Clip", "Sigmoid", "Tanh"})
    if (!schema_registry().find(op)) return false;
  return true;
}

TEST(LinearFusion, FusedAndUnfusedAgreeAndPlanShowsGroups) {
  if (!have_schemas()) GTEST_SKIP() << "needs the elementwise and normalization op families";
  const Model m = make_model();
  std::map<std::string, HostTensor> want, got;
  Plan plain, fused;
  ASSERT_TRUE(run_model(m, "cpu", false, &want, &plain).is_ok());
  std::vector<std::string> devices = {"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  for (const std::string& dev : devices) {
    for (bool fuse : {false, true}) {
      SCOPED_TRACE(dev + (fuse ? " fused" : " unfused"));
      Status st = run_model(m, dev, fuse, &got, &fused);
      ASSERT_TRUE(st.is_ok()) << st.message();
      for (const auto& [name, t] : want) EXPECT_TRUE(tensors_close(got.at(name), t, 1e-4, 1e-5)) << name;
    }
  }
  // The last run was fused: the four linear nodes carry their groups, nothing else is left.
  std::map<std::string, std::vector<std::string>> groups;
  for (const PlanNode& n : fused.nodes) groups[n.name] = n.fused;
  using V = std::vector<std::string>;
  EXPECT_EQ(groups["conv1"], (V{"conv1", "bn1", "add1", "relu1"}));
  EXPECT_EQ(groups["conv2"], (V{"conv2", "clip2"}));
  EXPECT_EQ(groups["gemm"], (V{"gemm", "gadd", "gsig"}));
  EXPECT_EQ(groups["mm"], (V{"mm", "madd", "mtanh", "mres"}));
  EXPECT_EQ(fused.nodes.size(), 4u);
  EXPECT_GT(plain.nodes.size(), fused.nodes.size());
  if (have_opencl()) {
    for (const PlanNode& n : fused.nodes) EXPECT_EQ(n.backend, Backend::kOpenCL) << n.name;
  }
}

TEST(LinearFusion, NoFusionWhenIntermediateIsAnOutput) {
  if (!have_schemas()) GTEST_SKIP() << "needs the elementwise and normalization op families";
  const Model m = make_model();
  ir::Graph g;
  build_graph(m, &g);
  g.outputs.push_back(g.find_value("c1"));  // the Conv result itself is observed
  BuildOptions opts;
  opts.device = "cpu";
  Plan plan;
  Status st = build_plan_from_graph(g, opts, &plan);
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (const PlanNode& n : plan.nodes)
    if (n.name == "conv1") { EXPECT_TRUE(n.fused.empty()) << "conv1 fused although c1 is a graph output"; }
}


TEST(LinearFusion, BatchNormIntoConvTransposeAndGemmAndPostActivationResidual) {
  if (!have_schemas() || !schema_registry().find("LeakyRelu") || !schema_registry().find("HardSigmoid"))
    GTEST_SKIP() << "needs the elementwise and normalization op families";
  const Model m = make_model2();
  std::map<std::string, HostTensor> want, got;
  Plan plain, fused;
  Status st = run_model(m, "cpu", false, &want, &plain, build_graph2);
  ASSERT_TRUE(st.is_ok()) << st.message();
  std::vector<std::string> devices = {"cpu"};
  if (have_opencl()) devices.push_back("opencl");
  for (const std::string& dev : devices) {
    SCOPED_TRACE(dev);
    st = run_model(m, dev, true, &got, &fused, build_graph2);
    ASSERT_TRUE(st.is_ok()) << st.message();
    for (const auto& [name, t] : want) EXPECT_TRUE(tensors_close(got.at(name), t, 1e-4, 1e-5)) << name;
  }
  std::map<std::string, const PlanNode*> nodes;
  for (const PlanNode& n : fused.nodes) nodes[n.name] = &n;
  using V = std::vector<std::string>;
  ASSERT_TRUE(nodes.count("convt") && nodes.count("gemm") && nodes.count("conv3") && nodes.count("conv4"));
  EXPECT_EQ(nodes["convt"]->fused, (V{"convt", "bnt", "lrelu"}));
  EXPECT_EQ(nodes["gemm"]->fused, (V{"gemm", "bng", "hsig"}));
  EXPECT_EQ(nodes["conv3"]->fused, (V{"conv3", "relu3", "res3"}));
  EXPECT_EQ(nodes["conv3"]->attrs.get_int("residual", 0), 2);
  EXPECT_TRUE(nodes["conv4"]->fused.empty());
}

}  // namespace
}  // namespace kiln::test
