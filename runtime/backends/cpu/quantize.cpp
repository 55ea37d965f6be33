// CPU reference kernels of the quantize family: QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv.
// Integer math is exact (int32 accumulation); float scaling is float32 as the spec does it:
// quantize q = saturate(rint(x / scale) + zp), requantize q = saturate(rint(acc * M) + zp) with
// M = (scale_a * scale_b) / scale_y, rint rounding half to even.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/backends/cpu/quantize_panel.h"
#include "runtime/backends/quantize_per_tensor.h"
#include "runtime/backends/quantize_geometry.h"
#include "runtime/core/float8.h"
#include "runtime/core/half.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/node_precision.h"
#include "runtime/profile/node_cost.h"

namespace kiln {
namespace {

Status bad_dtype(const CpuKernelArgs& a, const std::string& what, DType t) {
  return unsupported(a.node.op + " '" + a.node.name + "': " + what + " dtype " + dtype_name(t) +
                     " is not supported by the CPU kernel");
}

template <typename T>
struct IntRange {
  static constexpr float lo = static_cast<float>(std::numeric_limits<T>::min());
  static constexpr float hi = static_cast<float>(std::numeric_limits<T>::max());
};

// ---- QuantizeLinear ----

template <typename F>
void for_each_quant(const QuantLayout& l, F&& f) {
  int64_t idx = 0;
  for (int64_t o = 0; o < l.outer; ++o)
    for (int64_t c = 0; c < l.C; ++c) {
      const int64_t sbase = l.qmode == 0 ? 0 : l.qmode == 1 ? c : (o * l.cblocks + c / l.block) * l.inner;
      const int64_t sstep = l.qmode == 2 ? 1 : 0;
      for (int64_t i = 0; i < l.inner; ++i, ++idx) f(idx, sbase + i * sstep);
    }
}

template <typename T>
void quantize_int(const QuantLayout& l, const float* x, const float* s, const T* zp, T* y) {
  for_each_quant(l, [&](int64_t i, int64_t si) {
    const float z = zp ? static_cast<float>(zp[si]) : 0.f;
    // Clamping before the int conversion keeps huge values and NaN defined.
    const float v = std::fmin(std::fmax(round_half_even(x[i] / s[si]), IntRange<T>::lo - z), IntRange<T>::hi - z);
    y[i] = static_cast<T>(static_cast<int32_t>(v) + static_cast<int32_t>(z));
  });
}

// x quantized into y (whose dtype says how); false for a dtype without a kernel.
bool quantize_values(const QuantLayout& l, const float* x, const float* s, const void* zp, const TensorView& y) {
  switch (y.dtype) {
    case DType::kUInt8: quantize_int(l, x, s, static_cast<const uint8_t*>(zp), y.as<uint8_t>()); return true;
    case DType::kInt8: quantize_int(l, x, s, static_cast<const int8_t*>(zp), y.as<int8_t>()); return true;
    case DType::kUInt16: quantize_int(l, x, s, static_cast<const uint16_t*>(zp), y.as<uint16_t>()); return true;
    case DType::kInt16: quantize_int(l, x, s, static_cast<const int16_t*>(zp), y.as<int16_t>()); return true;
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E5M2: {
      // The reference ignores the float8 zero point (the spec requires it to be 0); adding a
      // +0.0 would also turn -0 into +0.
      uint8_t* out = y.as<uint8_t>();
      const DType t = y.dtype;
      for_each_quant(l, [&](int64_t i, int64_t si) { out[i] = float_to_float8(t, x[i] / s[si], l.saturate); });
      return true;
    }
    default: return false;
  }
}

Status quantize_linear_cpu(const CpuKernelArgs& a) {
  const QuantLayout l = quant_layout(a.node, a.inputs[0].shape);
  if (!quantize_values(l, a.inputs[0].as<float>(), a.inputs[1].as<float>(), a.has_input(2) ? a.inputs[2].data : nullptr,
                       a.outputs[0]))
    return bad_dtype(a, "output", a.outputs[0].dtype);
  return Status::ok();
}

// ---- DequantizeLinear ----

template <typename T>
void dequantize_int(const QuantLayout& l, const T* x, const float* s, const T* zp, float* y) {
  // float(x) - float(zp), as the reference computes it (exact except for huge int32 values).
  for_each_quant(l, [&](int64_t i, int64_t si) {
    const float z = zp ? static_cast<float>(zp[si]) : 0.f;
    y[i] = (static_cast<float>(x[i]) - z) * s[si];
  });
}

Status dequantize_linear_cpu(const CpuKernelArgs& a) {
  const QuantLayout l = quant_layout(a.node, a.inputs[0].shape);
  const TensorView& x = a.inputs[0];
  const float* s = a.inputs[1].as<float>();
  const void* zp = a.has_input(2) ? a.inputs[2].data : nullptr;
  float* y = a.outputs[0].as<float>();
  switch (x.dtype) {
    case DType::kUInt8: dequantize_int(l, x.as<uint8_t>(), s, static_cast<const uint8_t*>(zp), y); break;
    case DType::kInt8: dequantize_int(l, x.as<int8_t>(), s, static_cast<const int8_t*>(zp), y); break;
    case DType::kUInt16: dequantize_int(l, x.as<uint16_t>(), s, static_cast<const uint16_t*>(zp), y); break;
    case DType::kInt16: dequantize_int(l, x.as<int16_t>(), s, static_cast<const int16_t*>(zp), y); break;
    case DType::kInt32: dequantize_int(l, x.as<int32_t>(), s, static_cast<const int32_t*>(zp), y); break;
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E5M2: {
      // The float8 zero point must be 0 (spec); the reference ignores it.
      const float* table = float8_decode_table(x.dtype);
      const uint8_t* xc = x.as<uint8_t>();
      for_each_quant(l, [&](int64_t i, int64_t si) { y[i] = table[xc[i]] * s[si]; });
      break;
    }
    default: return bad_dtype(a, "input", x.dtype);
  }
  return Status::ok();
}

// ---- DynamicQuantizeLinear ----

Status dynamic_quantize_linear_cpu(const CpuKernelArgs& a) {
  const float* x = a.inputs[0].as<float>();
  const int64_t n = a.inputs[0].numel();
  // The range always includes 0 so that 0 is exactly representable.
  float lo = 0.f, hi = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    lo = std::fmin(lo, x[i]);
    hi = std::fmax(hi, x[i]);
  }
  // As the reference: an all-zero input gets scale 1/255 (not 0) so nothing divides by zero.
  const float scale = (hi == lo ? 1.f : hi - lo) / 255.f;
  const uint8_t zp = static_cast<uint8_t>(round_half_even(std::fmin(std::fmax(0.f - lo / scale, 0.f), 255.f)));
  uint8_t* y = a.outputs[0].as<uint8_t>();
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(std::fmin(std::fmax(round_half_even(x[i] / scale) + zp, 0.f), 255.f));
  *a.outputs[1].as<float>() = scale;
  *a.outputs[2].as<uint8_t>() = zp;
  return Status::ok();
}

// ---- integer GEMM (MatMulInteger, QLinearMatMul, ConvInteger, QLinearConv) ----

// How the int32 accumulators become outputs.
struct Epilogue {
  bool requant = false;
  const int32_t* bias = nullptr;         // per global row (QLinearConv B), or per column
  bool bias_cols = false;
  const float* sa = nullptr;             // row-side scale (a / w)
  bool sa_vec = false;
  const float* sb = nullptr;             // column-side scale (b / x)
  bool sb_vec = false;
  float sy = 1.f;
  float yzp = 0.f, qlo = 0.f, qhi = 0.f;
  DType out = DType::kInt32;
  // kiln's fused epilogue (quantize_geometry.h): activation/residual, float output.
  bool fused = false;
  linear::Epilogue ep;
  const TensorView* res = nullptr;
  float res_scale = 1.f, res_zp = 0.f;

