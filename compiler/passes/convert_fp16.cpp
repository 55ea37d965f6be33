// FP16 (--precision fp16, --layer-precision NODE=fp16, and in INT8/FP8 builds with
// --fallback-precision fp16 the nodes quantization left in float: float_precision in
// compiler/quant/precision.h): every node to run in fp16 whose op has float16 kernels reads and
// writes float16 tensors, and the float32 constants it reads
// (weights, biases) are stored as half in the plan. The kernels keep float math: OpenCL loads
// and stores half (vload_half/vstore_half) around float32 arithmetic, and the CPU widens to
// float32 (runtime/ops/cpu_float16.cpp). Casts join fp16 and fp32 regions; graph inputs and
// outputs keep their float32 dtype, as TensorRT's do.
//
// Runs after the linear fusions (a fused Conv+bias+residual+activation converts as one node,
// its epilogue computed in float and stored as half) and before fuse_elementwise, so chains of
// fp16 elementwise ops fuse into one float16 program.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <unordered_map>

#include "compiler/ops/op_schema.h"
#include "compiler/passes/fp16_facts.h"
#include "compiler/passes/passes.h"
#include "compiler/quant/precision.h"
#include "runtime/core/half.h"

namespace kiln {

Fp16 fp16_form(const ir::Node& n) {
  const OpSchema* s = n.domain.empty() ? schema_registry().find(n.op_type) : nullptr;
  return s ? s->fp16_form : Fp16::kNone;
}

bool reads_half_at(const ir::Node& n, const ir::Value* v) {
  const Fp16 f = fp16_form(n);
  if (f != Fp16::kReads && f != Fp16::kFloatIo) return false;
  const int i = schema_registry().find(n.op_type)->fp16_reads_input;
  for (size_t k = 0; k < n.inputs.size(); ++k)
    if (n.inputs[k] == v && static_cast<int>(k) != i) return false;
  return n.input(static_cast<size_t>(i)) == v;
}

namespace {

bool has_float32_data(const ir::Node& n) {
  for (const auto* list : {&n.inputs, &n.outputs})
    for (const ir::Value* v : *list)
      if (v && !v->is_constant() && v->dtype == DType::kFloat32) return true;
  return false;
}

// The float32 inputs that are data (converted); parameter inputs (Resize's interpolation
// weights) stay float32.
bool is_data_input(const ir::Node& n, size_t i) {
  const OpSchema* s = schema_registry().find(n.op_type);
  return !s || s->fp16_param_inputs_from < 0 || static_cast<int>(i) < s->fp16_param_inputs_from;
}

// A float32 constant data input with finite values beyond float16's range (torch's attention
// masks multiply by float32's lowest value): as half it becomes infinity, and 0 * inf is NaN, so
// the node stays float32 (paraphrase-MiniLM-L3-v2's FP16 embeddings were all NaN).
bool overflows_half(const ir::Node& n) {
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const ir::Value* v = n.inputs[i];
    if (!v || !v->is_constant() || v->dtype != DType::kFloat32 || !is_data_input(n, i)) continue;
    const float* x = v->constant->as<float>();
    for (int64_t j = 0; j < v->constant->numel(); ++j)
      if (std::isfinite(x[j]) && std::fabs(x[j]) > 65504.f) return true;
  }
  return false;
}

std::shared_ptr<HostTensor> to_half_tensor(const HostTensor& t) {
  auto h = std::make_shared<HostTensor>(DType::kFloat16, t.shape());
  const float* src = t.as<float>();
  uint16_t* dst = h->as<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) dst[i] = float_to_half(src[i]);
  return h;
}

class Converter {
 public:
  Converter(ir::Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  // The float16 twin of float32 value `v`, read by `reader`: a half constant, the converted
  // producer's float16 output, or a Cast inserted before `reader`.
  Status half_of(ir::Value* v, ir::Node* reader, ir::Value** out) {
    auto it = half_.find(v);
    if (it != half_.end()) {
      *out = it->second;
      return Status::ok();
    }
    if (v->is_constant()) {
      *out = g_.add_constant(v->name + "_fp16", to_half_tensor(*v->constant));
    } else {
      ir::Node* cast = g_.insert_node_before(reader, "Cast", v->name + "_to_fp16");
      KILN_TRY(cast_node(cast, v, DType::kFloat16, out));
    }
    half_[v] = *out;
    return Status::ok();
  }

  // Converts `n` (sets *done), or leaves a data mover none of whose inputs is float16 yet
  // unless it is `pulled` (pulled_movers).
  Status convert(ir::Node* n, bool pulled, bool* done) {
    *done = false;
    if (fp16_form(*n) == Fp16::kMove && !pulled) {
      bool follows = false;
      for (ir::Value* v : n->inputs) follows |= v && !v->is_constant() && half_.count(v);
      if (!follows) return Status::ok();
    }
    *done = true;
    if (n->op_type == "Clip" && n->version >= 11 && n->inputs.size() == 1) {
      // Inference moved constant bounds into min/max attributes and dropped the inputs; the
      // shape rule reads bounds from inputs from opset 11 on, so give them back.
      for (const char* bound : {"min", "max"}) {
        auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{});
        t->as<float>()[0] = n->attrs.get_float(bound, bound[1] == 'i' ? -INFINITY : INFINITY);
        n->inputs.push_back(g_.add_constant(n->name + "_" + bound, t));
      }
    }
    for (size_t i = 0; i < n->inputs.size(); ++i) {
      ir::Value* v = n->inputs[i];
      if (v && v->dtype == DType::kFloat32 && is_data_input(*n, i)) KILN_TRY(half_of(v, n, &n->inputs[i]));
    }
    for (ir::Value*& v : n->outputs)
      if (v && v->dtype == DType::kFloat32) write_half(n, &v);
    if (fp16_form(*n) == Fp16::kReinfer) KILN_TRY(infer_and_fold_node(*n, g_, opset_));
    return Status::ok();
  }

