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
// With `in_place`, a node's output shares its input's memory where may_write_in_place allows
// and the input dies at that node (produced on `backend`, read by no later node, not a plan
// output): such tensors form one group placed as one; kept only if the peak does not grow (the
// greedy placement can pack a group worse than its members alone).
ArenaPlan plan_arena(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                     uint64_t alignment, bool in_place = true);

// The same liveness, placed into whole buffers instead of offsets: tensors whose lifetimes
// never overlap share one buffer. Used for device memory, where carving one allocation into
// overlapping sub-buffers crashes NVIDIA's OpenCL driver on release.
struct SharedBuffersPlan {
  std::vector<int32_t> buffer;   // by tensor index; -1 = not on this backend
  std::vector<uint64_t> sizes;   // bytes of each buffer
  uint64_t total = 0;            // sum of sizes (peak)
  uint64_t unplanned = 0;        // bytes without reuse
};
SharedBuffersPlan plan_shared_buffers(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend,
                                     uint64_t alignment, bool in_place = true);

// For each tensor, the tensor whose memory it uses on `backend`: itself, or (in place) the
// first tensor of its group.
std::vector<int32_t> in_place_roots(const Plan& plan, const std::vector<Backend>& node_backends, Backend backend);

// One tensor's (or in-place group's) stay on a backend: node indices [begin, end] (end =
// nodes.size() for the final copy-out), bytes rounded up to the alignment.
struct Lifetime {
  int32_t tensor;  // the group's root
  int32_t begin, end;
  uint64_t bytes;
};
// The lifetimes plan_arena and plan_shared_buffers place, largest first; *root (by tensor) is
// the group each tensor belongs to (itself without in-place).
std::vector<Lifetime> tensor_lifetimes(const Plan& plan, const std::vector<Backend>& node_backends,
                                       Backend backend, uint64_t alignment, uint64_t* unplanned,
                                       bool in_place, std::vector<int32_t>* root);

}  // namespace kiln
