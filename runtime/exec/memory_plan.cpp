#include "runtime/exec/memory_plan.h"

#include <algorithm>

namespace kiln {

ArenaPlan plan_arena(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                     uint64_t alignment) {
  const size_t nt = plan.tensors.size();
  const int32_t end = static_cast<int32_t>(plan.nodes.size());
  std::vector<int32_t> first(nt, -1), last_here(nt, -1), last_any(nt, -1);
  std::vector<uint8_t> produced_here(nt, 0);
  for (int32_t n = 0; n < end; ++n) {
    const PlanNode& node = plan.nodes[n];
    const bool here = node_backends[n] == backend;
    auto touch = [&](int32_t t) {
      last_any[t] = n;
      if (!here) return;
      if (first[t] < 0) first[t] = n;
      last_here[t] = n;
    };
    for (int32_t t : node.inputs)
      if (t >= 0) touch(t);
    for (int32_t t : node.outputs) {
      touch(t);
      if (here) produced_here[t] = 1;
    }
  }
  // Outputs are copied to the caller after the last node (downloaded first when a device
  // produced them), so they stay alive to the end wherever they were produced.
  for (int32_t t : plan.outputs) last_any[t] = end;
  if (backend == Backend::kCpu) {
    for (int32_t t : plan.outputs) {
      if (first[t] < 0) first[t] = end;
      last_here[t] = end;
      last_any[t] = end;
      produced_here[t] = 1;
    }
  }

  struct Item {
    int32_t tensor;
    int32_t begin, end;
    uint64_t bytes;
  };
  std::vector<Item> items;
  ArenaPlan out;
  out.offset.assign(nt, -1);
  for (size_t t = 0; t < nt; ++t) {
    const PlanTensor& pt = plan.tensors[t];
    if (first[t] < 0 || pt.kind == TensorKind::kConstant) continue;
    if (pt.kind == TensorKind::kInput && backend == Backend::kCpu) continue;  // caller's memory
    const int32_t stop = produced_here[t] ? std::max(last_here[t], last_any[t]) : last_here[t];
    const uint64_t bytes = (std::max<uint64_t>(pt.bytes(), 1) + alignment - 1) / alignment * alignment;
    items.push_back({static_cast<int32_t>(t), first[t], stop, bytes});
    out.unplanned += bytes;
  }
  // Greedy by size (largest first), each at the lowest offset that fits between the
  // already-placed tensors whose lifetimes overlap: TFLite's arena planner strategy.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.bytes > b.bytes; });
  std::vector<const Item*> placed;
  for (const Item& it : items) {
    std::vector<std::pair<uint64_t, uint64_t>> busy;  // [offset, offset+bytes) of overlapping
    for (const Item* p : placed)
      if (p->begin <= it.end && it.begin <= p->end)
        busy.emplace_back(static_cast<uint64_t>(out.offset[p->tensor]), out.offset[p->tensor] + p->bytes);
    std::sort(busy.begin(), busy.end());
    uint64_t at = 0;
    for (const auto& [b, e] : busy) {
      if (at + it.bytes <= b) break;
      at = std::max(at, e);
    }
    out.offset[it.tensor] = static_cast<int64_t>(at);
    out.size = std::max(out.size, at + it.bytes);
    placed.push_back(&it);
  }
  return out;
}

}  // namespace kiln
