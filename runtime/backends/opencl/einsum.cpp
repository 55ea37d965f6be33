// OpenCL Einsum (kernels/einsum.cl): float32 and float16 storage, up to three inputs and 16
// labels, 32-bit offsets; other nodes (integers, float64, more inputs) run on the CPU.
#include <limits>
#include <vector>

#include "runtime/backends/einsum_geometry.h"
#include "runtime/backends/opencl/normalization_cl.h"

namespace kiln {
namespace {

constexpr int kMaxInputs = 3, kMaxLabels = 16;

struct Labels {
  cl_int v[kMaxLabels] = {0};
};

Labels pack(const std::vector<int64_t>& v) {
  Labels l;
  for (size_t i = 0; i < v.size() && i < static_cast<size_t>(kMaxLabels); ++i) l.v[i] = static_cast<cl_int>(v[i]);
  return l;
}

bool einsum_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  if (n.inputs.empty() || n.inputs.size() > static_cast<size_t>(kMaxInputs) || n.attrs.get_int("labels", 0) > kMaxLabels)
    return false;
  if (!normcl::float_operands(n, p, true)) return false;
  std::vector<Shape> shapes;
  for (int32_t t : n.inputs) {
    if (t < 0) return false;
    shapes.push_back(p.tensors[t].shape);
  }
  einsum::Geom g;
  if (!einsum::make_geom(n.attrs, shapes, p.tensors[n.outputs[0]].shape, &g)) return false;
  return g.sum_numel <= std::numeric_limits<cl_int>::max();
}

Status einsum_cl(ClKernelArgs& a) {
  const size_t nin = a.inputs.size();
  if (nin == 0 || nin > static_cast<size_t>(kMaxInputs)) return unsupported("Einsum: more than 3 inputs on OpenCL");
  std::vector<Shape> shapes;
  for (const ClTensor& t : a.inputs) shapes.push_back(t.shape);
  einsum::Geom g;
  KILN_TRY(einsum::make_geom(a.attrs(), shapes, a.outputs[0].shape, &g));
  if (g.labels > kMaxLabels) return unsupported("Einsum: more than 16 labels on OpenCL");
  const int total = static_cast<int>(g.out_numel);
  if (total == 0) return Status::ok();
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "einsum", "", "einsum", &k));
  std::vector<int64_t> none(static_cast<size_t>(g.labels), 0);
  auto strides = [&](size_t i) { return pack(i < nin ? g.strides[i] : none); };
  auto mem = [&](size_t i) { return i < nin ? a.inputs[i].mem : a.inputs[0].mem; };
  return ClLaunch(a.cl, k, "einsum")
      .mem(mem(0)).mem(mem(1)).mem(mem(2)).mem(a.outputs[0].mem).arg(total).arg(static_cast<cl_int>(nin))
      .arg(static_cast<cl_int>(g.labels)).arg(static_cast<cl_int>(g.out_labels)).arg(pack(g.size)).arg(strides(0))
      .arg(strides(1)).arg(strides(2)).arg(static_cast<cl_int>(g.sum_numel))
      .run1d(total, 64);
}

}  // namespace

void register_einsum_opencl(ClRegistry& r) { r.add("Einsum", einsum_cl, einsum_supports); }

}  // namespace kiln
