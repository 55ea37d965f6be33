// SiLU (x * sigmoid(x), YOLOv5/v8's activation, exported as Sigmoid then Mul) for the cpu fast
// path's Elementwise programs that compute it (fast_elementwise.cpp): vectorized in float as
// x / (1 + exp(-x)) with fast_math.h's exp, within a few float ulps of the interpreter's libm
// result, where the interpreter's scalar exp cost YOLOv8n ~17 ms a run on one core.
#pragma once
#include <cstdint>

namespace kiln {

// y[i] = x[i] / (1 + exp(-x[i])) for i < n (x and y may be the same array).
void silu(const float* x, float* y, int64_t n);

// Whether ys[i] = silu(gelu_probe_point(i)) for every probe point (runtime/ops/gelu_reference.h),
// within 1e-6 + 1e-5 |silu(x)|.
bool silu_form_of(const float* ys);

}  // namespace kiln
