// Conv, ConvTranspose, Gemm, MatMul on the CPU (float32). Convolutions lower to the blocked
// sgemm (linear_sgemm.cpp): Conv through im2col (skipped for 1x1/stride-1/no-pad kernels,
// whose input already is the column matrix), ConvTranspose through GEMM + col2im. The fused
// epilogue convention is in linear_epilogue.h.
#include <algorithm>
#include <vector>

#include "runtime/backends/linear_check.h"
#include "runtime/backends/cpu/linear_sgemm.h"
#include "runtime/backends/cpu/permute_channels.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/profile/node_cost.h"

namespace kiln {
namespace {

using linear::GemmEpilogue;

struct ConvParams {
  int64_t N = 0, C = 0, M = 0, group = 1;
  std::vector<int64_t> in, out, kernel, strides, dilations, pads_begin;
  int64_t in_size = 1, out_size = 1, kernel_size = 1;
};

// Every kernel starts here: float32 operands whose shapes agree with the node's attributes.
Status check_node(const CpuKernelArgs& a) {
  std::vector<const Shape*> in;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    if (a.has_input(i) && a.inputs[i].dtype != DType::kFloat32)
      return unsupported("node '" + a.node.name + "' (" + a.node.op + "): input " + std::to_string(i) + " is " +
                         dtype_name(a.inputs[i].dtype) + "; only float32 is implemented");
    in.push_back(a.has_input(i) ? &a.inputs[i].shape : nullptr);
  }
  if (a.outputs.size() != 1 || a.outputs[0].dtype != DType::kFloat32)
    return invalid_plan("node '" + a.node.name + "': expected one float32 output");
  return linear::check_linear_shapes(a.node.op, a.node.name, a.attrs(), in, a.outputs[0].shape);
}

Status read_conv(const CpuKernelArgs& a, bool transpose, ConvParams* p) {
  KILN_TRY(check_node(a));
  // Channels-last (runtime/ops/channels_last.h): the geometry of the NCHW shapes.
  const bool last = is_channels_last(a.attrs());
  const Shape x = last ? channels_first_shape(a.inputs[0].shape) : a.inputs[0].shape;
  const Shape y = last ? channels_first_shape(a.outputs[0].shape) : a.outputs[0].shape;
  const Shape w = last ? channels_first_shape(a.inputs[1].shape) : a.inputs[1].shape;
  const size_t sp = x.size() - 2;
  p->N = x[0];
  p->C = x[1];
  p->M = y[1];
  p->group = a.attrs().get_int("group", 1);
  p->in.assign(x.begin() + 2, x.end());
  p->out.assign(y.begin() + 2, y.end());
  p->kernel.assign(w.begin() + 2, w.end());
  p->strides = a.attrs().get_ints("strides", std::vector<int64_t>(sp, 1));
  p->dilations = a.attrs().get_ints("dilations", std::vector<int64_t>(sp, 1));
  std::vector<int64_t> pads = a.attrs().get_ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (p->strides.size() != sp || p->dilations.size() != sp || pads.size() != 2 * sp || p->group < 1 ||
      p->C % p->group || p->M % p->group || a.inputs[0].dtype != DType::kFloat32)
    return invalid_plan("node '" + a.node.name + "': inconsistent convolution attributes");
  p->pads_begin.assign(pads.begin(), pads.begin() + sp);
  for (size_t i = 0; i < sp; ++i) {
    p->in_size *= p->in[i];
    p->out_size *= p->out[i];
    p->kernel_size *= p->kernel[i];
  }
  (void)transpose;
  return Status::ok();
}

// Fills col[(c, k...) row][output position] for one group of one image: the input value each
// kernel tap sees at each output position, zero in the padding.
void im2col(const float* x, int64_t channels, const ConvParams& p, float* col) {
  const size_t sp = p.in.size();
  const int64_t ow_n = p.out[sp - 1], iw_n = p.in[sp - 1];
  const int64_t sw = p.strides[sp - 1];
  std::vector<int64_t> kpos(sp, 0), opos(sp, 0);
  for (int64_t c = 0; c < channels; ++c) {
    const float* xc = x + c * p.in_size;
    std::fill(kpos.begin(), kpos.end(), 0);
    for (int64_t kr = 0; kr < p.kernel_size; ++kr) {
      float* dst = col + (c * p.kernel_size + kr) * p.out_size;
      const int64_t woff = kpos[sp - 1] * p.dilations[sp - 1] - p.pads_begin[sp - 1];
      // Walk the output positions row by row (all dims but the last), innermost dim tight.
      std::fill(opos.begin(), opos.end(), 0);
      for (int64_t orow = 0; orow < p.out_size / ow_n; ++orow) {
        int64_t src = 0;
        bool inside = true;
        for (size_t d = 0; d + 1 < sp; ++d) {
          const int64_t i = opos[d] * p.strides[d] - p.pads_begin[d] + kpos[d] * p.dilations[d];
          inside &= i >= 0 && i < p.in[d];
          src = src * p.in[d] + i;
        }
        float* drow = dst + orow * ow_n;
        if (!inside) {
          std::fill(drow, drow + ow_n, 0.f);
        } else {
          const float* srow = xc + src * iw_n;
          if (sw == 1 && woff >= 0 && woff + ow_n <= iw_n) {
            std::copy(srow + woff, srow + woff + ow_n, drow);
          } else {
            for (int64_t ow = 0; ow < ow_n; ++ow) {
              const int64_t iw = ow * sw + woff;
              drow[ow] = iw >= 0 && iw < iw_n ? srow[iw] : 0.f;
            }
          }
        }
        for (int d = static_cast<int>(sp) - 2; d >= 0; --d) {
          if (++opos[d] < p.out[d]) break;
          opos[d] = 0;
        }
      }
      for (int d = static_cast<int>(sp) - 1; d >= 0; --d) {
        if (++kpos[d] < p.kernel[d]) break;
        kpos[d] = 0;
      }
    }
  }
}

Status fill_epilogue(const CpuKernelArgs& a, GemmEpilogue* e) {
  KILN_TRY_CTX(linear::read_epilogue(a.attrs(), &e->ep), "node '" + a.node.name + "'");
  if (e->ep.residual != linear::kResidualNone && !a.has_input(linear::kResidualInput))
    return invalid_plan("node '" + a.node.name + "': fused residual input is missing");
  if (e->ep.residual == linear::kResidualNone) e->ep.residual = linear::kResidualNone;
  return Status::ok();
}

// Depthwise 1-D/2-D convolution (one input and one output channel per group): a GEMM with one
// row per group would waste most of each micro-tile, so accumulate shifted input rows
// directly; the inner loop runs over contiguous output columns.
void depthwise_2d(const float* x, const float* w, float* y, const ConvParams& p, const GemmEpilogue& base,
                  const float* bias, const float* residual) {
  const bool one_d = p.in.size() == 1;
  const int64_t H = one_d ? 1 : p.in[0], W = p.in.back(), OH = one_d ? 1 : p.out[0], OW = p.out.back();
  const int64_t KH = one_d ? 1 : p.kernel[0], KW = p.kernel.back();
  const int64_t sh = one_d ? 1 : p.strides[0], sw = p.strides.back();
  const int64_t dh = one_d ? 1 : p.dilations[0], dw = p.dilations.back();
  const int64_t ph = one_d ? 0 : p.pads_begin[0], pw = p.pads_begin.back();
  for (int64_t plane = 0; plane < p.N * p.C; ++plane) {
    const int64_t c = plane % p.C;
    const float* xp = x + plane * H * W;
    const float* wc = w + c * KH * KW;
    float* yp = y + plane * OH * OW;
    GemmEpilogue e = base;
    if (bias) {
      e.bias = bias + c;
      e.bias_rs = e.bias_cs = 0;
    }
    if (residual) {
      e.residual = residual + plane * OH * OW;
      e.ldr = OW;
    }
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* yr = yp + oh * OW;
      std::fill(yr, yr + OW, 0.f);
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = oh * sh - ph + kh * dh;
        if (ih < 0 || ih >= H) continue;
        const float* xr = xp + ih * W;
        for (int64_t kw = 0; kw < KW; ++kw) {
          const float wv = wc[kh * KW + kw];
          const int64_t off = kw * dw - pw;
          // Output columns whose input column ow * sw + off lies inside [0, W).
          const int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
          const int64_t hi = std::min(OW, W - off <= 0 ? 0 : (W - off + sw - 1) / sw);
          if (sw == 1) {
            const float* xs = xr + off;
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * sw + off];
          }
        }
      }
      linear::apply_epilogue_row(e, oh, 0, OW, yr);
    }
  }
}

