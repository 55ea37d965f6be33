#include "runtime/backends/cpu/fast_epilogue_loop.h"

#include <algorithm>
#include <cmath>

#include "runtime/backends/cpu/fast_loops.h"
#include "runtime/backends/cpu/fast_quantize.h"

namespace kiln {
namespace {

constexpr int64_t kBlock = 1024;

// v = act(r + res) (before) or act(r) + res (after); Relu and none inline, others by the shared
// scalar formula.
KILN_SIMD_CLONES void combine(const linear::Epilogue& ep, const float* r, const float* res, int64_t n, float* v) {
  const bool before = ep.residual == linear::kResidualBeforeActivation;
  const bool after = ep.residual == linear::kResidualAfterActivation;
  if (ep.act == linear::Activation::kNone || ep.act == linear::Activation::kRelu) {
    const bool relu = ep.act == linear::Activation::kRelu;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      float x = before ? r[i] + res[i] : r[i];
      if (relu) x = x < 0.f ? 0.f : x;
      v[i] = after ? x + res[i] : x;
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    float x = before ? r[i] + res[i] : r[i];
    x = linear::apply_activation(ep.act, x, ep.act_alpha, ep.act_beta);
    v[i] = after ? x + res[i] : x;
  }
}

// q = min(max(rint(v / sy) + yzp, lo), hi), NaN to lo (fmax's choice in the reference).
KILN_SIMD_CLONES void requant_s8(const float* v, int64_t n, float sy, float yzp, int8_t* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float q = std::nearbyint(v[i] / sy) + yzp;
    q = !(q >= -128.f) ? -128.f : q;
    y[i] = static_cast<int8_t>(q > 127.f ? 127.f : q);
  }
}
KILN_SIMD_CLONES void requant_u8(const float* v, int64_t n, float sy, float yzp, uint8_t* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    float q = std::nearbyint(v[i] / sy) + yzp;
    q = !(q >= 0.f) ? 0.f : q;
    y[i] = static_cast<uint8_t>(q > 255.f ? 255.f : q);
  }
}

}  // namespace

void loop_epilogue_range(const LoopEpilogue& e, const float* r, const void* res, void* y, int64_t b, int64_t n) {
  float rbuf[kBlock], vbuf[kBlock];
  for (int64_t o = b; o < b + n; o += kBlock) {
    const int64_t len = std::min(kBlock, b + n - o);
    const float* rv = rbuf;
    if (e.res_type == DType::kInt8) dequantize_s8(static_cast<const int8_t*>(res) + o, len, e.res_scale, e.res_zp, rbuf);
    else if (e.res_type == DType::kUInt8) dequantize_u8(static_cast<const uint8_t*>(res) + o, len, e.res_scale, e.res_zp, rbuf);
    else if (res) rv = static_cast<const float*>(res) + o;  // else no residual: rv is not read
    float* v = e.out_type == DType::kFloat32 ? static_cast<float*>(y) + o : vbuf;
    combine(e.ep, r + o, rv, len, v);
    if (e.out_type == DType::kInt8) requant_s8(v, len, e.sy, e.yzp, static_cast<int8_t*>(y) + o);
    else if (e.out_type == DType::kUInt8) requant_u8(v, len, e.sy, e.yzp, static_cast<uint8_t*>(y) + o);
  }
}

}  // namespace kiln
