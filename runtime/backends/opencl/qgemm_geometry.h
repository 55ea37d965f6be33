// The convolution geometry argument of kernels/qgemm.cl and kernels/fp8_linear.cl (the
// ConvGeo struct there): spatial dims right-aligned into 3 (missing leading dims are size 1):
// [0..2] in, [3..5] out, [6..8] kernel, [9..11] strides, [12..14] dilations, [15..17] pads
// (begin), [18] C, [19] Cg, [20] groups, [21] in_size, [22] kernel_size.
#pragma once
#include "runtime/backends/quantize_geometry.h"
#include "runtime/device/cl_runtime.h"

namespace kiln {

struct ClConvGeo {
  cl_int v[24] = {0};
};

// All zero for a matmul (the kernels read it only with -D CONV=1).
inline ClConvGeo cl_conv_geo(const QGemm& g) {
  ClConvGeo geo;
  if (!g.conv) return geo;
  const size_t nd = g.in_sp.size(), pad = 3 - nd;
  for (size_t i = 0; i < 3; ++i) {
    const bool has = i >= pad;
    const size_t d = has ? i - pad : 0;
    geo.v[0 + i] = has ? static_cast<cl_int>(g.in_sp[d]) : 1;
    geo.v[3 + i] = has ? static_cast<cl_int>(g.out_sp[d]) : 1;
    geo.v[6 + i] = has ? static_cast<cl_int>(g.ks[d]) : 1;
    geo.v[9 + i] = has ? static_cast<cl_int>(g.strides[d]) : 1;
    geo.v[12 + i] = has ? static_cast<cl_int>(g.dil[d]) : 1;
    geo.v[15 + i] = has ? static_cast<cl_int>(g.pads[d]) : 0;
  }
  geo.v[18] = static_cast<cl_int>(g.C);
  geo.v[19] = static_cast<cl_int>(g.Cg);
  geo.v[20] = static_cast<cl_int>(g.groups);
  geo.v[21] = static_cast<cl_int>(g.in_size);
  geo.v[22] = static_cast<cl_int>(g.K / g.Cg);
  return geo;
}

}  // namespace kiln
