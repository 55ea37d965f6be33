// CPU CumSum, Trilu and OneHot (runtime forms: compiler/ops/positional.cpp). CumSum sums
// float32 in double and integers in their own (wrapping) type; Trilu and OneHot move element
// bytes, so every dtype works.
#include <cstring>
#include <type_traits>

#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

// Floats sum in double; integers in their unsigned type, so overflow wraps instead of being
// undefined.
template <typename T, bool kFloat = std::is_floating_point<T>::value>
struct AccOf {
  using type = double;
};
template <typename T>
struct AccOf<T, false> {
  using type = typename std::make_unsigned<T>::type;
};

template <typename T>
void cumsum_typed(const TensorView& x, const TensorView& y, int64_t outer, int64_t n, int64_t inner, bool exclusive,
                  bool reverse) {
  using Acc = typename AccOf<T>::type;
  const T* in = x.as<T>();
  T* out = y.as<T>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      Acc acc = 0;
      for (int64_t s = 0; s < n; ++s) {
        const int64_t j = reverse ? n - 1 - s : s;
        const int64_t at = (o * n + j) * inner + i;
        const Acc v = static_cast<Acc>(in[at]);
        if (!exclusive) acc += v;
        out[at] = static_cast<T>(acc);
        if (exclusive) acc += v;
      }
    }
}

Status cumsum_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  const TensorView& y = a.outputs[0];
  const int64_t axis = a.attrs().get_int("axis", 0);
  if (axis < 0 || axis >= static_cast<int64_t>(x.shape.size()) || y.shape != x.shape || y.dtype != x.dtype)
    return invalid_plan("CumSum: axis or output does not match the input");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t n = x.shape[axis];
  const bool ex = a.attrs().get_int("exclusive", 0) != 0, rev = a.attrs().get_int("reverse", 0) != 0;
  switch (x.dtype) {
    case DType::kFloat32: cumsum_typed<float>(x, y, outer, n, inner, ex, rev); break;
    case DType::kFloat64: cumsum_typed<double>(x, y, outer, n, inner, ex, rev); break;
    case DType::kInt32: cumsum_typed<int32_t>(x, y, outer, n, inner, ex, rev); break;
    case DType::kInt64: cumsum_typed<int64_t>(x, y, outer, n, inner, ex, rev); break;
    case DType::kUInt32: cumsum_typed<uint32_t>(x, y, outer, n, inner, ex, rev); break;
    case DType::kUInt64: cumsum_typed<uint64_t>(x, y, outer, n, inner, ex, rev); break;
    default: return unsupported("CumSum: dtype " + dtype_name(x.dtype) + " is not supported");
  }
  return Status::ok();
}

// Element (i, j) of each matrix (the last two dims) is kept when j - i >= k (upper) or
// j - i <= k (lower), else zero.
Status trilu_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  const TensorView& y = a.outputs[0];
  if (x.shape.size() < 2 || y.shape != x.shape || y.dtype != x.dtype) return invalid_plan("Trilu: output does not match the input");
  const int64_t rows = x.shape[x.shape.size() - 2], cols = x.shape.back();
  const int64_t k = a.attrs().get_int("k", 0);
  const bool upper = a.attrs().get_int("upper", 1) != 0;
  const size_t es = dtype_size(x.dtype);
  const uint8_t* in = static_cast<const uint8_t*>(x.data);
  uint8_t* out = static_cast<uint8_t*>(y.data);
  const int64_t mats = rows * cols != 0 ? x.numel() / (rows * cols) : 0;
  for (int64_t m = 0; m < mats; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t at = (m * rows + i) * cols + j;
        const bool keep = upper ? j - i >= k : j - i <= k;
        if (keep) std::memcpy(out + at * es, in + at * es, es);
        else std::memset(out + at * es, 0, es);
      }
  return Status::ok();
}

// Indices of any numeric dtype, truncated toward zero as a cast to int64 does.
int64_t index_at(const TensorView& t, int64_t i) {
  return dtype_is_float(t.dtype) ? static_cast<int64_t>(tensor_double_at(t, i)) : tensor_int_at(t, i);
}

Status onehot_cpu(const CpuKernelArgs& a) {
  const TensorView& ind = a.inputs[0];
  const TensorView& values = a.inputs[1];
  const TensorView& y = a.outputs[0];
  const int64_t depth = a.attrs().get_int("depth", 0), axis = a.attrs().get_int("axis", 0);
  if (depth < 1 || axis < 0 || axis > static_cast<int64_t>(ind.shape.size()) || values.numel() != 2 ||
      y.dtype != values.dtype || y.numel() != ind.numel() * depth)
    return invalid_plan("OneHot: depth, axis or output do not match the inputs");
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < static_cast<int64_t>(ind.shape.size()); ++d) (d < axis ? outer : inner) *= ind.shape[d];
  const size_t es = dtype_size(values.dtype);
  const uint8_t* off = static_cast<const uint8_t*>(values.data);
  const uint8_t* on = off + es;
  uint8_t* out = static_cast<uint8_t*>(y.data);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t idx = index_at(ind, o * inner + i);
      if (idx < 0) idx += depth;  // out of range after this: every position gets off_value
      for (int64_t d = 0; d < depth; ++d) std::memcpy(out + ((o * depth + d) * inner + i) * es, d == idx ? on : off, es);
    }
  return Status::ok();
}

}  // namespace

void register_positional_cpu(CpuRegistry& r) {
  r.add("CumSum", cumsum_cpu, CpuFloat16::kWidened).arity(1, 1);
  r.add("Trilu", trilu_cpu).arity(1, 1);
  r.add("OneHot", onehot_cpu).arity(2, 1);
}

}  // namespace kiln
