#include "runtime/backends/cpu/linear_sgemm.h"
#include "runtime/backends/cpu/cpu_threads.h"
#include "runtime/backends/cpu/fast_gelu.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace kiln::linear {
namespace {

// Micro-tile MR x NR: 4 x 8 accumulators fit 8 of the 16 SSE registers, leaving room for the
// A broadcast and B vectors (4 x 16 spilled and ran 3-5x slower, measured at 1024^3). Blocking:
// an MC x KC panel of A (128 KiB) stays in L2, a KC x NC panel of B (512 KiB) in L2/L3.
constexpr int64_t MR = 4, NR = 8;
constexpr int64_t KC = 256, MC = 128, NC = 512;

// Packs op(A)[i0..i0+mc, k0..k0+kc] as ceil(mc/MR) panels of [kc][MR], zero-padded rows.
void pack_a(bool ta, const float* A, int64_t lda, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  for (int64_t ip = 0; ip < mc; ip += MR) {
    const int64_t rows = std::min(MR, mc - ip);
    for (int64_t k = 0; k < kc; ++k) {
      float* dst = out + ip * kc + k * MR;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = i0 + ip + r, kk = k0 + k;
        dst[r] = ta ? A[kk * lda + i] : A[i * lda + kk];
      }
      for (int64_t r = rows; r < MR; ++r) dst[r] = 0.f;
    }
  }
}

// Packs op(B)[k0..k0+kc, j0..j0+nc] as ceil(nc/NR) panels of [kc][NR], zero-padded columns.
void pack_b(bool tb, const float* B, int64_t ldb, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  for (int64_t jp = 0; jp < nc; jp += NR) {
    const int64_t cols = std::min(NR, nc - jp);
    float* panel = out + jp * kc;
    if (!tb) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (k0 + k) * ldb + j0 + jp;
        float* dst = panel + k * NR;
        for (int64_t c = 0; c < cols; ++c) dst[c] = src[c];
        for (int64_t c = cols; c < NR; ++c) dst[c] = 0.f;
      }
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        float* dst = panel + k * NR;
        for (int64_t c = 0; c < cols; ++c) dst[c] = B[(j0 + jp + c) * ldb + k0 + k];
        for (int64_t c = cols; c < NR; ++c) dst[c] = 0.f;
      }
    }
  }
}

// acc = sum_k a[k][0..MR) (outer) b[k][0..NR).
inline void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict acc) {
  float c[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * NR;
    const float* ak = a + k * MR;
    for (int64_t r = 0; r < MR; ++r) {
      const float av = ak[r];
      for (int64_t j = 0; j < NR; ++j) c[r][j] += av * bk[j];
    }
  }
  std::memcpy(acc, c, sizeof(c));
}

}  // namespace

void apply_epilogue_row(const GemmEpilogue& e, int64_t i, int64_t j0, int64_t n, float* c) {
  const float alpha = e.alpha;
  if (alpha != 1.f)
    for (int64_t j = 0; j < n; ++j) c[j] *= alpha;
  if (e.bias && e.beta != 0.f) {
    const float* b = e.bias + i * e.bias_rs + j0 * e.bias_cs;
    const float beta = e.beta;
    if (e.bias_cs == 0) {
      const float v = beta * b[0];
      for (int64_t j = 0; j < n; ++j) c[j] += v;
    } else {
      for (int64_t j = 0; j < n; ++j) c[j] += beta * b[j];
    }
  }
  const float* r = e.residual ? e.residual + i * e.ldr + j0 : nullptr;
  if (r && e.ep.residual == kResidualBeforeActivation)
    for (int64_t j = 0; j < n; ++j) c[j] += r[j];
  const float a = e.ep.act_alpha, b = e.ep.act_beta;
  // One loop per activation so each stays a simple vectorizable loop; NaN propagates as in
  // apply_activation (runtime/ops/linear_epilogue.h).
  switch (e.ep.act) {
    case Activation::kNone: break;
    case Activation::kRelu:
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] < 0.f ? 0.f : c[j];
      break;
    case Activation::kClip:
      for (int64_t j = 0; j < n; ++j) c[j] = linear::clamp_keep_nan(c[j], a, b);
      break;
    case Activation::kLeakyRelu:
      for (int64_t j = 0; j < n; ++j) c[j] = c[j] >= 0.f ? c[j] : a * c[j];
      break;
    case Activation::kGelu: gelu_erf(c, c, n); break;
    case Activation::kGeluTanh: gelu_tanh(c, c, n); break;
    default:
      for (int64_t j = 0; j < n; ++j) c[j] = apply_activation(e.ep.act, c[j], a, b);
      break;
  }
  if (r && e.ep.residual == kResidualAfterActivation)
    for (int64_t j = 0; j < n; ++j) c[j] += r[j];
}

