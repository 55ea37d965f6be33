// The fused Attention op (runtime/backends/attention_geometry.h) and the pass that makes it
// (compiler/passes/fuse_attention.cpp). Each case builds an attention graph the way exporters
// write it (Transpose/MatMul/Mul|Div/Add/Softmax/MatMul), checks that the plan holds one
// Attention node in place of the pattern, and compares three runs: the OpenCL kernel against
// the CPU kernel (the reference), and the CPU kernel against the unfused graph on the CPU (the
// separate MatMul/Softmax/elementwise kernels: the pass must preserve what the graph computes).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/backends/attention_geometry.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

enum class Mask { kNone, kPerBatch, kPerHead, kFull, kCausal, kComputed, kRowMasked };
enum class Scale { kDivScores, kMulScores, kMulQ, kBoth };

struct Case {
  int rank = 4;  // 2, 3 or 4
  int64_t b = 1, h = 1, sq = 1, sk = 1, d = 16, dv = 16;
  Mask mask = Mask::kNone;
  Scale scale = Scale::kDivScores;
  bool k_transposed = false;  // the model holds K^T (no Transpose node)
  // K passes a Tanh first (computed in the plan: float16 in an FP16 plan). From a float32 graph
  // input the FP16 pass casts K before its Transpose (the Transpose only feeds float16), so in
  // both forms the Transpose reads float16 and fuses into the Attention node (K read [key][d]).
  bool k_computed = false;
  // kComputed: torch's (1 - mask) * finfo(float32).min instead of -10000, batch 0 fully padded.
  bool padded_lowest = false;
  // Rank 4: Q, K and V arrive as [B, S, H, D] and pass the head split's Transpose (0, 2, 1, 3)
  // (K^T: (0, 2, 3, 1)), Y is transposed back, as exporters write it: the fusion absorbs them.
  bool heads_split = false;
  std::string precision = "fp32";
  uint32_t seed = 1;
  // Y also passes a QuantizeLinear (one scale and zero point) into a second output, Yq.
  DType y_quantized = DType::kUndefined;
  float y_scale = 0.01f;
  int y_zero_point = 0;

  std::string str() const {
    std::ostringstream s;
    s << "rank " << rank << " B" << b << " H" << h << " Sq" << sq << " Sk" << sk << " D" << d << " Dv" << dv << " mask "
      << static_cast<int>(mask) << " scale " << static_cast<int>(scale) << (k_transposed ? " K^T" : "")
      << (k_computed ? " tanh(K)" : "") << (heads_split ? " BSHD" : "") << " " << precision;
    return s.str();
  }
  Shape dims(int64_t rows, int64_t cols) const {
    Shape s;
    if (rank == 4) s = {b, h};
    if (rank == 3) s = {b * h};
    s.push_back(rows);
    s.push_back(cols);
    return s;
  }
};

struct Graph {
  std::map<std::string, HostTensor> inputs, weights;
};

