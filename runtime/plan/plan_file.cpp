#include "runtime/plan/plan_file.h"

#include <cstring>

#include "runtime/core/file_io.h"
#include "runtime/core/sha256.h"
#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"

namespace kiln {

std::string plan_content_hash(const uint8_t* data, size_t size) {
  return sha256_hex(std::string(reinterpret_cast<const char*>(data), size));
}

Status load_plan_file(const std::string& path, const std::string& expect_sha256, Plan* out, std::string* sha256_out) {
  if (!expect_sha256.empty()) {
    bool hex = expect_sha256.size() == 64;
    for (char c : expect_sha256) hex &= (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (!hex) return invalid_argument("expected plan SHA-256 '" + expect_sha256 + "' is not 64 hex digits");
  }
  InputFile f;
  KILN_TRY(InputFile::open(path, "plan file", &f));
  // The header says how long the plan is: check that before reading the rest.
  if (f.size() >= kPlanHeaderBytes) {
    uint8_t h[kPlanHeaderBytes];
    KILN_TRY(f.read_at(0, h, sizeof h));
    if (std::memcmp(h, kPlanMagic, 8) != 0) return invalid_plan("plan '" + path + "': not a kiln plan (bad magic)");
    uint64_t file_bytes;
    std::memcpy(&file_bytes, h + 16, 8);
    if (file_bytes != f.size())
      return invalid_plan("plan '" + path + "': header says " + std::to_string(file_bytes) + " bytes but " +
                          std::to_string(f.size()) + " are present (truncated or padded file)");
  }
  std::string bytes;
  KILN_TRY(f.read_all(f.size(), "", &bytes));
  const uint8_t* data = reinterpret_cast<const uint8_t*>(bytes.data());
  const std::string digest = plan_content_hash(data, bytes.size());
  if (sha256_out) *sha256_out = digest;
  if (!expect_sha256.empty()) {
    std::string want = expect_sha256;
    for (char& c : want) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    if (want != digest)
      return invalid_plan("plan '" + path + "' has SHA-256 " + digest + ", not the pinned " + want +
                          " (a different or modified plan)");
  }
  return parse_plan(data, bytes.size(), out).with_context("plan '" + path + "'");
}

}  // namespace kiln