namespace {

void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, const GemmEpilogue& e);

// Worker threads for one large GEMM: the running inference's share of the cores, else the
// process default (runtime/backends/cpu/cpu_threads.h).
int max_threads() {
  const int share = inference_cpu_threads();
  return share > 0 ? share : default_cpu_threads();
}

// Below this many multiply-adds per thread, starting threads costs more than it saves.
constexpr int64_t kMinMacsPerThread = int64_t{1} << 21;

}  // namespace

void sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, const GemmEpilogue& e) {
  if (M <= 0 || N <= 0) return;
  const int64_t macs = M * N * std::max<int64_t>(K, 1);
  int threads = static_cast<int>(std::min<int64_t>(max_threads(), macs / kMinMacsPerThread));
  // Split the larger output dim into per-thread slabs aligned to the micro-tile; each thread
  // packs its own panels (thread_local buffers, so allocated once per worker and call: small
  // next to >= 2M multiply-adds) and applies the epilogue to its slab.
  const bool by_rows = M >= N;
  const int64_t extent = by_rows ? M : N, align = by_rows ? MR : NR;
  threads = static_cast<int>(std::min<int64_t>(threads, (extent + align - 1) / align));
  if (threads <= 1) return sgemm_serial(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, e);
  const int64_t chunk = ((extent + threads - 1) / threads + align - 1) / align * align;
  std::vector<std::thread> pool;
  // A slab whose thread cannot be started runs here instead: never fail or abort for it.
  auto spawn = [&pool](auto fn) {
    try {
      pool.emplace_back(fn);
    } catch (...) {
      fn();
    }
  };
  for (int64_t start = chunk; start < extent; start += chunk) {
    const int64_t len = std::min(chunk, extent - start);
    GemmEpilogue es = e;
    if (by_rows) {
      if (es.bias) es.bias += start * es.bias_rs;
      if (es.residual) es.residual += start * es.ldr;
      spawn([=] { sgemm_serial(ta, tb, len, N, K, ta ? A + start : A + start * lda, lda, B, ldb, C + start * ldc, ldc, es); });
    } else {
      if (es.bias) es.bias += start * es.bias_cs;
      if (es.residual) es.residual += start;
      spawn([=] { sgemm_serial(ta, tb, M, len, K, A, lda, tb ? B + start * ldb : B + start, ldb, C + start, ldc, es); });
    }
  }
  if (by_rows)
    sgemm_serial(ta, tb, std::min(chunk, M), N, K, A, lda, B, ldb, C, ldc, e);
  else
    sgemm_serial(ta, tb, M, std::min(chunk, N), K, A, lda, B, ldb, C, ldc, e);
  for (std::thread& t : pool) t.join();
}

namespace {

void sgemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, const GemmEpilogue& e) {
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) {
      std::fill(C + i * ldc, C + i * ldc + N, 0.f);
      apply_epilogue_row(e, i, 0, N, C + i * ldc);
    }
    return;
  }
  // Packing buffers live for the thread: no allocation per call once warmed up.
  thread_local std::vector<float> apack, bpack;
  const int64_t kcmax = std::min(KC, K);
  apack.resize(static_cast<size_t>((MC + MR) * kcmax));
  bpack.resize(static_cast<size_t>((NC + NR) * kcmax));
  float acc[MR * NR];
  for (int64_t jc = 0; jc < N; jc += NC) {
    const int64_t nc = std::min(NC, N - jc);
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool first = pc == 0, last = pc + kc >= K;
      pack_b(tb, B, ldb, pc, kc, jc, nc, bpack.data());
      for (int64_t ic = 0; ic < M; ic += MC) {
        const int64_t mc = std::min(MC, M - ic);
        pack_a(ta, A, lda, ic, mc, pc, kc, apack.data());
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t cols = std::min(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t rows = std::min(MR, mc - ir);
            micro_kernel(kc, apack.data() + ir * kc, bpack.data() + jr * kc, acc);
            for (int64_t r = 0; r < rows; ++r) {
              float* dst = C + (ic + ir + r) * ldc + jc + jr;
              const float* src = acc + r * NR;
              if (first)
                for (int64_t j = 0; j < cols; ++j) dst[j] = src[j];
              else
                for (int64_t j = 0; j < cols; ++j) dst[j] += src[j];
            }
          }
        }
        if (last)
          for (int64_t i = ic; i < ic + mc; ++i) apply_epilogue_row(e, i, jc, nc, C + i * ldc + jc);
      }
    }
  }
}

}  // namespace

}  // namespace kiln::linear
