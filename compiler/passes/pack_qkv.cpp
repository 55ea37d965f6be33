// Packs the Q, K and V projections of a fused Attention into one matrix product. Transformers
// project one input three times (x Wq, x Wk, x Wv, each a MatMul with its bias, or its INT8/FP8
// form), reshape each to [batch, seq, heads, dim] and attend: one product with the weights side
// by side, x [Wq Wk Wv], computes all three, and its output viewed as [batch, seq, 3 * heads, dim]
// is the Attention's Q, K and V at once (attngeo::kAttrQkvPacked: the kernels read each third
// through offsets). Two launches fewer per attention (BERT-base: 24 of ~117 at batch 1, where
// each costs 5-11 us of host time on NVIDIA's OpenCL) and one wider product instead of three.
//
// Each output column of a product depends on its own weight column and column parameters only
// (bias, weight scale and zero point), so the packed product computes the same values as the
// three; what the three share (the input, its scale and zero point) must be the same.
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "compiler/passes/passes.h"
#include "runtime/backends/attention_geometry.h"
#include "runtime/backends/quantize_geometry.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/quantized_linear.h"

namespace kiln {
namespace {

// How an input of a projection packs.
enum class Role {
  kShared,  // the same for all three (the activation and its quantization)
  kWeight,  // [K, N]: side by side, [K, 3N]
  kColumn,  // one value or one per output column, [N] (absent: zero): concatenated, [3N]
  kFirst,   // unused by a float output (an integer kernel's output scale): the first one's
};

// The roles of a projection's inputs (their layout: runtime/ops/quantized_linear.h and
// linear_epilogue.h); empty when the op is not one that packs. Residual inputs do not pack.
std::vector<Role> roles_of(const ir::Node& n) {
  if (n.runtime_op == "MatMul" && n.op_type == "MatMul") return {Role::kShared, Role::kWeight, Role::kColumn};
  if (n.runtime_op == "QLinearMatMul") {
    const QGemmInputs in = qgemm_inputs(n.runtime_op);
    std::vector<Role> r(kQBiasInput + 1);
    for (int shared : {in.a, in.sa, in.za}) r[shared] = Role::kShared;
    r[in.b] = Role::kWeight;
    for (int column : {in.sb, in.zb, in.bias}) r[column] = Role::kColumn;
    for (int first : {in.sy, in.yzp}) r[first] = Role::kFirst;
    return r;
  }
  if (n.runtime_op == "Fp8MatMul") {
    std::vector<Role> r(kFp8BiasInput + 1, Role::kShared);  // x, x_scale, y_scale (1 for a float output)
    r[2] = Role::kWeight;
    r[3] = Role::kColumn;  // the weight scale
    r[kFp8BiasInput] = Role::kColumn;
    return r;
  }
  return {};
}

bool same_constant(const ir::Value* a, const ir::Value* b) {
  if (a == b) return true;
  if (!a || !b || !a->constant || !b->constant || a->dtype != b->dtype) return false;
  const HostTensor &x = *a->constant, &y = *b->constant;
  return x.shape() == y.shape() && x.bytes() == y.bytes();
}

// A per-column parameter of a projection with `n` columns: one value (broadcast) or n along the
// last dim ([n], or [1, n] as a MatMul's bias broadcasts).
bool column_param(const ir::Value* v, int64_t n) {
  if (!v) return true;
  if (!v->constant) return false;
  const Shape& s = v->constant->shape();
  return v->constant->numel() == 1 || (!s.empty() && s.back() == n && v->constant->numel() == n);
}

struct Projection {
  ir::Node* linear = nullptr;   // x -> [batch, seq, N]
  ir::Node* reshape = nullptr;  // -> [batch, seq, heads, dim], read by the Attention only
  size_t order = 0;
};

class Packer {
 public:
  explicit Packer(ir::Graph& g) : g_(g), readers_(g.consumers()) {
    for (const auto& n : g.nodes()) order_.emplace(n.get(), order_.size());
  }

