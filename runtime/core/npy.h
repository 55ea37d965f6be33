// NumPy .npy files (format 1.0/2.0/3.0, C order, little-endian): `kiln run` inputs and outputs,
// calibration samples.
#pragma once
#include <string>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

Status read_npy(const std::string& path, HostTensor* out);
// The same from bytes in memory (an array inside an .npz); `what` names it in errors.
Status parse_npy(const uint8_t* data, size_t size, const std::string& what, HostTensor* out);
Status write_npy(const std::string& path, const HostTensor& t);
// The numpy descr ("<f4", "<i8", "|b1", ...) for a dtype; empty when numpy has none.
std::string npy_descr(DType t);

}  // namespace kiln
