// Compiler-side description of an ONNX op: its version history and its shape rule. The shape
// rule also canonicalizes the node for the runtime (reads build-time constant inputs into
// attributes, picks the runtime op), so runtime kernels see one form per op whatever the opset.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace kiln {

// Highest ONNX opset whose op versions kiln implements. A model may import a newer opset as
// long as none of its ops changed after this one.
constexpr int kMaxSupportedOpset = 21;

// The largest spatial extent, kernel, stride, dilation and pad the convolution and pooling
// shape rules take: the runtime's limit is 2^31 (OpenCL kernels index in 32 bits), and at 2^30
// the rules' products and sums of these values cannot overflow int64.
constexpr int64_t kMaxGeometry = int64_t{1} << 30;

// The largest constant the compiler computes itself (ConstantOfShape, Range, constant folding):
// a few bytes of model must not make it allocate gigabytes.
constexpr uint64_t kMaxComputedConstantBytes = uint64_t{1} << 30;
// Whether a computed constant of `dt` and `shape` stays within that bound (checked arithmetic).
inline bool computed_constant_fits(DType dt, const Shape& shape) {
  uint64_t bytes = dtype_size(dt);
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) return true;
  }
  for (int64_t d : shape)
    if (bytes > kMaxComputedConstantBytes / static_cast<uint64_t>(d)) return false;
    else bytes *= static_cast<uint64_t>(d);
  return true;
}

class InferContext {
 public:
  InferContext(ir::Node& node, ir::Graph& graph) : node_(node), graph_(graph) {}

  ir::Node& node() { return node_; }
  ir::Graph& graph() { return graph_; }
  int version() const { return node_.version; }
  const Attributes& attrs() const { return node_.attrs; }
  Attributes& mutable_attrs() { return node_.attrs; }

  size_t num_inputs() const { return node_.inputs.size(); }
  bool has_input(size_t i) const { return node_.input(i) != nullptr; }
  ir::Value* input(size_t i) const { return node_.input(i); }
  // An input the model leaves out (or never gave) reads as undefined with no dims, so a shape rule
  // that forgets to check has_input() refuses the node instead of reading through a null
  // pointer (models are untrusted).
  DType input_dtype(size_t i) const { return has_input(i) ? node_.inputs[i]->dtype : DType::kUndefined; }
  const Shape& input_shape(size_t i) const {
    static const Shape kNone;
    return has_input(i) ? node_.inputs[i]->shape : kNone;
  }
  // Contents of input i when known at build time, else nullptr.
  const HostTensor* const_input(size_t i) const {
    ir::Value* v = node_.input(i);
    return v && v->constant ? v->constant.get() : nullptr;
  }
  // Contents of input i as int64s; fails, naming the input, when it is not a build-time constant.
  Status const_ints(size_t i, std::vector<int64_t>* out) const;

  size_t num_outputs() const { return node_.outputs.size(); }
  void set_output(size_t i, DType dtype, Shape shape);
  void set_runtime_op(const std::string& op) { node_.runtime_op = op; }
  // Keeps the first n inputs (drops shape-carrying inputs the runtime does not read).
  void keep_inputs(size_t n) {
    if (node_.inputs.size() > n) node_.inputs.resize(n);
  }
  // The node moves nothing (output 0, already set, holds input 0's bytes): lowers it to the copy
  // family's runtime op, a byte copy or, where the memory plan allows, an alias.
  Status lower_to_copy() {
    set_runtime_op("Reshape");
    keep_inputs(1);
    mutable_attrs() = Attributes();
    return Status::ok();
  }

  // Errors prefixed with the node, op and version.
  Status fail(const std::string& msg) const { return invalid_model(node_.describe() + ": " + msg); }
  Status fail_unsupported(const std::string& msg) const {
    return unsupported(node_.describe() + ": " + msg);
  }
  Status require_inputs(size_t min, size_t max) const;
  // `axis` in [-rank, rank) made >= 0 into *out; fails naming the node and attribute otherwise.
  Status normalize_axis(const std::string& attr, int64_t axis, int64_t rank, int64_t* out) const;
  // Fails unless input i has one of `dtypes`.
  Status require_dtype(size_t i, std::initializer_list<DType> dtypes) const;

 private:
  ir::Node& node_;
  ir::Graph& graph_;
};

using InferFn = Status (*)(InferContext&);