  // Packs the projections of Attention node `at`; false when they do not pack.
  bool pack(ir::Node* at) {
    constexpr int64_t kQkv = attngeo::kBshdQ | attngeo::kBshdK | attngeo::kBshdV;
    if ((at->attrs.get_int(attngeo::kAttrBshd, 0) & kQkv) != kQkv || at->attrs.get_int(attngeo::kAttrKTransposed, 0) ||
        at->attrs.get_int(attngeo::kAttrQkvPacked, 0) || at->inputs.size() < 3)
      return false;
    Projection p[3];
    for (int i = 0; i < 3; ++i)
      if (!projection(at->inputs[i], at, &p[i])) return false;
    if (p[0].linear == p[1].linear || p[1].linear == p[2].linear || p[0].linear == p[2].linear) return false;
    const ir::Node& l0 = *p[0].linear;
    const std::vector<Role> roles = roles_of(l0);
    const Shape heads = at->inputs[0]->shape;  // [batch, seq, heads, dim]
    if (roles.empty() || heads.size() != 4) return false;
    for (const Projection& q : p) {
      const ir::Node& l = *q.linear;
      if (l.runtime_op != l0.runtime_op || l.op_type != l0.op_type || l.attrs.all() != l0.attrs.all() ||
          l.inputs.size() > roles.size() || l.outputs[0]->dtype != l0.outputs[0]->dtype ||
          q.reshape->outputs[0]->shape != heads)
        return false;
    }
    const DType out = l0.outputs[0]->dtype;
    if (out != DType::kFloat32 && out != DType::kFloat16) return false;
    const int64_t n = heads[2] * heads[3];
    // QLinearMatMul's bias is per row unless bias_columns says otherwise: only per-column packs.
    const bool row_bias = l0.runtime_op == "QLinearMatMul" && l0.attrs.get_int(kAttrBiasColumns, 0) != 1;
    auto inputs_at = [&](size_t r) {
      return std::array<ir::Value*, 3>{p[0].linear->input(r), p[1].linear->input(r), p[2].linear->input(r)};
    };
    for (size_t r = 0; r < roles.size(); ++r) {
      const std::array<ir::Value*, 3> in = inputs_at(r);
      const bool fits = roles[r] == Role::kShared   ? same_constant(in[0], in[1]) && same_constant(in[0], in[2])
                        : roles[r] == Role::kWeight ? weights_fit(in, n)
                        : roles[r] == Role::kColumn ? columns_fit(in, n) && !(row_bias && r == kQBiasInput && any_of(in))
                                                    : true;
      if (!fits) return false;
    }
    std::vector<ir::Value*> inputs(roles.size(), nullptr);
    for (size_t r = 0; r < roles.size(); ++r) {
      const std::array<ir::Value*, 3> in = inputs_at(r);
      switch (roles[r]) {
        case Role::kShared:
        case Role::kFirst: inputs[r] = in[0]; break;
        case Role::kWeight: inputs[r] = packed_weights(in, n, l0.name + "_qkv_weight"); break;
        case Role::kColumn: inputs[r] = packed_columns(in, n, l0.name + "_qkv_input" + std::to_string(r)); break;
      }
    }
    while (!inputs.empty() && !inputs.back()) inputs.pop_back();
    rewrite(at, p, inputs);
    return true;
  }

 private:
  // `v` (an Attention operand) = Reshape(linear(x)) [batch, seq, heads, dim] from a [batch, seq,
  // heads * dim] product that nothing else reads.
  bool projection(ir::Value* v, const ir::Node* at, Projection* p) const {
    if (!v || !sole_reader(v, at) || !live(v->producer)) return false;
    ir::Node* r = v->producer;
    if (r->runtime_op != "Reshape" || r->inputs.empty() || !r->inputs[0] || r->outputs.size() != 1) return false;
    ir::Value* m = r->inputs[0];
    if (!sole_reader(m, r) || !live(m->producer) || m->producer->outputs.size() != 1) return false;
    const Shape& s = v->shape;
    if (s.size() != 4 || m->shape != Shape{s[0], s[1], s[2] * s[3]}) return false;
    p->linear = m->producer;
    p->reshape = r;
    p->order = order_.at(p->linear);
    return true;
  }

  static bool any_of(const std::array<ir::Value*, 3>& in) { return in[0] || in[1] || in[2]; }

  // Three [K, N] constant weights of one dtype.
  static bool weights_fit(const std::array<ir::Value*, 3>& in, int64_t n) {
    const bool two_d = in[0] && in[0]->constant && in[0]->constant->shape().size() == 2;
    const int64_t k = two_d ? in[0]->constant->shape()[0] : -1;
    for (const ir::Value* v : in)
      if (!v || !v->constant || v->dtype != in[0]->dtype || v->constant->shape() != Shape{k, n}) return false;
    return true;
  }

  // The three side by side: [K, 3N].
  ir::Value* packed_weights(const std::array<ir::Value*, 3>& in, int64_t n, const std::string& name) {
    const DType t = in[0]->dtype;
    const int64_t k = in[0]->constant->shape()[0];
    auto w = std::make_shared<HostTensor>(t, Shape{k, 3 * n});
    const size_t row = static_cast<size_t>(n) * dtype_size(t);
    for (int64_t r = 0; r < k; ++r)
      for (int i = 0; i < 3; ++i)
        std::memcpy(w->data() + (static_cast<size_t>(r) * 3 + i) * row, in[i]->constant->data() + r * row, row);
    return g_.add_constant(name, w);
  }

