// CPU Einsum (runtime form: compiler/ops/einsum.cpp) over float32/float64 (summed in double)
// and int32/int64 (wrapping); float16 widens to float32. Each output element sums, over every
// value of the summed labels, the product of the inputs' elements at those labels.
#include <vector>

#include "runtime/backends/einsum_geometry.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

template <typename T, typename Acc>
void einsum_typed(const CpuKernelArgs& a, const einsum::Geom& g) {
  const size_t n = a.inputs.size();
  std::vector<const T*> in(n);
  for (size_t i = 0; i < n; ++i) in[i] = a.inputs[i].as<T>();
  T* out = a.outputs[0].as<T>();
  const int64_t L = g.labels, O = g.out_labels;
  std::vector<int64_t> idx(static_cast<size_t>(L), 0), base(n), off(n);
  for (int64_t o = 0; o < g.out_numel; ++o) {
    // Output labels from o (row-major over the output's dims).
    for (int64_t l = O - 1, rest = o; l >= 0; --l) {
      idx[l] = rest % g.size[l];
      rest /= g.size[l];
    }
    for (size_t i = 0; i < n; ++i) {
      base[i] = 0;
      for (int64_t l = 0; l < O; ++l) base[i] += idx[l] * g.strides[i][l];
      off[i] = base[i];
    }
    for (int64_t l = O; l < L; ++l) idx[l] = 0;
    Acc acc = 0;
    for (int64_t r = 0; r < g.sum_numel; ++r) {
      Acc p = 1;
      for (size_t i = 0; i < n; ++i) p = static_cast<Acc>(p * static_cast<Acc>(in[i][off[i]]));
      acc = static_cast<Acc>(acc + p);
      // Odometer over the summed labels, moving every input's offset along.
      for (int64_t l = L - 1; l >= O; --l) {
        for (size_t i = 0; i < n; ++i) off[i] += g.strides[i][l];
        if (++idx[l] < g.size[l]) break;
        for (size_t i = 0; i < n; ++i) off[i] -= g.strides[i][l] * g.size[l];
        idx[l] = 0;
      }
    }
    out[o] = static_cast<T>(acc);
  }
}

Status einsum_cpu(const CpuKernelArgs& a) {
  std::vector<Shape> shapes;
  for (const TensorView& t : a.inputs) {
    if (t.dtype != a.outputs[0].dtype || (!t.data && t.numel() != 0))
      return invalid_plan("Einsum: an input is missing or differs from the output in dtype");
    shapes.push_back(t.shape);
  }
  einsum::Geom g;
  KILN_TRY(einsum::make_geom(a.attrs(), shapes, a.outputs[0].shape, &g));
  switch (a.outputs[0].dtype) {
    case DType::kFloat32: einsum_typed<float, double>(a, g); break;
    case DType::kFloat64: einsum_typed<double, double>(a, g); break;
    case DType::kInt32: einsum_typed<int32_t, uint64_t>(a, g); break;
    case DType::kInt64: einsum_typed<int64_t, uint64_t>(a, g); break;
    default: return unsupported("Einsum: dtype " + dtype_name(a.outputs[0].dtype) + " is not supported");
  }
  return Status::ok();
}

// Two operations (a multiply and an add) per term per output element.
double einsum_cost(const Plan& p, const PlanNode& n) {
  std::vector<Shape> shapes;
  for (int32_t t : n.inputs)
    if (t >= 0) shapes.push_back(p.tensors[t].shape);
  einsum::Geom g;
  if (n.outputs.empty() || !einsum::make_geom(n.attrs, shapes, p.tensors[n.outputs[0]].shape, &g)) return 0;
  return 2.0 * static_cast<double>(g.out_numel) * static_cast<double>(g.sum_numel) * static_cast<double>(shapes.size());
}

}  // namespace

void register_einsum_cpu(CpuRegistry& r) { r.add("Einsum", einsum_cpu, CpuFloat16::kWidened).arity(1, 1).cost(einsum_cost); }

}  // namespace kiln
