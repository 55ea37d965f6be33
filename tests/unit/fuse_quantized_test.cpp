// The fused epilogue of the integer kernels (compiler/passes/fuse_quantized.cpp): a
// QLinearConv / QLinearMatMul followed by DequantizeLinear, residual/bias Add, activation and
// QuantizeLinear runs as one kernel. Checked against a double-precision evaluation of the
// definition, against the same graph built without fusion (the standard ONNX kernels), and
// OpenCL against CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/op_harness.h"

namespace kiln {
namespace {

struct Model {
  std::vector<HostTensor> inputs;  // bound by name "in<i>"
  std::function<void(ir::Graph&, const std::vector<ir::Value*>&)> build;
};

ir::Value* constant(ir::Graph& g, const std::string& name, HostTensor t) {
  return g.add_constant(name, std::make_shared<HostTensor>(std::move(t)));
}

ir::Value* node(ir::Graph& g, const std::string& op, std::vector<ir::Value*> in, const std::string& out,
                Attributes attrs = {}) {
  ir::Node* n = g.add_node(op, op + "_" + out);
  n->inputs = std::move(in);
  n->attrs = std::move(attrs);
  ir::Value* v = g.add_value(out);
  v->producer = n;
  n->outputs = {v};
  return v;
}

// Builds and runs the model; `outputs` names the graph outputs.
Status run(const Model& m, const std::vector<std::string>& outputs, const std::string& device, bool fuse,
           std::vector<HostTensor>* out, Plan* plan_out) {
  ir::Graph g;
  g.name = "fuse_quantized_test";
  g.opsets[""] = 13;
  std::vector<ir::Value*> ins;
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    ir::Value* v = g.add_value("in" + std::to_string(i));
    v->dtype = m.inputs[i].dtype();
    v->shape = m.inputs[i].shape();
    v->has_shape = true;
    v->is_graph_input = true;
    g.inputs.push_back(v);
    ins.push_back(v);
  }
  m.build(g, ins);
  for (const std::string& name : outputs) g.outputs.push_back(g.find_value(name));
  BuildOptions opts;
  opts.device = device;
  opts.fuse = fuse;
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_plan_from_graph(g, opts, plan.get()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  for (size_t i = 0; i < m.inputs.size(); ++i)
    KILN_TRY(ctx->bind_input("in" + std::to_string(i), m.inputs[i].dtype(), m.inputs[i].shape(), m.inputs[i].data(),
                             m.inputs[i].size_bytes()));
  out->clear();
  for (int32_t t : plan->outputs) {
    out->emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
    KILN_TRY(ctx->bind_output(plan->tensors[t].name, out->back().data(), out->back().size_bytes()));
  }
  KILN_TRY(ctx->run());
  *plan_out = *plan;
  return Status::ok();
}

HostTensor scalar_f(float v) {
  HostTensor t(DType::kFloat32, {});
  t.as<float>()[0] = v;
  return t;
}
HostTensor scalar_i8(int8_t v) {
  HostTensor t(DType::kInt8, {});
  t.as<int8_t>()[0] = v;
  return t;
}
HostTensor random_i8(const Shape& s, std::mt19937& rng, int lo = -128, int hi = 127) {
  std::uniform_int_distribution<int> u(lo, hi);
  HostTensor t(DType::kInt8, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.as<int8_t>()[i] = static_cast<int8_t>(u(rng));
  return t;
}

// QLinearConv (3x3, pad 1) -> DQ -> Add(DQ(int8 residual)) -> Relu -> Q, the ResNet block end.
struct ConvBlock {
  static constexpr int64_t C = 5, M = 6, H = 7, W = 6;
  float sx = 0.02f, sy = 0.05f, sr = 0.04f, so = 0.03f;
  int8_t zx = 3, zy = -2, zr = 1, zo = -5;
  HostTensor w, ws, bias;
  Model model;

  explicit ConvBlock(std::mt19937& rng) {
    w = random_i8({M, C, 3, 3}, rng);
    ws = HostTensor(DType::kFloat32, {M});
    bias = HostTensor(DType::kInt32, {M});
    std::uniform_real_distribution<float> us(0.001f, 0.004f);
    std::uniform_int_distribution<int> ub(-3000, 3000);
    for (int64_t m = 0; m < M; ++m) {
      ws.as<float>()[m] = us(rng);
      bias.as<int32_t>()[m] = ub(rng);
    }
    model.inputs = {random_i8({1, C, H, W}, rng), random_i8({1, M, H, W}, rng)};
    model.build = [this](ir::Graph& g, const std::vector<ir::Value*>& in) {
      Attributes conv;
      conv.set("pads", std::vector<int64_t>{1, 1, 1, 1});
      conv.set("kernel_shape", std::vector<int64_t>{3, 3});
      ir::Value* xs = constant(g, "xs", scalar_f(sx));
      ir::Value* xz = constant(g, "xz", scalar_i8(zx));
      ir::Value* ys = constant(g, "ys", scalar_f(sy));
      ir::Value* yz = constant(g, "yz", scalar_i8(zy));
      ir::Value* wz = constant(g, "wz", scalar_i8(0));
      ir::Value* y = node(g, "QLinearConv", {in[0], xs, xz, constant(g, "w", w), constant(g, "ws", ws), wz, ys, yz,
                                             constant(g, "b", bias)}, "y", conv);
      ir::Value* yf = node(g, "DequantizeLinear", {y, ys, yz}, "yf");
      ir::Value* rf = node(g, "DequantizeLinear", {in[1], constant(g, "rs", scalar_f(sr)), constant(g, "rz", scalar_i8(zr))}, "rf");
      ir::Value* s = node(g, "Add", {yf, rf}, "sum");
      ir::Value* a = node(g, "Relu", {s}, "act");
      node(g, "QuantizeLinear", {a, constant(g, "os", scalar_f(so)), constant(g, "oz", scalar_i8(zo))}, "out");
    };
  }

  // The fused result by definition, in double: q = clamp(round(relu(acc * sx * ws + res) / so) + zo).
  std::vector<double> reference_real() const {
    const HostTensor& x = model.inputs[0];
    const HostTensor& r = model.inputs[1];
    std::vector<double> out(static_cast<size_t>(M * H * W));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          int64_t acc = bias.as<int32_t>()[m];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ki = 0; ki < 3; ++ki)
              for (int64_t kj = 0; kj < 3; ++kj) {
                const int64_t ii = i + ki - 1, jj = j + kj - 1;
                if (ii < 0 || ii >= H || jj < 0 || jj >= W) continue;
                acc += (x.as<int8_t>()[(c * H + ii) * W + jj] - zx) *
                       static_cast<int64_t>(w.as<int8_t>()[((m * C + c) * 3 + ki) * 3 + kj]);
              }
          const int64_t o = (m * H + i) * W + j;
          const double v = acc * static_cast<double>(sx) * ws.as<float>()[m] + (r.as<int8_t>()[o] - zr) * static_cast<double>(sr);
          out[static_cast<size_t>(o)] = v > 0 ? v : 0;
        }
    return out;
  }
};

int node_count(const Plan& p, const std::string& op) {
  int n = 0;
  for (const PlanNode& node : p.nodes) n += node.op == op;
  return n;
}

TEST(FuseQuantized, ConvResidualReluRequantizesInOneKernel) {
  std::mt19937 rng(11);
  ConvBlock b(rng);
  const std::vector<double> real = b.reference_real();
  std::vector<HostTensor> fused_cpu;
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !test::have_opencl()) continue;
    SCOPED_TRACE(device);
    std::vector<HostTensor> fused, plain;
    Plan pf, pp;
    ASSERT_TRUE(run(b.model, {"out"}, device, true, &fused, &pf).is_ok());
    ASSERT_TRUE(run(b.model, {"out"}, device, false, &plain, &pp).is_ok());
    // One integer kernel reads the int8 residual itself; nothing else is left.
    ASSERT_EQ(pf.nodes.size(), 1u);
    EXPECT_EQ(pf.nodes[0].op, "QLinearConv");
    EXPECT_EQ(pf.nodes[0].attrs.get_string("activation", ""), "Relu");
    EXPECT_GT(pp.nodes.size(), 4u);
    ASSERT_EQ(fused[0].dtype(), DType::kInt8);
    int exact = 0;
    for (int64_t i = 0; i < fused[0].numel(); ++i) {
      const double want = std::fmin(std::fmax(std::nearbyint(real[i] / b.so) + b.zo, -128), 127);
      const int got = fused[0].as<int8_t>()[i];
      ASSERT_LE(std::fabs(got - want), 1.0) << "element " << i;  // float32 vs double at rounding ties
      exact += got == want;
      // The unfused graph requantizes to sy first: at most one step of sy apart, in so units.
      const int unfused = plain[0].as<int8_t>()[i];
      ASSERT_LE(std::abs(got - unfused), 1 + static_cast<int>(std::ceil(b.sy / b.so / 2))) << "element " << i;
    }
    EXPECT_GT(exact, fused[0].numel() * 95 / 100);
    if (fused_cpu.empty()) fused_cpu = fused;
    else EXPECT_TRUE(test::tensors_close(fused[0], fused_cpu[0], 0, 0));  // OpenCL == CPU, bit for bit
  }
}

