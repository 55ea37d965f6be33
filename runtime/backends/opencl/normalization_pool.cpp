// OpenCL MaxPool (float32, float16, int8, uint8; optional Indices, or channels-last) and
// AveragePool (float32, float16), one work-item per output element (channels-last MaxPool: per
// 16-byte run of channels). kernels/pool.cl. MaxPool's program is built for its geometry (a
// model has a few MaxPools; ResNet-50's ran at 600 GB/s with the geometry as kernel arguments);
// AveragePool's serves every geometry.
#include <string>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/backends/opencl/normalization_cl.h"
#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

struct ClPoolGeom {
  cl_int in[3], out[3], kernel[3], stride[3], dil[3], pad_begin[3], pad_end[3];
};

ClPoolGeom to_cl(const normgeo::PoolGeom& g) {
  ClPoolGeom c;
  for (int i = 0; i < 3; ++i) {
    c.in[i] = static_cast<cl_int>(g.in[i]);
    c.out[i] = static_cast<cl_int>(g.out[i]);
    c.kernel[i] = static_cast<cl_int>(g.kernel[i]);
    c.stride[i] = static_cast<cl_int>(g.stride[i]);
    c.dil[i] = static_cast<cl_int>(g.dil[i]);
    c.pad_begin[i] = static_cast<cl_int>(g.pad_begin[i]);
    c.pad_end[i] = static_cast<cl_int>(g.pad_end[i]);
  }
  return c;
}

// `c` as an OpenCL C initializer of PoolGeom ({{in},{out},...}, no spaces: one -D option).
std::string geometry_literal(const ClPoolGeom& c) {
  std::string s = "{";
  for (const cl_int* f : {c.in, c.out, c.kernel, c.stride, c.dil, c.pad_begin, c.pad_end}) {
    s += s.size() > 1 ? ",{" : "{";
    for (int i = 0; i < 3; ++i) s += (i ? "," : "") + std::to_string(f[i]);
    s += "}";
  }
  return s + "}";
}

bool pool_supported(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  const PlanTensor& x = p.tensors[n.inputs[0]];
  const DType t = x.dtype;
  const bool dtype_ok = ((t == DType::kFloat32 || t == DType::kFloat16) && p.tensors[n.outputs[0]].dtype == t) ||
                        (n.op == "MaxPool" && (t == DType::kInt8 || t == DType::kUInt8));
  return dtype_ok && normcl::fits_int(shape_numel(x.shape)) && normcl::fits_int(shape_numel(p.tensors[n.outputs[0]].shape));
}

Status max_pool_cl(ClKernelArgs& a) {
  normgeo::PoolGeom g;
  const bool last = is_channels_last(a.attrs());  // runtime/ops/channels_last.h
  const Shape x = last ? channels_first_shape(a.inputs[0].shape) : a.inputs[0].shape;
  KILN_TRY(normgeo::pool_geom(x, last ? channels_first_shape(a.outputs[0].shape) : a.outputs[0].shape, a.attrs(), &g));
  std::string opts = last ? "-DPOOL_CHANNELS=" + std::to_string(x[1]) + " " : "";
  switch (a.inputs[0].dtype) {
    case DType::kFloat32: opts += "-DT=float -DT_LOWEST=-INFINITY"; break;
    case DType::kFloat16: opts += "-DT=half -DT_LOWEST=-INFINITY"; break;  // normcl::kernel adds -DKILN_HALF
    case DType::kInt8: opts += "-DT=char -DT_LOWEST=-128"; break;
    case DType::kUInt8: opts += "-DT=uchar -DT_LOWEST=0"; break;
    default: return unsupported("MaxPool on OpenCL: dtype " + dtype_name(a.inputs[0].dtype));
  }
  // Channels-last with whole 16-byte runs of channels: one run per work-item (kernels/pool.cl).
  const int vec = static_cast<int>(16 / dtype_size(a.inputs[0].dtype));
  if (last && x[1] % vec == 0) {
    opts += " -DPOOL_VEC=" + std::to_string(vec) + " -DPOOL_GEOM=" + geometry_literal(to_cl(g));
    // 8-bit runs: max() instead of select() and uint4 accesses (kernels/pool.cl's POOL_INT).
    if (vec == 16) opts += " -DPOOL_INT";
    const cl_int total = static_cast<cl_int>(a.outputs[0].numel() / vec);
    cl_kernel k;
    KILN_TRY(normcl::kernel(a, "pool", opts, "max_pool_nhwc", &k));
    return ClLaunch(a.cl, k, "max_pool_nhwc").mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(total).run1d(total, 64);
  }
  const bool want_ind = a.outputs.size() > 1 && a.outputs[1].mem;
  const cl_int total = static_cast<cl_int>(a.outputs[0].numel());
  const cl_int wi = want_ind ? 1 : 0, col = a.attrs().get_int("storage_order", 0) != 0 ? 1 : 0, nsp = g.nsp;
  const ClPoolGeom cg = to_cl(g);
  opts += " -DPOOL_GEOM=" + geometry_literal(cg);
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "pool", opts, "max_pool", &k));
  return ClLaunch(a.cl, k, "max_pool")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).mem(want_ind ? a.outputs[1].mem : a.outputs[0].mem)
      .arg(total).arg(cg).arg(wi).arg(col).arg(nsp)
      .run1d(total, 64);
}

Status average_pool_cl(ClKernelArgs& a) {
  normgeo::PoolGeom g;
  KILN_TRY(normgeo::pool_geom(a.inputs[0].shape, a.outputs[0].shape, a.attrs(), &g));
  const cl_int total = static_cast<cl_int>(a.outputs[0].numel());
  const cl_int count_pad = a.attrs().get_int("count_include_pad", 0) != 0 ? 1 : 0;
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "pool", "", "average_pool", &k));
  return ClLaunch(a.cl, k, "average_pool")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(total).arg(to_cl(g)).arg(count_pad)
      .run1d(total, 64);
}

}  // namespace

void register_normalization_pool_opencl(ClRegistry& r) {
  r.add("MaxPool", max_pool_cl, pool_supported);
  r.add("AveragePool", average_pool_cl, pool_supported);
}

}  // namespace kiln
