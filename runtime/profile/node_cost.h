// Work estimates per node, for the profiler's achieved GFLOP/s and GB/s and the memory- or
// compute-bound call. Not used for correctness.
#pragma once
#include <cstdint>

#include "runtime/plan/plan.h"

namespace kiln {

struct NodeCost {
  double flops = 0;     // floating-point (or integer) operations
  uint64_t bytes = 0;   // bytes read from inputs plus bytes written to outputs
};

// Bytes of every operand; operations from the op's registered cost (CpuOp::cost), else one
// per output element.
NodeCost node_cost(const Plan& plan, const PlanNode& node);

// Building blocks for ops' cost functions.
double output_elements(const Plan& plan, const PlanNode& node);
double input_elements(const Plan& plan, const PlanNode& node, size_t i);
// 2 x (output elements, or input elements when `transposed`) x prod(W.shape[1:]): W is
// [Cout, Cin/g, k...] (Conv) or [Cin, Cout/g, k...] (ConvTranspose), so each output element of
// a Conv, or input element of a ConvTranspose, meets prod(W.shape[1:]) weights.
double conv_flops(const Plan& plan, const PlanNode& node, size_t weight_input, bool transposed = false);
// 2 x output elements x K, K the contracted dim of input 0 (its last, or first when trans_a).
double matmul_flops(const Plan& plan, const PlanNode& node, bool trans_a = false);

// Arithmetic intensity above which a node counts as compute-bound (FLOP per byte). A fixed
// ridge point: GPUs sit around 10-60, CPUs around 5-15; kiln does not measure the device.
constexpr double kComputeBoundIntensity = 10.0;

}  // namespace kiln