TEST(FuseQuantized, FloatConsumersGetOneDequantizeOrAFloatKernel) {
  std::mt19937 rng(12);
  ConvBlock b(rng);
  const std::vector<double> real = b.reference_real();
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !test::have_opencl()) continue;
    SCOPED_TRACE(device);
    // Both the int8 result and the FP32 activation are outputs: one DequantizeLinear of the
    // kernel's int8 result serves the FP32 reader.
    std::vector<HostTensor> out;
    Plan p;
    ASSERT_TRUE(run(b.model, {"out", "act"}, device, true, &out, &p).is_ok());
    EXPECT_EQ(node_count(p, "QLinearConv"), 1);
    EXPECT_EQ(node_count(p, "DequantizeLinear"), 1);
    EXPECT_EQ(p.nodes.size(), 2u);
    for (int64_t i = 0; i < out[1].numel(); ++i)
      ASSERT_NEAR(out[1].as<float>()[i], (out[0].as<int8_t>()[i] - b.zo) * b.so, 1e-6);
    // Only the FP32 activation is read: the kernel writes float32 itself, no requantization.
    ASSERT_TRUE(run(b.model, {"act"}, device, true, &out, &p).is_ok());
    ASSERT_EQ(p.nodes.size(), 1u);
    ASSERT_EQ(out[0].dtype(), DType::kFloat32);
    for (int64_t i = 0; i < out[0].numel(); ++i) ASSERT_NEAR(out[0].as<float>()[i], real[i], 1e-4 + 1e-5 * real[i]);
  }
}

