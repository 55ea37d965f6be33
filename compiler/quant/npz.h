// NumPy .npz archives (zip of .npy files, stored or deflated, zip64 included), for calibration
// samples. Every offset and size in the archive is checked before use.
#pragma once
#include <map>
#include <string>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

// Arrays by name (the member name without ".npy").
Status read_npz(const std::string& path, std::map<std::string, HostTensor>* out);
// The same from the archive's bytes in memory; `what` names it in errors.
Status parse_npz(const uint8_t* data, size_t size, const std::string& what, std::map<std::string, HostTensor>* out);

}  // namespace kiln