// Inputs and weights of a case, with its masks.
Graph make_data(const Case& c) {
  std::mt19937 rng(c.seed);
  Graph m;
  if (c.heads_split) {
    m.inputs["Q"] = random_tensor(DType::kFloat32, {c.b, c.sq, c.h, c.d}, rng, -1.5, 1.5);
    m.inputs["K"] = random_tensor(DType::kFloat32, {c.b, c.sk, c.h, c.d}, rng, -1.5, 1.5);
    m.inputs["V"] = random_tensor(DType::kFloat32, {c.b, c.sk, c.h, c.dv}, rng);
  } else {
    m.inputs["Q"] = random_tensor(DType::kFloat32, c.dims(c.sq, c.d), rng, -1.5, 1.5);
    m.inputs["K"] = c.k_transposed ? random_tensor(DType::kFloat32, c.dims(c.d, c.sk), rng, -1.5, 1.5)
                                   : random_tensor(DType::kFloat32, c.dims(c.sk, c.d), rng, -1.5, 1.5);
    m.inputs["V"] = random_tensor(DType::kFloat32, c.dims(c.sk, c.dv), rng);
  }
  const float inf = std::numeric_limits<float>::infinity();
  switch (c.mask) {
    case Mask::kNone: break;
    case Mask::kPerBatch: {
      Shape s = c.rank == 4 ? Shape{c.b, 1, 1, c.sk} : c.rank == 3 ? Shape{c.b * c.h, 1, c.sk} : Shape{1, c.sk};
      m.inputs["M"] = random_tensor(DType::kFloat32, s, rng, -4, 0);
      break;
    }
    case Mask::kPerHead: {
      Shape s = c.rank == 4 ? Shape{1, c.h, c.sq, c.sk} : Shape{c.sq, c.sk};
      m.inputs["M"] = random_tensor(DType::kFloat32, s, rng, -4, 0);
      break;
    }
    case Mask::kFull: m.inputs["M"] = random_tensor(DType::kFloat32, c.dims(c.sq, c.sk), rng, -4, 0); break;
    case Mask::kCausal: {
      // Constant, -inf above the diagonal (aligned to the last key, so every row keeps one).
      HostTensor t(DType::kFloat32, {c.sq, c.sk});
      for (int64_t i = 0; i < c.sq; ++i)
        for (int64_t j = 0; j < c.sk; ++j) t.as<float>()[i * c.sk + j] = j > i + (c.sk - c.sq) ? -inf : 0.f;
      m.weights["M"] = t;
      break;
    }
    case Mask::kComputed: {
      // BERT's extended mask, (1 - mask) * -10000 over [B, 1, 1, Sk], computed in the graph.
      HostTensor t(DType::kFloat32, {c.b, c.sk});
      for (int64_t i = 0; i < t.numel(); ++i) t.as<float>()[i] = (i % c.sk) < std::max<int64_t>(1, c.sk - i % 3) ? 1.f : 0.f;
      if (c.padded_lowest) std::fill(t.as<float>(), t.as<float>() + c.sk, 0.f);
      m.inputs["M01"] = t;
      m.weights["one"] = scalar_f32(1.f);
      m.weights["neg"] = scalar_f32(c.padded_lowest ? std::numeric_limits<float>::lowest() : -10000.f);
      HostTensor axes(DType::kInt64, {2});
      axes.as<int64_t>()[0] = 1;
      axes.as<int64_t>()[1] = 2;
      m.weights["axes"] = axes;
      break;
    }
    case Mask::kRowMasked: {
      // Every row of query 0 masked with -inf: Softmax gives NaN there (as ONNX Runtime does).
      HostTensor t = random_tensor(DType::kFloat32, c.dims(c.sq, c.sk), rng, -4, 0);
      const int64_t rows = t.numel() / c.sk;
      for (int64_t r = 0; r < rows; r += c.sq)
        for (int64_t j = 0; j < c.sk; ++j) t.as<float>()[r * c.sk + j] = -inf;
      m.inputs["M"] = t;
      break;
    }
  }
  const float s = 1.f / std::sqrt(static_cast<float>(c.d));
  m.weights["scale"] = scalar_f32(c.scale == Scale::kDivScores ? std::sqrt(static_cast<float>(c.d)) : s);
  m.weights["sqrt_scale"] = scalar_f32(std::sqrt(s));
  if (c.y_quantized != DType::kUndefined) {
    m.weights["yscale"] = scalar_f32(c.y_scale);
    HostTensor zp(c.y_quantized, {});
    zp.as<uint8_t>()[0] = static_cast<uint8_t>(c.y_zero_point);
    m.weights["yzp"] = zp;
  }
  return m;
}

