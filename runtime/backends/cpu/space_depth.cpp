// CPU DepthToSpace and SpaceToDepth (runtime forms: compiler/ops/space_depth.cpp; SpaceToDepth
// channels-last too): element bytes move, so every dtype works. Index math:
// runtime/backends/space_depth_geometry.h.
#include <cstring>

#include "runtime/backends/space_depth_geometry.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

// Channels-last SpaceToDepth (runtime/ops/channels_last.h): NCHW in, [N, H/b, W/b, b*b*Cp] out.
Status space_to_depth_nhwc_cpu(const CpuKernelArgs& a) {
  const TensorView& in = a.inputs[0];
  const TensorView& out = a.outputs[0];
  const int64_t b = a.attrs().get_int("blocksize", 0);
  const Shape& s = in.shape;
  const int64_t Cp = a.attrs().get_int("channels", s.size() == 4 ? s[1] : 0);
  if (s.size() != 4 || b < 1 || Cp < s[1] || out.dtype != in.dtype || s[2] % b || s[3] % b ||
      out.shape != Shape{s[0], s[2] / b, s[3] / b, b * b * Cp})
    return invalid_plan(a.node.op + ": blocksize, channels or shapes do not match");
  const size_t es = dtype_size(in.dtype);
  const uint8_t* src = static_cast<const uint8_t*>(in.data);
  uint8_t* dst = static_cast<uint8_t*>(out.data);
  const Shape& o = out.shape;
  int64_t at = 0;
  for (int64_t n = 0; n < o[0]; ++n)
    for (int64_t y = 0; y < o[1]; ++y)
      for (int64_t x = 0; x < o[2]; ++x)
        for (int64_t ch = 0; ch < o[3]; ++ch, ++at) {
          const int64_t from = space_depth::space_to_depth_nhwc_src(n, y, x, ch, s[1], Cp, s[2], s[3], b);
          if (from < 0) std::memset(dst + at * es, 0, es);
          else std::memcpy(dst + at * es, src + from * es, es);
        }
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
  const size_t es = dtype_size(in.dtype);
  const uint8_t* src = static_cast<const uint8_t*>(in.data);
  uint8_t* dst = static_cast<uint8_t*>(out.data);
  const Shape& o = out.shape;
  int64_t at = 0;
  for (int64_t n = 0; n < o[0]; ++n)
    for (int64_t c = 0; c < o[1]; ++c)
      for (int64_t y = 0; y < o[2]; ++y)
        for (int64_t x = 0; x < o[3]; ++x, ++at) {
          const int64_t from = kToSpace ? space_depth::depth_to_space_src(n, c, y, x, o[1], s[2], s[3], b, crd)
                                        : space_depth::space_to_depth_src(n, c, y, x, s[1], s[2], s[3], b);
          std::memcpy(dst + at * es, src + from * es, es);
        }
  return Status::ok();
}

}  // namespace

void register_space_depth_cpu(CpuRegistry& r) {
  r.add("DepthToSpace", space_depth_cpu<true>).arity(1, 1);
  r.add("SpaceToDepth", space_depth_cpu<false>).arity(1, 1);
}

}  // namespace kiln
