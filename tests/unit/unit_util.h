// Helpers shared by the unit tests: where the committed test models live, and ways to damage a
// plan file or a calibration cache while keeping its checksum valid (to reach the decoders).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"

namespace kiln::test {

// tests/models/<name>; KILN_TEST_MODELS_DIR is set by tests/CMakeLists.txt, and the environment
// variable of that name overrides it (for test binaries run from another checkout).
inline std::string model_path(const std::string& name) {
  const char* env = std::getenv("KILN_TEST_MODELS_DIR");
  return std::string(env && *env ? env : KILN_TEST_MODELS_DIR) + "/" + name;
}

// Recomputes the header checksum (bytes [64, size)) after the body was edited.
inline void fix_plan_checksum(std::vector<uint8_t>* bytes) {
  const uint32_t crc = crc32(bytes->data() + kPlanHeaderBytes, bytes->size() - kPlanHeaderBytes);
  std::memcpy(bytes->data() + 24, &crc, 4);
}

// Writes a calibration cache `body` with a valid checksum line, so that only the format checks
// of read_calibration_cache can refuse it.
inline void write_checksummed_cache(const std::string& path, const std::string& body) {
  std::ofstream f(path);
  f << body << "crc32 " << crc32(reinterpret_cast<const uint8_t*>(body.data()), body.size()) << "\n";
}

// A fresh, empty directory under the system temp dir, unique per process.
inline std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p = fs::temp_directory_path() / ("kiln-unit-" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace kiln::test
