// ONNX → kiln IR. The only code in kiln that includes ONNX/protobuf headers: libonnx is used to
// parse the protobuf, never for schemas or checking (kiln's own op schemas decide what is valid).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace kiln {

// Reads `path`; external-data tensors are loaded relative to the model's folder.
Status import_onnx_file(const std::string& path, ir::Graph* out);
// Parses serialized ModelProto bytes; `base_dir` resolves external data ("" = current dir).
Status import_onnx_bytes(const std::string& bytes, const std::string& base_dir, ir::Graph* out);

// The op types of a serialized model's nodes ("domain::Op" for ops outside the default domain),
// without converting anything else: for tools that sort models by the ops they use.
Status list_onnx_ops(const std::string& bytes, std::vector<std::string>* ops);

// Parses a serialized TensorProto (the ONNX test-data .pb files) into a host tensor.
Status parse_tensor_proto(const std::string& bytes, HostTensor* out, std::string* name);

}  // namespace kiln