  float residual(int64_t i) const {
    switch (res->dtype) {
      case DType::kInt8: return (static_cast<float>(res->as<int8_t>()[i]) - res_zp) * res_scale;
      case DType::kUInt8: return (static_cast<float>(res->as<uint8_t>()[i]) - res_zp) * res_scale;
      default: return res->as<float>()[i];
    }
  }
};

// Writes one batch item's M x N accumulators.
// sa_boff / sb_boff: batch offsets of N-D per-row / per-column scales (those of the zero points,
// which have the same shape).
void write_out(const Epilogue& e, const QGemm& g, const int32_t* acc, int64_t row_base, int64_t c_off,
               int64_t sa_boff, int64_t sb_boff, void* out) {
  if (!e.requant) {
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) static_cast<int32_t*>(out)[g.out_index(c_off, m, n)] = acc[m * g.N + n];
    return;
  }
  for (int64_t m = 0; m < g.M; ++m) {
    const int64_t row = row_base + m;
    const float sa = e.sa[e.sa_vec ? sa_boff + row : 0];
    for (int64_t n = 0; n < g.N; ++n) {
      const int32_t bias = e.bias ? e.bias[e.bias_cols ? n : row] : 0;
      const float sb = e.sb[e.sb_vec ? sb_boff + n : 0];
      const int64_t i = g.out_index(c_off, m, n);
      float v;
      if (!e.fused) {
        v = round_half_even(static_cast<float>(acc[m * g.N + n] + bias) * ((sa * sb) / e.sy)) + e.yzp;
      } else {
        float r = static_cast<float>(acc[m * g.N + n] + bias) * (sa * sb);
        if (e.ep.residual == linear::kResidualBeforeActivation) r += e.residual(i);
        r = linear::apply_activation(e.ep.act, r, e.ep.act_alpha, e.ep.act_beta);
        if (e.ep.residual == linear::kResidualAfterActivation) r += e.residual(i);
        if (e.out == DType::kFloat32) {
          static_cast<float*>(out)[i] = r;
          continue;
        }
        v = round_half_even(r / e.sy) + e.yzp;
      }
      const float q = std::fmin(std::fmax(v, e.qlo), e.qhi);
      if (e.out == DType::kUInt8) static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(q);
      else static_cast<int8_t*>(out)[i] = static_cast<int8_t>(q);
    }
  }
}

