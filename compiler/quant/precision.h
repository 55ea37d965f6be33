// Per-layer precision assignment: the one place that says which precision a node runs in.
// --precision sets the build's default, --layer-precision NODE=P overrides single nodes, and
// `best` / --accuracy-budget fill BuildOptions::layer_precision before the passes run. Each
// precision pass (quantize_ptq for int8 and fp8, ...) converts exactly the nodes assigned to it.
#pragma once
#include <map>
#include <string>

#include "compiler/compiler.h"
#include "runtime/core/status.h"

namespace kiln {
namespace ir {
struct Node;
class Graph;
}  // namespace ir

enum class Precision { kFp32, kFp16, kInt8, kFp8E4M3, kFp8E5M2 };

// "fp32", "fp16", "int8", "fp8" (E4M3FN), "fp8-e5m2".
const char* precision_name(Precision p);

// INT8 and the FP8 formats: the precisions whose layers post-training quantization calibrates.
bool calibrated_precision(Precision p);
Status parse_precision(const std::string& text, Precision* out);

// Parses one --layer-precision value "NODE=P[,NODE=P...]" into `out` (split at the last '='
// of each item: node names may contain '=' but not ',').
Status parse_layer_precision(const std::string& list, std::map<std::string, std::string>* out);

// Every --layer-precision name must be a node of the imported graph and every value a
// precision; errors name the offending entry.
Status check_layer_precision(const ir::Graph& g, const BuildOptions& opts);

// The node's precision: an override naming the node (or a node fused into it), else the
// build's --precision ("best" counts as fp32 here: it is resolved into overrides first).
Precision node_precision(const ir::Node& n, const BuildOptions& opts);

// The precision node `n` computes in when it computes in floating point (what the FP16 pass
// converts): node_precision, except that a calibrated precision (int8, fp8, fp8-e5m2) on a node
// that reads and writes no INT8/UINT8/FP8 tensor, one that quantization left in float, becomes
// --fallback-precision. The quantized kernels and their Quantize/Dequantize nodes keep their
// calibrated precision, and an explicit --layer-precision NODE=fp32 stays fp32.
Precision float_precision(const ir::Node& n, const BuildOptions& opts);

// "fp32" or "fp16".
const char* fallback_precision_name(FallbackPrecision p);
// --fallback-precision's value ("fp32" or "fp16"); any other is an error naming it.
Status parse_fallback_precision(const std::string& text, FallbackPrecision* out);

}  // namespace kiln
