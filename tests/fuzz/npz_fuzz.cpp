// The .npz reader (compiler/quant/npz.h): zip directory, zip64 fields, stored and deflated
// members, each member through the .npy parser.
#include "compiler/quant/npz.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, kiln::HostTensor> arrays;
  kiln::fuzz::check_refusal(kiln::parse_npz(data, size, "fuzz", &arrays));
  return 0;
}
