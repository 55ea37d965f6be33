// The CPU integer and FP8 kernels' column panels of a convolution (runtime/backends/cpu/
// quantize.cpp, quantize_fp8.cpp), over the shared geometry of runtime/backends/quantize_geometry.h.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/backends/quantize_geometry.h"

namespace kiln {

// The implicit im2col of a convolution's batch item as the GEMM's column side: panel[k * N + n]
// = convert(x element under kernel offset k at output position n), P(0) where the kernel reads
// padding. Shared by the integer and FP8 CPU kernels.
template <typename T, typename P, typename Convert>
void conv_panel(const QGemm& g, const T* B, int64_t b_off, P* panel, Convert convert) {
  const size_t nd = g.in_sp.size();
  int64_t ksz = 1;
  for (int64_t k : g.ks) ksz *= k;
  std::vector<int64_t> kp(nd), op(nd);
  for (int64_t k = 0; k < g.K; ++k) {
    // Channels-last: k = (kernel offset, channel), the channel fastest, and a position's channels
    // contiguous.
    int64_t r = g.channels_last ? k / g.C : k % ksz;
    for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {
      kp[d] = r % g.ks[d];
      r /= g.ks[d];
    }
    const T* xc = g.channels_last ? B + b_off + k % g.C : B + b_off + (k / ksz) * g.in_size;
    const int64_t pos_stride = g.channels_last ? g.C : 1;
    P* prow = panel + k * g.N;
    std::fill(op.begin(), op.end(), 0);
    for (int64_t n = 0; n < g.N; ++n) {
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < nd; ++d) {
        const int64_t ic = op[d] * g.strides[d] - g.pads[d] + kp[d] * g.dil[d];
        inside = inside && ic >= 0 && ic < g.in_sp[d];
        off = off * g.in_sp[d] + ic;
      }
      prow[n] = inside ? convert(xc[off * pos_stride]) : P(0);
      for (int64_t d = static_cast<int64_t>(nd) - 1; d >= 0; --d) {  // next output position
        if (++op[d] < g.out_sp[d]) break;
        op[d] = 0;
      }
    }
  }
}

}  // namespace kiln
