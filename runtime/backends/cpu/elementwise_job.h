// One Elementwise node's work as the reference kernel (elementwise.cpp) runs it, split so that
// the cpu fast path can run disjoint ranges of output elements on several threads with exactly
// the reference's arithmetic.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/ops/elementwise_program.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {

struct ElementwiseJob {
  ew::Program prog;
  ew::Layout layout;
  std::vector<const void*> in_data;
  void* out_data = nullptr;
  int64_t total = 0;  // output elements

  // Reads and checks the node's program and operands (the reference kernel's checks).
  Status prepare(const CpuKernelArgs& a);
  // Computes output elements [begin, end).
  void run(int64_t begin, int64_t end) const;
};

}  // namespace kiln
