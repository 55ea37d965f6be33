// The canonical form of RNN, GRU and LSTM nodes that the compiler makes (compiler/ops/recurrent.cpp)
// and both backends run: operand layout, attributes, activation codes and index geometry.
// Header-only so the CPU and OpenCL kernels agree by construction; `check` validates an
// untrusted node's operands before a kernel indexes them.
//
//   inputs   X, W, R, B, sequence_lens, initial_h[, initial_c, P (LSTM)]; absent: -1
//   outputs  the present ones of Y, Y_h[, Y_c], in order; output_mask bit i: output i present
//   attrs    hidden_size; direction_mode 0 forward, 1 reverse, 2 bidirectional; layout 0|1;
//            clip (absent: none); activation_codes, activation_alpha, activation_beta (one
//            entry per activation per direction, f[, g[, h]], forward first);
//            linear_before_reset (GRU), input_forget (LSTM)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/shape.h"
#include "runtime/core/status.h"

namespace kiln::rnngeo {

enum class Cell { kRnn = 0, kGru = 1, kLstm = 2 };

// Activation codes, shared with kernels/recurrent.cl.
enum Activation : int64_t {
  kRelu = 0, kTanh = 1, kSigmoid = 2, kAffine = 3, kLeakyRelu = 4, kThresholdedRelu = 5,
  kScaledTanh = 6, kHardSigmoid = 7, kElu = 8, kSoftsign = 9, kSoftplus = 10,
};
constexpr int64_t kNumActivations = 11;

inline Cell cell_of(const std::string& op) {
  return op == "LSTM" ? Cell::kLstm : op == "GRU" ? Cell::kGru : Cell::kRnn;
}
inline int64_t gates(Cell c) { return c == Cell::kLstm ? 4 : c == Cell::kGru ? 3 : 1; }
inline int64_t activations_per_direction(Cell c) { return c == Cell::kLstm ? 3 : c == Cell::kGru ? 2 : 1; }
inline int64_t num_outputs(Cell c) { return c == Cell::kLstm ? 3 : 2; }

struct Geometry {
  int64_t seq = 0, batch = 0, input = 0, hidden = 0, dirs = 1;
  int64_t mode = 0;    // direction_mode
  int64_t layout = 0;  // 0: [seq, batch, ...]; 1: [batch, seq, ...]
  bool has_clip = false;
  float clip = 0;
  std::vector<int64_t> acts;
  std::vector<float> alpha, beta;

  // Direction d runs backwards in time.
  bool reversed(int64_t d) const { return mode == 1 || (mode == 2 && d == 1); }
  // Element offsets of X[t, b, 0], Y[t, d, b, 0] and the states' [d, b, 0] in the layout.
  int64_t row_at(int64_t t, int64_t b) const { return layout ? b * seq + t : t * batch + b; }  // of X as [rows, input]
  int64_t x_at(int64_t t, int64_t b) const { return row_at(t, b) * input; }
  int64_t y_at(int64_t t, int64_t d, int64_t b) const {
    return (layout ? (b * seq + t) * dirs + d : (t * dirs + d) * batch + b) * hidden;
  }
  int64_t state_at(int64_t d, int64_t b) const { return (layout ? b * dirs + d : d * batch + b) * hidden; }
  Shape y_shape() const { return layout ? Shape{batch, seq, dirs, hidden} : Shape{seq, dirs, batch, hidden}; }
  Shape state_shape() const { return layout ? Shape{batch, dirs, hidden} : Shape{dirs, batch, hidden}; }
};

// Position in the node's output list of output `i` (0 Y, 1 Y_h, 2 Y_c), or -1 when absent.
inline int output_slot(int64_t mask, int i) {
  if (!((mask >> i) & 1)) return -1;
  int slot = 0;
  for (int k = 0; k < i; ++k) slot += (mask >> k) & 1;
  return slot;
}

// Checks a canonical node's attributes and operand shapes (`present[i]`: input i is there) and
// fills *g. Every index a kernel computes stays inside the operands when this passes.
inline Status check(Cell cell, const Attributes& a, const std::vector<Shape>& in, const std::vector<bool>& present,
                    const std::vector<Shape>& out, Geometry* g) {
  const std::string op = cell == Cell::kLstm ? "LSTM" : cell == Cell::kGru ? "GRU" : "RNN";
  auto bad = [&](const std::string& m) { return invalid_plan(op + " node: " + m); };
  const size_t n_in = cell == Cell::kLstm ? 8 : 6;
  if (in.size() < 3 || present.size() != in.size() || in.size() > n_in || !present[0] || !present[1] || !present[2])
    return bad("needs X, W and R");
  g->mode = a.get_int("direction_mode", -1);
  g->layout = a.get_int("layout", 0);
  g->hidden = a.get_int("hidden_size", -1);
  if (g->mode < 0 || g->mode > 2 || (g->layout != 0 && g->layout != 1) || g->hidden < 1)
    return bad("bad direction_mode, layout or hidden_size");
  g->dirs = g->mode == 2 ? 2 : 1;
  const Shape& x = in[0];
  if (x.size() != 3) return bad("X must have rank 3");
  g->seq = g->layout ? x[1] : x[0];
  g->batch = g->layout ? x[0] : x[1];
  g->input = x[2];
  const int64_t G = gates(cell), D = g->dirs, H = g->hidden;
  if (in[1] != Shape{D, G * H, g->input} || in[2] != Shape{D, G * H, H}) return bad("W or R has the wrong shape");
  if (in.size() > 3 && present[3] && in[3] != Shape{D, 2 * G * H}) return bad("B has the wrong shape");
  if (in.size() > 4 && present[4] && in[4] != Shape{g->batch}) return bad("sequence_lens has the wrong shape");
  for (size_t i = 5; i < std::min<size_t>(in.size(), 7); ++i)
    if (present[i] && in[i] != g->state_shape()) return bad("an initial state has the wrong shape");
  if (in.size() > 7 && present[7] && in[7] != Shape{D, 3 * H}) return bad("P has the wrong shape");
  const int64_t mask = a.get_int("output_mask", 0);
  if (mask < 0 || mask >= (int64_t{1} << num_outputs(cell))) return bad("bad output_mask");
  for (int i = 0; i < num_outputs(cell); ++i) {
    const int slot = output_slot(mask, i);
    if (slot < 0) continue;
    if (static_cast<size_t>(slot) >= out.size() || out[slot] != (i == 0 ? g->y_shape() : g->state_shape()))
      return bad("output " + std::to_string(i) + " has the wrong shape");
  }
  g->acts = a.get_ints("activation_codes");
  g->alpha = a.get_floats("activation_alpha");
  g->beta = a.get_floats("activation_beta");
  const size_t n_act = static_cast<size_t>(activations_per_direction(cell) * D);
  if (g->acts.size() != n_act || g->alpha.size() != n_act || g->beta.size() != n_act) return bad("bad activations");
  for (int64_t c : g->acts)
    if (c < 0 || c >= kNumActivations) return bad("unknown activation code " + std::to_string(c));
  g->has_clip = a.has("clip");
  g->clip = a.get_float("clip", 0);
  return Status::ok();
}

}  // namespace kiln::rnngeo
