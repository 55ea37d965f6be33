// The semantic half of plan verification: every node re-derived with its op rule
// (runtime/ops/op_rules.h) over the plan's tensors, so a plan whose structure and checksum are
// valid but whose shapes, dtypes or attributes disagree (hand-edited, or damaged and re-summed)
// is refused before any kernel sees it. verify_plan() (plan_format.h) runs it after the
// structural checks; contexts of dynamic plans run it again at every new set of input shapes.
#pragma once
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

// Every node of `plan` and of its subgraphs at the plan's own shapes. Indices must already be
// checked.
Status verify_plan_nodes(const Plan& plan);

// Every node in `nodes` (the plan's, attributes re-evaluated) at `shapes` (one per tensor).
Status verify_nodes_at(const Plan& plan, const std::vector<PlanNode>& nodes, const std::vector<Shape>& shapes);

// Attributes of `node` that its op rule does not read (the compiler refuses them rather than
// write a plan the runtime would refuse). Empty when the node has no rule or fails it.
// `tensors`: those of the subgraph holding the node (default: the plan's).
std::vector<std::string> unread_attributes(const Plan& plan, const PlanNode& node,
                                           const std::vector<PlanTensor>* tensors = nullptr);

// The backend assignment a context would run with: every OpenCL node must be one the OpenCL
// backend supports (its supports() check: dtypes, 32-bit index ranges, device capabilities),
// since a plan built for OpenCL is run with its own assignment.
Status verify_backends(const Plan& plan, const std::vector<Backend>& backends, const DeviceCaps& device);

}  // namespace kiln
