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

void tensor_store_double(HostTensor& t, int64_t i, double v) {
  switch (t.dtype()) {
    case DType::kFloat32: t.as<float>()[i] = static_cast<float>(v); break;
    case DType::kFloat64: t.as<double>()[i] = v; break;
    case DType::kFloat16: t.as<uint16_t>()[i] = float_to_half(static_cast<float>(v)); break;
    case DType::kBFloat16: t.as<uint16_t>()[i] = float_to_bf16(static_cast<float>(v)); break;
    case DType::kFloat8E4M3FN: case DType::kFloat8E5M2:
      t.as<uint8_t>()[i] = float_to_float8(t.dtype(), static_cast<float>(v), true);
      break;
    case DType::kInt64: t.as<int64_t>()[i] = static_cast<int64_t>(v); break;
    case DType::kInt32: t.as<int32_t>()[i] = static_cast<int32_t>(v); break;
    case DType::kInt16: t.as<int16_t>()[i] = static_cast<int16_t>(v); break;
    case DType::kInt8: t.as<int8_t>()[i] = static_cast<int8_t>(v); break;
    case DType::kUInt64: t.as<uint64_t>()[i] = static_cast<uint64_t>(v); break;
    case DType::kUInt32: t.as<uint32_t>()[i] = static_cast<uint32_t>(v); break;
    case DType::kUInt16: t.as<uint16_t>()[i] = static_cast<uint16_t>(v); break;
    case DType::kUInt8: t.as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
    case DType::kBool: t.as<uint8_t>()[i] = v != 0; break;
    default: break;
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
