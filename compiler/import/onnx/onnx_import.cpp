#include "compiler/import/onnx/onnx_import.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "compiler/ops/op_schema.h"

namespace kiln {
namespace {

constexpr int kMaxRank = 16;

Status read_whole_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return io_error("error reading '" + path + "'");
  *out = ss.str();
  return Status::ok();
}

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

Status load_external(const onnx::TensorProto& tp, const std::string& base_dir, HostTensor* t,
                     const std::string& what) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : tp.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  if (location.empty()) return invalid_model(what + ": external data without a location");
  if (location.find("..") != std::string::npos || location[0] == '/')
    return invalid_model(what + ": external data location '" + location +
                         "' must be a relative path inside the model's folder");
  const std::string path = (base_dir.empty() ? "" : base_dir + "/") + location;
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found(what + ": external data file '" + path + "' not found");
  const int64_t need = static_cast<int64_t>(t->size_bytes());
  if (length >= 0 && length != need)
    return invalid_model(what + ": external data length " + std::to_string(length) +
                         " does not match the tensor's " + std::to_string(need) + " bytes");
  f.seekg(offset);
  f.read(reinterpret_cast<char*>(t->data()), need);
  if (f.gcount() != need)
    return invalid_model(what + ": external data file '" + path + "' is too short");
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
  HostTensor t(dt, shape);
  if (tp.data_location() == onnx::TensorProto::EXTERNAL) {
    KILN_TRY(load_external(tp, base_dir, &t, what));
  } else if (tp.has_raw_data()) {
    if (tp.raw_data().size() != t.size_bytes())
      return invalid_model(what + ": raw_data has " + std::to_string(tp.raw_data().size()) +
                           " bytes, expected " + std::to_string(t.size_bytes()));
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
      for (const auto& d : type.tensor_type().shape().dim()) {
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
  KILN_TRY(read_whole_file(path, &bytes));
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
