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
#include "runtime/profile/node_cost.h"
#include "tests/fuzz/fuzz_util.h"

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

int64_t interesting(std::mt19937_64& rng, int64_t old) {
  static const int64_t kValues[] = {0, 1, -1, 2, 3, 7, 64, 255, 256, (1LL << 31) - 1, 1LL << 31, -(1LL << 31),
                                    1LL << 32, 1LL << 48, 1LL << 62, std::numeric_limits<int64_t>::max(),
                                    std::numeric_limits<int64_t>::min()};
  switch (rng() % 4) {
    case 0: return kValues[rng() % (sizeof kValues / sizeof kValues[0])];
    case 1: {  // a neighbour, wrapping rather than overflowing
      const uint64_t v = static_cast<uint64_t>(old) + rng() % 5 - 2;
      return static_cast<int64_t>(v);
    }
    case 2: return old == std::numeric_limits<int64_t>::min() ? 0 : -old;
    default: return static_cast<int64_t>(rng() % 32);
  }
}

void mutate_plan(Plan& p, std::mt19937_64& rng) {
  if (p.nodes.empty() || p.tensors.empty()) return;
  PlanNode& n = p.nodes[rng() % p.nodes.size()];
  switch (rng() % 9) {
    case 0:
    case 1: {  // an attribute value
      if (n.attrs.empty()) break;
      auto it = n.attrs.all().begin();
      std::advance(it, rng() % n.attrs.all().size());
      AttrValue* v = n.attrs.find_mutable(it->first);
      if (auto* i = std::get_if<int64_t>(v)) *i = interesting(rng, *i);
      else if (auto* is = std::get_if<std::vector<int64_t>>(v)) {
        if (is->empty() || rng() % 8 == 0) is->push_back(interesting(rng, 0));
        else if (rng() % 8 == 0) is->pop_back();
        else (*is)[rng() % is->size()] = interesting(rng, (*is)[rng() % is->size()]);
      } else if (auto* f = std::get_if<float>(v)) *f = rng() % 2 ? -*f : std::numeric_limits<float>::quiet_NaN();
      else if (auto* s = std::get_if<std::string>(v)) { if (!s->empty()) (*s)[rng() % s->size()] ^= 1; }
      break;
    }
    case 2: {  // a dim of a tensor this node touches
      std::vector<int32_t> ts = n.inputs;
      ts.insert(ts.end(), n.outputs.begin(), n.outputs.end());
      if (ts.empty()) break;
      const int32_t t = ts[rng() % ts.size()];
      if (t < 0 || t >= static_cast<int32_t>(p.tensors.size())) break;
      Shape& s = p.tensors[t].shape;
      if (s.empty() || rng() % 8 == 0) s.push_back(1 + rng() % 4);
      else s[rng() % s.size()] = interesting(rng, s[rng() % s.size()]);
      break;
    }
    case 3: {  // a dtype
      static const DType kTypes[] = {DType::kFloat32, DType::kFloat16, DType::kInt8, DType::kUInt8, DType::kInt32,
                                     DType::kInt64, DType::kBool, DType::kFloat64, DType::kFloat8E4M3FN};
      p.tensors[rng() % p.tensors.size()].dtype = kTypes[rng() % (sizeof kTypes / sizeof kTypes[0])];
      break;
    }
    case 4: {  // an operand index
      std::vector<int32_t>& list = rng() % 2 || n.outputs.empty() ? n.inputs : n.outputs;
      if (list.empty() || rng() % 6 == 0) list.push_back(static_cast<int32_t>(rng() % p.tensors.size()));
      else if (rng() % 6 == 0) list.pop_back();
      else list[rng() % list.size()] = static_cast<int32_t>(rng() % (p.tensors.size() + 1)) - 1;
      break;
    }
    case 5: {  // another runtime op
      const auto& all = rule_registry().all();
      auto it = all.begin();
      std::advance(it, rng() % all.size());
      n.op = it->first;
      break;
    }
    case 6:  // drop an attribute, or add one a kernel reads elsewhere
      if (!n.attrs.empty() && rng() % 2) {
        auto it = n.attrs.all().begin();
        std::advance(it, rng() % n.attrs.all().size());
        n.attrs.erase(it->first);
      } else {
        static const char* kNames[] = {"axis", "axes", "perm", "pads", "strides", "group", "residual", "keepdims"};
        n.attrs.set(kNames[rng() % 8], interesting(rng, 1));
      }
      break;
    case 7: {  // constant bytes (indices, tables)
      if (p.weights.empty()) break;
      p.weights[rng() % p.weights.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
      break;
    }
    default:
      n.backend = n.backend == Backend::kCpu ? Backend::kOpenCL : Backend::kCpu;
      break;
  }
}

// One inference on the cpu, when the plan is small enough to run in a fuzzing budget.
void run_on_cpu(std::shared_ptr<const Plan> plan) {
  double flops = 0;
  for (const PlanNode& n : plan->nodes) flops += node_cost(*plan, n).flops;
  if (flops > 2e7) return;
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  Status created = ExecutionContext::create(plan, "cpu", &ctx, &notice);
  fuzz::check_refusal(created);
  if (!created) return;
  if (ctx->host_arena_bytes() > (64u << 20)) return;
  std::vector<std::vector<uint8_t>> buffers;
  for (int32_t t : plan->inputs) {
    const PlanTensor& pt = plan->tensors[t];
    if (pt.bytes() > (16u << 20)) return;
    buffers.emplace_back(pt.bytes());
    // Small values: valid indices for most gathers, some out of range.
    for (size_t i = 0; i < buffers.back().size(); ++i) buffers.back()[i] = static_cast<uint8_t>(i % 3);
    if (!ctx->bind_input(pt.name, pt.dtype, ctx->tensor_shape(t), buffers.back().data(), buffers.back().size()).is_ok())
      return;
  }
  for (int32_t t : plan->outputs) {
    if (ctx->tensor_bytes(t) > (16u << 20)) return;
    buffers.emplace_back(ctx->tensor_bytes(t));
    if (!ctx->bind_output(plan->tensors[t].name, buffers.back().data(), buffers.back().size()).is_ok()) return;
  }
  fuzz::check_refusal(ctx->run());
}

}  // namespace
}  // namespace kiln

#ifdef KILN_LIBFUZZER
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  std::mt19937_64 rng(seed);
  kiln::Plan p;
  if (rng() % 4 != 0 && kiln::decode_plan(data, size, &p).is_ok()) {
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < edits; ++i) kiln::mutate_plan(p, rng);
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
  kiln::run_on_cpu(plan);
  return 0;
}