// How --precision fp16 converts a node of the op (compiler/passes/convert_fp16.cpp).
enum class Fp16 : uint8_t {
  kNone,     // no float16 kernels: the node stays float32 between Casts
  kCompute,  // float16 kernels on both backends, same shape rule: float32 outputs become float16
  kMove,     // kCompute for an op that only moves data: it follows its producer's precision
             // (converted when a float input already exists in float16), so no Cast pair wraps
             // a lone Reshape
  kReinfer,  // elementwise: the shape rule runs again on the float16 inputs (the float16
             // program computes the same float math rounded to half)
  kReads,    // not converted, but reads a float16 input 0 as is (its kernels widen it, which is
             // exact): a float16 producer's output feeds it without a Cast back to float32
             // (QuantizeLinear after an FP16 LayerNorm in an --fallback-precision fp16 plan)
  kFloatIo,  // a quantized kernel, not converted, whose float data may be float16 as is: it
             // writes its float output (a fused DequantizeLinear's) as float16 where every reader
             // of it runs in FP16, and reads a float16 value at input fp16_reads_input (its
             // float residual) without a Cast (QLinearMatMul in an --fallback-precision fp16 BERT)
};

// Attribute (int 1) that --precision fp16 sets on the float32->float16 Casts it inserts: they
// saturate (finite values beyond half's range become +-65504, the runtime's CastSat) where an
// ONNX Cast overflows to inf. kiln's own: a model carrying it is refused at import.
inline constexpr const char* kCastSaturateAttr = "kiln_saturate";

// Facts are set with chained calls on what SchemaRegistry::add returns:
//   r.add({"Transpose", {1, 13, 21}, infer_transpose}).fp16(Fp16::kMove).commutes_with_quantize();
struct OpSchema {
  std::string op_type;
  // Every since-version of the op in ONNX's history, ascending, including versions newer than
  // kMaxSupportedOpset (those are recognized and refused).
  std::vector<int> versions;
  InferFn infer = nullptr;
  // Whether the node may be evaluated at build time when all its inputs are constants.
  bool foldable = true;
  // Made by kiln's passes only (the FP8 linear ops); a model naming it is refused at import.
  bool internal = false;
  Fp16 fp16_form = Fp16::kNone;
  // Float32 inputs from this index on carry parameters (Resize's interpolation weights) and
  // stay float32 in an fp16 node; -1: every input is data.
  int fp16_param_inputs_from = -1;
  // kReads / kFloatIo: the input that may be float16 as is.
  int fp16_reads_input = 0;
  // Only moves or selects values (MaxPool picks a maximum, which a monotone quantization
  // preserves), so Q(op(x)) == op(Q(x)) exactly for per-tensor quantization
  // (compiler/passes/fuse_quantized.cpp hoists QuantizeLinear above it).
  bool quantize_commutes = false;
  // Has graph attributes (If, Loop, Scan): its shape rule infers them; any other op with one is
  // refused.
  bool subgraphs = false;

  OpSchema& fp16(Fp16 f, int params_from = -1) {
    fp16_form = f;
    fp16_param_inputs_from = params_from;
    return *this;
  }
  OpSchema& fp16_reads(int input) {
    fp16_reads_input = input;
    return *this;
  }
  OpSchema& commutes_with_quantize() {
    quantize_commutes = true;
    return *this;
  }
  OpSchema& takes_subgraphs() {
    subgraphs = true;
    return *this;
  }
};

class SchemaRegistry {
 public:
  OpSchema& add(OpSchema s) {
    OpSchema& e = schemas_[s.op_type];
    e = std::move(s);
    return e;
  }
  const OpSchema* find(const std::string& op_type) const {
    auto it = schemas_.find(op_type);
    return it == schemas_.end() ? nullptr : &it->second;
  }
  const std::map<std::string, OpSchema>& all() const { return schemas_; }

 private:
  std::map<std::string, OpSchema> schemas_;
};

// Filled from runtime/ops/ops.def (register_<family>_schemas).
const SchemaRegistry& schema_registry();

// The ONNX rule: a node's version is the newest since-version not above the model's opset.
// Unknown op, op absent at that opset, or a version newer than kMaxSupportedOpset are errors
// naming the node, the op and the opset.
Status resolve_op_version(const OpSchema* schema, const ir::Node& node, int64_t opset, int* out);

}  // namespace kiln