void build_graph(const Case& c, const Graph& m, ir::Graph* g, bool scores_output = false) {
  g->name = "attention_test";
  g->opsets[""] = float8_is_supported(c.y_quantized) ? 19 : 17;  // FP8 QuantizeLinear: opset 19
  auto value = [&](const std::string& name) { return named_value(g, m.inputs, m.weights, name); };
  auto node = [&](const std::string& op, std::vector<std::string> ins, const std::string& out, Attributes a = {}) {
    ir::Node* n = g->add_node(op, out + "_node");
    for (const std::string& i : ins) n->inputs.push_back(value(i));
    ir::Value* o = value(out);
    o->producer = n;
    n->outputs.push_back(o);
    n->attrs = std::move(a);
    return out;
  };
  auto transpose = [&](const std::string& x, std::vector<int64_t> perm, const std::string& out) {
    Attributes a;
    a.set("perm", perm);
    return node("Transpose", {x}, out, a);
  };
  std::string q = "Q", kt = c.k_computed ? node("Tanh", {"K"}, "Ktanh") : "K", v = "V";
  if (c.heads_split) {
    q = transpose(q, {0, 2, 1, 3}, "Qh");
    kt = transpose(kt, c.k_transposed ? std::vector<int64_t>{0, 2, 3, 1} : std::vector<int64_t>{0, 2, 1, 3}, "Kh");
    v = transpose(v, {0, 2, 1, 3}, "Vh");
  }
  if (!c.k_transposed) {
    std::vector<int64_t> perm(c.rank);
    for (int i = 0; i < c.rank; ++i) perm[i] = i;
    std::swap(perm[c.rank - 1], perm[c.rank - 2]);
    Attributes a;
    a.set("perm", perm);
    kt = node("Transpose", {kt}, "KT", a);
  }
  if (c.scale == Scale::kMulQ) q = node("Mul", {q, "scale"}, "Qs");
  if (c.scale == Scale::kBoth) {
    q = node("Mul", {q, "sqrt_scale"}, "Qs");
    kt = node("Mul", {kt, "sqrt_scale"}, "KTs");
  }
  std::string s = node("MatMul", {q, kt}, "S");
  if (c.scale == Scale::kDivScores) s = node("Div", {s, "scale"}, "Ss");
  if (c.scale == Scale::kMulScores) s = node("Mul", {"scale", s}, "Ss");
  if (c.mask == Mask::kComputed) {
    node("Sub", {"one", "M01"}, "Minv");
    node("Mul", {"Minv", "neg"}, "Mneg");
    node("Unsqueeze", {"Mneg", "axes"}, "M");
  }
  if (c.mask != Mask::kNone) s = node("Add", {"M", s}, "Sm");
  Attributes sm;
  sm.set("axis", int64_t{-1});
  node("Softmax", {s}, "P", sm);
  if (c.heads_split)
    transpose(node("MatMul", {"P", v}, "Yh"), {0, 2, 1, 3}, "Y");
  else
    node("MatMul", {"P", v}, "Y");
  g->outputs.push_back(g->find_value("Y"));
  if (scores_output) g->outputs.push_back(g->find_value(s));
  if (c.y_quantized != DType::kUndefined) g->outputs.push_back(g->find_value(node("QuantizeLinear", {"Y", "yscale", "yzp"}, "Yq")));
}

struct CaseRun {
  std::vector<HostTensor> outputs;
  std::shared_ptr<Plan> plan;
};

Status run_case(const Case& c, const std::string& device, bool fuse, CaseRun* r, bool scores_output = false,
                const std::string& precision = "") {
  const Graph m = make_data(c);
  ir::Graph g;
  build_graph(c, m, &g, scores_output);
  BuildOptions opts;
  opts.device = device;
  opts.fuse = fuse;
  opts.precision = precision.empty() ? c.precision : precision;
  r->plan = std::make_shared<Plan>();
  KILN_TRY(build_plan_from_graph(g, opts, r->plan.get()));
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(r->plan, device, &ctx, &notice));
  for (int32_t t : r->plan->inputs) {
    const HostTensor& src = m.inputs.at(r->plan->tensors[t].name);
    KILN_TRY(ctx->bind_input(r->plan->tensors[t].name, src.dtype(), src.shape(), src.data(), src.size_bytes()));
  }
  r->outputs.clear();
  r->outputs.reserve(r->plan->outputs.size());
  for (int32_t t : r->plan->outputs) {
    const PlanTensor& pt = r->plan->tensors[t];
    r->outputs.emplace_back(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, r->outputs.back().data(), r->outputs.back().size_bytes()));
  }
  return ctx->run();
}

const PlanNode* attention_node(const Plan& p) {
  const PlanNode* found = nullptr;
  for (const PlanNode& n : p.nodes) {
    if (n.op == "Attention") {
      if (found) return nullptr;
      found = &n;
    }
  }
  return found;
}

// What the plan must hold after fusion: one Attention node and none of the ops it replaced (in
// FP16 plans too: K's Transpose of a float32 graph input moves float16, after the Cast).
::testing::AssertionResult fused_once(const Plan& p) {
  if (!attention_node(p)) return ::testing::AssertionFailure() << "no single Attention node";
  for (const PlanNode& n : p.nodes)
    if (n.op == "MatMul" || n.op == "Softmax" || n.op == "Transpose")
      return ::testing::AssertionFailure() << "node " << n.name << " (" << n.op << ") was left unfused";
  return ::testing::AssertionSuccess();
}

