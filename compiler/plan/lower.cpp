#include "compiler/plan/lower.h"

#include <cstring>
#include <unordered_map>

#include "runtime/plan/partition.h"
#include "runtime/plan/plan_format.h"
#include "runtime/plan/plan_verifier.h"
#include "runtime/version.h"

namespace kiln {
namespace {

// One graph's tensor table (the plan's, or a subgraph's), with constants packed into the
// plan's weights section on first use.
class TensorTable {
 public:
  TensorTable(std::vector<PlanTensor>& tensors, std::vector<uint8_t>& weights) : tensors_(tensors), weights_(weights) {}

  int32_t add_input(const ir::Value* v) { return add(v, TensorKind::kInput); }
  int32_t add_activation(const ir::Value* v) { return add(v, TensorKind::kActivation); }
  int32_t use(const ir::Value* v) {
    auto it = index_.find(v);
    if (it != index_.end()) return it->second;
    if (!v->constant) return -2;  // read before produced: caller reports
    int32_t i = add(v, TensorKind::kConstant);
    PlanTensor& t = tensors_[i];
    std::vector<uint8_t>& w = weights_;
    while (w.size() % kWeightAlignment) w.push_back(0);
    t.weight_offset = w.size();
    t.weight_bytes = v->constant->size_bytes();
    w.insert(w.end(), v->constant->data(), v->constant->data() + t.weight_bytes);
    return i;
  }

 private:
  int32_t add(const ir::Value* v, TensorKind kind) {
    PlanTensor t;
    t.name = v->name;
    t.dtype = v->dtype;
    t.shape = v->shape;
    t.kind = kind;
    tensors_.push_back(t);
    int32_t i = static_cast<int32_t>(tensors_.size() - 1);
    index_[v] = i;
    return i;
  }
  std::vector<PlanTensor>& tensors_;
  std::vector<uint8_t>& weights_;
  std::unordered_map<const ir::Value*, int32_t> index_;
};

Status lower_graph_into(const ir::Graph& g, Plan& p, TensorTable& tt, std::vector<PlanNode>* nodes,
                        std::vector<int32_t>* outputs);

// Lowers subgraph `sub` into p.graphs (index reserved first, so every subgraph a node of it owns
// gets a larger index, as verify_plan requires). Its nodes all run on the CPU.
Status lower_subgraph(const ir::Graph& sub, Plan& p, int32_t* index) {
  *index = static_cast<int32_t>(p.graphs.size());
  p.graphs.emplace_back();
  PlanGraph pg;
  TensorTable tt(pg.tensors, p.weights);
  for (const ir::Value* v : sub.inputs) pg.inputs.push_back(tt.add_input(v));
  for (const ir::Graph::Capture& cap : sub.captures) {
    pg.captures.push_back(tt.add_input(cap.inner));
    pg.capture_operands.push_back(static_cast<int32_t>(cap.operand));
  }
  KILN_TRY(lower_graph_into(sub, p, tt, &pg.nodes, &pg.outputs));
  for (PlanNode& n : pg.nodes) {
    n.backend = Backend::kCpu;
    n.kernel = "cpu:" + n.op;
  }
  p.graphs[*index] = std::move(pg);
  return Status::ok();
}

// The nodes and outputs of one graph, its inputs already in `tt`.
Status lower_graph_into(const ir::Graph& g, Plan& p, TensorTable& tt, std::vector<PlanNode>* nodes,
                        std::vector<int32_t>* outputs) {
  for (const auto& np : g.nodes()) {
    const ir::Node& n = *np;
    if (n.dead) continue;  // removed by a pass that has not called erase_dead() yet
    PlanNode pn;
    pn.name = n.name;
    pn.op = n.runtime_op;
    pn.attrs = n.attrs;
    pn.fused = n.fused;
    for (const ir::Value* v : n.inputs) {
      int32_t t = v ? tt.use(v) : -1;
      if (t == -2) return internal_error(n.describe() + " reads '" + v->name + "' before it is produced");
      pn.inputs.push_back(t);
    }
    // Outputs known at build time (a Dropout mask) are plan constants, not node outputs.
    for (const ir::Value* v : n.outputs)
      if (v && !v->constant) pn.outputs.push_back(tt.add_activation(v));
    for (const auto& [attr, sub] : n.subgraphs) {
      int32_t index;
      KILN_TRY(lower_subgraph(*sub, p, &index).with_context(n.describe() + " " + attr));
      pn.subgraphs.push_back(index);
    }
    nodes->push_back(std::move(pn));
  }
  for (const ir::Value* v : g.outputs) {
    int32_t t = tt.use(v);
    if (t < 0) return internal_error("graph output '" + v->name + "' is never produced");
    outputs->push_back(t);
  }
  return Status::ok();
}

}  // namespace

Status lower_to_plan(const ir::Graph& g, const ResolvedDevice& target, const PartitionOptions& partition, Plan* out) {
  Plan p;
  p.format_version = kPlanFormatVersion;
  p.writer_version = std::string("kiln ") + KILN_VERSION_STRING;
  p.model_name = g.name;
  p.target = target.caps;
  TensorTable tt(p.tensors, p.weights);
  for (const ir::Value* v : g.inputs) p.inputs.push_back(tt.add_input(v));
  KILN_TRY(lower_graph_into(g, p, tt, &p.nodes, &p.outputs));

  apply_partition(&p, target.caps, partition);
  bool any_opencl = false;
  for (PlanNode& n : p.nodes) {
    if (n.kernel.empty()) n.kernel = std::string(backend_name(n.backend)) + ":" + n.op;
    any_opencl |= n.backend == Backend::kOpenCL;
  }
  if (any_opencl) p.required_caps.push_back("opencl");
  // The runtime refuses attributes its op rules do not read (an edited plan could otherwise drop
  // a fused activation silently), so leftovers of the ONNX form that no kernel reads (an
  // elementwise op's alpha, now in its program) are not written. An attribute a kernel reads
  // must be read by the op's rule (runtime/ops/rules/).
  for (PlanNode& n : p.nodes)
    for (const std::string& a : unread_attributes(p, n)) n.attrs.erase(a);
  for (PlanGraph& sg : p.graphs)
    for (PlanNode& n : sg.nodes)
      for (const std::string& a : unread_attributes(p, n, &sg.tensors)) n.attrs.erase(a);
  KILN_TRY(verify_plan_structure(p).with_context("compiler produced an inconsistent plan (kiln bug)"));
  // A node the runtime's op rule refuses: the model is within the compiler's rules but past a
  // runtime limit (extents of 2^31 and more, say), so it is reported as unsupported, not a bug.
  Status nodes = verify_plan_nodes(p);
  if (!nodes) return unsupported("kiln's runtime cannot run this model: " + nodes.message());
  *out = std::move(p);
  return Status::ok();
}

}  // namespace kiln
