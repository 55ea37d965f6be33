// Under AddressSanitizer (KILN_SANITIZE=address defines KILN_ASAN) the host arena is poisoned
// except for the tensors the running node reads and writes, so a kernel that overruns one
// tensor into its neighbour in the arena is reported even though the memory is allocated.
// Without ASan these are no-ops.
#pragma once
#include <cstddef>

#if defined(KILN_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace kiln {

inline void arena_poison(const void* p, size_t n) {
#if defined(KILN_ASAN)
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

inline void arena_unpoison(const void* p, size_t n) {
#if defined(KILN_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

}  // namespace kiln