void conv_nchw(const ConvParams& p, const GemmEpilogue& base, const float* x, const float* w, const float* b,
               const float* r, float* y);

Status conv_cpu(const CpuKernelArgs& a) {
  ConvParams p;
  KILN_TRY(read_conv(a, false, &p));
  GemmEpilogue base;
  KILN_TRY(fill_epilogue(a, &base));
  const float* x = a.inputs[0].as<float>();
  const float* w = a.inputs[1].as<float>();
  const float* b = a.has_input(2) ? a.inputs[2].as<float>() : nullptr;
  const float* r = a.has_input(3) && base.ep.residual ? a.inputs[3].as<float>() : nullptr;
  float* y = a.outputs[0].as<float>();
  if (!is_channels_last(a.attrs())) {
    conv_nchw(p, base, x, w, b, r, y);
    return Status::ok();
  }
  // Channels-last (runtime/ops/channels_last.h; group 1): the NCHW kernel between permutations.
  const int64_t x_n = p.N * p.C * p.in_size, y_n = p.N * p.M * p.out_size, w_n = p.M * p.C * p.kernel_size;
  std::vector<float> xf(static_cast<size_t>(x_n)), wf(static_cast<size_t>(w_n)), yf(static_cast<size_t>(y_n)), rf;
  permute_channels(x, p.N, p.in_size, p.C, false, xf.data());
  permute_channels(w, p.M, p.kernel_size, p.C, false, wf.data());
  if (r) {
    rf.resize(static_cast<size_t>(y_n));
    permute_channels(r, p.N, p.out_size, p.M, false, rf.data());
  }
  conv_nchw(p, base, xf.data(), wf.data(), b, r ? rf.data() : nullptr, yf.data());
  permute_channels(yf.data(), p.N, p.out_size, p.M, true, y);
  return Status::ok();
}

