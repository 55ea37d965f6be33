#include "runtime/exec/memory_plan.h"

#include <algorithm>

#include "runtime/ops/in_place.h"

namespace kiln {

std::vector<int32_t> in_place_roots(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend) {
  const size_t nt = plan.tensors.size();
  std::vector<int32_t> root(nt), last_use(nt, -1), producer(nt, -1);
  for (size_t t = 0; t < nt; ++t) root[t] = static_cast<int32_t>(t);
  for (size_t n = 0; n < plan.nodes.size(); ++n) {
    for (int32_t t : plan.nodes[n].inputs)
      if (t >= 0) last_use[t] = static_cast<int32_t>(n);
    for (int32_t t : plan.nodes[n].outputs) producer[t] = static_cast<int32_t>(n);
  }
  std::vector<uint8_t> is_output(nt, 0);
  for (int32_t t : plan.outputs) is_output[t] = 1;
  for (size_t n = 0; n < plan.nodes.size(); ++n) {
    const PlanNode& node = plan.nodes[n];
    if (node_backends[n] != backend || node.outputs.size() != 1) continue;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int32_t in = node.inputs[i];
      if (in < 0 || plan.tensors[in].kind != TensorKind::kActivation || is_output[in] ||
          last_use[in] != static_cast<int32_t>(n) || producer[in] < 0 || node_backends[producer[in]] != backend ||
          !may_write_in_place(plan, node, i))
        continue;
      root[node.outputs[0]] = root[in];
      break;
    }
  }
  return root;
}

namespace {
ArenaPlan place_arena(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                      uint64_t alignment, bool in_place);
SharedBuffersPlan place_shared_buffers(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                                       uint64_t alignment, bool in_place);
}  // namespace

std::vector<Lifetime> tensor_lifetimes(const Plan& plan, const std::vector<Backend>& node_backends,
                                       Backend backend, uint64_t alignment, uint64_t* unplanned, bool in_place,
                                       std::vector<int32_t>* root) {
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

  if (in_place) {
    *root = in_place_roots(plan, node_backends, backend);
  } else {
    root->resize(nt);
    for (size_t t = 0; t < nt; ++t) (*root)[t] = static_cast<int32_t>(t);
  }
  // A group lives from its first member's start to its last member's end, as large as its
  // largest member (members of a group are the same size, see may_write_in_place).
  std::vector<int> slot(nt, -1);
  std::vector<Lifetime> items;
  *unplanned = 0;
  for (size_t t = 0; t < nt; ++t) {
    const PlanTensor& pt = plan.tensors[t];
    if (first[t] < 0 || pt.kind == TensorKind::kConstant) continue;
    if (pt.kind == TensorKind::kInput && backend == Backend::kCpu) continue;  // caller's memory
    const int32_t stop = produced_here[t] ? std::max(last_here[t], last_any[t]) : last_here[t];
    const uint64_t bytes = (std::max<uint64_t>(pt.bytes(), 1) + alignment - 1) / alignment * alignment;
    *unplanned += bytes;
    const int32_t r = (*root)[t];
    if (slot[r] < 0) {
      slot[r] = static_cast<int>(items.size());
      items.push_back({r, first[t], stop, bytes});
    } else {
      Lifetime& g = items[slot[r]];
      g.begin = std::min(g.begin, first[t]);
      g.end = std::max(g.end, stop);
      g.bytes = std::max(g.bytes, bytes);
    }
  }
  // Largest first: both placement strategies below are greedy by size.
  std::stable_sort(items.begin(), items.end(), [](const Lifetime& a, const Lifetime& b) { return a.bytes > b.bytes; });
  return items;
}

ArenaPlan plan_arena(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                     uint64_t alignment, bool in_place) {
  // Greedy placement is a heuristic: a group that joins two tensors can pack worse than the two
  // alone, so in-place is kept only where it does not raise the peak.
  if (in_place) {
    ArenaPlan separate = place_arena(plan, node_backends, backend, alignment, false);
    ArenaPlan joined = place_arena(plan, node_backends, backend, alignment, true);
    return joined.size <= separate.size ? joined : separate;
  }
  return place_arena(plan, node_backends, backend, alignment, false);
}

namespace {
ArenaPlan place_arena(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                      uint64_t alignment, bool in_place) {
  ArenaPlan out;
  out.offset.assign(plan.tensors.size(), -1);
  std::vector<int32_t> root;
  const std::vector<Lifetime> items =
      tensor_lifetimes(plan, node_backends, backend, alignment, &out.unplanned, in_place, &root);
  // Each tensor, largest first, at the lowest offset that fits between the already-placed
  // tensors whose lifetimes overlap: TFLite's arena planner strategy.
  std::vector<const Lifetime*> placed;
  for (const Lifetime& it : items) {
    std::vector<std::pair<uint64_t, uint64_t>> busy;  // [offset, offset+bytes) of overlapping
    for (const Lifetime* p : placed)
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
  for (size_t t = 0; t < root.size(); ++t)
    if (root[t] != static_cast<int32_t>(t) && out.offset[root[t]] >= 0) out.offset[t] = out.offset[root[t]];
  return out;
}
}  // namespace

SharedBuffersPlan plan_shared_buffers(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                                     uint64_t alignment, bool in_place) {
  if (in_place) {  // as in plan_arena
    SharedBuffersPlan separate = place_shared_buffers(plan, node_backends, backend, alignment, false);
    SharedBuffersPlan joined = place_shared_buffers(plan, node_backends, backend, alignment, true);
    return joined.total <= separate.total ? joined : separate;
  }
  return place_shared_buffers(plan, node_backends, backend, alignment, false);
}

namespace {
SharedBuffersPlan place_shared_buffers(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                                       uint64_t alignment, bool in_place) {
  SharedBuffersPlan out;
  out.buffer.assign(plan.tensors.size(), -1);
  std::vector<int32_t> root;
  const std::vector<Lifetime> items =
      tensor_lifetimes(plan, node_backends, backend, alignment, &out.unplanned, in_place, &root);
  // Largest first, each into the first buffer none of whose tensors is alive at the same time;
  // a buffer is as large as its first (largest) tensor, so every later one fits.
  std::vector<std::vector<const Lifetime*>> users;
  for (const Lifetime& it : items) {
    size_t b = 0;
    for (; b < users.size(); ++b) {
      bool free = true;
      for (const Lifetime* u : users[b]) free &= !(u->begin <= it.end && it.begin <= u->end);
      if (free) break;
    }
    if (b == users.size()) {
      users.emplace_back();
      out.sizes.push_back(it.bytes);
      out.total += it.bytes;
    }
    users[b].push_back(&it);
    out.buffer[it.tensor] = static_cast<int32_t>(b);
  }
  for (size_t t = 0; t < root.size(); ++t)
    if (root[t] != static_cast<int32_t>(t) && out.buffer[root[t]] >= 0) out.buffer[t] = out.buffer[root[t]];
  return out;
}
}  // namespace

}  // namespace kiln