// The three-way comparison of the file's top comment; `backend` is where the Attention node
// must run in the OpenCL plan.
void check_case(const Case& c, Backend backend = Backend::kOpenCL) {
  SCOPED_TRACE(c.str());
  const bool fp16 = c.precision == "fp16";
  CaseRun ref, cpu, cl;
  ASSERT_TRUE(run_case(c, "cpu", false, &ref, false, "fp32").is_ok());
  Status st = run_case(c, "cpu", true, &cpu);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_TRUE(fused_once(*cpu.plan));
  EXPECT_TRUE(tensors_close(cpu.outputs[0], ref.outputs[0], fp16 ? 2e-2 : 2e-5, fp16 ? 1e-2 : 2e-6));
  if (!have_opencl()) return;
  st = run_case(c, "opencl", true, &cl);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_TRUE(fused_once(*cl.plan));
  const PlanNode* at = attention_node(*cl.plan);
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(at->backend, backend);
  EXPECT_TRUE(tensors_close(cl.outputs[0], cpu.outputs[0], fp16 ? 2e-3 : 1e-4, fp16 ? 2e-3 : 1e-5));
}

// Mask::kRowMasked masks the first query row of every head entirely: NaN there, nowhere else.
void expect_nan_on_masked_rows(const HostTensor& y, const Case& c) {
  for (int64_t r = 0; r < y.numel() / c.dv; ++r)
    EXPECT_EQ(std::isnan(y.as<float>()[r * c.dv]), r % c.sq == 0) << "row " << r;
}

TEST(AttentionOps, BertPattern) {
  Case c;
  c.b = 2, c.h = 3, c.sq = c.sk = 7, c.d = c.dv = 16, c.mask = Mask::kComputed, c.scale = Scale::kDivScores;
  check_case(c);
}

TEST(AttentionOps, MultiheadAttentionPattern) {
  // nn.MultiheadAttention: [B*H, S, D], Q scaled before the MatMul, a per-batch mask.
  Case c;
  c.rank = 3, c.b = 2, c.h = 2, c.sq = c.sk = 9, c.d = c.dv = 32, c.mask = Mask::kPerBatch, c.scale = Scale::kMulQ;
  check_case(c);
}

TEST(AttentionOps, SdpaPatternWithCausalMask) {
  // torch's scaled_dot_product_attention export: sqrt(scale) on Q and on K^T; the constant
  // causal mask Add follows the MatMul directly, so it arrives as the MatMul's fused bias.
  Case c;
  c.b = 1, c.h = 2, c.sq = c.sk = 33, c.d = c.dv = 64, c.mask = Mask::kCausal, c.scale = Scale::kBoth;
  check_case(c);
  c.scale = Scale::kMulQ;
  check_case(c);
}

TEST(AttentionOps, FullMaskAsResidual) {
  // A runtime mask of the scores' shape right after the MatMul becomes its residual input.
  Case c;
  c.b = 2, c.h = 2, c.sq = 5, c.sk = 11, c.d = 24, c.dv = 40, c.mask = Mask::kFull, c.scale = Scale::kMulQ;
  check_case(c);
}

TEST(AttentionOps, Float16FullMaskAfterScaledScores) {
  // FP16: the float32 mask's Cast to half has the scores' shape, so fuse_elementwise fuses it
  // with the scale and the mask Add into one program; the fusion still finds the pattern and
  // gives the node a float16 mask of its own.
  Case c;
  c.b = 2, c.h = 2, c.sq = 5, c.sk = 11, c.d = 24, c.dv = 40, c.mask = Mask::kFull, c.precision = "fp16";
  for (Scale s : {Scale::kDivScores, Scale::kMulScores}) {
    c.scale = s;
    check_case(c);
  }
}

TEST(AttentionOps, HeadSplitTransposesAreAbsorbed) {
  // BERT's head split: Q, K, V transposed from [B, S, H, D], K^T by (0, 2, 1, 3) then the last
  // two dims or at once by (0, 2, 3, 1), the output transposed back; every Transpose becomes
  // strides of the Attention node (bshd), in FP32 and FP16 (whose Casts of the float32 graph
  // inputs go before the Transposes).
  Case c;
  c.b = 2, c.h = 3, c.sq = 7, c.sk = 9, c.d = c.dv = 16, c.mask = Mask::kComputed, c.scale = Scale::kDivScores;
  c.heads_split = true;
  for (bool kt : {false, true})
    for (const char* precision : {"fp32", "fp16"}) {
      c.k_transposed = kt, c.precision = precision, c.k_computed = c.precision == "fp16";
      check_case(c);
      CaseRun cpu;
      ASSERT_TRUE(run_case(c, "cpu", true, &cpu).is_ok());
      const PlanNode* at = attention_node(*cpu.plan);
      ASSERT_NE(at, nullptr);
      EXPECT_EQ(at->attrs.get_int(attngeo::kAttrBshd, 0), attngeo::kBshdAll) << c.str();
    }
}

