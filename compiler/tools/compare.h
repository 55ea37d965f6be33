// kiln compare as data: a plan's outputs (and per layer its intermediate tensors) against the
// FP32 reference built from the ONNX model on the same inputs. The CLI prints it, the C API
// (kiln_build_compare) and the Python package return it.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/quant/accuracy.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct ErrorRow {
  std::string tensor, node;  // node: the plan node computing it ("" for outputs)
  bool is_output = false;
  bool per_layer = false;  // a per-layer row (outputs appear there too)
  TensorErrors e;
};

struct Comparison {
  std::string device;          // label of the device the plan ran on
  std::vector<ErrorRow> rows;  // outputs in plan order, then per-layer rows worst first
  size_t unmatched = 0;        // per layer: plan node outputs with no same-named reference tensor
  size_t node_outputs = 0;     // per layer: node outputs the plan computed
  std::map<std::string, HostTensor> plan_values, reference_values;  // per layer: the compared tensors
};

// `inputs` may name some or all plan inputs; the rest get kiln run's fixed-seed random values.
Status compare_plan(std::shared_ptr<const Plan> plan, const std::string& reference_model,
                    const std::map<std::string, HostTensor>& inputs, const std::string& device, bool per_layer,
                    Comparison* out);

}  // namespace kiln