TEST(FuseQuantized, MatMulBiasFoldsIntoInt32ColumnBias) {
  // QLinearMatMul -> DQ -> Add(bias [N]) -> Relu -> Q, a quantized linear layer.
  std::mt19937 rng(13);
  const int64_t M = 3, K = 20, N = 9;
  const HostTensor a = random_i8({M, K}, rng), w = random_i8({K, N}, rng);
  HostTensor bias(DType::kFloat32, {N}), ws(DType::kFloat32, {N});
  std::uniform_real_distribution<float> ub(-2, 2), us(0.002f, 0.01f);
  for (int64_t n = 0; n < N; ++n) bias.as<float>()[n] = ub(rng), ws.as<float>()[n] = us(rng);
  const float sa = 0.03f, sy = 0.2f, so = 0.05f;
  Model m;
  m.inputs = {a};
  m.build = [&](ir::Graph& g, const std::vector<ir::Value*>& in) {
    ir::Value* z = constant(g, "z", scalar_i8(0));
    ir::Value* ys = constant(g, "ys", scalar_f(sy));
    ir::Value* y = node(g, "QLinearMatMul", {in[0], constant(g, "as", scalar_f(sa)), z, constant(g, "w", w),
                                             constant(g, "ws", ws), z, ys, z}, "y");
    ir::Value* yf = node(g, "DequantizeLinear", {y, ys, z}, "yf");
    ir::Value* s = node(g, "Add", {yf, constant(g, "bias", bias)}, "biased");
    ir::Value* r = node(g, "Relu", {s}, "act");
    node(g, "QuantizeLinear", {r, constant(g, "os", scalar_f(so)), z}, "out");
  };
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !test::have_opencl()) continue;
    SCOPED_TRACE(device);
    std::vector<HostTensor> out;
    Plan p;
    ASSERT_TRUE(run(m, {"out"}, device, true, &out, &p).is_ok());
    ASSERT_EQ(p.nodes.size(), 1u);
    EXPECT_EQ(p.nodes[0].attrs.get_int("bias_columns", 0), 1);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k) acc += a.as<int8_t>()[i * K + k] * static_cast<int64_t>(w.as<int8_t>()[k * N + n]);
        const double s_acc = static_cast<double>(sa) * ws.as<float>()[n];
        // The bias is rounded to the accumulator's scale: at most half a step of s_acc off.
        const double v = std::fmax(0.0, acc * s_acc + bias.as<float>()[n]);
        const double want = std::fmin(std::nearbyint(v / so), 127);
        ASSERT_LE(std::fabs(out[0].as<int8_t>()[i * N + n] - want), 1.0) << i << "," << n;
      }
  }
}