TEST(AttentionOps, KeyAlreadyTransposed) {
  // MiniLM's export: K^T comes from a Transpose(0, 2, 3, 1) of the head split, read as is.
  Case c;
  c.b = 2, c.h = 2, c.sq = c.sk = 24, c.d = c.dv = 32, c.k_transposed = true, c.mask = Mask::kPerBatch;
  c.scale = Scale::kMulScores;
  check_case(c);
}

TEST(AttentionOps, FullyMaskedRowsGiveNaN) {
  // ONNX Runtime's Softmax of an all -inf row is NaN (checked in tests/attention); the fused
  // kernels give NaN on exactly those rows, the others are unaffected.
  Case c;
  c.b = 2, c.h = 2, c.sq = 6, c.sk = 45, c.d = c.dv = 16, c.mask = Mask::kRowMasked, c.scale = Scale::kDivScores;
  check_case(c);
  CaseRun cpu;
  ASSERT_TRUE(run_case(c, "cpu", true, &cpu).is_ok());
  expect_nan_on_masked_rows(cpu.outputs[0], c);
}

TEST(AttentionOps, RandomShapes) {
  std::mt19937 rng(2024);
  const int64_t dims[] = {16, 20, 32, 48, 64, 80, 128};
  const int64_t seqs[] = {1, 2, 7, 13, 31, 32, 33, 64, 65, 130};
  auto pick = [&](auto& arr) { return arr[std::uniform_int_distribution<size_t>(0, std::size(arr) - 1)(rng)]; };
  for (int i = 0; i < 24; ++i) {
    Case c;
    c.seed = 100 + i;
    c.rank = 2 + i % 3;
    c.b = c.rank == 4 ? 1 + i % 2 : 1;
    c.h = c.rank >= 3 ? 1 + (i / 3) % 3 : 1;
    c.sq = pick(seqs);
    c.sk = i % 4 == 0 ? c.sq : pick(seqs);
    c.d = pick(dims);
    c.dv = i % 5 == 0 ? pick(dims) : c.d;
    const Mask masks[] = {Mask::kNone, Mask::kPerBatch, Mask::kPerHead, Mask::kFull, Mask::kCausal};
    c.mask = masks[i % 5];
    if (c.mask == Mask::kCausal && c.sq > c.sk) c.mask = Mask::kFull;
    c.scale = static_cast<Scale>(i % 4);
    c.k_transposed = i % 7 == 3;
    c.precision = i % 6 == 5 ? "fp16" : "fp32";
    check_case(c);
  }
}

// The cpu device's fast Attention kernel (runtime/backends/cpu/fast_attention.cpp: blocked SGEMMs
// and a threaded loop over heads) against the reference kernel on the same fused plans: ranks,
// masks (fully masked rows give NaN in both), K given transposed, keyless and single-key rows.
TEST(AttentionOps, CpuFastKernelMatchesReference) {
  std::mt19937 rng(77);
  const int64_t seqs[] = {1, 3, 16, 33, 64, 130};
  auto pick = [&](auto& arr) { return arr[std::uniform_int_distribution<size_t>(0, std::size(arr) - 1)(rng)]; };
  for (int i = 0; i < 12; ++i) {
    Case c;
    c.seed = 500 + i;
    c.rank = 2 + i % 3;
    c.b = c.rank == 4 ? 2 : 1;
    c.h = c.rank >= 3 ? 1 + i % 3 : 1;
    c.sq = pick(seqs);
    c.sk = pick(seqs);
    c.d = 16 + 16 * (i % 3);
    c.dv = i % 4 == 0 ? 24 : c.d;
    const Mask masks[] = {Mask::kNone, Mask::kPerBatch, Mask::kPerHead, Mask::kFull, Mask::kRowMasked};
    c.mask = masks[i % 5];
    c.scale = static_cast<Scale>(i % 4);
    c.k_transposed = i % 3 == 1;
    SCOPED_TRACE(c.str());
    CaseRun r;
    ASSERT_TRUE(run_case(c, "cpu", true, &r).is_ok());
    ASSERT_NE(attention_node(*r.plan), nullptr);
    const Graph m = make_data(c);
    std::vector<HostTensor> inputs;
    for (int32_t t : r.plan->inputs) inputs.push_back(m.inputs.at(r.plan->tensors[t].name));
    EXPECT_TRUE(cpu_fast_matches_reference(r.plan, inputs, 1e-4, 1e-5, 1));
  }
}

