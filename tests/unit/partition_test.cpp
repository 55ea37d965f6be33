// Partitioning: nodes forced onto the CPU in the middle of a device plan still give the right
// outputs (with the transfers recorded), and the cost model moves work when transfers get dear.
#include <gtest/gtest.h>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/partition.h"
#include "runtime/profile/profiler.h"
#include "tests/ops/op_harness.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

// in[n,n] -> MatMul(W0) -> Relu -> MatMul(W1) -> out, all float32.
Plan matmul_relu_matmul(int64_t n) {
  ir::Graph g;
  g.opsets[""] = 17;
  std::mt19937 rng(3);
  ir::Value* x = g.add_value("in");
  x->dtype = DType::kFloat32;
  x->shape = {n, n};
  x->has_shape = true;
  x->is_graph_input = true;
  g.inputs.push_back(x);
  auto weight = [&](const std::string& name) {
    ir::Value* w = g.add_value(name);
    w->dtype = DType::kFloat32;
    w->shape = {n, n};
    w->has_shape = true;
    w->constant = std::make_shared<HostTensor>(test::random_tensor(DType::kFloat32, {n, n}, rng));
    return w;
  };
  auto node = [&](const std::string& op, const std::string& name, std::vector<ir::Value*> ins) {
    ir::Node* nd = g.add_node(op, name);
    ir::Value* out = g.add_value(name + "_out");
    out->producer = nd;
    nd->inputs = std::move(ins);
    nd->outputs = {out};
    return out;
  };
  ir::Value* a = node("MatMul", "mm0", {x, weight("w0")});
  ir::Value* b = node("Relu", "relu", {a});
  g.outputs.push_back(node("MatMul", "mm1", {b, weight("w1")}));
  BuildOptions opts;
  opts.device = "cpu";
  opts.fuse = false;  // keep Relu a node of its own
  Plan p;
  EXPECT_TRUE(build_plan_from_graph(g, opts, &p).is_ok());
  return p;
}

DeviceCaps fake_gpu() {
  DeviceCaps c;
  c.kind = "opencl";
  c.device_type = CL_DEVICE_TYPE_GPU;
  c.name = "Test GPU";
  c.vendor = "Test";
  c.compute_units = 100;
  return c;
}

TEST(Partition, DeviceTypeNotNamePicksTheCostModel) {
  // The CL_DEVICE_TYPE recorded in the plan decides: a GPU named like a CPU gets the GPU model,
  // and a CPU device named like a GPU the CPU-like one.
  DeviceCaps gpu = fake_gpu();
  gpu.name = "pthread-cpu-lookalike";
  DeviceCaps cpu = fake_gpu();
  cpu.device_type = CL_DEVICE_TYPE_CPU;
  const BackendModel g = backend_model(Backend::kOpenCL, gpu), c = backend_model(Backend::kOpenCL, cpu);
  EXPECT_GT(g.gbps, c.gbps);
  EXPECT_GT(g.gflops, c.gflops);
  EXPECT_LT(g.launch_us, c.launch_us);
}

TEST(Partition, CostModelKeepsWorkOnTheCpuWhenTransfersAreExpensive) {
  Plan p = matmul_relu_matmul(512);
  ASSERT_EQ(p.nodes.size(), 3u);
  PartitionOptions o;
  o.policy = PartitionPolicy::kCostModel;
  o.cpu_nodes = {"relu"};
  o.transfer_gbps = 1000;  // nearly free: the second MatMul goes back to the device
  o.transfer_latency_us = 0;
  std::vector<Backend> cheap = partition_nodes(p, fake_gpu(), o);
  EXPECT_EQ(cheap[0], Backend::kOpenCL);
  EXPECT_EQ(cheap[1], Backend::kCpu);
  EXPECT_EQ(cheap[2], Backend::kOpenCL);
  o.transfer_gbps = 0.001;  // 1 MB/s: moving the 1 MiB activation back costs a second
  std::vector<Backend> dear = partition_nodes(p, fake_gpu(), o);
  EXPECT_EQ(dear[1], Backend::kCpu);
  EXPECT_EQ(dear[2], Backend::kCpu) << "an expensive transfer should keep the consumer on the CPU";
  // The device-first policy ignores costs: everything but the forced node on the device.
  o.policy = PartitionPolicy::kDeviceFirst;
  std::vector<Backend> first = partition_nodes(p, fake_gpu(), o);
  EXPECT_EQ(first[0], Backend::kOpenCL);
  EXPECT_EQ(first[2], Backend::kOpenCL);
}

