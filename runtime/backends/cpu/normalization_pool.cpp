// CPU MaxPool (float32, int8, uint8; optional Indices; channels-last between permutations) and
// AveragePool (float32), 1-D to 3-D through the 3-D form of normgeo::PoolGeom.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "runtime/backends/cpu/permute_channels.h"
#include "runtime/backends/normalization_geometry.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

using normgeo::PoolGeom;

// First and one-past-last window taps (tap k sits at start + k*dil) inside [lo, hi).
inline void tap_range(int64_t start, int64_t k, int64_t dil, int64_t lo, int64_t hi, int64_t* k0, int64_t* k1) {
  *k0 = start >= lo ? 0 : (lo - start + dil - 1) / dil;
  *k1 = start >= hi ? 0 : std::min(k, (hi - start + dil - 1) / dil);
  if (*k1 < *k0) *k1 = *k0;
}

template <typename T>
void max_pool(const PoolGeom& g, const T* x, T* y, int64_t* ind, bool col_major) {
  const int64_t plane_in = g.in[0] * g.in[1] * g.in[2];
  int64_t o = 0;
  for (int64_t p = 0; p < g.planes; ++p) {
    const T* xp = x + p * plane_in;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          const int64_t sd = od * g.stride[0] - g.pad_begin[0];
          const int64_t sh = oh * g.stride[1] - g.pad_begin[1];
          const int64_t sw = ow * g.stride[2] - g.pad_begin[2];
          int64_t d0, d1, h0, h1, w0, w1;
          tap_range(sd, g.kernel[0], g.dil[0], 0, g.in[0], &d0, &d1);
          tap_range(sh, g.kernel[1], g.dil[1], 0, g.in[1], &h0, &h1);
          tap_range(sw, g.kernel[2], g.dil[2], 0, g.in[2], &w0, &w1);
          T best = std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                        : std::numeric_limits<T>::lowest();
          int64_t best_at = -1;
          for (int64_t kd = d0; kd < d1; ++kd)
            for (int64_t kh = h0; kh < h1; ++kh) {
              const int64_t d = sd + kd * g.dil[0], h = sh + kh * g.dil[1];
              const T* row = xp + (d * g.in[1] + h) * g.in[2];
              for (int64_t kw = w0; kw < w1; ++kw) {
                const int64_t w = sw + kw * g.dil[2];
                // Strict > keeps the first maximum, as onnxruntime does.
                if (row[w] > best || best_at < 0) {
                  best = row[w];
                  best_at = (d * g.in[1] + h) * g.in[2] + w;
                }
              }
            }
          y[o] = best;
          if (ind) {
            int64_t idx = best_at;
            if (col_major && best_at >= 0) {
              const int64_t w = best_at % g.in[2], h = best_at / g.in[2] % g.in[1], d = best_at / (g.in[1] * g.in[2]);
              idx = h + w * g.in[1] + d * g.in[1] * g.in[2];
              if (g.nsp == 3) idx = d + h * g.in[0] + w * g.in[0] * g.in[1];
            }
            ind[o] = p * plane_in + idx;
          }
        }
  }
}

void average_pool(const PoolGeom& g, const float* x, float* y, bool count_pad) {
  const int64_t plane_in = g.in[0] * g.in[1] * g.in[2];
  int64_t o = 0;
  for (int64_t p = 0; p < g.planes; ++p) {
    const float* xp = x + p * plane_in;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow, ++o) {
          const int64_t s[3] = {od * g.stride[0] - g.pad_begin[0], oh * g.stride[1] - g.pad_begin[1],
                                ow * g.stride[2] - g.pad_begin[2]};
          int64_t k0[3], k1[3];
          int64_t count = 1;
          for (int i = 0; i < 3; ++i) {
            if (count_pad) {
              int64_t p0, p1;
              tap_range(s[i], g.kernel[i], g.dil[i], -g.pad_begin[i], g.in[i] + g.pad_end[i], &p0, &p1);
              count *= p1 - p0;
            }
            tap_range(s[i], g.kernel[i], g.dil[i], 0, g.in[i], &k0[i], &k1[i]);
            if (!count_pad) count *= k1[i] - k0[i];
          }
          double sum = 0;
          for (int64_t kd = k0[0]; kd < k1[0]; ++kd)
            for (int64_t kh = k0[1]; kh < k1[1]; ++kh) {
              const float* row = xp + ((s[0] + kd * g.dil[0]) * g.in[1] + s[1] + kh * g.dil[1]) * g.in[2];
              for (int64_t kw = k0[2]; kw < k1[2]; ++kw) sum += row[s[2] + kw * g.dil[2]];
            }
          y[o] = count ? static_cast<float>(sum / static_cast<double>(count)) : std::nanf("");
        }
  }
}

// Channels-last (runtime/ops/channels_last.h, no Indices): the NCHW loop between permutations.
template <typename T>
void max_pool_nhwc(const PoolGeom& g, int64_t N, const T* x, T* y) {
  const int64_t C = g.planes / N, in = g.in[0] * g.in[1] * g.in[2], out = g.out[0] * g.out[1] * g.out[2];
  std::vector<T> xf(static_cast<size_t>(g.planes * in)), yf(static_cast<size_t>(g.planes * out));
  permute_channels(x, N, in, C, false, xf.data());
  max_pool(g, xf.data(), yf.data(), static_cast<int64_t*>(nullptr), false);
  permute_channels(yf.data(), N, out, C, true, y);
}

template <typename T>
void max_pool_any(const PoolGeom& g, const CpuKernelArgs& a, int64_t* ind, bool col) {
  const T* x = a.inputs[0].as<T>();
  T* y = a.outputs[0].as<T>();
  if (is_channels_last(a.attrs())) max_pool_nhwc(g, a.inputs[0].shape[0], x, y);
  else max_pool(g, x, y, ind, col);
}

Status max_pool_cpu(const CpuKernelArgs& a) {
  PoolGeom g;
  const bool last = is_channels_last(a.attrs());
  const Shape x = last ? channels_first_shape(a.inputs[0].shape) : a.inputs[0].shape;
  const Shape y = last ? channels_first_shape(a.outputs[0].shape) : a.outputs[0].shape;
  KILN_TRY(normgeo::pool_geom(x, y, a.attrs(), &g));
  int64_t* ind = a.outputs.size() > 1 && a.outputs[1].data ? a.outputs[1].as<int64_t>() : nullptr;
  const bool col = a.attrs().get_int("storage_order", 0) != 0;
  switch (a.inputs[0].dtype) {
    case DType::kFloat32: max_pool_any<float>(g, a, ind, col); break;
    case DType::kInt8: max_pool_any<int8_t>(g, a, ind, col); break;
    case DType::kUInt8: max_pool_any<uint8_t>(g, a, ind, col); break;
    default: return unsupported("dtype " + dtype_name(a.inputs[0].dtype) + " is not supported");
  }
  return Status::ok();
}

Status average_pool_cpu(const CpuKernelArgs& a) {
  PoolGeom g;
  KILN_TRY(normgeo::pool_geom(a.inputs[0].shape, a.outputs[0].shape, a.attrs(), &g));
  average_pool(g, a.inputs[0].as<float>(), a.outputs[0].as<float>(), a.attrs().get_int("count_include_pad", 0) != 0);
  return Status::ok();
}

}  // namespace

void register_normalization_pool_cpu(CpuRegistry& r) {
  r.add("MaxPool", max_pool_cpu, CpuFloat16::kWidened).arity(1, 1);
  r.add("AveragePool", average_pool_cpu, CpuFloat16::kWidened).arity(1, 1);
}

}  // namespace kiln
