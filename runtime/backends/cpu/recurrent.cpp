// RNN, GRU and LSTM reference kernels, written from the ONNX equations (canonical node:
// runtime/backends/recurrent_geometry.h). Each (direction, batch item) runs its own sequence:
// steps past its sequence_lens entry leave the state alone and write zeros to Y.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/backends/cpu/linear_sgemm.h"
#include "runtime/backends/recurrent_geometry.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/profile/node_cost.h"

namespace kiln {
namespace {

using rnngeo::Cell;

float activate(int64_t code, float x, float alpha, float beta) {
  switch (code) {
    case rnngeo::kRelu: return std::max(x, 0.0f);
    case rnngeo::kTanh: return std::tanh(x);
    case rnngeo::kSigmoid: return 1.0f / (1.0f + std::exp(-x));
    case rnngeo::kAffine: return alpha * x + beta;
    case rnngeo::kLeakyRelu: return x >= 0 ? x : alpha * x;
    case rnngeo::kThresholdedRelu: return x >= alpha ? x : 0.0f;
    case rnngeo::kScaledTanh: return alpha * std::tanh(beta * x);
    case rnngeo::kHardSigmoid: return std::min(std::max(alpha * x + beta, 0.0f), 1.0f);
    case rnngeo::kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1.0f);
    case rnngeo::kSoftsign: return x / (1.0f + std::fabs(x));
    default: return x > 20.0f ? x : std::log1p(std::exp(x));  // Softplus
  }
}

struct Fn {
  int64_t code;
  float alpha, beta;
  float operator()(float x) const { return activate(code, x, alpha, beta); }
};

Status recurrent_cpu(const CpuKernelArgs& a, Cell cell) {
  std::vector<Shape> in_shapes, out_shapes;
  std::vector<bool> present;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    in_shapes.push_back(a.inputs[i].shape);
    present.push_back(a.has_input(i));
  }
  for (const TensorView& o : a.outputs) out_shapes.push_back(o.shape);
  rnngeo::Geometry g;
  KILN_TRY(rnngeo::check(cell, a.attrs(), in_shapes, present, out_shapes, &g));
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.has_input(i) && a.inputs[i].dtype != (i == 4 ? DType::kInt32 : DType::kFloat32))
      return invalid_plan(a.node.op + " input " + std::to_string(i) + " has dtype " + dtype_name(a.inputs[i].dtype));
  for (const TensorView& o : a.outputs)
    if (o.dtype != DType::kFloat32) return invalid_plan(a.node.op + " outputs must be float32");
  const int64_t G = rnngeo::gates(cell), H = g.hidden, I = g.input, S = g.seq, B = g.batch;
  const int64_t n_act = rnngeo::activations_per_direction(cell);
  const int64_t mask = a.attrs().get_int("output_mask", 0);
  auto out = [&](int i) -> float* {
    const int slot = rnngeo::output_slot(mask, i);
    return slot < 0 ? nullptr : a.outputs[slot].as<float>();
  };
  float *y = out(0), *y_h = out(1), *y_c = cell == Cell::kLstm ? out(2) : nullptr;
  auto input = [&](size_t i) -> const float* { return a.has_input(i) ? a.inputs[i].as<float>() : nullptr; };
  const float *x = input(0), *w = input(1), *r = input(2), *bias = input(3);
  const float *h0 = input(5), *c0 = cell == Cell::kLstm ? input(6) : nullptr, *p = cell == Cell::kLstm ? input(7) : nullptr;
  const int32_t* lens = a.has_input(4) ? a.inputs[4].as<int32_t>() : nullptr;
  const bool lbr = a.attrs().get_int("linear_before_reset", 0) != 0;
  const bool input_forget = a.attrs().get_int("input_forget", 0) != 0;
  auto clip = [&](float v) { return g.has_clip ? std::min(std::max(v, -g.clip), g.clip) : v; };

  std::vector<int64_t> len(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    len[b] = lens ? lens[b] : S;
    if (len[b] < 0 || len[b] > S)
      return invalid_argument("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len[b]) +
                              " is outside [0, " + std::to_string(S) + "]");
  }
  const int64_t steps = B ? *std::max_element(len.begin(), len.end()) : 0;
  // Per batch item: hidden and cell state, the recurrent products R h of every gate, GRU's
  // reset gate and (linear_before_reset=0) its (r * h) R_h product.
  std::vector<float> h(B * H), c(B * H), rr(B * G * H), rg(B * H), rh(B * H), rrh(B * H);
  std::vector<float> proj(static_cast<size_t>(S * B * G * H)), pbias(G * H);
  const linear::GemmEpilogue plain;
  for (int64_t d = 0; d < g.dirs; ++d) {
    const float* wd = w + d * G * H * I;
    const float* rd = r + d * G * H * H;
    const float* wb = bias ? bias + d * 2 * G * H : nullptr;
    const float* rb = bias ? wb + G * H : nullptr;
    // The input's share of every gate at every step at once (one GEMM, rows in X's order):
    // W x + Wb + Rb, except GRU's hidden gate, whose Rb goes inside the reset product.
    for (int64_t q = 0; q < G * H; ++q)
      pbias[q] = bias ? wb[q] + (cell == Cell::kGru && q >= 2 * H ? 0.0f : rb[q]) : 0.0f;
    linear::GemmEpilogue e;
    e.bias = pbias.data();
    e.bias_cs = 1;
    linear::sgemm(false, true, S * B, G * H, I, x, I, wd, I, proj.data(), G * H, e);
    const float* pd = p ? p + d * 3 * H : nullptr;
    Fn fn[3];
    for (int64_t k = 0; k < n_act; ++k) {
      const size_t at = static_cast<size_t>(d * n_act + k);
      fn[k] = Fn{g.acts[at], g.alpha[at], g.beta[at]};
    }
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < H; ++j) {
        h[b * H + j] = h0 ? h0[g.state_at(d, b) + j] : 0.0f;
        c[b * H + j] = c0 ? c0[g.state_at(d, b) + j] : 0.0f;
      }
    for (int64_t step = 0; step < steps; ++step) {
      // Step `step` of every item at once: item b is at time t(b); items past their length
      // are computed too but left unchanged.
      linear::sgemm(false, true, B, G * H, H, h.data(), H, rd, H, rr.data(), G * H, plain);
      auto pre = [&](int64_t b, int64_t q) {
        const int64_t t = g.reversed(d) ? len[b] - 1 - step : step;
        return proj[g.row_at(t, b) * G * H + q] + rr[b * G * H + q];
      };
      if (cell == Cell::kGru) {
        for (int64_t b = 0; b < B; ++b)
          for (int64_t j = 0; j < H; ++j) {
            rg[b * H + j] = step < len[b] ? fn[0](clip(pre(b, H + j))) : 0.0f;
            rh[b * H + j] = rg[b * H + j] * h[b * H + j];
          }
        if (!lbr) linear::sgemm(false, true, B, H, H, rh.data(), H, rd + 2 * H * H, H, rrh.data(), H, plain);
      }
      for (int64_t b = 0; b < B; ++b) {
        if (step >= len[b]) continue;
        const int64_t t = g.reversed(d) ? len[b] - 1 - step : step;
        float* hb = h.data() + b * H;
        float* cb = c.data() + b * H;
        for (int64_t j = 0; j < H; ++j) {
          if (cell == Cell::kRnn) {
            hb[j] = fn[0](clip(pre(b, j)));
          } else if (cell == Cell::kGru) {  // gates z, r, h
            const float z = fn[0](clip(pre(b, j)));
            const float rbh = rb ? rb[2 * H + j] : 0.0f;
            const float proj_h = proj[g.row_at(t, b) * G * H + 2 * H + j];
            const float hh = lbr ? proj_h + rg[b * H + j] * (rr[b * G * H + 2 * H + j] + rbh) : proj_h + rrh[b * H + j] + rbh;
            hb[j] = (1.0f - z) * fn[1](clip(hh)) + z * hb[j];
          } else {  // LSTM gates i, o, f, c; peepholes i, o, f
            const float i_g = fn[0](clip(pre(b, j) + (pd ? pd[j] * cb[j] : 0.0f)));
            const float f_g =
                input_forget ? 1.0f - i_g : fn[0](clip(pre(b, 2 * H + j) + (pd ? pd[2 * H + j] * cb[j] : 0.0f)));
            const float c_g = fn[1](clip(pre(b, 3 * H + j)));
            cb[j] = f_g * cb[j] + i_g * c_g;
            const float o_g = fn[0](clip(pre(b, H + j) + (pd ? pd[H + j] * cb[j] : 0.0f)));
            hb[j] = o_g * fn[2](cb[j]);
          }
        }
        if (y) std::memcpy(y + g.y_at(t, d, b), hb, H * sizeof(float));
      }
    }
    for (int64_t b = 0; b < B; ++b) {
      if (y)
        for (int64_t t = len[b]; t < S; ++t) std::memset(y + g.y_at(t, d, b), 0, H * sizeof(float));
      if (y_h) std::memcpy(y_h + g.state_at(d, b), h.data() + b * H, H * sizeof(float));
      if (y_c) std::memcpy(y_c + g.state_at(d, b), c.data() + b * H, H * sizeof(float));
    }
  }
  return Status::ok();
}

