#include "compiler/import/onnx/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "compiler/ops/op_schema.h"
#include "runtime/core/file_io.h"
#include "runtime/core/text.h"

namespace kiln {
namespace {

constexpr int kMaxRank = 16;
constexpr size_t kMaxNameBytes = 512;

// Protobuf parses at most 2 GiB; bigger models keep their weights in external data files.
constexpr uint64_t kMaxModelBytes = (uint64_t{1} << 31) - 1;

// Copies a repeated numeric field into a tensor of `dt`, converting element by element.
template <typename Field>
Status copy_field(const Field& f, HostTensor* t, const std::string& what) {
  if (static_cast<int64_t>(f.size()) != t->numel())
    return invalid_model(what + ": has " + std::to_string(f.size()) + " values for shape " +
                         shape_str(t->shape()));
  for (int64_t i = 0; i < t->numel(); ++i) {
    auto v = f.Get(static_cast<int>(i));
    switch (t->dtype()) {
      case DType::kFloat32: t->as<float>()[i] = static_cast<float>(v); break;
      case DType::kFloat64: t->as<double>()[i] = static_cast<double>(v); break;
      case DType::kInt64: t->as<int64_t>()[i] = static_cast<int64_t>(v); break;
      case DType::kInt32: t->as<int32_t>()[i] = static_cast<int32_t>(v); break;
      case DType::kInt16: t->as<int16_t>()[i] = static_cast<int16_t>(v); break;
      case DType::kUInt16: case DType::kFloat16: case DType::kBFloat16:
        t->as<uint16_t>()[i] = static_cast<uint16_t>(v); break;
      case DType::kInt8: t->as<int8_t>()[i] = static_cast<int8_t>(v); break;
      case DType::kUInt8: case DType::kBool: case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ:
      case DType::kFloat8E5M2: case DType::kFloat8E5M2FNUZ:
        t->as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
      case DType::kUInt32: t->as<uint32_t>()[i] = static_cast<uint32_t>(v); break;
      case DType::kUInt64: t->as<uint64_t>()[i] = static_cast<uint64_t>(v); break;
      default: return unsupported(what + ": dtype " + dtype_name(t->dtype()));
    }
  }
  return Status::ok();
}

// Reads the tensor's bytes from its external data file. The location is opened beneath the
// model's folder with no symlink on the way (file_io.h), must be a regular file, and offset and
// length are checked against the file's size before the tensor is allocated.
Status load_external(const onnx::TensorProto& tp, const std::string& base_dir, DType dt, const Shape& shape,
                     uint64_t need, HostTensor* t, const std::string& what) {
  std::string location;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (const auto& kv : tp.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset" || kv.key() == "length") {
      uint64_t v;
      if (!parse_uint64(kv.value(), &v))
        return invalid_model(what + ": external data " + kv.key() + " '" + kv.value() + "' is not a non-negative number");
      (kv.key() == "offset" ? offset : length) = v;
      has_length |= kv.key() == "length";
    }
  }
  if (location.empty()) return invalid_model(what + ": external data without a location");
  if (location.find('\0') != std::string::npos) return invalid_model(what + ": external data location holds a NUL byte");
  InputFile f;
  Status st = InputFile::open_beneath(base_dir, location, "external data file", &f);
  if (!st) return Status(st.code() == StatusCode::kInvalidArgument ? StatusCode::kInvalidModel : st.code(),
                         what + ": " + st.message());
  if (has_length && length != need)
    return invalid_model(what + ": external data length " + std::to_string(length) +
                         " does not match the tensor's " + std::to_string(need) + " bytes");
  if (offset > f.size() || need > f.size() - offset)
    return invalid_model(what + ": external data file '" + f.path() + "' has " + std::to_string(f.size()) +
                         " bytes; the tensor needs " + std::to_string(need) + " at offset " + std::to_string(offset));
  HostTensor out(dt, shape);
  KILN_TRY_CTX(f.read_at(offset, out.data(), static_cast<size_t>(need)), what);
  *t = std::move(out);
  return Status::ok();
}

Status convert_tensor(const onnx::TensorProto& tp, const std::string& base_dir, HostTensor* out) {
  const std::string what = "tensor '" + tp.name() + "'";
  DType dt = static_cast<DType>(tp.data_type());
  if (dt == DType::kString) return unsupported(what + ": string tensors are not supported");
  if (!dtype_is_storable(dt)) return unsupported(what + ": unknown dtype code " + std::to_string(tp.data_type()));
  if (tp.dims_size() > kMaxRank) return invalid_model(what + ": rank above 16");
  Shape shape;
  int64_t numel = 1;
  for (int64_t d : tp.dims()) {
    if (d < 0) return invalid_model(what + ": negative dim");
    if (d > 0 && numel > (int64_t{1} << 40) / d) return invalid_model(what + ": too many elements");
    numel *= d;
    shape.push_back(d);
  }
  const uint64_t need = static_cast<uint64_t>(numel) * dtype_size(dt);
  if (tp.data_location() == onnx::TensorProto::EXTERNAL) {
    HostTensor t;
    KILN_TRY(load_external(tp, base_dir, dt, shape, need, &t, what));
    *out = std::move(t);
    return Status::ok();
  }
  // The data present must match the shape before the tensor is allocated: a declared
  // [2^20, 2^20] initializer with no data is refused, not zero-filled.
  if (tp.has_raw_data() && tp.raw_data().size() != need)
    return invalid_model(what + ": raw_data has " + std::to_string(tp.raw_data().size()) + " bytes, expected " +
                         std::to_string(need) + " for shape " + shape_str(shape));
  if (!tp.has_raw_data()) {
    const int64_t values = dt == DType::kFloat32   ? tp.float_data_size()
                           : dt == DType::kInt64   ? tp.int64_data_size()
                           : dt == DType::kFloat64 ? tp.double_data_size()
                           : dt == DType::kUInt32 || dt == DType::kUInt64 ? tp.uint64_data_size()
                                                                          : tp.int32_data_size();
    if (values != numel)
      return invalid_model(what + ": has " + std::to_string(values) + " values for shape " + shape_str(shape));
  }
  HostTensor t(dt, shape);
  if (tp.has_raw_data()) {
    if (t.size_bytes()) std::memcpy(t.data(), tp.raw_data().data(), t.size_bytes());
  } else if (dt == DType::kFloat32) {
    KILN_TRY(copy_field(tp.float_data(), &t, what));
  } else if (dt == DType::kInt64) {
    KILN_TRY(copy_field(tp.int64_data(), &t, what));
  } else if (dt == DType::kFloat64) {
    KILN_TRY(copy_field(tp.double_data(), &t, what));
  } else if (dt == DType::kUInt32 || dt == DType::kUInt64) {
    KILN_TRY(copy_field(tp.uint64_data(), &t, what));
  } else {
    KILN_TRY(copy_field(tp.int32_data(), &t, what));
  }
  *out = std::move(t);
  return Status::ok();
}

Status convert_attribute(const onnx::AttributeProto& a, const std::string& base_dir, Attributes* attrs,
                         const std::string& where) {
  switch (a.type()) {
    case onnx::AttributeProto::INT: attrs->set(a.name(), static_cast<int64_t>(a.i())); break;
    case onnx::AttributeProto::FLOAT: attrs->set(a.name(), a.f()); break;
    case onnx::AttributeProto::STRING: attrs->set(a.name(), a.s()); break;
    case onnx::AttributeProto::INTS:
      attrs->set(a.name(), std::vector<int64_t>(a.ints().begin(), a.ints().end()));
      break;
    case onnx::AttributeProto::FLOATS:
      attrs->set(a.name(), std::vector<float>(a.floats().begin(), a.floats().end()));
      break;
    case onnx::AttributeProto::STRINGS:
      attrs->set(a.name(), std::vector<std::string>(a.strings().begin(), a.strings().end()));
      break;
    case onnx::AttributeProto::TENSOR: {
      auto t = std::make_shared<HostTensor>();
      KILN_TRY_CTX(convert_tensor(a.t(), base_dir, t.get()), where + " attribute '" + a.name() + "'");
      attrs->set(a.name(), std::shared_ptr<const HostTensor>(t));
      break;
    }
    case onnx::AttributeProto::UNDEFINED:
      // Old exporters leave the type unset: infer it from which field is filled.
      if (a.has_i()) attrs->set(a.name(), static_cast<int64_t>(a.i()));
      else if (a.has_f()) attrs->set(a.name(), a.f());
      else if (a.has_s()) attrs->set(a.name(), a.s());
      else if (a.ints_size()) attrs->set(a.name(), std::vector<int64_t>(a.ints().begin(), a.ints().end()));
      else if (a.floats_size()) attrs->set(a.name(), std::vector<float>(a.floats().begin(), a.floats().end()));
      else if (a.strings_size()) attrs->set(a.name(), std::vector<std::string>(a.strings().begin(), a.strings().end()));
      else return invalid_model(where + ": attribute '" + a.name() + "' has no type");
      break;
    default:
      return unsupported(where + ": attribute '" + a.name() + "' has a type kiln does not support (" +
                         onnx::AttributeProto::AttributeType_Name(a.type()) + ")");
  }
  return Status::ok();
}

// A graph being imported and the graphs around it. A name a subgraph does not define resolves
// outward (an ONNX outer-scope name) and becomes a capture of every subgraph in between, each
// bound to an implicit input of the node owning that subgraph.
struct Scope {
  ir::Graph* g;
  const Scope* parent;  // null for the main graph
  ir::Node* owner;      // the node of parent->g whose graph attribute `g` is
};

ir::Value* resolve(const Scope& s, const std::string& name) {
  if (ir::Value* v = s.g->find_value(name)) return v;
  if (!s.parent) return nullptr;
  ir::Value* outer = resolve(*s.parent, name);
  if (!outer) return nullptr;
  s.owner->inputs.push_back(outer);
  ++s.owner->implicit_inputs;
  ir::Value* inner = s.g->add_value(name);
  s.g->captures.push_back({inner, s.owner->inputs.size() - 1});
  return inner;
}

// "node 'x': op Foo (opset N) is not supported by kiln", as inference says it, for a node whose
// op kiln does not know at all (its attributes may be of kinds kiln never reads).
Status unknown_op(const ir::Node& n, const ir::Graph& g) {
  if (!n.domain.empty())
    return unsupported("node '" + n.name + "': op " + n.op_type + " of domain '" + n.domain +
                       "' is not supported (kiln implements the default ONNX domain)");
  auto it = g.opsets.find("");
  return unsupported("node '" + n.name + "': op " + n.op_type + " (opset " +
                     std::to_string(it == g.opsets.end() ? 1 : it->second) + ") is not supported by kiln");
}

// Names end up in plans and in every error message: kilobytes of one (damaged or hostile
// model) would make both unreadable.
Status check_name_lengths(const onnx::GraphProto& gp) {
  auto name_ok = [](const std::string& n) { return n.size() <= kMaxNameBytes; };
  auto too_long = [](const char* what, const std::string& n) {
    return invalid_model(std::string(what) + " name of " + std::to_string(n.size()) + " bytes ('" + clip_text(n, 40) +
                         "') is longer than the " + std::to_string(kMaxNameBytes) + " kiln takes");
  };
  for (const auto& t : gp.initializer())
    if (!name_ok(t.name())) return too_long("an initializer", t.name());
  for (const auto& v : gp.input())
    if (!name_ok(v.name())) return too_long("an input", v.name());
  for (const auto& v : gp.output())
    if (!name_ok(v.name())) return too_long("an output", v.name());
  for (const auto& np : gp.node()) {
    for (const std::string* n : {&np.name(), &np.op_type(), &np.domain()})
      if (!name_ok(*n)) return too_long("a node's", *n);
    for (const auto& list : {np.input(), np.output()})
      for (const std::string& n : list)
        if (!name_ok(n)) return too_long("a node operand's", n);
    for (const auto& a : np.attribute())
      if (!name_ok(a.name())) return too_long("an attribute", a.name());
  }
  return Status::ok();
}

Status import_graph(const onnx::GraphProto& gp, const std::string& base_dir, const Scope& scope);

Status import_node(const onnx::NodeProto& np, int index, const std::string& base_dir, const Scope& scope) {
  ir::Graph* g = scope.g;
  const std::string name = np.name().empty() ? np.op_type() + "_" + std::to_string(index) : np.name();
  ir::Node* n = g->add_node(np.op_type(), name);
  n->domain = np.domain() == "ai.onnx" ? "" : np.domain();
  const std::string where = "node '" + name + "' (" + np.op_type() + ")";
  const OpSchema* schema = n->domain.empty() ? schema_registry().find(np.op_type()) : nullptr;
  if (schema && schema->internal)
    return invalid_model(where + ": " + np.op_type() + " is not an ONNX op (kiln's passes make it internally)");
  // Explicit inputs first: importing a graph attribute appends the implicit ones.
  for (const std::string& in : np.input()) {
    if (in.empty()) {
      n->inputs.push_back(nullptr);
      continue;
    }
    ir::Value* v = resolve(scope, in);
    if (!v)
      return invalid_model(where + " reads '" + in + "', which no earlier node, input or initializer produces");
    n->inputs.push_back(v);
  }
  for (const auto& a : np.attribute()) {
    if (a.name() == kCastSaturateAttr)
      return invalid_model(where + ": attribute '" + a.name() + "' is not ONNX's (kiln's fp16 conversion sets it)");
    if (a.type() == onnx::AttributeProto::GRAPH) {
      auto sub = std::make_shared<ir::Graph>();
      sub->name = a.g().name();
      sub->opsets = g->opsets;
      KILN_TRY_CTX(import_graph(a.g(), base_dir, Scope{sub.get(), &scope, n}),
                   where + " attribute '" + a.name() + "'");
      n->subgraphs.emplace_back(a.name(), std::move(sub));
      continue;
    }
    Status st = convert_attribute(a, base_dir, &n->attrs, where);
    if (!st && st.code() == StatusCode::kUnsupported && !schema) return unknown_op(*n, *g);
    KILN_TRY(st);
  }
  for (const std::string& out : np.output()) {
    if (out.empty()) {
      n->outputs.push_back(nullptr);
      continue;
    }
    if (g->find_value(out)) return invalid_model(where + " writes '" + out + "', which already exists");
    ir::Value* v = g->add_value(out);
    v->producer = n;
    n->outputs.push_back(v);
  }
  return Status::ok();
}

// The main graph (scope.parent == null) or a subgraph. A subgraph's inputs are its formal
// parameters (Loop: iteration, condition, state...); the op's shape rule gives them shapes.
Status import_graph(const onnx::GraphProto& gp, const std::string& base_dir, const Scope& scope) {
  ir::Graph* g = scope.g;
  KILN_TRY(check_name_lengths(gp));
  for (const auto& init : gp.initializer()) {
    if (init.name().empty()) return invalid_model("an initializer has no name");
    auto t = std::make_shared<HostTensor>();
    KILN_TRY(convert_tensor(init, base_dir, t.get()));
    ir::Value* v = g->add_value(init.name());
    v->dtype = t->dtype();
    v->shape = t->shape();
    v->has_shape = true;
    v->constant = t;
  }
  for (const auto& in : gp.input()) {
    // Old IR versions list initializers as graph inputs too: those are constants.
    if (g->find_value(in.name())) continue;
    ir::Value* v = g->add_value(in.name());
    v->is_graph_input = true;
    const auto& type = in.type();
    if (!type.has_tensor_type()) {
      // A subgraph's formal input may leave its type to the op (Loop and Scan give it one).
      if (scope.parent && type.value_case() == onnx::TypeProto::VALUE_NOT_SET) {
        g->inputs.push_back(v);
        continue;
      }
      return unsupported("input '" + in.name() + "': only tensor inputs are supported");
    }
    v->dtype = static_cast<DType>(type.tensor_type().elem_type());
    if (type.tensor_type().has_shape()) {
      v->has_shape = true;
      uint64_t nonzero = 1;
      for (const auto& d : type.tensor_type().shape().dim()) {
        // Bounded like initializers, so the shape arithmetic of every op stays within int64.
        if (d.has_dim_value()) {
          const int64_t v = d.dim_value();
          if (v < 0 || v > (int64_t{1} << 40) || (v > 0 && nonzero > (uint64_t{1} << 48) / static_cast<uint64_t>(v)))
            return invalid_model("input '" + in.name() + "': dim " + std::to_string(v) +
                                 " is negative or makes the tensor impossibly large");
          if (v > 0) nonzero *= static_cast<uint64_t>(v);
        }
        v->shape.push_back(d.has_dim_value() ? d.dim_value() : -1);  // -1: dynamic, fixed by --shapes
        v->dim_names.push_back(d.has_dim_param() ? d.dim_param() : "");
      }
    }
    g->inputs.push_back(v);
  }
  for (int i = 0; i < gp.node_size(); ++i) KILN_TRY(import_node(gp.node(i), i, base_dir, scope));
  for (const auto& out : gp.output()) {
    ir::Value* v = resolve(scope, out.name());
    if (!v) return invalid_model("graph output '" + out.name() + "' is never produced");
    g->outputs.push_back(v);
  }
  if (g->outputs.empty()) return invalid_model(scope.parent ? "subgraph has no outputs" : "model has no outputs");
  return Status::ok();
}

Status import_model(const onnx::ModelProto& model, const std::string& base_dir, ir::Graph* g) {
  if (!model.has_graph()) return invalid_model("model has no graph");
  for (const auto& op : model.opset_import()) {
    const std::string dom = op.domain() == "ai.onnx" ? "" : op.domain();
    g->opsets[dom] = op.version();
  }
  if (model.opset_import_size() == 0) g->opsets[""] = 1;  // IR v1/v2 models omit it
  g->name = model.graph().name();
  return import_graph(model.graph(), base_dir, Scope{g, nullptr, nullptr});
}

}  // namespace