  // Makes output `*v` of `n` a float16 value; float32 readers left get a Cast in finish().
  void write_half(ir::Node* n, ir::Value** v) {
    ir::Value* h = g_.add_unique_value((*v)->name + "_fp16");
    h->dtype = DType::kFloat16;
    h->shape = (*v)->shape;
    h->has_shape = true;
    h->producer = n;
    half_[*v] = h;
    upcasts_.push_back({*v, h});
    (*v)->producer = nullptr;
    *v = h;
  }

  // Float32 readers left (fp32 nodes, graph outputs) of values now produced in float16 get
  // them back through a Cast placed before the first such reader; readers that take float16
  // as it is (Fp16::kReads, kFloatIo) read the float16 value itself.
  Status finish() {
    for (const auto& [f32, f16] : upcasts_) {
      ir::Node* first = nullptr;
      for (const auto& n : g_.nodes()) {
        if (n->dead) continue;
        if (reads_half_at(*n, f32)) std::replace(n->inputs.begin(), n->inputs.end(), f32, f16);
        if (!first && std::count(n->inputs.begin(), n->inputs.end(), f32)) first = n.get();
      }
      if (!first && !g_.is_graph_output(f32)) continue;
      ir::Node* cast = first ? g_.insert_node_before(first, "Cast", f32->name + "_to_fp32")
                             : g_.add_node("Cast", f32->name + "_to_fp32");
      cast->inputs = {f16};
      cast->outputs = {f32};
      cast->attrs.set("to", static_cast<int64_t>(DType::kFloat32));
      f32->producer = cast;
      KILN_TRY(infer_and_fold_node(*cast, g_, opset_));
    }
    return Status::ok();
  }

 private:
  Status cast_node(ir::Node* cast, ir::Value* from, DType to, ir::Value** out) {
    *out = g_.add_unique_value(from->name + (to == DType::kFloat16 ? "_fp16" : "_fp32"));
    cast->inputs = {from};
    cast->outputs = {*out};
    cast->attrs.set("to", static_cast<int64_t>(to));
    // Values computed in float32 beyond half's range (a mask's float32 lowest) become +-65504,
    // not +-inf, as TensorRT's conversions give them: softmax over a fully masked row then
    // averages as in float32 instead of giving NaN.
    if (to == DType::kFloat16) cast->attrs.set(kCastSaturateAttr, int64_t{1});
    (*out)->producer = cast;
    return infer_and_fold_node(*cast, g_, opset_);
  }

  ir::Graph& g_;
  int64_t opset_;
  std::unordered_map<ir::Value*, ir::Value*> half_;
  std::vector<std::pair<ir::Value*, ir::Value*>> upcasts_;
};

// The data movers among `targets` that read float32 but feed float16 readers only: they convert
// too, so the Cast goes before them, and the move carries half the bytes (in an INT8 plan with
// --fallback-precision fp16 the projections write float32 into the Reshape/Transpose head splits
// of attention, and a K^T Transpose that reads float16 fuses into the Attention node). Only a
// mover with one float32 tensor to convert (a Concat would take a Cast per input) that writes at
// least as many elements as it reads (a Slice or Gather would have the Cast convert what it drops).
std::set<const ir::Node*> pulled_movers(const ir::Graph& g, const std::vector<ir::Node*>& targets) {
  const auto readers = g.consumers();
  std::set<const ir::Node*> half;  // targets whose float32 inputs will be float16
  for (const ir::Node* n : targets)
    if (fp16_form(*n) != Fp16::kMove) half.insert(n);
  std::set<const ir::Node*> pulled;
  for (auto it = targets.rbegin(); it != targets.rend(); ++it) {
    const ir::Node* n = *it;
    if (fp16_form(*n) != Fp16::kMove) continue;
    const ir::Value* data = nullptr;
    int float_inputs = 0;
    for (const ir::Value* v : n->inputs)
      if (v && !v->is_constant() && v->dtype == DType::kFloat32) data = v, ++float_inputs;
    if (float_inputs != 1 || !data->has_shape) continue;
    bool feeds_half = false, only_half = true;
    for (const ir::Value* out : n->outputs) {
      if (!out || out->dtype != DType::kFloat32) continue;
      only_half &= !g.is_graph_output(out) && out->has_shape && shape_numel(out->shape) >= shape_numel(data->shape);
      auto r = readers.find(out);
      if (r == readers.end()) continue;
      for (const ir::Node* reader : r->second) {
        feeds_half = true;
        only_half &= half.count(reader) || reads_half_at(*reader, out);
      }
    }
    if (feeds_half && only_half) {
      pulled.insert(n);
      half.insert(n);
    }
  }
  return pulled;
}

