// Loading a plan from a file: the 64-byte header is read and checked against the file's size
// before the rest is read (a FIFO, a device such as /dev/zero or a directory is refused at
// open), then parse_plan verifies everything. A deployment can pin the plan's content: the
// SHA-256 of the file's bytes must then equal the one it expects.
#pragma once
#include <string>

#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

// `expect_sha256`: "" accepts any content; else 64 hex digits the file's SHA-256 must equal.
// `sha256_out` (optional) receives the file's digest.
Status load_plan_file(const std::string& path, const std::string& expect_sha256, Plan* out,
                      std::string* sha256_out = nullptr);

// SHA-256 (lower-case hex) of plan bytes: the content hash `kiln inspect` shows and pins take.
std::string plan_content_hash(const uint8_t* data, size_t size);

}  // namespace kiln