// The fused output stage's requantization (kernels/rint_div.cl's kiln_div: r / y_scale without a
// division) at rounding ties and one float step either side of them: QLinearMatMul -> DQ -> Relu ->
// Q, row a's accumulator a; column 0's a / so lands on k + 0.5 wherever a is odd and so is 2 or 6,
// columns 1 and 2 scale it by the floats just below and above 1 (so 6: a = 57 gives 9.499999,
// which a * (1 / 6) would make 9.5). OpenCL bit for bit the CPU's correctly rounded quotient,
// rounded to even.
TEST(FuseQuantized, RequantizationTiesMatchTheDivision) {
  if (!test::have_opencl()) GTEST_SKIP() << "no OpenCL device";
  const int64_t M = 128, K = 32, N = 3;
  HostTensor a(DType::kInt8, {M, K}), w(DType::kInt8, {K, N}), ws(DType::kFloat32, {N});
  for (int64_t i = 0; i < M * K; ++i) a.as<int8_t>()[i] = static_cast<int8_t>(i % K == 0 ? i / K : 0);
  for (int64_t i = 0; i < K * N; ++i) w.as<int8_t>()[i] = 1;
  ws.as<float>()[0] = 1.0f;
  ws.as<float>()[1] = std::nextafter(1.0f, 0.0f);
  ws.as<float>()[2] = std::nextafter(1.0f, 2.0f);
  for (float so : {2.0f, 6.0f, 0.4f, 0.3f, 1.0f / 3.0f}) {
    SCOPED_TRACE("output scale " + std::to_string(so));
    Model m;
    m.inputs = {a};
    m.build = [&](ir::Graph& g, const std::vector<ir::Value*>& in) {
      ir::Value* z = constant(g, "z", scalar_i8(0));
      ir::Value* ys = constant(g, "ys", scalar_f(1.0f));
      ir::Value* y = node(g, "QLinearMatMul", {in[0], constant(g, "as", scalar_f(1.0f)), z, constant(g, "w", w),
                                               constant(g, "ws", ws), constant(g, "wz", HostTensor(DType::kInt8, {N})),
                                               ys, z}, "y");
      ir::Value* r = node(g, "Relu", {node(g, "DequantizeLinear", {y, ys, z}, "yf")}, "act");
      node(g, "QuantizeLinear", {r, constant(g, "os", scalar_f(so)), z}, "out");
    };
    std::vector<HostTensor> cpu, cl;
    Plan pc, pl;
    ASSERT_TRUE(run(m, {"out"}, "cpu", true, &cpu, &pc).is_ok());
    ASSERT_TRUE(run(m, {"out"}, "opencl", true, &cl, &pl).is_ok());
    ASSERT_EQ(pl.nodes.size(), 1u);
    EXPECT_EQ(pl.nodes[0].attrs.get_string("activation", ""), "Relu");
    EXPECT_EQ(pl.nodes[0].backend, Backend::kOpenCL);
    EXPECT_TRUE(test::tensors_close(cl[0], cpu[0], 0, 0));
    // The CPU's own result is the definition's: rint((a * ws[n]) / so), saturated.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t n = 0; n < N; ++n) {
        const float q = static_cast<float>(i) * (1.0f * ws.as<float>()[n]) / so;
        ASSERT_EQ(cpu[0].as<int8_t>()[i * N + n], static_cast<int8_t>(std::fmin(std::nearbyint(q), 127.0f))) << i << "," << n;
      }
  }
}

}  // namespace
}  // namespace kiln
