// OpenCL DepthToSpace and SpaceToDepth (kernels/space_depth.cl; SpaceToDepth channels-last too):
// element bytes of any dtype of 1, 2, 4 or 8 bytes; tensors of 2^31 or more elements go to the CPU.
#include <limits>
#include <string>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/space_depth_geometry.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

const char* bytes_type(DType t) {
  switch (dtype_size(t)) {
    case 1: return "uchar";
    case 2: return "ushort";
    case 4: return "uint";
    case 8: return "ulong";
    default: return nullptr;
  }
}

bool supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  const PlanTensor& x = p.tensors[n.inputs[0]];
  return bytes_type(x.dtype) && shape_numel(x.shape) <= std::numeric_limits<cl_int>::max() &&
         shape_numel(p.tensors[n.outputs[0]].shape) <= std::numeric_limits<cl_int>::max();
}

// Channels-last SpaceToDepth (runtime/ops/channels_last.h): one work-item per input element
// position, writing its padded channels (the channel counts fixed at build time: a stem has one).
Status space_to_depth_nhwc_cl(ClKernelArgs& a) {
  const ClTensor& in = a.inputs[0];
  const ClTensor& out = a.outputs[0];
  const int64_t b = a.attrs().get_int("blocksize", 0);
  const Shape& s = in.shape;
  const int64_t Cp = a.attrs().get_int("channels", s.size() == 4 ? s[1] : 0);
  if (!space_depth::space_to_depth_nhwc_fits(s, out.shape, b, Cp))
    return invalid_plan(a.node.op + ": blocksize, channels or shapes do not match");
  const int64_t positions = s[0] * s[2] * s[3];
  if (positions == 0) return Status::ok();
  const char* src = embedded_kernel_source("space_depth");
  if (!src) return internal_error("kernels/space_depth.cl is not embedded");
  cl_kernel k;
  const std::string options = std::string("-DT=") + bytes_type(in.dtype) + " -DS2D_C=" + std::to_string(s[1]) +
                              " -DS2D_CP=" + std::to_string(Cp);
  KILN_TRY(a.cl.kernel(src, options, "space_to_depth_nhwc", &k).with_context("node '" + a.node.name + "'"));
  auto i = [](int64_t v) { return static_cast<cl_int>(v); };
  return ClLaunch(a.cl, k, "space_to_depth_nhwc")
      .mem(in.mem).mem(out.mem).arg(i(positions)).arg(i(s[2])).arg(i(s[3])).arg(i(b))
      .run1d(positions, 128);
}

template <bool kToSpace>
Status space_depth_cl(ClKernelArgs& a) {
  if (!kToSpace && is_channels_last(a.attrs())) return space_to_depth_nhwc_cl(a);
  const ClTensor& in = a.inputs[0];
  const ClTensor& out = a.outputs[0];
  const int64_t b = a.attrs().get_int("blocksize", 0);
  const Shape& s = in.shape;
  if (s.size() != 4 || out.shape.size() != 4 || b < 1) return invalid_plan(a.node.op + ": blocksize or shapes do not match");
  const Shape want = kToSpace ? Shape{s[0], s[1] / (b * b), s[2] * b, s[3] * b} : Shape{s[0], s[1] * b * b, s[2] / b, s[3] / b};
  if (out.shape != want) return invalid_plan(a.node.op + ": output shape does not match the input and blocksize");
  const int total = static_cast<int>(out.numel());
  if (total == 0) return Status::ok();
  const char* src = embedded_kernel_source("space_depth");
  if (!src) return internal_error("kernels/space_depth.cl is not embedded");
  const char* fn = kToSpace ? "depth_to_space" : "space_to_depth";
  cl_kernel k;
  KILN_TRY(a.cl.kernel(src, std::string("-DT=") + bytes_type(in.dtype), fn, &k).with_context("node '" + a.node.name + "'"));
  auto i = [](int64_t v) { return static_cast<cl_int>(v); };
  const Shape& o = out.shape;
  ClLaunch l(a.cl, k, fn);
  l.mem(in.mem).mem(out.mem).arg(total);
  if (kToSpace) l.arg(i(o[1])).arg(i(o[2])).arg(i(o[3])).arg(i(s[2])).arg(i(s[3])).arg(i(b)).arg(i(a.attrs().get_int("crd", 0) != 0));
  else l.arg(i(o[1])).arg(i(o[2])).arg(i(o[3])).arg(i(s[1])).arg(i(s[2])).arg(i(s[3])).arg(i(b));
  return l.run1d(total, 64);
}

}  // namespace

void register_space_depth_opencl(ClRegistry& r) {
  r.add("DepthToSpace", space_depth_cl<true>, supports);
  r.add("SpaceToDepth", space_depth_cl<false>, supports);
}

}  // namespace kiln
