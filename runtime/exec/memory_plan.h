// Liveness-based memory planning: the activations a backend holds during an inference share one
// arena, each at an offset chosen so that tensors alive at the same time never overlap.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/plan/plan.h"

namespace kiln {

struct ArenaPlan {
  std::vector<int64_t> offset;  // by tensor index; -1 = not in this arena
  uint64_t size = 0;            // bytes the arena needs (peak)
  uint64_t unplanned = 0;       // bytes the same tensors would take without reuse
};

// Plans the arena of `backend` given where each node runs. A tensor is in the arena when a node
// on `backend` produces or reads it (constants never are; caller-bound inputs are not in the
// host arena). Its lifetime starts at its first touch on `backend` and, if produced there,
// lasts until its last use on any backend (another backend may copy it out late); plan outputs
// stay alive in the host arena until the end. Offsets are multiples of `alignment`.
ArenaPlan plan_arena(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                     uint64_t alignment);

}  // namespace kiln
