// OpenCL fused Attention (kernels/attention.cl): one launch per node, a work-group per block of
// query rows of one (batch, head). Declines (the node then runs on the CPU) head dims above
// kMaxHeadDim, tiles that do not fit the device's __local memory, mixed or non-float dtypes and
// operands beyond the kernel's int indexing.
#include <algorithm>
#include <string>

#include "runtime/backends/attention_geometry.h"
#include "runtime/backends/opencl/normalization_cl.h"

namespace kiln {
namespace {

// Keys staged per tile.
constexpr int64_t kBlockN = 32;
// Largest head dim (D and Dv): each work-item keeps a row of Q and of the output in private
// memory, padded to a power of two.
constexpr int64_t kMaxHeadDim = 128;
constexpr size_t kMaxRowsPerGroup = 64;

int64_t padded_head_dim(const attngeo::Geometry& g) {
  int64_t p = 16;
  while (p < std::max(g.d, g.dv)) p *= 2;
  return p;
}

size_t tile_bytes(int64_t dmax) { return static_cast<size_t>(2 * kBlockN * dmax) * sizeof(float); }

Status geometry_of(const std::vector<Shape>& in, const Shape& y, const Attributes& attrs, attngeo::Geometry* g) {
  return attngeo::geometry(in[0], in[1], in[2], in.size() > attngeo::kMaskInput ? &in[attngeo::kMaskInput] : nullptr,
                           y, attrs, g);
}

bool attention_supports(const PlanNode& n, const Plan& p, const DeviceCaps& caps) {
  if (n.inputs.size() < 3 || n.outputs.empty() || !normcl::float_operands(n, p, true)) return false;
  std::vector<Shape> in;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (n.inputs[i] < 0) {
      if (i < 3) return false;
      break;
    }
    in.push_back(p.tensors[n.inputs[i]].shape);
  }
  attngeo::Geometry g;
  if (!geometry_of(in, p.tensors[n.outputs[0]].shape, n.attrs, &g)) return false;
  if (std::max(g.d, g.dv) > kMaxHeadDim) return false;
  return caps.local_mem_bytes == 0 || tile_bytes(padded_head_dim(g)) <= caps.local_mem_bytes;
}

cl_int4 strides(const attngeo::Strides& s) {
  cl_int4 v;
  for (int i = 0; i < 4; ++i) v.s[i] = static_cast<cl_int>(s[i]);
  return v;
}

Status attention_cl(ClKernelArgs& a) {
  const bool has_mask = a.has_input(attngeo::kMaskInput);
  std::vector<Shape> in;
  for (size_t i = 0; i < 3 + (has_mask ? 1 : 0); ++i) in.push_back(a.inputs[i].shape);
  attngeo::Geometry g;
  KILN_TRY(geometry_of(in, a.outputs[0].shape, a.attrs(), &g));
  // Dynamic plans may run smaller dims than `supports` saw, never larger ones.
  if (std::max(g.d, g.dv) > kMaxHeadDim) return invalid_plan("Attention: head dim above the OpenCL kernel's limit");
  if (g.sq == 0 || g.batch * g.heads == 0 || g.dv == 0) return Status::ok();
  const int64_t dmax = padded_head_dim(g);
  const std::string opts = "-DDMAX=" + std::to_string(dmax) + " -DBLOCK_N=" + std::to_string(kBlockN);
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "attention", opts, "attention", &k));
  // One query row per work-item: a power of two covering Sq, up to what the kernel allows.
  size_t max_wg = 0;
  KILN_CL(clGetKernelWorkGroupInfo(k, a.cl.device(), CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, nullptr),
          "clGetKernelWorkGroupInfo(attention) of node '" + a.node.name + "'");
  size_t rows = 1;
  while (rows < static_cast<size_t>(g.sq) && rows * 2 <= std::min(max_wg, kMaxRowsPerGroup)) rows *= 2;
  const size_t groups = (static_cast<size_t>(g.sq) + rows - 1) / rows;
  const size_t global[2] = {groups * rows, static_cast<size_t>(g.batch * g.heads)};
  const size_t local[2] = {rows, 1};
  const cl_mem mask = has_mask ? a.inputs[attngeo::kMaskInput].mem : nullptr;
  return ClLaunch(a.cl, k, "attention")
      .mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(a.inputs[2].mem).mem(mask).mem(a.outputs[0].mem)
      .arg(static_cast<cl_int>(g.heads)).arg(static_cast<cl_int>(g.sq)).arg(static_cast<cl_int>(g.sk))
      .arg(static_cast<cl_int>(g.d)).arg(static_cast<cl_int>(g.dv)).arg(g.scale)
      .arg(strides(g.q)).arg(strides(g.k)).arg(strides(g.v)).arg(strides(g.y)).arg(strides(g.mask))
      .arg(static_cast<cl_int>(has_mask ? 1 : 0)).arg(static_cast<cl_int>(g.half_scores ? 1 : 0))
      .run(2, global, local);
}

}  // namespace

void register_attention_opencl(ClRegistry& r) { r.add(attngeo::kOp, attention_cl, attention_supports); }

}  // namespace kiln
