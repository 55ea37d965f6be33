// SHA-256, for the on-disk program cache key. The runtime links OpenCL only, so no OpenSSL.
#pragma once
#include <string>

namespace kiln {
// Lower-case hex digest of `data`.
std::string sha256_hex(const std::string& data);
}  // namespace kiln