TEST(Partition, ForcedCpuNodeInTheMiddleRunsCorrectly) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::vector<HostTensor> want, got;
  // The demo CNN with its MaxPool forced onto the CPU, against the all-CPU plan.
  for (const char* device : {"cpu", "opencl"}) {
    Plan p;
    BuildOptions opts;
    opts.device = device;
    if (std::string(device) == "opencl") opts.partition.cpu_nodes = {"maxpool"};
    ASSERT_TRUE(build_plan_from_file(test::model_path("demo_cnn.onnx"), opts, &p).is_ok());
    if (std::string(device) == "opencl") {
      ASSERT_EQ(p.segments.size(), 3u) << "opencl, cpu (maxpool), opencl";
      EXPECT_EQ(p.segments[1].backend, Backend::kCpu);
      EXPECT_FALSE(p.segments[1].copy_in.empty()) << "the CPU segment reads a device tensor";
      EXPECT_FALSE(p.segments[2].copy_in.empty()) << "the device reads the CPU result back";
    }
    auto plan = std::make_shared<Plan>(p);
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, device, &ctx, &notice).is_ok());
    std::mt19937 rng(9);
    HostTensor in = test::random_tensor(DType::kFloat32, {1, 3, 32, 32}, rng, 0, 1);
    ASSERT_TRUE(ctx->bind_input("input", in.dtype(), in.shape(), in.data(), in.size_bytes()).is_ok());
    HostTensor out(DType::kFloat32, {1, 10});
    ASSERT_TRUE(ctx->bind_output("probs", out.data(), out.size_bytes()).is_ok());
    ASSERT_TRUE(ctx->run().is_ok());
    (std::string(device) == "cpu" ? want : got).push_back(out);
  }
  EXPECT_TRUE(test::tensors_close(got[0], want[0], 1e-4, 1e-6));
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// Two contexts of one plan whose middle runs on the CPU: while one inference is in its CPU
// segment, the other's device work proceeds (the executor never holds a global lock).
TEST(Partition, CpuSegmentOfOneInferenceOverlapsDeviceWorkOfAnother) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  Plan p = matmul_relu_matmul(384);
  PartitionOptions o;
  o.cpu_nodes = {"relu", "mm1"};
  ResolvedDevice dev;
  ASSERT_TRUE(resolve_device("opencl", &dev).is_ok());
  p.target = dev.caps;
  apply_partition(&p, dev.caps, o);
  ASSERT_EQ(p.nodes[0].backend, Backend::kOpenCL);
  ASSERT_EQ(p.nodes[2].backend, Backend::kCpu);
  auto plan = std::make_shared<Plan>(p);

  constexpr int kContexts = 2, kRuns = 6;
  std::vector<std::unique_ptr<ExecutionContext>> ctxs(kContexts);
  std::vector<Profiler> profs(kContexts);
  std::vector<HostTensor> outs;
  outs.reserve(kContexts);
  std::mt19937 rng(1);
  HostTensor in = test::random_tensor(DType::kFloat32, {384, 384}, rng);
  for (int c = 0; c < kContexts; ++c) {
    std::string notice;
    ASSERT_TRUE(ExecutionContext::create(plan, "opencl", &ctxs[c], &notice).is_ok());
    ASSERT_TRUE(ctxs[c]->bind_input("in", in.dtype(), in.shape(), in.data(), in.size_bytes()).is_ok());
    outs.emplace_back(DType::kFloat32, Shape{384, 384});
    ASSERT_TRUE(ctxs[c]->bind_output("mm1_out", outs.back().data(), outs.back().size_bytes()).is_ok());
    ctxs[c]->set_profiler(&profs[c]);
  }
  std::vector<std::shared_ptr<InferenceEvent>> events;
  for (int r = 0; r < kRuns; ++r)
    for (auto& c : ctxs) events.push_back(c->enqueue());
  for (auto& e : events) {
    std::string msg;
    ASSERT_EQ(e->wait(&msg), 0) << msg;
  }
  int overlaps = 0;
  for (int a = 0; a < kContexts; ++a)
    for (const ProfileEvent& cpu : profs[a].events()) {
      if (cpu.kind != ProfileEvent::Kind::kNode || cpu.backend != Backend::kCpu) continue;
      for (int b = 0; b < kContexts; ++b) {
        if (b == a) continue;
        for (const ProfileEvent& dev_ev : profs[b].events())
          if (dev_ev.backend == Backend::kOpenCL && dev_ev.kind == ProfileEvent::Kind::kNode &&
              dev_ev.start_ns < cpu.end_ns && cpu.start_ns < dev_ev.end_ns)
            ++overlaps;
      }
    }
  EXPECT_GT(overlaps, 0) << "no CPU node of one context ran while a device node of another did";
  for (auto& c : ctxs) c->set_profiler(nullptr);
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// A tensor larger than the device's largest buffer is a clear out-of-memory error: kiln build
// refuses the plan naming the tensor, and a plan written anyway (--allow-over-memory) is refused
// when a context is created, before anything is allocated; never an abort.
TEST(DeviceMemory, TooLargeForTheDeviceIsAClearError) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  const uint64_t max_alloc = opencl_devices()[0].caps.max_alloc_bytes;
  const int64_t elems = static_cast<int64_t>(max_alloc / 8 + max_alloc / 16);  // 1.5x the limit, int64
  // The graph of one Expand to `elems` int64 values (the passes rewrite a graph: one per build).
  auto make_graph = [&](ir::Graph& g) {
    g.opsets[""] = 17;
    ir::Value* x = g.add_value("x");
    x->dtype = DType::kInt64;
    x->shape = {1};
    x->has_shape = true;
    x->is_graph_input = true;
    g.inputs.push_back(x);
    ir::Value* shape = g.add_value("shape");
    shape->dtype = DType::kInt64;
    shape->shape = {1};
    shape->has_shape = true;
    auto st = std::make_shared<HostTensor>(DType::kInt64, Shape{1});
    st->as<int64_t>()[0] = elems;
    shape->constant = st;
    ir::Node* n = g.add_node("Expand", "huge");
    ir::Value* y = g.add_value("y");
    y->producer = n;
    n->inputs = {x, shape};
    n->outputs = {y};
    g.outputs.push_back(y);
  };
  BuildOptions opts;
  opts.device = "opencl";
  auto plan = std::make_shared<Plan>();
  ir::Graph g1, g2;
  make_graph(g1);
  make_graph(g2);
  Status built = build_plan_from_graph(g1, opts, plan.get());
  opts.allow_over_memory = true;
  ASSERT_TRUE(build_plan_from_graph(g2, opts, plan.get()).is_ok());
  // Where the largest buffer exceeds what a kernel with 32-bit indices addresses (the H100: 20
  // GiB), the partitioner already gives such a tensor to the cpu: no device buffer to refuse.
  if (plan->nodes[0].backend != Backend::kOpenCL)
    GTEST_SKIP() << "a buffer past CL_DEVICE_MAX_MEM_ALLOC_SIZE (" << max_alloc << " bytes) holds more elements than "
                 << "the OpenCL kernels index; the node went to the cpu";
  ASSERT_FALSE(built.is_ok());
  EXPECT_EQ(built.code(), StatusCode::kOutOfMemory) << built.message();
  EXPECT_NE(built.message().find("'y' int64"), std::string::npos) << built.message();
  EXPECT_NE(built.message().find("CL_DEVICE_MAX_MEM_ALLOC_SIZE"), std::string::npos) << built.message();
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  Status s = ExecutionContext::create(plan, "opencl", &ctx, &notice);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kOutOfMemory) << s.message();
  EXPECT_NE(s.message().find("CL_DEVICE_MAX_MEM_ALLOC_SIZE"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace kiln