TEST(AttentionOps, Float16) {
  Case c;
  c.b = 2, c.h = 4, c.sq = c.sk = 65, c.d = c.dv = 64, c.mask = Mask::kComputed, c.precision = "fp16";
  check_case(c);
  c.k_transposed = true, c.mask = Mask::kCausal, c.scale = Scale::kBoth, c.sq = c.sk = 17, c.d = c.dv = 128;
  check_case(c);
}

// The tensor-core variant (kernels/attention_mma.cl) of FP16 nodes: chosen where the device
// has tensor cores (or KILN_MMA_EMULATE=1: ctest mma_variant_emulated), against the CPU kernel
// on head dims 16..128, K read [key][d] and transposed, query and key counts off the 64-row
// and 64-key blocks, every mask kind, a fully masked query row (NaN) and a padded sequence.
TEST(MmaVariant, AttentionFp16MatchesCpu) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::vector<Case> cases;
  const int64_t dims[] = {16, 32, 64, 128};
  const Mask masks[] = {Mask::kNone, Mask::kPerBatch, Mask::kPerHead, Mask::kFull, Mask::kCausal, Mask::kComputed};
  const int64_t seqs[][2] = {{1, 1}, {7, 70}, {64, 64}, {65, 129}, {130, 33}, {17, 200}};
  for (int i = 0; i < 12; ++i) {
    Case c;
    c.seed = 900 + i;
    c.rank = 2 + i % 3;
    c.b = c.rank == 4 ? 2 : 1;
    c.h = c.rank >= 3 ? 1 + i % 2 : 1;
    c.sq = seqs[i % 6][0], c.sk = seqs[i % 6][1];
    c.d = c.dv = dims[i % 4];
    c.mask = masks[i % 6];
    if (c.mask == Mask::kCausal && c.sq > c.sk) c.mask = Mask::kFull;
    if (c.mask == Mask::kComputed && c.rank != 4) c.mask = Mask::kPerHead;
    c.scale = static_cast<Scale>(i % 4);
    c.k_transposed = i % 3 == 2;
    c.k_computed = i % 3 == 1;
    c.precision = "fp16";
    cases.push_back(c);
  }
  // K and Y in the head-split layout [B, S, H, D] (bshd): rows of H * D elements.
  Case split;
  split.b = 2, split.h = 3, split.sq = 40, split.sk = 72, split.d = split.dv = 64, split.mask = Mask::kComputed;
  split.heads_split = split.k_computed = true, split.precision = "fp16";
  cases.push_back(split);
  Case masked;
  masked.b = 2, masked.h = 2, masked.sq = 6, masked.sk = 45, masked.d = masked.dv = 32, masked.mask = Mask::kRowMasked;
  masked.scale = Scale::kMulQ;
  masked.precision = "fp16";
  cases.push_back(masked);
  Case padded;
  padded.b = 2, padded.h = 2, padded.sq = padded.sk = 9, padded.d = padded.dv = 16, padded.mask = Mask::kComputed;
  padded.padded_lowest = true, padded.precision = "fp16";
  cases.push_back(padded);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.str());
    CaseRun cpu, cl;
    Status st = run_case(c, "cpu", true, &cpu);
    ASSERT_TRUE(st.is_ok()) << st.message();
    st = run_case(c, "opencl", true, &cl);
    ASSERT_TRUE(st.is_ok()) << st.message();
    const PlanNode* at = attention_node(*cl.plan);
    std::string ops;
    for (const PlanNode& n : cl.plan->nodes) ops += n.op + " ";
    ASSERT_NE(at, nullptr) << ops;
    ResolvedDevice dev;
    ASSERT_TRUE(resolve_device("opencl", &dev).is_ok());
    if (!mma::available(dev.caps, mma::Elem::kF16)) {
      EXPECT_TRUE(at->choice.empty()) << at->choice.str();
      continue;
    }
    EXPECT_EQ(at->choice.variant, mma::kVariant);
    EXPECT_EQ(at->attrs.get_int(attngeo::kAttrKTransposed, 0), c.k_transposed ? 1 : 0);
    // Probabilities enter the P V product rounded to half: within FP16 storage's tolerance.
    EXPECT_TRUE(tensors_close(cl.outputs[0], cpu.outputs[0], 4e-3, 4e-3));
    if (c.mask == Mask::kRowMasked) expect_nan_on_masked_rows(cl.outputs[0], c);
  }
}

