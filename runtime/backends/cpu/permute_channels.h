// The NHWC <-> NCHW permutations the cpu reference kernels of channels-last nodes
// (runtime/ops/channels_last.h) run around their NCHW loops: the oracle the OpenCL kernels are
// tested against, not a fast path.
#pragma once
#include <cstdint>

namespace kiln {

// out[n][c][s] = in[n][s][c] for n < outer, c < C, s < S (channels_last = false turns
// [outer, S, C] into [outer, C, S]; true turns it back).
template <typename T>
void permute_channels(const T* in, int64_t outer, int64_t S, int64_t C, bool channels_last, T* out) {
  for (int64_t n = 0; n < outer; ++n)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t nhwc = (n * S + s) * C + c, nchw = (n * C + c) * S + s;
        if (channels_last) out[nhwc] = in[nchw];
        else out[nchw] = in[nhwc];
      }
}

}  // namespace kiln