void conv_nchw(const ConvParams& p, const GemmEpilogue& base, const float* x, const float* w, const float* b,
               const float* r, float* y) {
  const int64_t Cg = p.C / p.group, Mg = p.M / p.group, Kg = Cg * p.kernel_size;
  if (Cg == 1 && Mg == 1 && p.in.size() <= 2) {
    depthwise_2d(x, w, y, p, base, b, r);
    return;
  }
  bool direct = true;  // 1x1, stride 1, no padding: the input is the column matrix
  for (size_t d = 0; d < p.in.size(); ++d)
    direct &= p.kernel[d] == 1 && p.strides[d] == 1 && p.pads_begin[d] == 0 && p.in[d] == p.out[d];
  thread_local std::vector<float> col;
  if (!direct) col.resize(static_cast<size_t>(Kg * p.out_size));
  for (int64_t n = 0; n < p.N; ++n) {
    for (int64_t g = 0; g < p.group; ++g) {
      const float* xg = x + (n * p.C + g * Cg) * p.in_size;
      const float* bmat = xg;
      if (!direct) {
        im2col(xg, Cg, p, col.data());
        bmat = col.data();
      }
      GemmEpilogue e = base;
      const int64_t out_off = (n * p.M + g * Mg) * p.out_size;
      if (b) {
        e.bias = b + g * Mg;
        e.bias_rs = 1;
        e.bias_cs = 0;
      }
      if (r) {
        e.residual = r + out_off;
        e.ldr = p.out_size;
      }
      linear::sgemm(false, false, Mg, p.out_size, Kg, w + g * Mg * Kg, Kg, bmat, p.out_size, y + out_off,
                    p.out_size, e);
    }
  }
}

