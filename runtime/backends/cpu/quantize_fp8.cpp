// CPU reference of the FP8 linear ops Fp8Conv and Fp8MatMul (operands and arithmetic:
// runtime/backends/quantize_fp8_geometry.h): FP8 decoded through the spec's table, float32
// accumulation in ascending k (the OpenCL kernel's order, so the two agree bit for bit), and the
// ONNX float8 cast of runtime/core/float8.h for FP8 outputs.
#include <vector>

#include "runtime/backends/cpu/quantize_panel.h"
#include "runtime/backends/quantize_fp8_geometry.h"
#include "runtime/core/float8.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/node_precision.h"
#include "runtime/profile/node_cost.h"

namespace kiln {
namespace {

// A whole operand as float32.
std::vector<float> decode(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  if (t.dtype == DType::kFloat32) {
    std::copy(t.as<float>(), t.as<float>() + t.numel(), out.begin());
    return out;
  }
  const float* table = float8_decode_table(t.dtype);
  const uint8_t* c = t.as<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) out[i] = table[c[i]];
  return out;
}

// panel[K x N]: the column-side operand of batch item b (im2col of x for a convolution; padding
// reads as 0).
void fill_panel(const QGemm& g, const float* B, int64_t b_off, float* panel) {
  if (!g.conv) {
    std::copy(B + b_off, B + b_off + g.K * g.N, panel);
    return;
  }
  conv_panel(g, B, b_off, panel, [](float v) { return v; });
}

Status fp8_linear_cpu(const CpuKernelArgs& a) {
  std::vector<Fp8Operand> ops;
  for (const TensorView& t : a.inputs) ops.push_back({t.data ? t.dtype : DType::kUndefined, t.shape});
  Fp8Linear f;
  KILN_TRY(fp8_linear_setup(a.node, ops, {a.outputs[0].dtype, a.outputs[0].shape}, &f));
  const QGemm& g = f.g;
  const std::vector<float> A = decode(a.inputs[f.a]), B = decode(a.inputs[f.b]);
  const float* sa = a.inputs[f.sa].as<float>();
  const float* sb = a.inputs[f.sb].as<float>();
  const float sy = *a.inputs[Fp8Linear::kYScale].as<float>();
  const float* bias = f.has_bias ? a.inputs[Fp8Linear::kBias].as<float>() : nullptr;
  const TensorView& y = a.outputs[0];
  std::vector<float> res;
  if (f.ep.residual != linear::kResidualNone) {
    res = decode(a.inputs[Fp8Linear::kResidual]);
    if (f.kr > 0)
      for (float& r : res) r *= *a.inputs[Fp8Linear::kResidualScale].as<float>();
  }
  std::vector<float> panel(static_cast<size_t>(g.K * g.N)), acc(static_cast<size_t>(g.N));
  for (int64_t b = 0; b < g.batches; ++b) {
    int64_t a_off, b_off, c_off, row_base, unused0, unused1;
    g.offsets(b, &a_off, &b_off, &c_off, &row_base, &unused0, &unused1);
    fill_panel(g, B.data(), b_off, panel.data());
    for (int64_t m = 0; m < g.M; ++m) {
      std::fill(acc.begin(), acc.end(), 0.f);
      const float* arow = A.data() + a_off + m * g.K;
      for (int64_t k = 0; k < g.K; ++k) {
        const float av = arow[k];
        const float* prow = panel.data() + k * g.N;
        for (int64_t n = 0; n < g.N; ++n) acc[n] += av * prow[n];
      }
      const int64_t row = row_base + m;
      const float s_row = sa[f.sa_vec ? row : 0];
      for (int64_t n = 0; n < g.N; ++n) {
        const float mult = s_row * sb[f.sb_vec ? n : 0];
        const float add = bias ? bias[f.bias_per_row ? row : n] : 0.f;
        const int64_t i = g.out_index(c_off, m, n);
        float v = acc[n] * mult + add;
        if (f.ep.residual == linear::kResidualBeforeActivation) v += res[i];
        v = linear::apply_activation(f.ep.act, v, f.ep.act_alpha, f.ep.act_beta);
        if (f.ep.residual == linear::kResidualAfterActivation) v += res[i];
        v /= sy;
        if (f.ky == 0) y.as<float>()[i] = v;
        else y.as<uint8_t>()[i] = float_to_float8(y.dtype, v, f.saturate);
      }
    }
  }
  return Status::ok();
}

}  // namespace

namespace {
// The weight format (fp8-e4m3 / fp8-e5m2), "-weight-only" when the activations are float32.
std::string fp8_precision(const Plan& p, const PlanNode& n) {
  if (n.inputs.size() <= 2 || n.inputs[0] < 0 || n.inputs[2] < 0 || n.outputs.empty())
    return n.outputs.empty() ? "?" : precision_name(p.tensors[n.outputs[0]].dtype);
  const std::string w = p.tensors[n.inputs[2]].dtype == DType::kFloat8E5M2 ? "fp8-e5m2" : "fp8-e4m3";
  return p.tensors[n.inputs[0]].dtype == DType::kFloat32 ? w + "-weight-only" : w;
}
}  // namespace

void register_quantize_fp8_cpu(CpuRegistry& r) {
  // The weights are input 2 (after the input's scale).
  // kWidened: a float16 output or residual (an OpenCL plan's, forced onto the cpu) is widened.
  r.add("Fp8Conv", fp8_linear_cpu, CpuFloat16::kWidened)
      .arity(5, 1)
      .precision(fp8_precision)
      .cost([](const Plan& p, const PlanNode& n) { return conv_flops(p, n, 2); });
  r.add("Fp8MatMul", fp8_linear_cpu, CpuFloat16::kWidened)
      .arity(5, 1)
      .precision(fp8_precision)
      .cost([](const Plan& p, const PlanNode& n) { return matmul_flops(p, n); });
}

}  // namespace kiln
