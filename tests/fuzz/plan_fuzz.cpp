// Plans from an attacker: load (decode + verifier) and, when accepted, one inference on the cpu
// device under the sanitizers. Every input gets a valid checksum before loading (random bytes
// would otherwise stop at the CRC), and a custom mutator edits decoded plans the way an attacker
// edits them behind a recomputed checksum: attribute values, dims, dtypes, operand indices, op
// names, backends, with boundary values (0, -1, 2^31, 2^62, INT64_MIN/MAX...). Anything the
// verifier accepts must run without a memory error, an overflow or a crash.
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "runtime/exec/execution_context.h"
#include "runtime/ops/op_rules.h"
#include "runtime/plan/byte_io.h"
#include "runtime/plan/plan_format.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/plan_mutator.h"

#ifdef KILN_LIBFUZZER
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);
#endif

namespace kiln {
namespace {

void fix_checksum(std::vector<uint8_t>* b) {
  if (b->size() < kPlanHeaderBytes) return;
  const uint64_t n = b->size();
  std::memcpy(b->data() + 16, &n, 8);
  const uint32_t crc = crc32(b->data() + kPlanHeaderBytes, b->size() - kPlanHeaderBytes);
  std::memcpy(b->data() + 24, &crc, 4);
}

}  // namespace
}  // namespace kiln

#ifdef KILN_LIBFUZZER
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  std::mt19937_64 rng(seed);
  kiln::Plan p;
  if (rng() % 4 != 0 && kiln::decode_plan(data, size, &p).is_ok()) {
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < edits; ++i) kiln::fuzz::mutate_plan(p, rng);
    std::vector<uint8_t> out = kiln::serialize_plan(p);
    if (out.size() <= max_size) {
      std::memcpy(data, out.data(), out.size());
      return out.size();
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  kiln::fix_checksum(&bytes);
  auto plan = std::make_shared<kiln::Plan>();
  const kiln::Status parsed = kiln::parse_plan(bytes.data(), bytes.size(), plan.get());
  kiln::fuzz::check_refusal(parsed);
  if (!parsed) return 0;
  kiln::fuzz::check_refusal(kiln::fuzz::run_once(plan, "cpu"));
  return 0;
}
