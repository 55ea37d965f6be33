// Runs the subgraphs of a plan's control-flow nodes on the host, for their CPU kernels. Each
// subgraph's activations get liveness-planned host memory of their own, allocated once per
// execution context (a Loop body runs many times per inference in the same memory); formal
// inputs and captures are bound to the caller's views on each run.
#pragma once
#include <cstdlib>
#include <memory>
#include <vector>

#include "runtime/ops/kernel_api.h"

namespace kiln {

class SubgraphExecutor final : public SubgraphRunner {
 public:
  // Checks that every subgraph node has a CPU kernel and its operands, and allocates the memory.
  static Status create(const Plan& plan, std::unique_ptr<SubgraphExecutor>* out);

  const PlanGraph* graph(int32_t index) const override;
  Status run(int32_t index, const std::vector<TensorView>& operands, const std::vector<TensorView>& inputs,
             std::vector<TensorView>* outputs) override;
  // Host bytes held for subgraph activations (all subgraphs together).
  uint64_t arena_bytes() const { return arena_bytes_; }

 private:
  explicit SubgraphExecutor(const Plan& plan) : plan_(plan) {}
  struct State {
    std::unique_ptr<uint8_t, void (*)(void*)> arena{nullptr, std::free};
    std::vector<TensorView> views;  // by tensor; inputs and captures are rebound on each run
    std::vector<TensorView> in, out;  // scratch for one node's operands
  };
  const Plan& plan_;
  std::vector<State> states_;
  uint64_t arena_bytes_ = 0;
};

}  // namespace kiln