Status import_onnx_bytes(const std::string& bytes, const std::string& base_dir, ir::Graph* out) {
  onnx::ModelProto model;
  if (bytes.empty()) return invalid_model("model file is empty");
  if (!model.ParseFromString(bytes))
    return invalid_model("not a valid ONNX model (protobuf parse failed)");
  return import_model(model, base_dir, out);
}

Status import_onnx_file(const std::string& path, ir::Graph* out) {
  std::string bytes;
  InputFile f;
  KILN_TRY(InputFile::open(path, "model", &f));
  KILN_TRY(f.read_all(kMaxModelBytes, "protobuf reads at most 2 GiB: save the weights as external data", &bytes));
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
  return import_onnx_bytes(bytes, dir, out).with_context("model '" + path + "'");
}

namespace {
// Subgraphs' ops count too: a model uses every op its If branches and loop bodies run.
void list_graph_ops(const onnx::GraphProto& g, std::vector<std::string>* ops) {
  for (const auto& n : g.node()) {
    const std::string dom = n.domain() == "ai.onnx" ? "" : n.domain();
    ops->push_back(dom.empty() ? n.op_type() : dom + "::" + n.op_type());
    for (const auto& a : n.attribute()) {
      if (a.type() == onnx::AttributeProto::GRAPH) list_graph_ops(a.g(), ops);
      for (const auto& sub : a.graphs()) list_graph_ops(sub, ops);
    }
  }
}
}  // namespace

Status list_onnx_ops(const std::string& bytes, std::vector<std::string>* ops) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes))
    return invalid_model("not a valid ONNX model (protobuf parse failed)");
  ops->clear();
  list_graph_ops(model.graph(), ops);
  return Status::ok();
}

Status parse_tensor_proto(const std::string& bytes, HostTensor* out, std::string* name) {
  onnx::TensorProto tp;
  if (!tp.ParseFromString(bytes)) return invalid_model("not a valid TensorProto");
  if (name) *name = tp.name();
  return convert_tensor(tp, "", out);
}

}  // namespace kiln
