// Quantization's rounding of a quotient without a division in the common case. Built with
// -cl-fp32-correctly-rounded-divide-sqrt (the CPU reference's exact float32 division).
#pragma OPENCL FP_CONTRACT OFF

// rint(r / s), exactly as the correctly rounded division (the CPU reference's) rounds, from
// r * inv_s (inv_s = 1 / s) wherever that cannot differ: for |r / s| < 1024 the product is within
// 2e-4 of the rounded quotient, so away from a tie (.5) by more than 1e-3 both round alike; the
// rest (ties, saturated values, NaN) divide. On an H100 this took ResNet-50 INT8's convolutions
// from 15.2 to 13.4 ms at batch 128 (perf/results/2026-12-06-rowops.md); BERT's FFN layers did
// not move.
inline float rint_div(float r, float s, float inv_s) {
  const float x = r * inv_s;
  if (fabs(x) < 1024.0f && fabs(x - floor(x) - 0.5f) > 1e-3f) return rint(x);
  return rint(r / s);
}
