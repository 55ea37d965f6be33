// Channels-last regions of integer convolutions (compiler/passes/channels_last.cpp, runtime/ops/
// channels_last.h): the plan a --layout nhwc build writes (which convolutions go NHWC, where the
// Transposes go) and its results, which must equal the NCHW plan's bit for bit (integer sums,
// the same requantization) on the cpu, on the portable OpenCL kernel and on the tensor-core
// kernel (MmaVariant.*, emulated on PoCL by ctest mma_variant_emulated).
#include <gtest/gtest.h>

#include <random>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/core/float8.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/channels_last.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

HostTensor scalar_i8(int8_t v) {
  HostTensor t(DType::kInt8, {});
  t.as<int8_t>()[0] = v;
  return t;
}

ir::Value* constant(ir::Graph& g, const std::string& name, HostTensor t) {
  return g.add_constant(name, std::make_shared<HostTensor>(std::move(t)));
}

ir::Value* node(ir::Graph& g, const std::string& op, std::vector<ir::Value*> in, const std::string& out,
                Attributes attrs = {}) {
  ir::Node* n = g.add_node(op, out + "_node");
  n->inputs = std::move(in);
  n->attrs = std::move(attrs);
  ir::Value* v = g.add_value(out);
  v->producer = n;
  n->outputs = {v};
  return v;
}

// A graph input of x's dtype and shape.
ir::Value* graph_input(ir::Graph& g, const std::string& name, const HostTensor& x) {
  ir::Value* in = g.add_value(name);
  in->dtype = x.dtype();
  in->shape = x.shape();
  in->has_shape = true;
  in->is_graph_input = true;
  g.inputs.push_back(in);
  return in;
}

// Random INT8 convolution layers: weights, per-channel weight scales and int32 biases.
struct QuantLayers {
  std::vector<HostTensor> weights, scales, biases;
  void add_layer(const Shape& w, std::mt19937& rng) {
    weights.push_back(random_tensor(DType::kInt8, w, rng, -128, 128));
    scales.push_back(random_tensor(DType::kFloat32, {w[0]}, rng, 0.001, 0.004));
    biases.push_back(random_tensor(DType::kInt32, {w[0]}, rng, -3000, 3000));
  }
};

// The geometry of the test network's convolutions.
struct Net {
  int64_t images = 2, C = 32, H = 9, W = 7, C2 = 64, C4 = 48;
  int64_t stride = 1;  // of the third convolution
};

// Stride 1 with the fused residual, and stride 2 without.
const Net kResidualAndStrided[] = {Net{}, Net{1, 16, 5, 11, 32, 16, 2}};

std::string net_name(const Net& n) { return "C " + std::to_string(n.C) + " stride " + std::to_string(n.stride); }

// in0 [N, C, H, W] int8 ->
//   a = QLinearConv 3x3 pad 1 (C -> C, bias)                    region (reads the input)
//   b = QLinearConv 1x1 (C -> C2) of a                           region, a graph output
//   c = QLinearConv 3x3 pad 1 stride s (C2 -> C) of b, + residual a (ReLU after the sum: the
//       fused epilogue), when s = 1                              region, read by MaxPool
//   d = MaxPool 2x2 of c                                         graph output
//   e = QLinearConv 1x1 group 2 (C -> C4) of in0                 NCHW (group 2), graph output
struct NetModel : QuantLayers {
  Net net;
  HostTensor x;

  NetModel(const Net& n, std::mt19937& rng) : net(n) {
    x = random_tensor(DType::kInt8, {n.images, n.C, n.H, n.W}, rng, -128, 128);
    const Shape ws[] = {{n.C, n.C, 3, 3}, {n.C2, n.C, 1, 1}, {n.C, n.C2, 3, 3}, {n.C4, n.C / 2, 1, 1}};
    for (const Shape& s : ws) add_layer(s, rng);
  }