  // Per-column parameters of one dtype (or absent).
  static bool columns_fit(const std::array<ir::Value*, 3>& in, int64_t n) {
    const ir::Value* any = in[0] ? in[0] : in[1] ? in[1] : in[2];
    for (const ir::Value* v : in)
      if (!column_param(v, n) || (v && v->dtype != any->dtype)) return false;
    return true;
  }

  // The three (absent ones zero) as [.., 3N] in the rank of the first one that has N values, or
  // the one value they share; nullptr where all three are absent.
  ir::Value* packed_columns(const std::array<ir::Value*, 3>& in, int64_t n, const std::string& name) {
    const ir::Value* any = in[0] ? in[0] : in[1] ? in[1] : in[2];
    if (!any) return nullptr;
    if (in[0] && in[0]->constant->numel() == 1 && same_constant(in[0], in[1]) && same_constant(in[0], in[2])) return in[0];
    const size_t size = dtype_size(any->dtype);
    Shape shape{3 * n};
    for (const ir::Value* v : in)
      if (v && v->constant->numel() == n) {
        shape = v->constant->shape();
        shape.back() = 3 * n;
        break;
      }
    auto c = std::make_shared<HostTensor>(any->dtype, shape);
    std::memset(c->data(), 0, c->size_bytes());
    for (int i = 0; i < 3; ++i) {
      if (!in[i]) continue;
      const HostTensor& src = *in[i]->constant;
      for (int64_t j = 0; j < n; ++j)
        std::memcpy(c->data() + (i * n + j) * size, src.data() + (src.numel() == 1 ? 0 : j) * size, size);
    }
    return g_.add_constant(name, c);
  }

  // The first projection (in graph order) becomes the packed product, the first Reshape its
  // [batch, seq, 3 * heads, dim] view; the others die.
  void rewrite(ir::Node* at, Projection* p, const std::vector<ir::Value*>& inputs) {
    const Projection* first = &p[0];
    ir::Node* view = p[0].reshape;
    for (int i = 1; i < 3; ++i) {
      if (p[i].order < first->order) first = &p[i];
      if (order_.at(p[i].reshape) < order_.at(view)) view = p[i].reshape;
    }
    ir::Node* lin = first->linear;
    const Shape heads = at->inputs[0]->shape;
    const Shape packed{heads[0], heads[1], 3 * heads[2] * heads[3]};
    const Shape packed_heads{heads[0], heads[1], 3 * heads[2], heads[3]};
    ir::Value* y = g_.add_unique_value(lin->outputs[0]->name + "_qkv");
    ir::Value* yh = g_.add_unique_value(view->outputs[0]->name + "_qkv");
    for (ir::Value* v : {y, yh}) {
      v->dtype = lin->outputs[0]->dtype;
      v->has_shape = true;
    }
    y->shape = packed;
    yh->shape = packed_heads;
    std::vector<std::string> lin_names, view_names;
    for (int i = 0; i < 3; ++i) {
      for (auto [node, names] : {std::pair{p[i].linear, &lin_names}, std::pair{p[i].reshape, &view_names}}) {
        if (node->fused.empty())
          names->push_back(node->name);
        else
          names->insert(names->end(), node->fused.begin(), node->fused.end());
        node->outputs[0]->producer = nullptr;
        if (node != lin && node != view) {
          node->dead = true;
          node->inputs.clear();
          node->outputs.clear();
        }
      }
    }
    lin->inputs = inputs;
    lin->outputs = {y};
    lin->fused = lin_names;
    y->producer = lin;
    view->inputs = {y};
    view->outputs = {yh};
    view->fused = view_names;
    yh->producer = view;
    for (int i = 0; i < 3; ++i) at->inputs[i] = yh;
    at->attrs.set(attngeo::kAttrQkvPacked, int64_t{1});
  }

  static bool live(const ir::Node* n) { return n && !n->dead; }
  bool sole_reader(const ir::Value* v, const ir::Node* n) const {
    if (g_.is_graph_output(v) || v->constant) return false;
    auto it = readers_.find(v);
    return it != readers_.end() && it->second.size() == 1 && it->second[0] == n;
  }

  ir::Graph& g_;
  const std::unordered_map<const ir::Value*, std::vector<ir::Node*>> readers_;
  std::unordered_map<const ir::Node*, size_t> order_;
};

}  // namespace

Status run_pack_qkv(ir::Graph& g, const PassContext& ctx) {
  std::vector<ir::Node*> attentions;
  for (const auto& n : g.nodes())
    if (!n->dead && n->runtime_op == attngeo::kOp) attentions.push_back(n.get());
  int packed = 0;
  for (ir::Node* at : attentions) {
    // Readers change with every rewrite.
    Packer packer(g);
    packed += packer.pack(at);
  }
  if (packed && ctx.options.report)
    std::fprintf(ctx.options.report, "attention: Q, K and V projections packed into one product in %d layer%s\n", packed,
                 packed == 1 ? "" : "s");
  return Status::ok();
}

}  // namespace kiln
