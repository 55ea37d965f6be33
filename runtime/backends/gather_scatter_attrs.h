// The reduction codes of the ScatterElements/ScatterND runtime attribute "reduction", shared by
// the compiler (which writes them) and both backends (which read them).
#pragma once
#include <cstdint>
#include <string>

namespace kiln::gs {

enum Reduction : int64_t { kReduceNone = 0, kReduceAdd = 1, kReduceMul = 2, kReduceMax = 3, kReduceMin = 4 };

// -1 for a name ONNX does not define.
inline int64_t reduction_code(const std::string& name) {
  if (name == "none") return kReduceNone;
  if (name == "add") return kReduceAdd;
  if (name == "mul") return kReduceMul;
  if (name == "max") return kReduceMax;
  if (name == "min") return kReduceMin;
  return -1;
}

}  // namespace kiln::gs