Status rnn_cpu(const CpuKernelArgs& a) { return recurrent_cpu(a, Cell::kRnn); }
Status gru_cpu(const CpuKernelArgs& a) { return recurrent_cpu(a, Cell::kGru); }
Status lstm_cpu(const CpuKernelArgs& a) { return recurrent_cpu(a, Cell::kLstm); }

// Multiply-adds of every step of every sequence, all directions: W x + R h
// (W [dirs, gates x hidden, input], R [dirs, gates x hidden, hidden]).
double recurrent_cost(const Plan& p, const PlanNode& n) {
  if (n.inputs.size() < 3 || n.inputs[0] < 0 || n.inputs[1] < 0 || n.inputs[2] < 0) return output_elements(p, n);
  const Shape& x = p.tensors[n.inputs[0]].shape;
  const double steps = x.size() == 3 && x[2] ? static_cast<double>(shape_numel(x) / x[2]) : 0.0;
  return 2.0 * steps * (input_elements(p, n, 1) + input_elements(p, n, 2));
}

}  // namespace

// X, W and R are required; the outputs present are given by output_mask (at least one).
void register_recurrent_cpu(CpuRegistry& r) {
  r.add("RNN", rnn_cpu).arity(3, 1).cost(recurrent_cost);
  r.add("GRU", gru_cpu).arity(3, 1).cost(recurrent_cost);
  r.add("LSTM", lstm_cpu).arity(3, 1).cost(recurrent_cost);
}

}  // namespace kiln
