// CPU reference kernels: Softmax, LogSoftmax, BatchNormalization, InstanceNormalization,
// LayerNormalization; registers the family's reductions (normalization_reduce.cpp) and pooling
// (normalization_pool.cpp) too. Statistics accumulate in double so the CPU backend stays a
// trustworthy reference for the float32 OpenCL kernels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_normalization_reduce_cpu(CpuRegistry& r);
void register_normalization_pool_cpu(CpuRegistry& r);

namespace {

using normgeo::Rows;

// Softmax over rows of n at stride `inner`. Rows with inner > 1 are processed a whole
// [n, inner] block at a time so the inner loop stays contiguous.
template <bool kLog>
Status softmax_cpu(const CpuKernelArgs& a) {
  const float* x = a.inputs[0].as<float>();
  float* y = a.outputs[0].as<float>();
  const Rows r = normgeo::softmax_rows(a.inputs[0].shape, a.attrs());
  if (r.n == 0 || r.outer * r.inner == 0) return Status::ok();
  std::vector<float> mx(r.inner);
  std::vector<double> sum(r.inner);
  for (int64_t o = 0; o < r.outer; ++o) {
    const float* xb = x + o * r.n * r.inner;
    float* yb = y + o * r.n * r.inner;
    std::fill(mx.begin(), mx.end(), -std::numeric_limits<float>::infinity());
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t k = 0; k < r.n; ++k)
      for (int64_t i = 0; i < r.inner; ++i) mx[i] = std::fmax(mx[i], xb[k * r.inner + i]);
    for (int64_t k = 0; k < r.n; ++k)
      for (int64_t i = 0; i < r.inner; ++i) {
        const float e = std::exp(xb[k * r.inner + i] - mx[i]);
        sum[i] += e;
        if (!kLog) yb[k * r.inner + i] = e;
      }
    for (int64_t i = 0; i < r.inner; ++i) {
      // Stored per column: log-sum for LogSoftmax, reciprocal for Softmax.
      sum[i] = kLog ? std::log(sum[i]) + mx[i] : 1.0 / sum[i];
    }
    for (int64_t k = 0; k < r.n; ++k)
      for (int64_t i = 0; i < r.inner; ++i) {
        float& out = yb[k * r.inner + i];
        out = kLog ? static_cast<float>(xb[k * r.inner + i] - sum[i]) : static_cast<float>(out * sum[i]);
      }
  }
  return Status::ok();
}

Status batchnorm_cpu(const CpuKernelArgs& a) {
  const TensorView& xv = a.inputs[0];
  const int64_t n = xv.shape[0], c = xv.shape[1];
  const int64_t inner = c ? xv.numel() / std::max<int64_t>(1, n * c) : 0;
  const int64_t params = a.inputs[1].numel();
  const float* scale = a.inputs[1].as<float>();
  const float* bias = a.inputs[2].as<float>();
  const float* mean = a.inputs[3].as<float>();
  const float* var = a.inputs[4].as<float>();
  const double eps = a.attrs().get_float("epsilon", 1e-5f);
  // y = x * mul + add, folded once per parameter.
  std::vector<float> mul(params), add(params);
  for (int64_t i = 0; i < params; ++i) {
    const double m = scale[i] / std::sqrt(static_cast<double>(var[i]) + eps);
    mul[i] = static_cast<float>(m);
    add[i] = static_cast<float>(bias[i] - mean[i] * m);
  }
  const bool per_channel = params == c;
  const float* x = xv.as<float>();
  float* y = a.outputs[0].as<float>();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t base = (b * c + ch) * inner;
      if (per_channel) {
        const float m = mul[ch], ad = add[ch];
        for (int64_t i = 0; i < inner; ++i) y[base + i] = x[base + i] * m + ad;
      } else {
        const float* m = mul.data() + ch * inner;
        const float* ad = add.data() + ch * inner;
        for (int64_t i = 0; i < inner; ++i) y[base + i] = x[base + i] * m[i] + ad[i];
      }
    }
  return Status::ok();
}

// Two-pass mean and variance of a contiguous row, in double.
void row_stats(const float* x, int64_t n, double* mean, double* var) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const double m = n ? s / static_cast<double>(n) : 0.0;
  double v = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - m;
    v += d * d;
  }
  *mean = m;
  *var = n ? v / static_cast<double>(n) : 0.0;
}

Status instancenorm_cpu(const CpuKernelArgs& a) {
  const TensorView& xv = a.inputs[0];
  const int64_t n = xv.shape[0], c = xv.shape[1];
  const int64_t inner = n * c != 0 ? xv.numel() / (n * c) : 0;
  const float* scale = a.inputs[1].as<float>();
  const float* bias = a.inputs[2].as<float>();
  const double eps = a.attrs().get_float("epsilon", 1e-5f);
  const float* x = xv.as<float>();
  float* y = a.outputs[0].as<float>();
  for (int64_t p = 0; p < n * c; ++p) {
    double mean, var;
    row_stats(x + p * inner, inner, &mean, &var);
    const double inv = 1.0 / std::sqrt(var + eps);
    const float mul = static_cast<float>(scale[p % c] * inv);
    const float add = static_cast<float>(bias[p % c] - mean * scale[p % c] * inv);
    for (int64_t i = 0; i < inner; ++i) y[p * inner + i] = x[p * inner + i] * mul + add;
  }
  return Status::ok();
}