// A fully padded sequence in FP16: the mask row is all float32's lowest, computed in float32
// (the constant overflows half) and saturated to -65504 by the boundary Cast; the fused node
// rounds scores to half as the separate Add would (half_scores), so the row averages V as in
// float32 (and onnxruntime: tests/attention), instead of NaN (-inf) or ignoring the mask.
TEST(AttentionOps, Float16FullyPaddedSequenceAveragesValues) {
  Case c;
  c.b = 2, c.h = 2, c.sq = c.sk = 9, c.d = c.dv = 16, c.mask = Mask::kComputed, c.padded_lowest = true;
  c.precision = "fp16";
  check_case(c);
  for (const std::string dev : {"cpu", "opencl"}) {
    if (dev == "opencl" && !have_opencl()) continue;
    CaseRun r;
    ASSERT_TRUE(run_case(c, dev, true, &r).is_ok());
    const PlanNode* at = attention_node(*r.plan);
    ASSERT_NE(at, nullptr);
    EXPECT_EQ(at->attrs.get_int(attngeo::kAttrHalfScores, 0), 1) << dev;
    // Batch 0: every query row is the mean of V's rows (rounded to half).
    const Graph m = make_data(c);
    const HostTensor& v = m.inputs.at("V");
    for (int64_t h = 0; h < c.h; ++h)
      for (int64_t col = 0; col < c.dv; ++col) {
        double mean = 0;
        for (int64_t j = 0; j < c.sk; ++j) mean += half_to_float(float_to_half(v.as<float>()[(h * c.sk + j) * c.dv + col]));
        mean /= static_cast<double>(c.sk);
        for (int64_t i = 0; i < c.sq; ++i)
          ASSERT_NEAR(r.outputs[0].as<float>()[(h * c.sq + i) * c.dv + col], mean, 2e-3) << dev << " h" << h << " row " << i;
      }
  }
}

TEST(AttentionOps, LongSequence) {
  Case c;
  c.b = 1, c.h = 2, c.sq = 200, c.sk = 517, c.d = c.dv = 64, c.mask = Mask::kPerBatch, c.scale = Scale::kDivScores;
  check_case(c);
}

TEST(AttentionOps, WideHeadsRunOnTheCpu) {
  // Head dims above the OpenCL kernel's limit: still fused, the node goes to the CPU.
  Case c;
  c.b = 1, c.h = 2, c.sq = c.sk = 9, c.d = 160, c.dv = 160, c.mask = Mask::kPerBatch;
  check_case(c, Backend::kCpu);
}

TEST(AttentionOps, SharedScoresAreNotFused) {
  // The scores are also a graph output: fusing would drop them.
  Case c;
  c.b = 1, c.h = 2, c.sq = c.sk = 5, c.mask = Mask::kPerBatch;
  CaseRun r;
  ASSERT_TRUE(run_case(c, "cpu", true, &r, true).is_ok());
  EXPECT_EQ(attention_node(*r.plan), nullptr);
  CaseRun ref;
  ASSERT_TRUE(run_case(c, "cpu", false, &ref, true).is_ok());
  EXPECT_TRUE(tensors_close(r.outputs[0], ref.outputs[0], 1e-6, 1e-7));
}

TEST(AttentionOps, NoFuseKeepsThePattern) {
  Case c;
  c.b = 1, c.h = 2, c.sq = c.sk = 5;
  CaseRun r;
  ASSERT_TRUE(run_case(c, "cpu", false, &r).is_ok());
  EXPECT_EQ(attention_node(*r.plan), nullptr);
}

