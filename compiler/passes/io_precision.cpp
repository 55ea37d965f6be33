// --io-precision fp16 (TensorRT's --inputIOFormats/--outputIOFormats=fp16): the plan's float32
// inputs and outputs become float16, so the host sends and receives half the bytes. On a GPU
// fed from host memory that is what a batch costs beyond its kernels (a batch-128 ResNet-50
// input: 77 MiB, 1.6 ms at PCIe's 48 GB/s), and what a framework running in FP16 is handed.
//
// Runs after convert_fp16, whose boundary Casts it absorbs: an FP16 plan's input Cast to half
// and output Cast back to float32 disappear; a reader that widens float16 itself
// (Fp16::kReads: an INT8 plan's input QuantizeLinear) reads the half input as is; any other
// float32 reader gets one Cast to float32, and any other output one Cast to half (ONNX Cast
// semantics: beyond half's range is infinity, not clamped, so an overflow stays visible).
#include <algorithm>
#include <vector>

#include "compiler/passes/fp16_facts.h"
#include "compiler/passes/passes.h"

namespace kiln {
namespace {

bool is_cast_to(const ir::Node& n, DType to) {
  return n.op_type == "Cast" && n.domain.empty() && n.attrs.get_int("to", -1) == static_cast<int64_t>(to);
}

class IoConverter {
 public:
  IoConverter(ir::Graph& g, int64_t opset) : g_(g), opset_(opset) {}

  Status input_to_half(ir::Value* in) {
    in->dtype = DType::kFloat16;
    std::vector<ir::Node*> wide_readers;
    const std::vector<ir::Node*> readers = g_.consumers()[in];
    for (ir::Node* reader : readers) {
      if (is_cast_to(*reader, DType::kFloat16) && reader->inputs.size() == 1 && !g_.is_graph_output(reader->outputs[0])) {
        g_.replace_uses(reader->outputs[0], in);  // the Cast to half had nothing left to do
        reader->dead = true;
      } else if (!reads_half_at(*reader, in)) {
        wide_readers.push_back(reader);
      }
    }
    return widen_for_readers(in, wide_readers);
  }

  Status output_to_half(ir::Value* out) {
    ir::Node* p = writer_of(out);
    ir::Node* writer = p && p->inputs.size() == 1 && p->inputs[0] ? writer_of(p->inputs[0]) : nullptr;
    if (writer && is_cast_to(*p, DType::kFloat32) && p->inputs[0]->dtype == DType::kFloat16 &&
        !g_.is_graph_output(p->inputs[0])) {
      // convert_fp16's Cast back to float32: the half value's producer writes the output itself.
      ir::Value* half = p->inputs[0];
      const std::vector<ir::Node*> wide_readers = g_.consumers()[out];  // read the float32 output
      p->dead = true;
      g_.replace_uses(half, out);
      std::replace(writer->outputs.begin(), writer->outputs.end(), half, out);
      out->producer = writer;
      half->producer = nullptr;
      out->dtype = DType::kFloat16;
      return widen_for(out, wide_readers);
    }
    ir::Value* wide = g_.add_unique_value(out->name + "_fp32");
    wide->dtype = out->dtype;
    wide->shape = out->shape;
    wide->has_shape = out->has_shape;
    g_.replace_uses(out, wide);
    if (p) std::replace(p->outputs.begin(), p->outputs.end(), out, wide);
    wide->producer = p;
    ir::Node* cast = g_.add_node("Cast", out->name + "_io_to_fp16");
    cast->inputs = {wide};
    cast->outputs = {out};
    cast->attrs.set("to", static_cast<int64_t>(DType::kFloat16));
    out->producer = cast;
    return infer_and_fold_node(*cast, g_, opset_);
  }

 private:
  // The live node writing `v` (Value::producer is not kept by every fusion pass).
  ir::Node* writer_of(const ir::Value* v) const {
    for (const auto& n : g_.nodes())
      if (!n->dead && std::count(n->outputs.begin(), n->outputs.end(), v)) return n.get();
    return nullptr;
  }

  // After an output became float16: `readers`, nodes of the graph that read it as float32 (an
  // output that also feeds later nodes), read a Cast of it, unless they take half as is.
  Status widen_for(ir::Value* out, std::vector<ir::Node*> readers) {
    std::vector<ir::Node*> wide_readers;
    for (ir::Node* reader : readers) {
      if (is_cast_to(*reader, DType::kFloat16) && !g_.is_graph_output(reader->outputs[0])) {
        g_.replace_uses(reader->outputs[0], out);  // a Cast to half of a half value
        reader->dead = true;
      } else if (!reads_half_at(*reader, out)) {
        wide_readers.push_back(reader);
      }
    }
    return widen_for_readers(out, wide_readers);
  }

  // `readers` of half value `v` that need float32 read one Cast of it, placed before the first.
  Status widen_for_readers(ir::Value* v, const std::vector<ir::Node*>& readers) {
    if (readers.empty()) return Status::ok();
    ir::Node* first = nullptr;
    for (const auto& n : g_.nodes())
      if (!first && std::count(readers.begin(), readers.end(), n.get())) first = n.get();
    ir::Value* wide = g_.add_unique_value(v->name + "_fp32");
    ir::Node* cast = g_.insert_node_before(first, "Cast", v->name + "_io_to_fp32");
    cast->inputs = {v};
    cast->outputs = {wide};
    cast->attrs.set("to", static_cast<int64_t>(DType::kFloat32));
    wide->producer = cast;
    for (ir::Node* reader : readers) std::replace(reader->inputs.begin(), reader->inputs.end(), v, wide);
    return infer_and_fold_node(*cast, g_, opset_);
  }

  ir::Graph& g_;
  int64_t opset_;
};

}  // namespace

Status run_io_precision(ir::Graph& g, const PassContext& ctx) {
  if (ctx.options.io_dtype != DType::kFloat16) return Status::ok();
  IoConverter c(g, g.opsets.at(""));
  for (ir::Value* in : g.inputs)
    if (in->dtype == DType::kFloat32) KILN_TRY(c.input_to_half(in).with_context("--io-precision fp16, input '" + in->name + "'"));
  for (ir::Value* out : g.outputs)
    if (out->dtype == DType::kFloat32 && !out->is_constant())
      KILN_TRY(c.output_to_half(out).with_context("--io-precision fp16, output '" + out->name + "'"));
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
