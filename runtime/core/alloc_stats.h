// Counts the buffers the runtime allocates (device buffers, sub-buffers, host arenas), so tests
// can assert that inference after warm-up allocates nothing.
#pragma once
#include <atomic>
#include <cstdint>

namespace kiln {

inline std::atomic<uint64_t>& runtime_allocation_counter() {
  static std::atomic<uint64_t> counter{0};
  return counter;
}
inline void count_runtime_allocation() { runtime_allocation_counter().fetch_add(1, std::memory_order_relaxed); }
inline uint64_t runtime_allocations() { return runtime_allocation_counter().load(std::memory_order_relaxed); }

}  // namespace kiln