  void build(ir::Graph& g) const {
    g.name = "channels_last_test";
    g.opsets[""] = 13;
    ir::Value* in = graph_input(g, "in0", x);
    ir::Value* z = constant(g, "z", scalar_i8(0));
    auto conv = [&](int i, ir::Value* v, float sx, float sy, int64_t k, int64_t stride, int64_t group,
                    const std::string& out, ir::Value* residual) {
      Attributes a;
      a.set("kernel_shape", std::vector<int64_t>{k, k});
      a.set("pads", std::vector<int64_t>(4, k / 2));
      a.set("strides", std::vector<int64_t>{stride, stride});
      a.set("group", group);
      std::vector<ir::Value*> ins{v,
                                  constant(g, out + "_xs", scalar_f32(sx)),
                                  z,
                                  constant(g, out + "_w", weights[i]),
                                  constant(g, out + "_ws", scales[static_cast<size_t>(i)]),
                                  z,
                                  constant(g, out + "_ys", scalar_f32(sy)),
                                  z,
                                  constant(g, out + "_b", biases[i])};
      ir::Value* y = node(g, "QLinearConv", ins, residual ? out + "_conv" : out, a);
      if (!residual) return y;
      // Dequantize, add the residual, ReLU, quantize: fuse_quantized makes it the convolution's
      // epilogue (residual input 9).
      ir::Value* yf = node(g, "DequantizeLinear", {y, constant(g, out + "_ys2", scalar_f32(sy)), z}, out + "_f");
      ir::Value* rf = node(g, "DequantizeLinear", {residual, constant(g, out + "_rs", scalar_f32(0.05f)), z}, out + "_rf");
      ir::Value* sum = node(g, "Relu", {node(g, "Add", {yf, rf}, out + "_sum")}, out + "_relu");
      return node(g, "QuantizeLinear", {sum, constant(g, out + "_os", scalar_f32(0.07f)), z}, out);
    };
    ir::Value* a = conv(0, in, 0.02f, 0.05f, 3, 1, 1, "a", nullptr);
    ir::Value* b = conv(1, a, 0.05f, 0.04f, 1, 1, 1, "b", nullptr);
    ir::Value* c = conv(2, b, 0.04f, 0.06f, 3, net.stride, 1, "c", net.stride == 1 ? a : nullptr);
    Attributes pool;
    pool.set("kernel_shape", std::vector<int64_t>{2, 2});
    node(g, "MaxPool", {c}, "d", pool);
    conv(3, in, 0.02f, 0.03f, 1, 1, 2, "e", nullptr);
    for (const char* name : {"b", "d", "e"}) g.outputs.push_back(g.find_value(name));
  }
};

// in0 [N, 3, H, W] int8 -> QLinearConv 7x7 stride 2 pad 3 (3 -> C, bias; its space-to-depth form
// joins the region: compiler/passes/space_to_depth_conv.h) -> MaxPool 3x3 stride 2 pad 1 ->
// QLinearConv 3x3 pad 1 (C -> C) -> output.
struct StemModel : QuantLayers {
  int64_t images = 2, H = 16, W = 12, C = 16;
  HostTensor x;

  explicit StemModel(std::mt19937& rng) {
    x = random_tensor(DType::kInt8, {images, 3, H, W}, rng, -128, 128);
    for (const Shape& s : {Shape{C, 3, 7, 7}, Shape{C, C, 3, 3}}) add_layer(s, rng);
  }

  void build(ir::Graph& g) const {
    g.name = "stem_test";
    g.opsets[""] = 13;
    ir::Value* in = graph_input(g, "in0", x);
    ir::Value* z = constant(g, "z", scalar_i8(0));
    auto conv = [&](size_t i, ir::Value* v, int64_t k, int64_t stride, const std::string& out) {
      Attributes a;
      a.set("kernel_shape", std::vector<int64_t>{k, k});
      a.set("pads", std::vector<int64_t>(4, k / 2));
      a.set("strides", std::vector<int64_t>{stride, stride});
      return node(g, "QLinearConv",
                  {v, constant(g, out + "_xs", scalar_f32(0.02f)), z, constant(g, out + "_w", weights[i]),
                   constant(g, out + "_ws", scales[i]), z, constant(g, out + "_ys", scalar_f32(0.05f)), z,
                   constant(g, out + "_b", biases[i])},
                  out, a);
    };
    Attributes pool;
    pool.set("kernel_shape", std::vector<int64_t>{3, 3});
    pool.set("strides", std::vector<int64_t>{2, 2});
    pool.set("pads", std::vector<int64_t>{1, 1, 1, 1});
    conv(1, node(g, "MaxPool", {conv(0, in, 7, 2, "stem")}, "pool", pool), 3, 1, "y");
    g.outputs.push_back(g.find_value("y"));
  }
};

