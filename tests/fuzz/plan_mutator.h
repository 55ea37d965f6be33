// Editing decoded plans the way an attacker edits them behind a recomputed checksum, and running
// what the verifier accepts: shared by the plan fuzz target (cpu, under ASan) and
// tests/unit/plan_mutation_test.cpp (the same edits run on PoCL).
#pragma once
#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "runtime/exec/execution_context.h"
#include "runtime/ops/op_rules.h"
#include "runtime/profile/node_cost.h"

namespace kiln::fuzz {

inline int64_t interesting(std::mt19937_64& rng, int64_t old) {
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

inline void mutate_plan(Plan& p, std::mt19937_64& rng) {
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

// One inference on `device` when the plan is small enough for a fuzzing budget. Returns the
// status of context creation or of the run (ok when skipped).
inline Status run_once(std::shared_ptr<const Plan> plan, const std::string& device) {
  double flops = 0;
  for (const PlanNode& n : plan->nodes) flops += node_cost(*plan, n).flops;
  if (flops > 2e7) return Status::ok();
  // A Loop without a trip count stops only on its condition: a body that keeps it true is an
  // infinite loop (ONNX semantics), which the kernel cuts at 2^31 iterations, hours under the
  // sanitizers. Not within a fuzzing budget; such plans are loaded and verified, not run.
  auto unbounded_loop = [](const std::vector<PlanNode>& nodes) {
    return std::any_of(nodes.begin(), nodes.end(),
                       [](const PlanNode& n) { return n.op == "Loop" && (n.inputs.empty() || n.inputs[0] < 0); });
  };
  if (unbounded_loop(plan->nodes)) return Status::ok();
  for (const PlanGraph& g : plan->graphs)
    if (unbounded_loop(g.nodes)) return Status::ok();
  // The context allocates its arena in create(): bound it before, not after (a verified plan
  // may ask for gigabytes of activations, which a host with them available gives it). The sum
  // of every non-constant tensor, subgraphs' included, bounds what the arenas can need.
  uint64_t activations = 0;
  auto add = [&activations](const std::vector<PlanTensor>& ts) {
    for (const PlanTensor& t : ts)
      if (t.kind != TensorKind::kConstant) activations += std::min<uint64_t>(t.bytes(), uint64_t{1} << 40) + 64;
  };
  add(plan->tensors);
  for (const PlanGraph& g : plan->graphs) add(g.tensors);
  if (activations > (64u << 20)) return Status::ok();
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  if (ctx->host_arena_bytes() > (64u << 20) || ctx->device_arena_bytes() > (64u << 20)) return Status::ok();
  std::vector<std::vector<uint8_t>> buffers;
  for (int32_t t : plan->inputs) {
    const PlanTensor& pt = plan->tensors[t];
    if (pt.bytes() > (16u << 20)) return Status::ok();
    buffers.emplace_back(pt.bytes());
    // Small values: valid indices for most gathers, some out of range. Integers get them per
    // element (0, 1, 2, ...): a byte pattern made an int64 Loop trip count 7.2e16, and a Loop
    // whose condition stays true then ran to its 2^31-iteration guard (tens of minutes), which
    // is the model doing what it says, not a finding. Other types keep the byte pattern.
    const size_t es = dtype_size(pt.dtype);
    if (dtype_is_integer(pt.dtype) && es > 1) {
      for (size_t e = 0; e * es < buffers.back().size(); ++e) buffers.back()[e * es] = static_cast<uint8_t>(e % 3);
    } else {
      for (size_t i = 0; i < buffers.back().size(); ++i) buffers.back()[i] = static_cast<uint8_t>(i % 3);
    }
    KILN_TRY(ctx->bind_input(pt.name, pt.dtype, ctx->tensor_shape(t), buffers.back().data(), buffers.back().size()));
  }
  for (int32_t t : plan->outputs) {
    if (ctx->tensor_bytes(t) > (16u << 20)) return Status::ok();
    buffers.emplace_back(ctx->tensor_bytes(t));
    KILN_TRY(ctx->bind_output(plan->tensors[t].name, buffers.back().data(), buffers.back().size()));
  }
  return ctx->run();
}

}  // namespace kiln::fuzz
