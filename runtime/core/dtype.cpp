#include "runtime/core/dtype.h"

namespace kiln {
namespace {
struct DTypeInfo {
  DType type;
  const char* name;
  size_t size;
};
constexpr DTypeInfo kInfos[] = {
    {DType::kFloat32, "float32", 4},   {DType::kUInt8, "uint8", 1},
    {DType::kInt8, "int8", 1},         {DType::kUInt16, "uint16", 2},
    {DType::kInt16, "int16", 2},       {DType::kInt32, "int32", 4},
    {DType::kInt64, "int64", 8},       {DType::kBool, "bool", 1},
    {DType::kFloat16, "float16", 2},   {DType::kFloat64, "float64", 8},
    {DType::kUInt32, "uint32", 4},     {DType::kUInt64, "uint64", 8},
    {DType::kBFloat16, "bfloat16", 2}, {DType::kFloat8E4M3FN, "float8e4m3fn", 1},
    {DType::kFloat8E4M3FNUZ, "float8e4m3fnuz", 1}, {DType::kFloat8E5M2, "float8e5m2", 1},
    {DType::kFloat8E5M2FNUZ, "float8e5m2fnuz", 1},
};
const DTypeInfo* find(DType t) {
  for (const auto& i : kInfos)
    if (i.type == t) return &i;
  return nullptr;
}
}  // namespace

size_t dtype_size(DType t) {
  const DTypeInfo* i = find(t);
  return i ? i->size : 0;
}

std::string dtype_name(DType t) {
  if (t == DType::kString) return "string";
  const DTypeInfo* i = find(t);
  return i ? i->name : "dtype(" + std::to_string(static_cast<int>(t)) + ")";
}

bool dtype_is_storable(DType t) { return dtype_size(t) > 0; }

bool dtype_is_float(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kFloat16: case DType::kFloat64: case DType::kBFloat16:
    case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ:
      return true;
    default:
      return false;
  }
}

bool dtype_is_integer(DType t) {
  switch (t) {
    case DType::kUInt8: case DType::kInt8: case DType::kUInt16: case DType::kInt16:
    case DType::kInt32: case DType::kInt64: case DType::kUInt32: case DType::kUInt64:
      return true;
    default:
      return false;
  }
}

DType dtype_from_name(const std::string& name) {
  for (const auto& i : kInfos)
    if (name == i.name) return i.type;
  return DType::kUndefined;
}

}  // namespace kiln
