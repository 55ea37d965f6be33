// CPU DepthToSpace and SpaceToDepth (runtime forms: compiler/ops/space_depth.cpp; SpaceToDepth
// channels-last too): element bytes move, so every dtype works. Index math:
// runtime/backends/space_depth_geometry.h.
#include <cstring>

#include "runtime/backends/space_depth_geometry.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

// Output element [i0][i1][i2][i3] of shape o (elements of es bytes) from source element
// src_of(i0, i1, i2, i3), or zero where that is -1.
template <typename SrcOf>
void gather_elements(const Shape& o, size_t es, const uint8_t* src, uint8_t* dst, SrcOf src_of) {
  int64_t at = 0;
  for (int64_t i0 = 0; i0 < o[0]; ++i0)
    for (int64_t i1 = 0; i1 < o[1]; ++i1)
      for (int64_t i2 = 0; i2 < o[2]; ++i2)
        for (int64_t i3 = 0; i3 < o[3]; ++i3, ++at) {
          const int64_t from = src_of(i0, i1, i2, i3);
          if (from < 0) std::memset(dst + at * es, 0, es);
          else std::memcpy(dst + at * es, src + from * es, es);
        }
}

// Channels-last SpaceToDepth (runtime/ops/channels_last.h): NCHW in, [N, H/b, W/b, b*b*Cp] out.
Status space_to_depth_nhwc_cpu(const CpuKernelArgs& a) {
  const TensorView& in = a.inputs[0];
  const TensorView& out = a.outputs[0];
  const int64_t b = a.attrs().get_int("blocksize", 0);
  const Shape& s = in.shape;
  const int64_t Cp = a.attrs().get_int("channels", s.size() == 4 ? s[1] : 0);
  if (out.dtype != in.dtype || !space_depth::space_to_depth_nhwc_fits(s, out.shape, b, Cp))
    return invalid_plan(a.node.op + ": blocksize, channels or shapes do not match");
  gather_elements(out.shape, dtype_size(in.dtype), static_cast<const uint8_t*>(in.data), static_cast<uint8_t*>(out.data),
                  [&](int64_t n, int64_t y, int64_t x, int64_t ch) {
                    return space_depth::space_to_depth_nhwc_src(n, y, x, ch, s[1], Cp, s[2], s[3], b);
                  });
  return Status::ok();
}

template <bool kToSpace>
Status space_depth_cpu(const CpuKernelArgs& a) {
  if (!kToSpace && is_channels_last(a.attrs())) return space_to_depth_nhwc_cpu(a);
  const TensorView& in = a.inputs[0];
  const TensorView& out = a.outputs[0];
  const int64_t b = a.attrs().get_int("blocksize", 0);
  const bool crd = a.attrs().get_int("crd", 0) != 0;
  if (in.shape.size() != 4 || out.shape.size() != 4 || b < 1 || out.dtype != in.dtype)
    return invalid_plan(a.node.op + ": blocksize or shapes do not match");
  const Shape& s = in.shape;
  const Shape want = kToSpace ? Shape{s[0], s[1] / (b * b), s[2] * b, s[3] * b} : Shape{s[0], s[1] * b * b, s[2] / b, s[3] / b};
  if (out.shape != want || (kToSpace ? s[1] % (b * b) : (s[2] % b) | (s[3] % b)) != 0)
    return invalid_plan(a.node.op + ": output shape does not match the input and blocksize");
  const Shape& o = out.shape;
  gather_elements(o, dtype_size(in.dtype), static_cast<const uint8_t*>(in.data), static_cast<uint8_t*>(out.data),
                  [&](int64_t n, int64_t c, int64_t y, int64_t x) {
                    return kToSpace ? space_depth::depth_to_space_src(n, c, y, x, o[1], s[2], s[3], b, crd)
                                    : space_depth::space_to_depth_src(n, c, y, x, s[1], s[2], s[3], b);
                  });
  return Status::ok();
}

}  // namespace

void register_space_depth_cpu(CpuRegistry& r) {
  r.add("DepthToSpace", space_depth_cpu<true>).arity(1, 1);
  r.add("SpaceToDepth", space_depth_cpu<false>).arity(1, 1);
}

}  // namespace kiln
