#include "runtime/core/tensor.h"

#include "runtime/core/half.h"
#include "runtime/core/float8.h"

namespace kiln {

int64_t tensor_int_at(const TensorView& t, int64_t i) {
  switch (t.dtype) {
    case DType::kInt64: return t.as<int64_t>()[i];
    case DType::kInt32: return t.as<int32_t>()[i];
    case DType::kInt16: return t.as<int16_t>()[i];
    case DType::kInt8: return t.as<int8_t>()[i];
    case DType::kUInt8: case DType::kBool: return t.as<uint8_t>()[i];
    case DType::kUInt16: return t.as<uint16_t>()[i];
    case DType::kUInt32: return t.as<uint32_t>()[i];
    case DType::kUInt64: return static_cast<int64_t>(t.as<uint64_t>()[i]);
    case DType::kFloat32: return static_cast<int64_t>(t.as<float>()[i]);
    case DType::kFloat64: return static_cast<int64_t>(t.as<double>()[i]);
    default: return 0;
  }
}

double tensor_double_at(const TensorView& t, int64_t i) {
  switch (t.dtype) {
    case DType::kFloat32: return t.as<float>()[i];
    case DType::kFloat64: return t.as<double>()[i];
    case DType::kFloat16: return half_to_float(t.as<uint16_t>()[i]);
    case DType::kBFloat16: return bf16_to_float(t.as<uint16_t>()[i]);
    case DType::kFloat8E4M3FN: case DType::kFloat8E5M2:  // decoded, so comparisons see values
      return float8_to_float(t.dtype, t.as<uint8_t>()[i]);
    default: return static_cast<double>(tensor_int_at(t, i));
  }
}

std::vector<int64_t> tensor_to_int64s(const TensorView& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = tensor_int_at(t, static_cast<int64_t>(i));
  return v;
}

HostTensor to_float_dtype(HostTensor t, DType to) {
  const bool half_to_single = t.dtype() == DType::kFloat16 && to == DType::kFloat32;
  const bool single_to_half = t.dtype() == DType::kFloat32 && to == DType::kFloat16;
  if (!half_to_single && !single_to_half) return t;
  HostTensor out(to, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (half_to_single) out.as<float>()[i] = half_to_float(t.as<uint16_t>()[i]);
    else out.as<uint16_t>()[i] = float_to_half(t.as<float>()[i]);
  }
  return out;
}

}  // namespace kiln