// The NCHW results every channels-last plan must reproduce: the cpu's reference kernels (oneDNN's
// INT8 route is checked against them by CpuFastQuant.ConvChainWithResidualMatchesReference).
template <typename Model>
Status reference_nchw(const Model& m, std::vector<HostTensor>* out, Plan* plan_out);

template <typename Model>
Status build_and_run(const Model& m, const std::string& device, ActivationLayout layout, std::vector<HostTensor>* out,
                     Plan* plan_out) {
  ir::Graph g;
  m.build(g);
  BuildOptions opts;
  opts.device = device;
  opts.layout = layout;
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_plan_from_graph(g, opts, plan.get()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  KILN_TRY(ctx->bind_input("in0", DType::kInt8, m.x.shape(), m.x.data(), m.x.size_bytes()));
  out->clear();
  for (int32_t t : plan->outputs) {
    out->emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
    KILN_TRY(ctx->bind_output(plan->tensors[t].name, out->back().data(), out->back().size_bytes()));
  }
  KILN_TRY(ctx->run());
  *plan_out = *plan;
  return Status::ok();
}

template <typename Model>
Status reference_nchw(const Model& m, std::vector<HostTensor>* out, Plan* plan_out) {
  ScopedEnv reference("KILN_CPU_REFERENCE", "1");
  return build_and_run(m, "cpu", ActivationLayout::kChannelsFirst, out, plan_out);
}

int count(const Plan& p, const std::string& op, bool channels_last) {
  int n = 0;
  for (const PlanNode& node : p.nodes) n += node.op == op && is_channels_last(node.attrs) == channels_last;
  return n;
}

::testing::AssertionResult same_outputs(const std::vector<HostTensor>& got, const std::vector<HostTensor>& want) {
  return outputs_close(got, want, 0, 0);
}

TEST(ChannelsLast, RegionTransposesOnlyAtItsBordersAndMatchesNchwExactly) {
  std::mt19937 rng(51);
  const NetModel m(Net{}, rng);
  std::vector<HostTensor> want, got;
  Plan nchw, nhwc;
  const Status built = reference_nchw(m, &want, &nchw);
  ASSERT_TRUE(built.is_ok()) << built.message();
  EXPECT_EQ(count(nchw, "QLinearConv", true), 0);
  EXPECT_EQ(count(nchw, "Transpose", false), 0);
  // The cpu target's own choice (auto) is NCHW: its kernels gain nothing from NHWC.
  ASSERT_TRUE(build_and_run(m, "cpu", ActivationLayout::kAuto, &got, &nhwc).is_ok());
  EXPECT_EQ(count(nhwc, "QLinearConv", true), 0);
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    SCOPED_TRACE(device);
    const Status st = build_and_run(m, device, ActivationLayout::kChannelsLast, &got, &nhwc);
    ASSERT_TRUE(st.is_ok()) << st.message();
    // a, b and c in the region; e (group 2) outside. Transposes: the input into the region, b
    // (a graph output) and c (read by MaxPool) out of it; a, read by b and c's residual only,
    // stays NHWC.
    EXPECT_EQ(count(nhwc, "QLinearConv", true), 3);
    EXPECT_EQ(count(nhwc, "QLinearConv", false), 1);
    EXPECT_EQ(count(nhwc, "Transpose", false), 3);
    EXPECT_TRUE(same_outputs(got, want));
  }
}

