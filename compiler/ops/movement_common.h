// Helpers shared by the movement family's shape rules (compiler/ops/movement*.cpp).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "compiler/ops/op_schema.h"

namespace kiln {

// Fails like InferContext::const_ints when input i is not a build-time constant (the message
// names the input, so callers that freeze inputs, e.g. the conformance runner, can react).
Status require_const_input(const InferContext& c, size_t i, const HostTensor** out);
// Contents of a build-time constant numeric input as doubles (float scales, Range bounds).
Status const_doubles(const InferContext& c, size_t i, std::vector<double>* out);
// Sets output i to a build-time constant: no runtime node remains for it.
void set_constant_output(InferContext& c, size_t i, std::shared_ptr<HostTensor> t);
// A new build-time constant value fed to the node (interpolation tables, a Pad fill value).
ir::Value* add_constant_value(InferContext& c, const std::string& hint, std::shared_ptr<HostTensor> t);

// Shape rules registered by register_movement_schemas, defined in their own files.
Status infer_resize(InferContext& c);
Status infer_upsample(InferContext& c);
Status infer_constant(InferContext& c);
Status infer_constant_of_shape(InferContext& c);
Status infer_shape(InferContext& c);
Status infer_size(InferContext& c);
Status infer_range(InferContext& c);

}  // namespace kiln
