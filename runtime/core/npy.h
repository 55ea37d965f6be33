// NumPy .npy files (format 1.0/2.0/3.0, C order, little-endian): `kiln run` inputs and outputs,
// calibration samples.
#pragma once
#include <functional>
#include <string>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

// `accept` (optional) sees the dtype and shape from the header before any data is read or
// allocated, so a file of the wrong shape is refused without reading gigabytes of it.
using NpyAccept = std::function<Status(DType dtype, const Shape& shape)>;
Status read_npy(const std::string& path, HostTensor* out, const NpyAccept& accept = nullptr);
// The same from bytes in memory (an array inside an .npz); `what` names it in errors.
Status parse_npy(const uint8_t* data, size_t size, const std::string& what, HostTensor* out);
// The header alone: dtype, shape and the data's offset, from the first bytes of a file (at most
// kNpyMaxHeader + 12 are needed). Fails when the header is malformed or incomplete.
constexpr size_t kNpyMaxHeader = 1 << 20;
Status parse_npy_header(const uint8_t* data, size_t size, const std::string& what, DType* dtype, Shape* shape,
                        size_t* data_offset);
Status write_npy(const std::string& path, const HostTensor& t);
// The numpy descr ("<f4", "<i8", "|b1", ...) for a dtype; empty when numpy has none.
std::string npy_descr(DType t);

}  // namespace kiln
