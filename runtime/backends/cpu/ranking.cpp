// CPU ArgMax, ArgMin and TopK (runtime forms: compiler/ops/ranking.cpp) over float32/float64
// and the integer types (float16 widens to float32). The input is seen as [outer, n, inner]
// rows along the axis. As in numpy, a NaN wins ArgMax and ArgMin alike (np.argmax, np.argmin)
// and ranks above every number in TopK (np.sort puts it last); equal values rank by lower index
// first, except ArgMax/ArgMin with select_last_index.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
};

Status rows_of(const CpuKernelArgs& a, const Shape& s, int64_t axis, Rows* r) {
  if (axis < 0 || axis >= static_cast<int64_t>(s.size())) return invalid_plan(a.node.op + ": axis out of range");
  for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) (d < axis ? r->outer : d == axis ? r->n : r->inner) *= s[d];
  return Status::ok();
}

template <typename T>
bool is_nan(T v) {
  return v != v;
}

// a ranks above b (NaN above everything, NaNs equal).
template <typename T>
bool above(T a, T b) {
  return is_nan(a) ? !is_nan(b) : (!is_nan(b) && a > b);
}
// a ranks below b, NaN below everything.
template <typename T>
bool below(T a, T b) {
  return is_nan(a) ? !is_nan(b) : (!is_nan(b) && a < b);
}

template <typename T, bool kMax>
void arg_typed(const TensorView& x, int64_t* y, const Rows& r, bool last) {
  const T* p = x.as<T>();
  for (int64_t o = 0; o < r.outer; ++o)
    for (int64_t i = 0; i < r.inner; ++i) {
      const T* row = p + o * r.n * r.inner + i;
      int64_t best = 0;
      for (int64_t j = 1; j < r.n; ++j) {
        const T v = row[j * r.inner], b = row[best * r.inner];
        const bool better = kMax ? above(v, b) : below(v, b);
        const bool tie = kMax ? !above(v, b) && !above(b, v) : !below(v, b) && !below(b, v);
        if (better || (last && tie)) best = j;
      }
      y[o * r.inner + i] = best;
    }
}

template <bool kMax>
Status arg_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  Rows r;
  KILN_TRY(rows_of(a, x.shape, a.attrs().get_int("axis", 0), &r));
  const TensorView& y = a.outputs[0];
  if (y.dtype != DType::kInt64 || y.numel() != r.outer * r.inner || r.n == 0)
    return invalid_plan(a.node.op + ": output does not match the input");
  const bool last = a.attrs().get_int("select_last_index", 0) != 0;
  int64_t* out = y.as<int64_t>();
  switch (x.dtype) {
    case DType::kFloat32: arg_typed<float, kMax>(x, out, r, last); break;
    case DType::kFloat64: arg_typed<double, kMax>(x, out, r, last); break;
    case DType::kInt8: arg_typed<int8_t, kMax>(x, out, r, last); break;
    case DType::kUInt8: arg_typed<uint8_t, kMax>(x, out, r, last); break;
    case DType::kInt16: arg_typed<int16_t, kMax>(x, out, r, last); break;
    case DType::kInt32: arg_typed<int32_t, kMax>(x, out, r, last); break;
    case DType::kInt64: arg_typed<int64_t, kMax>(x, out, r, last); break;
    default: return unsupported(a.node.op + ": dtype " + dtype_name(x.dtype) + " is not supported");
  }
  return Status::ok();
}

template <typename T>
void topk_typed(const TensorView& x, const TensorView& values, int64_t* indices, const Rows& r, int64_t k, bool largest) {
  const T* p = x.as<T>();
  T* v = values.as<T>();
  std::vector<int64_t> order(static_cast<size_t>(r.n));
  for (int64_t o = 0; o < r.outer; ++o)
    for (int64_t i = 0; i < r.inner; ++i) {
      const T* row = p + o * r.n * r.inner + i;
      std::iota(order.begin(), order.end(), int64_t{0});
      // Best first; equal values keep the lower index first.
      auto before = [&](int64_t a, int64_t b) {
        const T va = row[a * r.inner], vb = row[b * r.inner];
        if (largest ? above(va, vb) : above(vb, va)) return true;
        if (above(va, vb) || above(vb, va)) return false;
        return a < b;
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      for (int64_t j = 0; j < k; ++j) {
        const int64_t dst = (o * k + j) * r.inner + i;
        v[dst] = row[order[j] * r.inner];
        indices[dst] = order[j];
      }
    }
}

Status topk_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  Rows r;
  KILN_TRY(rows_of(a, x.shape, a.attrs().get_int("axis", -1), &r));
  const int64_t k = a.attrs().get_int("k", -1);
  const TensorView& values = a.outputs[0];
  const TensorView& indices = a.outputs[1];
  if (k < 0 || k > r.n || values.dtype != x.dtype || indices.dtype != DType::kInt64 ||
      values.numel() != r.outer * k * r.inner || indices.numel() != values.numel())
    return invalid_plan("TopK: k or the outputs do not match the input");
  const bool largest = a.attrs().get_int("largest", 1) != 0;
  int64_t* ind = indices.as<int64_t>();
  switch (x.dtype) {
    case DType::kFloat32: topk_typed<float>(x, values, ind, r, k, largest); break;
    case DType::kFloat64: topk_typed<double>(x, values, ind, r, k, largest); break;
    case DType::kInt8: topk_typed<int8_t>(x, values, ind, r, k, largest); break;
    case DType::kUInt8: topk_typed<uint8_t>(x, values, ind, r, k, largest); break;
    case DType::kInt16: topk_typed<int16_t>(x, values, ind, r, k, largest); break;
    case DType::kInt32: topk_typed<int32_t>(x, values, ind, r, k, largest); break;
    case DType::kInt64: topk_typed<int64_t>(x, values, ind, r, k, largest); break;
    default: return unsupported("TopK: dtype " + dtype_name(x.dtype) + " is not supported");
  }
  return Status::ok();
}

// A row's comparisons: n per output of an arg reduction, about n log n per TopK row.
double scan_cost(const Plan& p, const PlanNode& n) {
  return n.inputs.empty() || n.inputs[0] < 0 ? 0.0 : static_cast<double>(shape_numel(p.tensors[n.inputs[0]].shape));
}

}  // namespace

void register_ranking_cpu(CpuRegistry& r) {
  r.add("ArgMax", arg_cpu<true>, CpuFloat16::kWidened).arity(1, 1).cost(scan_cost);
  r.add("ArgMin", arg_cpu<false>, CpuFloat16::kWidened).arity(1, 1).cost(scan_cost);
  r.add("TopK", topk_cpu, CpuFloat16::kWidened).arity(1, 2).cost([](const Plan& p, const PlanNode& n) {
    const double e = scan_cost(p, n);
    return e * std::max(1.0, std::log2(std::max(2.0, static_cast<double>(n.attrs.get_int("k", 1)))));
  });
}

}  // namespace kiln