// Fills panel[K x N] with the column-side operand minus its zero point (im2col for conv;
// padding contributes 0).
template <typename TB>
void fill_panel(const QGemm& g, const TB* B, int64_t b_off, const TB* zb, bool zb_vec, int64_t zb_boff,
                int32_t* panel) {
  if (!g.conv) {
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t n = 0; n < g.N; ++n)
        panel[k * g.N + n] = static_cast<int32_t>(B[b_off + k * g.N + n]) -
                             (zb ? static_cast<int32_t>(zb[zb_vec ? zb_boff + n : 0]) : 0);
    return;
  }
  const int32_t z = zb ? static_cast<int32_t>(zb[0]) : 0;
  conv_panel(g, B, b_off, panel, [z](TB v) { return static_cast<int32_t>(v) - z; });
}

template <typename TA, typename TB>
void qgemm_run(const QGemm& g, const TA* A, const TB* B, const TA* za, bool za_vec, const TB* zb, bool zb_vec,
               const Epilogue& e, void* out) {
  std::vector<int32_t> panel(static_cast<size_t>(g.K * g.N));
  std::vector<int32_t> acc(static_cast<size_t>(g.M * g.N));
  for (int64_t b = 0; b < g.batches; ++b) {
    int64_t a_off, b_off, c_off, row_base, za_boff, zb_boff;
    g.offsets(b, &a_off, &b_off, &c_off, &row_base, &za_boff, &zb_boff);
    fill_panel(g, B, b_off, zb, zb_vec, zb_boff, panel.data());
    std::fill(acc.begin(), acc.end(), 0);
    for (int64_t m = 0; m < g.M; ++m) {
      const TA* arow = A + a_off + m * g.K;
      const int32_t zam = za ? static_cast<int32_t>(za[za_vec ? za_boff + row_base + m : 0]) : 0;
      int32_t* crow = acc.data() + m * g.N;
      for (int64_t k = 0; k < g.K; ++k) {
        const int32_t av = static_cast<int32_t>(arow[k]) - zam;
        if (av == 0) continue;
        const int32_t* prow = panel.data() + k * g.N;
        for (int64_t n = 0; n < g.N; ++n) crow[n] += av * prow[n];
      }
    }
    write_out(e, g, acc.data(), row_base, c_off, za_boff, zb_boff, out);
  }
}

