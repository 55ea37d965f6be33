// The Attention runtime op (made only by compiler/passes/fuse_attention.cpp; no ONNX schema):
//   Y = Softmax(scale * Q K^T + mask, axis=-1) V
//   inputs  0 Q    [batch..., Sq, D]
//           1 K    [batch..., Sk, D], or its transpose [batch..., D, Sk] with k_transposed=1
//           2 V    [batch..., Sk, Dv]
//           3 mask optional, additive, broadcastable to the scores [batch..., Sq, Sk]
//   output  0 Y    [batch..., Sq, Dv]
//   attrs   scale (float, default 1), k_transposed (int, default 0), half_scores (int, default
//           0: FP16 nodes with a mask set it) rounds each score, mask added, to float16 before
//           the softmax, as the separate FP16 Add would store it: a mask of -65504 (float32's
//           lowest after the saturating fp32->fp16 Cast) then absorbs the scores as the lowest
//           does in float32, so a fully masked row averages V as it does there;
//           bshd (int, default 0; rank 4 only): bits kBshdQ/K/V/Y mark operands stored
//           [batch, seq, heads, dim], the head split before the (0, 2, 1, 3) Transpose that
//           exporters write around attention (the fusion absorbs those Transposes: the kernels
//           read and write through strides). A K stored so is [batch, Sk, heads, D]
//           (k_transposed 0);
//           qkv_packed (int, default 0; needs bshd's Q, K and V bits, k_transposed 0): Q, K and
//           V are stored [batch, seq, 3 * heads, dim], one projection's output with Q's heads
//           first, then K's, then V's (compiler/passes/pack_qkv.cpp passes the same tensor as
//           all three): Q reads heads [0, H) of its input, K [H, 2H), V [2H, 3H).
// with 0..2 batch dims, the same on Q, K, V and Y. A row whose scores are all -inf gives NaN,
// as ONNX Runtime's (and kiln's) Softmax does on such a row.
//
// Both backends index every operand through element strides over one [batch, heads, row, col]
// space, derived here from the shapes they get at launch (dynamic plans change them), so the
// CPU and OpenCL kernels agree on the layout by construction.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "runtime/core/attrs.h"
#include "runtime/core/shape.h"
#include "runtime/core/status.h"

