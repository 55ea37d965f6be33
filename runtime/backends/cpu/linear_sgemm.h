// Single-precision GEMM for the CPU backend: C = epilogue(op(A) * op(B)), row-major, cache
// blocked with packed panels and a register-blocked micro-kernel in plain C++ (the compiler
// vectorizes its inner loops). The epilogue (scale, broadcast bias, residual, activation) is
// applied to each block while it is still in cache.
#pragma once
#include <cstdint>

#include "runtime/ops/linear_epilogue.h"

namespace kiln::linear {

struct GemmEpilogue {
  float alpha = 1.f;
  float beta = 1.f;                 // scales the bias
  const float* bias = nullptr;      // element (i, j) at bias[i * bias_rs + j * bias_cs]
  int64_t bias_rs = 0, bias_cs = 0;
  const float* residual = nullptr;  // element (i, j) at residual[i * ldr + j]
  int64_t ldr = 0;
  Epilogue ep;
};

// C[i * ldc + j] = epilogue(sum_k op(A)(i, k) * op(B)(k, j)) for i < M, j < N. op(A)(i, k) is
// A[i * lda + k], or A[k * lda + i] when trans_a (likewise B).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
           const float* B, int64_t ldb, float* C, int64_t ldc, const GemmEpilogue& e);

// Applies the epilogue in place to c[0..n) holding the raw products of row i, columns j0...
void apply_epilogue_row(const GemmEpilogue& e, int64_t i, int64_t j0, int64_t n, float* c);

}  // namespace kiln::linear
