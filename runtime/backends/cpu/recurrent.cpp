// RNN, GRU and LSTM reference kernels, written from the ONNX equations (canonical node:
// runtime/backends/recurrent_geometry.h). Each (direction, batch item) runs its own sequence:
// steps past its sequence_lens entry leave the state alone and write zeros to Y.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/backends/recurrent_geometry.h"
#include "runtime/ops/kernel_api.h"

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

// dot(row[0..n), v[0..n))
float dot(const float* row, const float* v, int64_t n) {
  float s = 0;
  for (int64_t k = 0; k < n; ++k) s += row[k] * v[k];
  return s;
}

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

  std::vector<float> h(H), c(H), h_new(H), pre(G * H), rh(H);
  for (int64_t d = 0; d < g.dirs; ++d) {
    const float* wd = w + d * G * H * I;
    const float* rd = r + d * G * H * H;
    const float* wb = bias ? bias + d * 2 * G * H : nullptr;
    const float* rb = bias ? wb + G * H : nullptr;
    const float* pd = p ? p + d * 3 * H : nullptr;
    Fn fn[3];
    for (int64_t k = 0; k < n_act; ++k) {
      const size_t at = static_cast<size_t>(d * n_act + k);
      fn[k] = Fn{g.acts[at], g.alpha[at], g.beta[at]};
    }
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = lens ? lens[b] : S;
      if (len < 0 || len > S)
        return invalid_argument("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) +
                                " is outside [0, " + std::to_string(S) + "]");
      const int64_t st = g.state_at(d, b);
      for (int64_t j = 0; j < H; ++j) {
        h[j] = h0 ? h0[st + j] : 0.0f;
        c[j] = c0 ? c0[st + j] : 0.0f;
      }
      for (int64_t step = 0; step < len; ++step) {
        const int64_t t = g.reversed(d) ? len - 1 - step : step;
        const float* xt = x + g.x_at(t, b);
        // Pre-activations of every gate: W x + Wb (+ R h + Rb, except GRU's hidden gate).
        for (int64_t q = 0; q < G * H; ++q) {
          float v = dot(wd + q * I, xt, I) + (wb ? wb[q] : 0.0f);
          if (!(cell == Cell::kGru && q >= 2 * H)) v += dot(rd + q * H, h.data(), H) + (rb ? rb[q] : 0.0f);
          pre[q] = v;
        }
        if (cell == Cell::kRnn) {
          for (int64_t j = 0; j < H; ++j) h_new[j] = fn[0](clip(pre[j]));
        } else if (cell == Cell::kGru) {  // gates z, r, h
          for (int64_t j = 0; j < H; ++j) rh[j] = fn[0](clip(pre[H + j]));  // r
          for (int64_t j = 0; j < H; ++j) {
            const float z = fn[0](clip(pre[j]));
            const float* rh_row = rd + (2 * H + j) * H;
            const float rbh = rb ? rb[2 * H + j] : 0.0f;
            float hh;
            if (lbr) {
              hh = pre[2 * H + j] + rh[j] * (dot(rh_row, h.data(), H) + rbh);
            } else {
              float s = rbh;
              for (int64_t k = 0; k < H; ++k) s += rh_row[k] * rh[k] * h[k];
              hh = pre[2 * H + j] + s;
            }
            h_new[j] = (1.0f - z) * fn[1](clip(hh)) + z * h[j];
          }
        } else {  // LSTM gates i, o, f, c; peepholes i, o, f
          for (int64_t j = 0; j < H; ++j) {
            const float i_g = fn[0](clip(pre[j] + (pd ? pd[j] * c[j] : 0.0f)));
            const float f_g = input_forget ? 1.0f - i_g : fn[0](clip(pre[2 * H + j] + (pd ? pd[2 * H + j] * c[j] : 0.0f)));
            const float c_g = fn[1](clip(pre[3 * H + j]));
            c[j] = f_g * c[j] + i_g * c_g;
            const float o_g = fn[0](clip(pre[H + j] + (pd ? pd[H + j] * c[j] : 0.0f)));
            h_new[j] = o_g * fn[2](c[j]);
          }
        }
        std::copy(h_new.begin(), h_new.end(), h.begin());
        if (y) std::memcpy(y + g.y_at(t, d, b), h.data(), H * sizeof(float));
      }
      if (y)
        for (int64_t t = len; t < S; ++t) std::memset(y + g.y_at(t, d, b), 0, H * sizeof(float));
      if (y_h) std::memcpy(y_h + st, h.data(), H * sizeof(float));
      if (y_c) std::memcpy(y_c + st, c.data(), H * sizeof(float));
    }
  }
  return Status::ok();
}

Status rnn_cpu(const CpuKernelArgs& a) { return recurrent_cpu(a, Cell::kRnn); }
Status gru_cpu(const CpuKernelArgs& a) { return recurrent_cpu(a, Cell::kGru); }
Status lstm_cpu(const CpuKernelArgs& a) { return recurrent_cpu(a, Cell::kLstm); }

}  // namespace

void register_recurrent_cpu(CpuRegistry& r) {
  r.add("RNN", rnn_cpu);
  r.add("GRU", gru_cpu);
  r.add("LSTM", lstm_cpu);
}

}  // namespace kiln