// Each (sample, group) is one contiguous row of C/G channels x inner positions.
Status groupnorm_cpu(const CpuKernelArgs& a) {
  const TensorView& xv = a.inputs[0];
  const int64_t groups = a.attrs().get_int("num_groups", 0);
  const bool per_group = a.attrs().get_int("group_params", 0) != 0;
  if (xv.shape.size() < 2 || groups <= 0 || xv.shape[1] % groups != 0 || a.outputs[0].shape != xv.shape ||
      a.inputs[1].numel() != (per_group ? groups : xv.shape[1]) || a.inputs[2].numel() != a.inputs[1].numel())
    return invalid_plan("GroupNormalization: num_groups, scale and bias do not match the input");
  const int64_t n = xv.shape[0], c = xv.shape[1], cg = c / groups;
  const int64_t inner = n * c != 0 ? xv.numel() / (n * c) : 0;
  const float* scale = a.inputs[1].as<float>();
  const float* bias = a.inputs[2].as<float>();
  const double eps = a.attrs().get_float("epsilon", 1e-5f);
  const float* x = xv.as<float>();
  float* y = a.outputs[0].as<float>();
  for (int64_t row = 0; row < n * groups; ++row) {
    const int64_t g = row % groups, base = row * cg * inner;
    double mean, var;
    row_stats(x + base, cg * inner, &mean, &var);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t k = 0; k < cg; ++k) {
      const int64_t p = per_group ? g : g * cg + k;
      const float mul = static_cast<float>(scale[p] * inv);
      const float add = static_cast<float>(bias[p] - mean * scale[p] * inv);
      const float* xr = x + base + k * inner;
      float* yr = y + base + k * inner;
      for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] * mul + add;
    }
  }
  return Status::ok();
}

Status layernorm_cpu(const CpuKernelArgs& a) {
  const TensorView& xv = a.inputs[0];
  const Rows r = normgeo::split_at(xv.shape, a.attrs().get_int("axis", 0));
  const int64_t mask = a.attrs().get_int("output_mask", 1);
  const float* w = a.inputs[1].as<float>();
  const bool w_scalar = a.inputs[1].numel() == 1;
  const float* b = a.has_input(2) ? a.inputs[2].as<float>() : nullptr;
  const bool b_scalar = b && a.inputs[2].numel() == 1;
  const int mean_slot = normgeo::output_slot(a.outputs.size(), mask, 1);
  const int inv_slot = normgeo::output_slot(a.outputs.size(), mask, 2);
  float* mean_out = mean_slot >= 0 ? a.outputs[mean_slot].as<float>() : nullptr;
  float* inv_out = inv_slot >= 0 ? a.outputs[inv_slot].as<float>() : nullptr;
  const double eps = a.attrs().get_float("epsilon", 1e-5f);
  const float* x = xv.as<float>();
  float* y = a.outputs[0].as<float>();
  for (int64_t o = 0; o < r.outer; ++o) {
    const float* xr = x + o * r.n;
    float* yr = y + o * r.n;
    double mean, var;
    row_stats(xr, r.n, &mean, &var);
    const double inv = 1.0 / std::sqrt(var + eps);
    if (mean_out) mean_out[o] = static_cast<float>(mean);
    if (inv_out) inv_out[o] = static_cast<float>(inv);
    const float m = static_cast<float>(mean), iv = static_cast<float>(inv);
    for (int64_t i = 0; i < r.n; ++i) {
      float v = (xr[i] - m) * iv * w[w_scalar ? 0 : i];
      if (b) v += b[b_scalar ? 0 : i];
      yr[i] = v;
    }
  }
  return Status::ok();
}

}  // namespace

void register_normalization_cpu(CpuRegistry& r) {
  r.add("Softmax", softmax_cpu<false>, CpuFloat16::kWidened).arity(1, 1);
  r.add("LogSoftmax", softmax_cpu<true>, CpuFloat16::kWidened).arity(1, 1);
  r.add("BatchNormalization", batchnorm_cpu, CpuFloat16::kWidened).arity(5, 1);
  r.add("InstanceNormalization", instancenorm_cpu, CpuFloat16::kWidened).arity(3, 1);
  r.add("LayerNormalization", layernorm_cpu, CpuFloat16::kWidened).arity(2, 1).quantized_output(3);
  r.add("GroupNormalization", groupnorm_cpu, CpuFloat16::kWidened).arity(3, 1);
  register_normalization_reduce_cpu(r);
  register_normalization_pool_cpu(r);
}

}  // namespace kiln
