// The calibration cache reader (compiler/quant/calibrate.h): text lines with a checksum line.
// The fuzzer cannot forge CRCs, so inputs starting with 'F' get a correct checksum line
// appended: both the checksum check and the parser behind it are reached.
#include <string>

#include "compiler/quant/calibrate.h"
#include "runtime/plan/byte_io.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (!text.empty() && text[0] == 'F') {
    text.erase(0, 1);
    text += "crc32 " + std::to_string(kiln::crc32(reinterpret_cast<const uint8_t*>(text.data()), text.size())) + "\n";
  }
  std::map<std::string, kiln::TensorRange> ranges;
  const std::string path = kiln::fuzz::as_file(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  for (const char* calibrator : {"entropy", "minmax"})
    kiln::fuzz::check_refusal(kiln::read_calibration_cache(path, calibrator, &ranges));
  return 0;
}
