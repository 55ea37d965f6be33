// NumPy .npy files (format 1.0/2.0/3.0, C order, little-endian) for `kiln run` inputs/outputs.
#pragma once
#include <string>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

Status read_npy(const std::string& path, HostTensor* out);
Status write_npy(const std::string& path, const HostTensor& t);
// The numpy descr ("<f4", "<i8", "|b1", ...) for a dtype; empty when numpy has none.
std::string npy_descr(DType t);

}  // namespace kiln