// The runtime checks an (untrusted) plan's Attention operands against each other.
TEST(AttentionOps, InconsistentShapesAreRefused) {
  Case c;
  c.b = 1, c.h = 2, c.sq = c.sk = 5, c.mask = Mask::kPerBatch;
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    CaseRun r;
    ASSERT_TRUE(run_case(c, device, true, &r).is_ok());
    auto plan = std::make_shared<Plan>(*r.plan);
    PlanNode* at = const_cast<PlanNode*>(attention_node(*plan));
    ASSERT_NE(at, nullptr);
    at->attrs.set("k_transposed", int64_t{1});  // K read as [.., D, Sk]: D 16 vs Sk 5
    std::unique_ptr<ExecutionContext> ctx;
    std::string notice;
    Status st = ExecutionContext::create(plan, device, &ctx, &notice);
    if (st.is_ok()) {
      const Graph m = make_data(c);
      for (int32_t t : plan->inputs) {
        const HostTensor& src = m.inputs.at(plan->tensors[t].name);
        ASSERT_TRUE(ctx->bind_input(plan->tensors[t].name, src.dtype(), src.shape(), src.data(), src.size_bytes()).is_ok());
      }
      HostTensor y(DType::kFloat32, plan->tensors[plan->outputs[0]].shape);
      ASSERT_TRUE(ctx->bind_output(plan->tensors[plan->outputs[0]].name, y.data(), y.size_bytes()).is_ok());
      st = ctx->run();
    }
    ASSERT_FALSE(st.is_ok()) << device;
    EXPECT_NE(st.message().find("Attention"), std::string::npos) << st.message();
  }
}

// A QuantizeLinear of the fused node's output, folded into it on OpenCL targets
// (compiler/passes/fuse_quantize_output.cpp): no QuantizeLinear is left, and the quantized copy
// is exactly QuantizeLinear of Y as stored, for int8, uint8 and E4M3, FP16 and FP32 plans, the
// head-split (bshd) layout and masks; the tensor-core variant writes it in its own output stage
// (run by ctest mma_variant_emulated here, on the GPU machine for real).
TEST(MmaVariant, AttentionWritesQuantizedOutput) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::vector<Case> cases;
  Case bert;  // BERT's layout and mask: Y [B, S, H, D] into the output projection's int8
  bert.b = 2, bert.h = 3, bert.sq = bert.sk = 70, bert.d = bert.dv = 64, bert.mask = Mask::kComputed;
  bert.heads_split = true, bert.precision = "fp16", bert.y_quantized = DType::kInt8, bert.y_scale = 0.004f;
  bert.y_zero_point = 3;
  cases.push_back(bert);
  Case fp8 = bert;
  fp8.y_quantized = DType::kFloat8E4M3FN, fp8.y_scale = 0.002f, fp8.y_zero_point = 0, fp8.sq = 17, fp8.d = fp8.dv = 32;
  cases.push_back(fp8);
  Case plain;  // rank 3, FP32: the portable kernel, QuantizeLinear's kernel after it
  plain.rank = 3, plain.b = 2, plain.sq = 9, plain.sk = 33, plain.d = plain.dv = 16, plain.mask = Mask::kFull;
  plain.y_quantized = DType::kUInt8, plain.y_scale = 0.003f, plain.y_zero_point = 128;
  cases.push_back(plain);
  ResolvedDevice dev;
  ASSERT_TRUE(resolve_device("opencl", &dev).is_ok());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.str());
    CaseRun cl;
    Status st = run_case(c, "opencl", true, &cl);
    ASSERT_TRUE(st.is_ok()) << st.message();
    int quantizes = 0;
    for (const PlanNode& n : cl.plan->nodes) quantizes += n.op == "QuantizeLinear";
    EXPECT_EQ(quantizes, 0);
    const PlanNode* at = attention_node(*cl.plan);
    ASSERT_NE(at, nullptr);
    EXPECT_EQ(at->attrs.get_int("quantized_output", 0), 1);
    if (c.precision == "fp16" && mma::available(dev.caps, mma::Elem::kF16)) {
      EXPECT_EQ(at->choice.variant, mma::kVariant);
    }
    ASSERT_EQ(cl.outputs.size(), 2u);
    EXPECT_TRUE(tensors_close(cl.outputs[1], quantize_reference(cl.outputs[0], c.y_quantized, c.y_scale, c.y_zero_point), 0, 0));
    CaseRun cpu;  // the CPU plan (its QuantizeLinear unfused) computes the same Y
    ASSERT_TRUE(run_case(c, "cpu", true, &cpu).is_ok());
    EXPECT_TRUE(tensors_close(cl.outputs[0], cpu.outputs[0], 4e-3, 4e-3));
  }
}

}  // namespace
}  // namespace kiln::test