// The quantized kernels (Fp16::kFloatIo) whose float32 output only nodes of `targets` (as data)
// or readers taking float16 as is read: they write it as float16, with no Cast after them (an
// INT8 BERT's projections feed FP16 attention and LayerNorm under --fallback-precision fp16).
std::vector<ir::Node*> float16_writers(const ir::Graph& g, const std::vector<ir::Node*>& targets) {
  const std::set<const ir::Node*> converted(targets.begin(), targets.end());
  const auto readers = g.consumers();
  std::vector<ir::Node*> out;
  for (const auto& np : g.nodes()) {
    ir::Node* n = np.get();
    if (n->dead || fp16_form(*n) != Fp16::kFloatIo || n->outputs.size() != 1 || !n->outputs[0]) continue;
    const ir::Value* v = n->outputs[0];
    if (v->dtype != DType::kFloat32 || v->is_constant() || g.is_graph_output(v)) continue;
    auto r = readers.find(v);
    if (r == readers.end() || r->second.empty()) continue;
    bool all_half = true;
    for (const ir::Node* reader : r->second) {
      bool as_data = converted.count(reader) != 0;
      for (size_t i = 0; i < reader->inputs.size() && as_data; ++i)
        as_data = reader->inputs[i] != v || is_data_input(*reader, i);
      all_half &= as_data || reads_half_at(*reader, v);
    }
    if (all_half) out.push_back(n);
  }
  return out;
}

}  // namespace

Status run_convert_fp16(ir::Graph& g, const PassContext& ctx) {
  std::vector<ir::Node*> targets;
  std::vector<std::string> kept;
  for (const auto& n : g.nodes()) {
    if (n->dead || float_precision(*n, ctx.options) != Precision::kFp16 || !has_float32_data(*n)) continue;
    // Computes nothing in float (kReads: finish() feeds it) or in its own precision (kFloatIo:
    // float16_writers() picks those that write float16).
    if (fp16_form(*n) == Fp16::kReads || fp16_form(*n) == Fp16::kFloatIo) continue;
    // Clip with runtime bounds: inference compacted its optional inputs, so which bound an
    // input is cannot be told again; it stays fp32.
    const bool runtime_clip = n->op_type == "Clip" && n->inputs.size() > 1;
    if (runtime_clip || fp16_form(*n) == Fp16::kNone)
      kept.push_back(n->name + " (" + n->op_type + ")");
    else if (overflows_half(*n))
      kept.push_back(n->name + " (" + n->op_type + ", a constant beyond float16's range)");
    else
      targets.push_back(n.get());
  }
  if (targets.empty() && kept.empty()) return Status::ok();
  Converter c(g, g.opsets.at(""));
  const std::set<const ir::Node*> pulled = pulled_movers(g, targets);
  // Before the targets convert: a data mover reading such an output then follows it into FP16.
  // OpenCL plans only: the cpu device's oneDNN kernels take float32 (the reference kernels
  // would widen float16, far slower than the Casts they save).
  const std::vector<ir::Node*> writers = ctx.opencl_target ? float16_writers(g, targets) : std::vector<ir::Node*>{};
  for (ir::Node* n : writers) c.write_half(n, &n->outputs[0]);
  size_t converted = 0;
  for (ir::Node* n : targets) {
    bool done = false;
    KILN_TRY_CTX(c.convert(n, pulled.count(n) != 0, &done), "fp16 conversion of " + n->describe());
    converted += done;
  }
  KILN_TRY(c.finish());
  if (std::FILE* r = ctx.options.report) {
    std::fprintf(r, "fp16: %zu nodes run in float16", converted);
    if (!writers.empty()) std::fprintf(r, ", %zu quantized kernels write float16", writers.size());
    if (!kept.empty()) {
      std::fprintf(r, "; %zu stay float32 (no float16 kernels):", kept.size());
      for (const std::string& k : kept) std::fprintf(r, " %s", k.c_str());
    }
    std::fprintf(r, "\n");
  }
  return Status::ok();
}

}  // namespace kiln