TEST(ChannelsLast, StridedConvolutionsAndOddSizes) {
  std::mt19937 rng(52);
  for (const Net& n : {Net{1, 16, 5, 11, 32, 16, 2}, Net{3, 48, 8, 8, 16, 32, 2}}) {
    SCOPED_TRACE(net_name(n));
    const NetModel m(n, rng);
    std::vector<HostTensor> want, got;
    Plan p;
    ASSERT_TRUE(reference_nchw(m, &want, &p).is_ok());
    for (const char* device : {"cpu", "opencl"}) {
      if (std::string(device) == "opencl" && !have_opencl()) continue;
      ASSERT_TRUE(build_and_run(m, device, ActivationLayout::kChannelsLast, &got, &p).is_ok());
      EXPECT_EQ(count(p, "QLinearConv", true), 3);
      EXPECT_TRUE(same_outputs(got, want)) << device;
    }
  }
}

TEST(ChannelsLast, ChannelsNotAMultipleOf16StayNchw) {
  std::mt19937 rng(53);
  const NetModel m(Net{1, 24, 6, 6, 40, 8, 1}, rng);
  std::vector<HostTensor> got;
  Plan p;
  ASSERT_TRUE(build_and_run(m, "cpu", ActivationLayout::kChannelsLast, &got, &p).is_ok());
  // a (C = 24) and c (C2 = 40) cannot; b (reading 24 channels) cannot either, and none has a
  // channels-last neighbour.
  EXPECT_EQ(count(p, "QLinearConv", true), 0);
  EXPECT_EQ(count(p, "Transpose", false), 0);
}

// The plan rules refuse what the kernels do not take.
TEST(ChannelsLast, RulesRefuseItWhereKernelsDoNot) {
  std::mt19937 rng(54);
  const NetModel m(Net{}, rng);
  ir::Graph g;
  m.build(g);
  BuildOptions opts;
  opts.device = "cpu";
  opts.layout = ActivationLayout::kChannelsLast;
  Plan plan;
  ASSERT_TRUE(build_plan_from_graph(g, opts, &plan).is_ok());
  for (PlanNode& n : plan.nodes)
    if (n.op == "QLinearConv" && !is_channels_last(n.attrs)) n.attrs.set(kAttrChannelsLast, int64_t{1});
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  const Status st = ExecutionContext::create(std::make_shared<Plan>(plan), "cpu", &ctx, &notice);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("e_node"), std::string::npos) << st.message();
}

// The stem's space-to-depth form and the pool after it join the region: same bits as NCHW.
TEST(ChannelsLast, StemInSpaceToDepthFormMatchesNchwExactly) {
  std::mt19937 rng(58);
  const StemModel m(rng);
  std::vector<HostTensor> want, got;
  Plan p;
  ASSERT_TRUE(reference_nchw(m, &want, &p).is_ok());
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    SCOPED_TRACE(device);
    const Status st = build_and_run(m, device, ActivationLayout::kChannelsLast, &got, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_EQ(count(p, "SpaceToDepth", true), 1);  // 3 -> 4 channels: 2x2 blocks of 4 fill 16 bytes
    EXPECT_EQ(count(p, "Transpose", false), 1);
    EXPECT_EQ(count(p, "QLinearConv", true), 2);
    EXPECT_EQ(count(p, "MaxPool", true), 1);
    EXPECT_TRUE(same_outputs(got, want));
  }
}

// A single FP8 convolution forced channels-last (Transposes around it), on the cpu's reference
// and the portable OpenCL kernel, against the cpu's NCHW kernel: the products are the same, summed
// in another order (kernel offset first), so within float32 rounding.
TEST(ChannelsLast, Fp8ConvMatchesNchw) {
  std::mt19937 rng(56);
  const DType e4 = DType::kFloat8E4M3FN;
  auto fp8 = [&](const Shape& s) {
    HostTensor f = random_tensor(DType::kFloat32, s, rng, -2, 2), h(e4, s);
    for (int64_t i = 0; i < h.numel(); ++i) h.as<uint8_t>()[i] = float_to_float8(e4, f.as<float>()[i], true);
    return h;
  };
  Attributes a;
  a.set("kernel_shape", std::vector<int64_t>{3, 3});
  a.set("pads", std::vector<int64_t>{1, 0, 1, 2});
  a.set("strides", std::vector<int64_t>{2, 1});
  a.set("dilations", std::vector<int64_t>{1, 2});
  a.set("group", int64_t{1});
  a.set("output_dtype", static_cast<int64_t>(DType::kFloat32));
  OpSpec s{"Fp8Conv", 19, a,
           {fp8({2, 32, 9, 10}), scalar_f32(0.25f), fp8({24, 32, 3, 3}), random_tensor(DType::kFloat32, {24}, rng, 0.01, 0.05),
            scalar_f32(1.0f), random_tensor(DType::kFloat32, {24}, rng)},
           {false, true, true, true, true, true}};
  EXPECT_TRUE(channels_last_matches_nchw(s, 1e-5, 1e-5));
}

