// Element types. The numeric values are ONNX TensorProto.DataType codes so that the importer,
// the plan and the C API (kiln_dtype) all speak the same numbers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln {

enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
};

// Bytes per element; 0 for types kiln cannot store (string, undefined, unknown codes).
size_t dtype_size(DType t);
// "float32", "int64", ... ; "dtype(N)" for codes kiln does not know.
std::string dtype_name(DType t);
// True for codes kiln's tensors can hold (dtype_size > 0).
bool dtype_is_storable(DType t);
bool dtype_is_float(DType t);
bool dtype_is_integer(DType t);  // signed or unsigned integer, not bool
// Parses a dtype_name() string; returns kUndefined for unknown names.
DType dtype_from_name(const std::string& name);

}  // namespace kiln