// Scatter-adds col[(m, k...) row][input position] into y[m][output position] (one group).
void col2im(const float* col, int64_t channels, const ConvParams& p, float* y) {
  const size_t sp = p.in.size();
  const int64_t iw_n = p.in[sp - 1], ow_n = p.out[sp - 1], sw = p.strides[sp - 1];
  std::vector<int64_t> kpos(sp, 0), ipos(sp, 0);
  for (int64_t m = 0; m < channels; ++m) {
    float* ym = y + m * p.out_size;
    std::fill(kpos.begin(), kpos.end(), 0);
    for (int64_t kr = 0; kr < p.kernel_size; ++kr) {
      const float* src = col + (m * p.kernel_size + kr) * p.in_size;
      const int64_t woff = kpos[sp - 1] * p.dilations[sp - 1] - p.pads_begin[sp - 1];
      std::fill(ipos.begin(), ipos.end(), 0);
      for (int64_t irow = 0; irow < p.in_size / iw_n; ++irow) {
        int64_t dst = 0;
        bool inside = true;
        for (size_t d = 0; d + 1 < sp; ++d) {
          const int64_t o = ipos[d] * p.strides[d] - p.pads_begin[d] + kpos[d] * p.dilations[d];
          inside &= o >= 0 && o < p.out[d];
          dst = dst * p.out[d] + o;
        }
        if (inside) {
          float* yrow = ym + dst * ow_n;
          const float* srow = src + irow * iw_n;
          for (int64_t iw = 0; iw < iw_n; ++iw) {
            const int64_t ow = iw * sw + woff;
            if (ow >= 0 && ow < ow_n) yrow[ow] += srow[iw];
          }
        }
        for (int d = static_cast<int>(sp) - 2; d >= 0; --d) {
          if (++ipos[d] < p.in[d]) break;
          ipos[d] = 0;
        }
      }
      for (int d = static_cast<int>(sp) - 1; d >= 0; --d) {
        if (++kpos[d] < p.kernel[d]) break;
        kpos[d] = 0;
      }
    }
  }
}

Status conv_transpose_cpu(const CpuKernelArgs& a) {
  ConvParams p;
  KILN_TRY(read_conv(a, true, &p));
  GemmEpilogue post;
  KILN_TRY(fill_epilogue(a, &post));
  const int64_t Cg = p.C / p.group, Mg = p.M / p.group, rows = Mg * p.kernel_size;
  const float* x = a.inputs[0].as<float>();
  const float* w = a.inputs[1].as<float>();
  const float* b = a.has_input(2) ? a.inputs[2].as<float>() : nullptr;
  const float* r = a.has_input(3) && post.ep.residual ? a.inputs[3].as<float>() : nullptr;
  float* y = a.outputs[0].as<float>();
  thread_local std::vector<float> col;
  col.resize(static_cast<size_t>(rows * p.in_size));
  GemmEpilogue plain;
  plain.beta = 0.f;
  for (int64_t n = 0; n < p.N; ++n) {
    for (int64_t g = 0; g < p.group; ++g) {
      // col = W_g^T x X_g: W_g is [Cg][Mg * k], X_g is [Cg][in positions].
      linear::sgemm(true, false, rows, p.in_size, Cg, w + g * Cg * rows, rows, x + (n * p.C + g * Cg) * p.in_size,
                    p.in_size, col.data(), p.in_size, plain);
      float* yg = y + (n * p.M + g * Mg) * p.out_size;
      for (int64_t m = 0; m < Mg; ++m)
        std::fill(yg + m * p.out_size, yg + (m + 1) * p.out_size, b ? b[g * Mg + m] : 0.f);
      col2im(col.data(), Mg, p, yg);
    }
  }
  if (post.ep.act != linear::Activation::kNone || r) {
    post.beta = 0.f;
    const int64_t planes = p.N * p.M;
    for (int64_t i = 0; i < planes; ++i) {
      GemmEpilogue e = post;
      if (r) {
        e.residual = r + i * p.out_size;
        e.ldr = 0;
      }
      linear::apply_epilogue_row(e, 0, 0, p.out_size, y + i * p.out_size);
    }
  }
  return Status::ok();
}

// Strides (row, col) of a bias broadcast over an M x N matrix from its last two dims.
void bias_strides(const Shape& s, int64_t M, int64_t N, int64_t* rs, int64_t* cs) {
  const int64_t cn = s.empty() ? 1 : s.back();
  const int64_t cm = s.size() >= 2 ? s[s.size() - 2] : 1;
  *cs = cn == 1 ? 0 : 1;
  *rs = cm == 1 ? 0 : cn;
  (void)M;
  (void)N;
}

