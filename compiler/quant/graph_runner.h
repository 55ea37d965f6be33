// Runs a copy of a graph on the CPU backend with chosen values as its outputs: how calibration
// reads the activations it calibrates and the layer check (layer_check.h) compares a quantized
// graph with FP32, without building a plan of the model.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/quant/calibration_set.h"
#include "runtime/exec/execution_context.h"

namespace kiln {

struct GraphRunner {
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<HostTensor> outs;  // one per name given to create(), filled by run()

  // `names`: activations of `g` (graph inputs or node outputs) to read back.
  Status create(const ir::Graph& g, const std::vector<std::string>& names);
  Status run(const CalibrationSample& s);
};

// The relative L2 error sqrt(sum (a-b)^2 / sum b^2) of float32 tensors accumulated over
// samples (sqrt(sum (a-b)^2) while b is all zero; a NaN counts as infinitely wrong).
struct RelativeL2 {
  double diff2 = 0, want2 = 0;
  void add(const HostTensor& got, const HostTensor& want);
  double value() const;
};

}  // namespace kiln
