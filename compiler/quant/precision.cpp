#include "compiler/quant/precision.h"

#include "compiler/ir/graph.h"
#include "runtime/core/float8.h"

namespace kiln {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kFp16: return "fp16";
    case Precision::kInt8: return "int8";
    case Precision::kFp8E4M3: return "fp8";
    case Precision::kFp8E5M2: return "fp8-e5m2";
  }
  return "?";
}

bool calibrated_precision(Precision p) {
  return p == Precision::kInt8 || p == Precision::kFp8E4M3 || p == Precision::kFp8E5M2;
}

Status parse_precision(const std::string& text, Precision* out) {
  for (Precision p : {Precision::kFp32, Precision::kFp16, Precision::kInt8, Precision::kFp8E4M3, Precision::kFp8E5M2})
    if (text == precision_name(p)) {
      *out = p;
      return Status::ok();
    }
  if (text == "fp8-e4m3") {
    *out = Precision::kFp8E4M3;
    return Status::ok();
  }
  if (text.find("fnuz") != std::string::npos)
    return unsupported("precision '" + text + "': the FNUZ FP8 variants are not supported; kiln implements " +
                       "fp8 (E4M3FN) and fp8-e5m2");
  return invalid_argument("unknown precision '" + text + "': expected fp32, fp16, int8, fp8 (E4M3FN) or fp8-e5m2");
}

Status parse_layer_precision(const std::string& list, std::map<std::string, std::string>* out) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    const std::string item = list.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0)
      return invalid_argument("bad --layer-precision item '" + item + "': expected NODE=PRECISION, e.g. conv1=fp32");
    Precision p;
    KILN_TRY_CTX(parse_precision(item.substr(eq + 1), &p), "--layer-precision " + item);
    (*out)[item.substr(0, eq)] = precision_name(p);
  }
  return Status::ok();
}

Status check_layer_precision(const ir::Graph& g, const BuildOptions& opts) {
  for (const auto& [name, value] : opts.layer_precision) {
    Precision p;
    KILN_TRY_CTX(parse_precision(value, &p), "--layer-precision " + name + "=" + value);
    bool found = false;
    for (const auto& n : g.nodes()) found |= n->name == name;
    if (!found) return invalid_argument("--layer-precision names '" + name + "', which is not a node of the model");
  }
  return Status::ok();
}

Precision node_precision(const ir::Node& n, const BuildOptions& opts) {
  Precision p = Precision::kFp32;
  auto lookup = [&](const std::string& name) {
    auto it = opts.layer_precision.find(name);
    return it != opts.layer_precision.end() && parse_precision(it->second, &p).is_ok();
  };
  if (lookup(n.name)) return p;
  for (const std::string& f : n.fused)
    if (lookup(f)) return p;
  if (!n.precision.empty() && parse_precision(n.precision, &p).is_ok()) return p;
  if (opts.precision != "best" && parse_precision(opts.precision, &p).is_ok()) return p;
  return Precision::kFp32;
}

namespace {

bool quantized_dtype(DType t) {
  return t == DType::kInt8 || t == DType::kUInt8 || t == DType::kInt16 || t == DType::kUInt16 || float8_is_supported(t);
}

// Whether `n` is part of quantization: an integer/FP8 kernel, or a Quantize/Dequantize node
// (one side of it quantized). Tensors, not op names: fuse_quantized and the hoisting of
// QuantizeLinear add and move such nodes after quantize_ptq made them.
bool touches_quantized(const ir::Node& n) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (const ir::Value* v : *list)
      if (v && quantized_dtype(v->dtype)) return true;
  return false;
}

}  // namespace

Precision float_precision(const ir::Node& n, const BuildOptions& opts) {
  const Precision p = node_precision(n, opts);
  if (!calibrated_precision(p) || touches_quantized(n)) return p;
  return opts.fallback_precision == FallbackPrecision::kFp16 ? Precision::kFp16 : Precision::kFp32;
}

const char* fallback_precision_name(FallbackPrecision p) { return p == FallbackPrecision::kFp16 ? "fp16" : "fp32"; }

Status parse_fallback_precision(const std::string& text, FallbackPrecision* out) {
  if (text != "fp32" && text != "fp16")
    return invalid_argument("--fallback-precision must be fp32 or fp16 (what int8/fp8 builds run their unquantized "
                            "nodes in), got '" + text + "'");
  *out = text == "fp16" ? FallbackPrecision::kFp16 : FallbackPrecision::kFp32;
  return Status::ok();
}

}  // namespace kiln