Status gemm_cpu(const CpuKernelArgs& a) {
  KILN_TRY(check_node(a));
  const bool ta = a.attrs().get_int("transA", 0) != 0, tb = a.attrs().get_int("transB", 0) != 0;
  const Shape& as = a.inputs[0].shape;
  const Shape& bs = a.inputs[1].shape;
  const int64_t M = a.outputs[0].shape[0], N = a.outputs[0].shape[1];
  const int64_t K = ta ? as[0] : as[1];
  GemmEpilogue e;
  KILN_TRY(fill_epilogue(a, &e));
  e.alpha = a.attrs().get_float("alpha", 1.f);
  e.beta = a.attrs().get_float("beta", 1.f);
  if (a.has_input(2)) {
    e.bias = a.inputs[2].as<float>();
    bias_strides(a.inputs[2].shape, M, N, &e.bias_rs, &e.bias_cs);
  }
  if (e.ep.residual) {
    e.residual = a.inputs[3].as<float>();
    e.ldr = N;
  }
  linear::sgemm(ta, tb, M, N, K, a.inputs[0].as<float>(), as[1], a.inputs[1].as<float>(), bs[1],
                a.outputs[0].as<float>(), N, e);
  return Status::ok();
}

Status matmul_cpu(const CpuKernelArgs& a) {
  KILN_TRY(check_node(a));
  Shape as = a.inputs[0].shape, bs = a.inputs[1].shape;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2), batch;
  KILN_TRY(broadcast_shapes(abatch, bbatch, &batch));
  GemmEpilogue e;
  KILN_TRY(fill_epilogue(a, &e));
  e.beta = 1.f;
  if (a.has_input(2)) {
    e.bias = a.inputs[2].as<float>();
    bias_strides(a.inputs[2].shape, M, N, &e.bias_rs, &e.bias_cs);
  }
  const float* r = e.ep.residual ? a.inputs[3].as<float>() : nullptr;
  const float* A = a.inputs[0].as<float>();
  const float* B = a.inputs[1].as<float>();
  float* Y = a.outputs[0].as<float>();
  const int64_t nb = shape_numel(batch);
  // B shared by every batch (weights): one tall GEMM over all batch rows, unless a per-row
  // bias would need the row index modulo M.
  if (shape_numel(bbatch) == 1 && shape_numel(abatch) == nb && e.bias_rs == 0) {
    if (r) {
      e.residual = r;
      e.ldr = N;
    }
    linear::sgemm(false, false, nb * M, N, K, A, K, B, N, Y, N, e);
    return Status::ok();
  }
  const std::vector<int64_t> ast = broadcast_strides(abatch, batch), bst = broadcast_strides(bbatch, batch);
  std::vector<int64_t> idx(batch.size(), 0);
  for (int64_t i = 0; i < nb; ++i) {
    int64_t ao = 0, bo = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      ao += idx[d] * ast[d];
      bo += idx[d] * bst[d];
    }
    GemmEpilogue ei = e;
    if (r) {
      ei.residual = r + i * M * N;
      ei.ldr = N;
    }
    linear::sgemm(false, false, M, N, K, A + ao * M * K, K, B + bo * K * N, N, Y + i * M * N, N, ei);
    advance_index(idx, batch, batch.size());
  }
  return Status::ok();
}

}  // namespace

void register_linear_cpu(CpuRegistry& r) {
  r.add("Conv", conv_cpu, CpuFloat16::kWidened).arity(2, 1).cost([](const Plan& p, const PlanNode& n) {
    return conv_flops(p, n, 1);
  });
  r.add("ConvTranspose", conv_transpose_cpu, CpuFloat16::kWidened).arity(2, 1).cost([](const Plan& p, const PlanNode& n) {
    return conv_flops(p, n, 1, true);
  });
  r.add("Gemm", gemm_cpu, CpuFloat16::kWidened).arity(2, 1).cost([](const Plan& p, const PlanNode& n) {
    return matmul_flops(p, n, n.attrs.get_int("transA", 0) != 0);
  });
  r.add("MatMul", matmul_cpu, CpuFloat16::kWidened).arity(2, 1).cost([](const Plan& p, const PlanNode& n) {
    return matmul_flops(p, n);
  });
}

}  // namespace kiln
