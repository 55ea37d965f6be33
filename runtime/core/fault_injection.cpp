#include "runtime/core/fault_injection.h"

#include <atomic>

namespace kiln {
namespace {
std::atomic<int> g_countdown[static_cast<int>(FaultSite::kCount)];
std::atomic<bool> g_armed{false};
}  // namespace

void arm_fault(FaultSite site, int nth) {
  g_countdown[static_cast<int>(site)].store(nth);
  if (nth > 0) g_armed.store(true);
}

void disarm_faults() {
  for (auto& c : g_countdown) c.store(0);
  g_armed.store(false);
}

bool fault_now(FaultSite site) {
  if (!g_armed.load(std::memory_order_relaxed)) return false;
  std::atomic<int>& c = g_countdown[static_cast<int>(site)];
  int v = c.load();
  while (v > 0)
    if (c.compare_exchange_weak(v, v - 1)) return v == 1;
  return false;
}

}  // namespace kiln
