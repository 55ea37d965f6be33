// The .npy reader (runtime/core/npy.h) on arbitrary bytes, in memory and through the file
// path (header first, then only the data the header justifies).
#include "runtime/core/npy.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::HostTensor t;
  kiln::fuzz::check_refusal(kiln::parse_npy(data, size, "fuzz", &t));
  kiln::HostTensor u;
  kiln::fuzz::check_refusal(kiln::read_npy(kiln::fuzz::as_file(data, size), &u, [](kiln::DType, const kiln::Shape& s) {
    // As kiln run does: refuse shapes beyond what a plan input could be before reading.
    return s.size() <= 4 ? kiln::Status::ok() : kiln::invalid_argument("rank");
  }));
  return 0;
}
