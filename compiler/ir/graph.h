// kiln's compiler IR: a topologically ordered list of nodes over SSA values. Values carry the
// static dtype and shape found by inference and, when known at build time, their contents.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln::ir {

struct Node;
class Graph;

// Where a build-time constant came from when it was folded out of a DequantizeLinear: the
// quantized tensor and its parameters, so passes can keep the integer weights of Q/DQ models.
struct QuantSource {
  std::shared_ptr<const HostTensor> quantized;   // int8 / uint8 / int32 values
  std::shared_ptr<const HostTensor> scale;       // scalar or 1-D (per axis)
  std::shared_ptr<const HostTensor> zero_point;  // null: zero
  int64_t axis = 1;
};

struct Value {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape;
  bool has_shape = false;
  // Graph inputs: each dim's ONNX dim_param ("" if none); dynamic dims sharing a name are one.
  std::vector<std::string> dim_names;
  std::shared_ptr<const HostTensor> constant;  // contents, when known at build time
  Node* producer = nullptr;
  bool is_graph_input = false;
  std::shared_ptr<const QuantSource> dequantized_from;  // see QuantSource

  bool is_constant() const { return constant != nullptr; }
};

struct Node {
  std::string name;
  std::string op_type;   // ONNX op type
  std::string domain;    // "" for the default ONNX domain
  int version = 0;       // resolved ONNX since-version (set by inference)
  Attributes attrs;
  std::vector<Value*> inputs;   // nullptr: optional input left out
  std::vector<Value*> outputs;
  std::string runtime_op;       // runtime op this node lowers to (set by the op's shape rule)
  std::vector<std::string> fused;  // names of ONNX nodes folded into this one by fusion passes
  bool dead = false;            // removed; erase_dead() drops it
  // A precision a pass chose for this node ("fp16": an FP8 build's convolution too narrow for
  // FP8), over the build options'; "" when they decide.
  std::string precision;
  // Graph attributes (If's then/else_branch, Loop's and Scan's body), in the op's order.
  std::vector<std::pair<std::string, std::shared_ptr<Graph>>> subgraphs;
  // The last `implicit_inputs` inputs are values of the enclosing graph that the subgraphs read
  // (ONNX outer-scope names): as inputs, passes see them read, keep them alive and order them.
  size_t implicit_inputs = 0;

  Value* input(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  size_t explicit_inputs() const { return inputs.size() - implicit_inputs; }
  const Graph* subgraph(const std::string& attr) const;
  // "node 'conv1' (Conv-11)" for error messages.
  std::string describe() const;
};

class Graph {
 public:
  std::string name;
  std::map<std::string, int64_t> opsets;  // domain -> version
  std::vector<Value*> inputs;   // runtime inputs (initializers excluded); a subgraph's formal inputs
  std::vector<Value*> outputs;
  // A subgraph's outer-scope reads: value `inner` of this graph stands for input `operand` of
  // the node that owns the graph (an implicit input, see Node::implicit_inputs).
  struct Capture {
    Value* inner;
    size_t operand;
  };
  std::vector<Capture> captures;

  Value* add_value(const std::string& name);
  Value* find_value(const std::string& name) const;
  // A fresh value named after `hint` that does not clash with existing names.
  Value* add_unique_value(const std::string& hint);
  // A fresh build-time constant holding `t`.
  Value* add_constant(const std::string& hint, std::shared_ptr<const HostTensor> t);
  Node* add_node(const std::string& op_type, const std::string& name);
  // Inserts a node just before `before` in the order (for rewrites that need new nodes).
  Node* insert_node_before(Node* before, const std::string& op_type, const std::string& name);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  void erase_dead();  // frees dead nodes; values they produced get producer = nullptr
  // Map value -> nodes reading it, for passes. Invalidated by rewrites.
  std::unordered_map<const Value*, std::vector<Node*>> consumers() const;
  bool is_graph_output(const Value* v) const;
  // Repoints every read of `from` (node inputs, graph outputs keep their name) to `to`.
  void replace_uses(Value* from, Value* to);

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value*> by_name_;
  std::vector<std::unique_ptr<Node>> nodes_;
  int unique_counter_ = 0;
};

}  // namespace kiln::ir
