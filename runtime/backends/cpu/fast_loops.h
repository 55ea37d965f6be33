// The cpu fast path's element loops: the instruction sets their hot functions are cloned for,
// and one way to split a loop over a node's OpenMP team.
#pragma once
#include <algorithm>
#include <cstdint>

// A function compiled for AVX-512, AVX2 and baseline x86-64, the best picked at load time (on
// plain functions only: clang refuses target_clones on templates, so a template body is an
// always_inline helper that such a function calls).
#define KILN_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace kiln {

// Calls fn(begin, count) for the elements [0, n) in chunks of `chunk`, the chunks split over up
// to `threads` threads of an OpenMP team; with one thread (or one chunk) fn runs once, inline,
// over all n elements. fn must be safe to run on disjoint ranges at once.
template <typename F>
void for_each_chunk(int threads, int64_t n, int64_t chunk, const F& fn) {
  if (n <= 0) return;
  const int64_t chunks = (n + chunk - 1) / chunk;
  const int team = static_cast<int>(std::min<int64_t>(threads, chunks));
  if (team <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel for num_threads(team) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) fn(c * chunk, std::min(chunk, n - c * chunk));
}

}  // namespace kiln