namespace kiln::attngeo {

constexpr const char* kOp = "Attention";
constexpr const char* kAttrScale = "scale";
constexpr const char* kAttrKTransposed = "k_transposed";
constexpr const char* kAttrHalfScores = "half_scores";
constexpr const char* kAttrBshd = "bshd";
constexpr const char* kAttrQkvPacked = "qkv_packed";
constexpr size_t kMaskInput = 3;
enum : int64_t { kBshdQ = 1, kBshdK = 2, kBshdV = 4, kBshdY = 8, kBshdAll = 15 };

// Element strides of one operand over [batch, heads, row, col]; 0 where it broadcasts.
using Strides = std::array<int64_t, 4>;

struct Geometry {
  int64_t batch = 1, heads = 1;  // rank 4: [B, H]; rank 3: [1, N]; rank 2: [1, 1]
  int64_t sq = 0, sk = 0, d = 0, dv = 0;
  Strides q{}, k{}, v{}, y{}, mask{};  // k: over [.., key, d] whatever its memory layout
  int64_t q_off = 0, k_off = 0, v_off = 0;  // element offsets of Q, K, V in their inputs (qkv_packed)
  bool has_mask = false;
  float scale = 1.f;
  bool half_scores = false;
};

namespace detail {

inline std::string dims(const Shape& s) { return shape_str(s); }

// Row-major strides of `s` (rank 2..4) over [batch, heads, row, col].
inline Strides dense(const Shape& s) {
  Strides st{};
  const size_t r = s.size();
  st[3] = 1;
  st[2] = s[r - 1];
  st[1] = r >= 3 ? s[r - 1] * s[r - 2] : 0;
  st[0] = r >= 4 ? st[1] * s[r - 3] : 0;
  return st;
}

// [batch, seq, heads, dim] <-> [batch, heads, seq, dim] (shapes and strides alike).
template <typename T>
T swap12(T s) {
  std::swap(s[1], s[2]);
  return s;
}
}  // namespace detail

// One operand's share of a packed [batch, seq, 3 * heads, dim] input (qkv_packed), else `s`.
inline Shape unpacked(const Shape& s, const Attributes& attrs) {
  if (s.size() != 4 || attrs.get_int(kAttrQkvPacked, 0) == 0) return s;
  Shape u = s;
  u[2] /= 3;
  return u;
}

// The [batch..., Sq, Dv] output of Q as stored and V's head dim, as the node stores it (bshd's Y bit).
inline Shape output_shape(const Shape& q_stored, int64_t dv, const Attributes& attrs) {
  const int64_t bshd = attrs.get_int(kAttrBshd, 0);
  Shape q = unpacked(q_stored, attrs);
  if (q.size() == 4 && (bshd & kBshdQ)) q = detail::swap12(q);
  Shape y(q.begin(), q.end() - 1);
  y.push_back(dv);
  return y.size() == 4 && (bshd & kBshdY) ? detail::swap12(y) : y;
}

// Validates the operands' shapes against each other (the plan is untrusted) and fills `g`.
// The shapes are the tensors' as stored (bshd operands [batch, seq, heads, dim]).
inline Status geometry(const Shape& q_in, const Shape& k_in, const Shape& v_in, const Shape* mask, const Shape& y_in,
                       const Attributes& attrs, Geometry* g) {
  const size_t r = q_in.size();
  const bool kt = attrs.get_int(kAttrKTransposed, 0) != 0;
  const int64_t bshd = attrs.get_int(kAttrBshd, 0);
  auto bad = [&](const std::string& why) {
    return invalid_plan("Attention: " + why + " (Q " + detail::dims(q_in) + ", K " + detail::dims(k_in) + ", V " +
                        detail::dims(v_in) + (mask ? ", mask " + detail::dims(*mask) : std::string()) + ", Y " +
                        detail::dims(y_in) + ")");
  };
  if (r < 2 || r > 4) return bad("Q must have rank 2 to 4");
  if (k_in.size() != r || v_in.size() != r || y_in.size() != r) return bad("Q, K, V and Y must have the same rank");
  if (bshd < 0 || bshd > kBshdAll) return bad("bshd must be 0 to 15");
  if (bshd && r != 4) return bad("[batch, seq, heads, dim] operands (bshd) need rank 4");
  if ((bshd & kBshdK) && kt) return bad("a K stored [batch, seq, heads, dim] is not transposed");
  const bool packed = attrs.get_int(kAttrQkvPacked, 0) != 0;
  constexpr int64_t kQkv = kBshdQ | kBshdK | kBshdV;
  if (packed && ((bshd & kQkv) != kQkv || kt))
    return bad("packed Q, K and V (qkv_packed) must be stored [batch, seq, 3 * heads, dim], K not transposed");
  if (packed && (q_in[2] % 3 || k_in[2] % 3 || v_in[2] % 3))
    return bad("packed Q, K and V (qkv_packed) need their heads dim (the third) divisible by 3");
  // The operands as [batch, heads, seq, dim], whatever their storage.
  auto logical = [&](const Shape& s, int64_t bit) {
    const Shape u = bit == kBshdY ? s : unpacked(s, attrs);
    return bshd & bit ? detail::swap12(u) : u;
  };
  const Shape q = logical(q_in, kBshdQ), k = logical(k_in, kBshdK), v = logical(v_in, kBshdV), y = logical(y_in, kBshdY);
  auto strides = [&](const Shape& stored, int64_t bit) {
    return bshd & bit ? detail::swap12(detail::dense(stored)) : detail::dense(stored);
  };
  for (size_t i = 0; i + 2 < r; ++i)
    if (k[i] != q[i] || v[i] != q[i] || y[i] != q[i]) return bad("Q, K, V and Y must have the same batch dims");
  for (const Shape* s : {&q, &k, &v, &y})
    for (int64_t dim : *s)
      if (dim < 0) return bad("negative dim");
  g->sq = q[r - 2];
  g->d = q[r - 1];
  g->sk = kt ? k[r - 1] : k[r - 2];
  if ((kt ? k[r - 2] : k[r - 1]) != g->d) return bad("K's head dim differs from Q's");
  if (v[r - 2] != g->sk) return bad("V's key count differs from K's");
  g->dv = v[r - 1];
  if (y[r - 2] != g->sq || y[r - 1] != g->dv) return bad("Y must be [.., Sq, Dv]");
  g->batch = r == 4 ? q[0] : 1;
  g->heads = r == 4 ? q[1] : r == 3 ? q[0] : 1;
  g->q = strides(q_in, kBshdQ);
  g->v = strides(v_in, kBshdV);
  g->y = strides(y_in, kBshdY);
  g->k = strides(k_in, kBshdK);
  if (kt) std::swap(g->k[2], g->k[3]);
  if (packed) {
    g->q_off = 0;
    g->k_off = k_in[2] / 3 * k_in[3];
    g->v_off = 2 * (v_in[2] / 3) * v_in[3];
  }
  g->has_mask = mask != nullptr;
  if (mask) {
    const Shape& m = *mask;
    if (m.size() > r) return bad("the mask has a higher rank than the scores");
    // Right-aligned onto the scores [batch..., Sq, Sk]; size-1 dims broadcast.
    const Shape scores = [&] {
      Shape s(q.begin(), q.end() - 1);
      s.push_back(g->sk);
      return s;
    }();
    Shape full(r - m.size(), 1);
    full.insert(full.end(), m.begin(), m.end());
    for (size_t i = 0; i < r; ++i)
      if (full[i] != 1 && full[i] != scores[i]) return bad("the mask does not broadcast to the scores");
    Strides st = detail::dense(full);
    // Slot of each aligned dim in [batch, heads, row, col].
    const size_t first = 4 - r;
    for (size_t i = 0; i < r; ++i)
      if (full[i] == 1) st[first + i] = 0;
    for (size_t s = 0; s < first; ++s) st[s] = 0;
    g->mask = st;
  }
  g->scale = attrs.get_float(kAttrScale, 1.f);
  g->half_scores = attrs.get_int(kAttrHalfScores, 0) != 0;
  return Status::ok();
}

}  // namespace kiln::attngeo