template <typename TA>
void qgemm_dispatch_b(const QGemm& g, const TensorView& A, const TensorView& B, const TensorView* za,
                      const TensorView* zb, const Epilogue& e, void* out) {
  const TA* zap = za ? za->as<TA>() : nullptr;
  const bool za_vec = za && is_vector_param(za->shape);
  const bool zb_vec = zb && is_vector_param(zb->shape);
  if (B.dtype == DType::kUInt8)
    qgemm_run(g, A.as<TA>(), B.as<uint8_t>(), zap, za_vec, zb ? zb->as<uint8_t>() : nullptr, zb_vec, e, out);
  else
    qgemm_run(g, A.as<TA>(), B.as<int8_t>(), zap, za_vec, zb ? zb->as<int8_t>() : nullptr, zb_vec, e, out);
}

// The fused-epilogue inputs and attributes, checked (a crafted plan must not make the kernel
// read past a tensor).
Status read_qlinear_epilogue(const CpuKernelArgs& a, Epilogue* e) {
  const std::string what = a.node.op + " '" + a.node.name + "'";
  e->bias_cols = a.node.attrs.get_int(kAttrBiasColumns, 0) != 0;
  if (!e->fused) return Status::ok();
  KILN_TRY_CTX(linear::read_epilogue(a.node.attrs, &e->ep), what);
  if (e->ep.residual == linear::kResidualNone) return Status::ok();
  if (!a.has_input(kQResidualInput)) return invalid_plan(what + ": fused residual input is missing");
  e->res = &a.inputs[kQResidualInput];
  if (e->res->shape != a.outputs[0].shape) return invalid_plan(what + ": residual shape differs from the output's");
  if (e->res->dtype == DType::kInt8 || e->res->dtype == DType::kUInt8) {
    if (!a.has_input(kQResidualScaleInput)) return invalid_plan(what + ": quantized residual without a scale");
    e->res_scale = *a.inputs[kQResidualScaleInput].as<float>();
    if (a.has_input(kQResidualZeroPointInput)) {
      const TensorView& z = a.inputs[kQResidualZeroPointInput];
      e->res_zp = z.dtype == DType::kUInt8 ? *z.as<uint8_t>() : *z.as<int8_t>();
    }
  } else if (e->res->dtype != DType::kFloat32) {
    return invalid_plan(what + ": residual must be float32, int8 or uint8");
  }
  return Status::ok();
}