// The cpu's fast INT8 path (oneDNN) on the same network in NCHW against its reference kernels.
// On a 16-core Sapphire Rapids host (AMX, VNNI: oneDNN's native INT8 route) with 16 threads,
// output b (a 1x1 convolution of a 3x3 one) differed in most elements and from run to run
// (perf/results/2026-12-06-nhwc.md): oneDNN ran it with brgconv_1x1:avx512_core_vnni, s8 source
// and compensated weights, where 1, 2 or 4 threads ran its AMX kernel and matched
// (perf/results/2026-12-06-fp16nhwc.md). Hosts without VNNI take the float32 route.
TEST(CpuFastQuant, ConvChainWithResidualMatchesReference) {
  std::mt19937 rng(57);
  for (const Net& n : kResidualAndStrided) {
    SCOPED_TRACE(net_name(n));
    const NetModel m(n, rng);
    std::vector<HostTensor> want, got;
    Plan p;
    Status st = reference_nchw(m, &want, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    st = build_and_run(m, "cpu", ActivationLayout::kChannelsFirst, &got, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    // One quantization step where the residual's fused multiply-add rounds once less
    // (runtime/backends/cpu/dnnl_qlinear.cpp).
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(tensors_close(got[i], want[i], 0, 1)) << "output " << i;
  }
}

// The tensor-core kernel's channels-last rows (kernels/mma_gemm.cl MMA_AMODE 1): chosen by default
// (auto) where the device offers the 8-bit tensor cores.
TEST(MmaVariant, ChannelsLastRegionMatchesNchwExactly) {
  if (!opencl_offers_mma(mma::Elem::kInt8)) GTEST_SKIP() << "no 8-bit tensor cores (KILN_MMA_EMULATE=1 emulates them)";
  std::mt19937 rng(55);
  for (const Net& n : kResidualAndStrided) {
    SCOPED_TRACE(net_name(n));
    const NetModel m(n, rng);
    std::vector<HostTensor> want, got;
    Plan p;
    ASSERT_TRUE(reference_nchw(m, &want, &p).is_ok());
    const Status st = build_and_run(m, "opencl", ActivationLayout::kAuto, &got, &p);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const int mma = channels_last_on_mma(p);
    EXPECT_EQ(mma, 3);
    EXPECT_TRUE(same_outputs(got, want));
  }
}

TEST(MmaVariant, SpaceToDepthStemJoinsTheInt8Region) {
  if (!opencl_offers_mma(mma::Elem::kInt8)) GTEST_SKIP() << "no 8-bit tensor cores (KILN_MMA_EMULATE=1 emulates them)";
  std::mt19937 rng(59);
  const StemModel m(rng);
  std::vector<HostTensor> want, got;
  Plan p;
  ASSERT_TRUE(reference_nchw(m, &want, &p).is_ok());
  const Status st = build_and_run(m, "opencl", ActivationLayout::kAuto, &got, &p);
  ASSERT_TRUE(st.is_ok()) << st.message();
  const int mma = channels_last_on_mma(p);
  EXPECT_EQ(mma, 2);
  EXPECT_EQ(count(p, "MaxPool", true), 1);
  EXPECT_TRUE(same_outputs(got, want));
}

}  // namespace
}  // namespace kiln::test