Status qgemm_cpu(const CpuKernelArgs& a) {
  const QGemmInputs in = qgemm_inputs(a.node.op);
  auto opt = [&](int i) -> const TensorView* { return i >= 0 && a.has_input(i) ? &a.inputs[i] : nullptr; };
  const TensorView* za = opt(in.za);
  const TensorView* zb = opt(in.zb);
  QGemm g;
  KILN_TRY(qgemm_geometry(a.node, a.inputs[in.a].shape, a.inputs[in.b].shape, za ? za->shape : Shape{},
                          zb ? zb->shape : Shape{}, a.outputs[0].shape, &g));
  Epilogue e;
  e.out = a.outputs[0].dtype;
  if (in.sa >= 0) {
    e.requant = true;
    e.sa = a.inputs[in.sa].as<float>();
    e.sa_vec = is_vector_param(a.inputs[in.sa].shape);
    e.sb = a.inputs[in.sb].as<float>();
    e.sb_vec = is_vector_param(a.inputs[in.sb].shape);
    e.sy = *a.inputs[in.sy].as<float>();
    const TensorView& yzp = a.inputs[in.yzp];
    e.yzp = yzp.dtype == DType::kUInt8 ? *yzp.as<uint8_t>() : *yzp.as<int8_t>();
    e.qlo = yzp.dtype == DType::kUInt8 ? 0.f : -128.f;
    e.qhi = yzp.dtype == DType::kUInt8 ? 255.f : 127.f;
    if (const TensorView* bias = opt(in.bias)) e.bias = bias->as<int32_t>();
    e.fused = has_qlinear_epilogue(a.node, e.out);
    KILN_TRY(read_qlinear_epilogue(a, &e));
    if (e.bias && a.inputs[in.bias].numel() < (e.bias_cols ? g.N : g.M * g.groups))
      return invalid_plan(a.node.op + " '" + a.node.name + "': bias shorter than the output channels");
  }
  if (a.inputs[in.a].dtype == DType::kUInt8)
    qgemm_dispatch_b<uint8_t>(g, a.inputs[in.a], a.inputs[in.b], za, zb, e, a.outputs[0].data);
  else
    qgemm_dispatch_b<int8_t>(g, a.inputs[in.a], a.inputs[in.b], za, zb, e, a.outputs[0].data);
  return Status::ok();
}

}  // namespace

Status quantize_per_tensor_cpu(const std::string& where, const TensorView& x, const TensorView& scale,
                               const TensorView& zp, bool saturate, const TensorView& y) {
  std::vector<float> widened;
  const float* xf = x.as<float>();
  if (x.dtype == DType::kFloat16) {
    widened.resize(static_cast<size_t>(x.numel()));
    const uint16_t* h = x.as<uint16_t>();
    for (size_t i = 0; i < widened.size(); ++i) widened[i] = half_to_float(h[i]);
    xf = widened.data();
  } else if (x.dtype != DType::kFloat32) {
    return unsupported(where + ": cannot quantize " + dtype_name(x.dtype));
  }
  QuantLayout l;
  l.inner = x.numel();
  l.saturate = saturate;
  if (!quantize_values(l, xf, scale.as<float>(), zp.data, y))
    return unsupported(where + ": cannot quantize to " + dtype_name(y.dtype));
  return Status::ok();
}

void register_quantize_cpu(CpuRegistry& r) {
  // A float16 x is widened (exactly) to the float32 the kernel reads.
  r.add("QuantizeLinear", quantize_linear_cpu, CpuFloat16::kWidened).arity(2, 1).precision(conversion_precision);
  r.add("DequantizeLinear", dequantize_linear_cpu).arity(2, 1).precision(conversion_precision);
  r.add("DynamicQuantizeLinear", dynamic_quantize_linear_cpu).arity(1, 3);
  // The integer kernels count their multiply-adds like FLOPs (TensorRT reports INT8 "ops" so)
  // and compute in their input's type.
  auto in0 = [](const Plan& p, const PlanNode& n) { return input_precision(p, n, 0); };
  auto matmul_ops = [](const Plan& p, const PlanNode& n) { return matmul_flops(p, n); };
  r.add("MatMulInteger", qgemm_cpu).arity(2, 1).cost(matmul_ops).precision(in0);
  // kWidened: a float16 output or residual (an OpenCL plan's, forced onto the cpu) is widened.
  r.add("QLinearMatMul", qgemm_cpu, CpuFloat16::kWidened).arity(8, 1).cost(matmul_ops).precision(in0);
  r.add("ConvInteger", qgemm_cpu).arity(2, 1).precision(in0).cost([](const Plan& p, const PlanNode& n) {
    return conv_flops(p, n, 1);
  });
  r.add("QLinearConv", qgemm_cpu, CpuFloat16::kWidened)
      .arity(8, 1)
      .precision(in0)
      .cost([](const Plan& p, const PlanNode& n) { return conv_flops(p, n, 3); });
}

}  // namespace kiln
