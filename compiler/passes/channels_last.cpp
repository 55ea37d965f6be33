// Channels-last regions (runtime/ops/channels_last.h): convolutions whose kernels want their
// activations channel-contiguous run in NHWC, and Transposes convert only where a region meets
// the rest of the graph (its inputs, and outputs that something outside reads).
//
// Which convolutions: QLinearConv (8-bit, zero zero points), Fp8Conv (FP8 x and weights) and
// float Conv with group 1, 2-D, constant weights (what the tensor-core kernel takes), C channels
// filling whole 16-byte runs (16 8-bit, 8 FP16, 4 FP32 channels), and, unless --layout nhwc, at
// least one neighbour in the region (a lone convolution would pay two Transposes to gain one
// layer). Their weights are reordered to [M, kh, kw, C] at build time.
//
// A strided convolution over too few channels (the stem) joins as its space-to-depth form
// (compiler/passes/space_to_depth_conv.h: its SpaceToDepth writes NHWC, so no Transpose), and a
// MaxPool (and per-tensor Q/DQ) joins where it leads from a region convolution to another (the
// stem's pool: its Transpose would otherwise run after it, or before it on four times the data),
// and a global average pool of a region convolution joins with its axes changed (is_spatial_mean).
//
// Why only where the target wants it: NHWC pays on the tensor cores (INT8, FP8, FP16, and TF32
// where --allow-tf32 lets FP32 use them), which read both operands K-contiguous; the portable
// kernels and the cpu run it too (plans stay portable) but gain nothing (--layout nhwc forces
// it, for testing them).
#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "compiler/passes/passes.h"
#include "compiler/passes/space_to_depth_conv.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

// A global average pool (ReduceMean over H and W, kept as 1s) of a 4-D tensor: NHWC it is the
// mean over axes 1 and 2, whose [N, 1, 1, C] are the bytes of [N, C, 1, 1], so it joins a region
// it reads from without a kernel of its own (only its axes change).
bool is_spatial_mean(const ir::Node& n) {
  const ir::Value* x = n.input(0);
  return n.runtime_op == "ReduceMean" && n.inputs.size() == 1 && n.outputs.size() == 1 && x && x->has_shape &&
         x->shape.size() == 4 && n.attrs.get_int("keepdims", 1) == 1 &&
         n.attrs.get_ints("axes", {}) == std::vector<int64_t>{2, 3};
}

bool scalar_or_absent(const ir::Value* v) { return !v || (v->has_shape && shape_numel(v->shape) == 1); }

// A per-tensor QuantizeLinear / DequantizeLinear: elementwise, so the same in either layout (an
// FP8 build quantizes the stem's pooled output so before its first FP8 convolution).
bool is_per_tensor_qdq(const ir::Node& n) {
  return (n.runtime_op == "QuantizeLinear" || n.runtime_op == "DequantizeLinear") && n.outputs.size() == 1 &&
         n.inputs.size() >= 2 && scalar_or_absent(n.input(1)) && n.input(1) && scalar_or_absent(n.input(2));
}

// A fused elementwise chain of one input (a Cast, an activation): the same in either layout.
bool is_unary_elementwise(const ir::Node& n) {
  return n.runtime_op == "Elementwise" && n.inputs.size() == 1 && n.outputs.size() == 1;
}

// Nodes that follow a region's layout rather than want one: MaxPool (which takes the attribute),
// spatial means (their axes change), per-tensor Q/DQ and unary elementwise chains (nothing
// changes).
bool is_follower(const ir::Node& n) {
  return n.runtime_op == "MaxPool" || is_spatial_mean(n) || is_per_tensor_qdq(n) || is_unary_elementwise(n);
}

// Where a region node (one that channels_last_inputs() names, or a follower) keeps x, its weights
// and a fused residual.
ChannelsLastInputs roles(const ir::Node& n) {
  ChannelsLastInputs r{0, 1, -1};
  if (is_spatial_mean(n) || is_per_tensor_qdq(n) || is_unary_elementwise(n)) return {0, -1, -1};
  channels_last_inputs(n.runtime_op, &r);
  return r;
}

bool zero_constant(const ir::Value* v) {
  if (!v) return true;
  if (!v->is_constant()) return false;
  const auto& b = v->constant->bytes();
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}

bool is_int8(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }
bool is_fp8(DType t) { return t == DType::kFloat8E4M3FN || t == DType::kFloat8E5M2; }

// The operand types the tensor-core kernel takes: 8-bit integers without zero points (QLinearConv's
// inputs 2 and 5), FP8 activations and weights, or floats (FP16, or FP32 as TF32).
bool tensor_core_operands(const ir::Node& n, const ir::Value* x, const ir::Value* w) {
  if (n.runtime_op == "QLinearConv")
    return is_int8(x->dtype) && w->dtype == DType::kInt8 && zero_constant(n.input(2)) && zero_constant(n.input(5));
  if (n.runtime_op == "Conv") return (x->dtype == DType::kFloat16 || x->dtype == DType::kFloat32) && w->dtype == x->dtype;
  return n.runtime_op == "Fp8Conv" && is_fp8(x->dtype) && is_fp8(w->dtype);
}

// Whether n can run channels-last; a convolution that can only in its space-to-depth form gets
// that form in *s2d (block 0 otherwise).
bool eligible(const ir::Node& n, SpaceToDepthConv* s2d) {
  *s2d = SpaceToDepthConv{};
  if (is_spatial_mean(n) || is_per_tensor_qdq(n) || is_unary_elementwise(n)) {
    const ir::Value* x = n.input(0);
    return !n.dead && x && x->has_shape && x->shape.size() == 4;
  }
  ChannelsLastInputs r;
  if (n.dead || !channels_last_inputs(n.runtime_op, &r) || n.outputs.size() != 1 || is_channels_last(n.attrs))
    return false;
  const ir::Value* x = n.input(r.x);
  const ir::Value* y = n.outputs[0];
  if (!x || !y || !x->has_shape || !y->has_shape || x->shape.size() != 4 || y->shape.size() != 4) return false;
  if (n.runtime_op == "MaxPool") return true;
  const ir::Value* w = n.input(r.w);
  if (!w || !w->is_constant() || w->shape.size() != 4) return false;
  if (!tensor_core_operands(n, x, w) || n.attrs.get_int("group", 1) != 1) return false;
  if (x->shape[1] * static_cast<int64_t>(dtype_size(x->dtype)) % 16 != 0 && !space_to_depth_form(n, r.x, r.w, s2d))
    return false;
  const ir::Value* res = n.input(r.residual);
  return !res || (res->has_shape && res->shape == y->shape);
}

// Whether node n reads v only where a channels-last node reads NHWC data (x, the residual).
bool reads_only_nhwc(const ir::Node& n, const ir::Value* v) {
  const ChannelsLastInputs r = roles(n);
  for (size_t i = 0; i < n.inputs.size(); ++i)
    if (n.inputs[i] == v && static_cast<int>(i) != r.x && static_cast<int>(i) != r.residual) return false;
  return true;
}

// [M, C, kh, kw] -> [M, kh, kw, C].
std::shared_ptr<const HostTensor> weights_channels_last(const HostTensor& w) {
  const Shape& s = w.shape();
  auto out = std::make_shared<HostTensor>(w.dtype(), channels_last_shape(s));
  const int64_t M = s[0], C = s[1], taps = s[2] * s[3];
  const size_t es = dtype_size(w.dtype());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < taps; ++t)
        std::copy_n(w.data() + ((m * C + c) * taps + t) * es, es, out->data() + ((m * taps + t) * C + c) * es);
  return out;
}

class ChannelsLast {
 public:
  // `nhwc`: values already channels-last (a stem's SpaceToDepth writes its convolution's x so).
  ChannelsLast(ir::Graph& g, int64_t opset, const std::vector<ir::Value*>& nhwc) : g_(g), opset_(opset) {
    for (ir::Value* v : nhwc) nhwc_[v] = v;
  }

  Status run(const std::set<ir::Node*>& region) {
    std::unordered_map<const ir::Node*, size_t> order;
    for (size_t i = 0; i < g_.nodes().size(); ++i) order[g_.nodes()[i].get()] = i;
    const auto readers = g_.consumers();
    std::vector<ir::Node*> nodes(region.begin(), region.end());
    std::sort(nodes.begin(), nodes.end(), [&](const ir::Node* a, const ir::Node* b) { return order[a] < order[b]; });
    for (ir::Node* n : nodes) {
      const ChannelsLastInputs r = roles(*n);
      for (int i : {r.x, r.residual})
        if (ir::Value* v = n->input(i)) KILN_TRY(to_nhwc(v, n, &n->inputs[i]));
      if (r.w >= 0) {
        ir::Value* w = n->inputs[r.w];
        n->inputs[r.w] = g_.add_constant(w->name + "_ohwi", weights_channels_last(*w->constant));
      }
      ChannelsLastInputs takes;
      if (is_spatial_mean(*n)) n->attrs.set("axes", std::vector<int64_t>{1, 2});
      else if (channels_last_inputs(n->runtime_op, &takes)) n->attrs.set(kAttrChannelsLast, int64_t{1});
      // The output, NHWC under a new name; the old name stays NCHW for whatever reads it outside.
      ir::Value* y = n->outputs[0];
      ir::Value* yl = g_.add_unique_value(y->name + "_nhwc");
      yl->dtype = y->dtype;
      yl->shape = channels_last_shape(y->shape);
      yl->has_shape = true;
      yl->producer = n;
      n->outputs[0] = yl;
      y->producer = nullptr;
      nhwc_[y] = yl;
      ir::Node* first_outside = nullptr;
      auto it = readers.find(y);
      if (it != readers.end())
        for (ir::Node* r : it->second)
          if (!(region.count(r) && reads_only_nhwc(*r, y)) && (!first_outside || order[r] < order[first_outside]))
            first_outside = r;
      if (!first_outside && !g_.is_graph_output(y)) continue;
      ir::Node* t = first_outside ? g_.insert_node_before(first_outside, "Transpose", y->name + "_to_nchw")
                                  : g_.add_node("Transpose", y->name + "_to_nchw");
      t->inputs = {yl};
      t->outputs = {y};
      t->attrs.set("perm", to_channels_first_perm(4));
      y->producer = t;
      KILN_TRY(infer_and_fold_node(*t, g_, opset_));
    }
    return Status::ok();
  }

 private:
  // The NHWC form of v for `reader`: a region node's output, or a Transpose made once before the
  // first region node that reads v.
  Status to_nhwc(ir::Value* v, ir::Node* reader, ir::Value** out) {
    auto it = nhwc_.find(v);
    if (it != nhwc_.end()) {
      *out = it->second;
      return Status::ok();
    }
    ir::Node* t = g_.insert_node_before(reader, "Transpose", v->name + "_to_nhwc");
    ir::Value* vl = g_.add_unique_value(v->name + "_nhwc");
    t->inputs = {v};
    t->outputs = {vl};
    t->attrs.set("perm", to_channels_last_perm(4));
    vl->producer = t;
    KILN_TRY(infer_and_fold_node(*t, g_, opset_));
    nhwc_[v] = vl;
    *out = vl;
    return Status::ok();
  }

  ir::Graph& g_;
  int64_t opset_;
  std::map<const ir::Value*, ir::Value*> nhwc_;
};

// The tensor-core operands of an eligible node, false where it has none (FP32 without
// --allow-tf32).
bool tensor_core_elem(const PassContext& ctx, const ir::Node& n, mma::Elem* e) {
  if (n.runtime_op == "Fp8Conv") *e = mma::Elem::kFp8;
  else if (n.runtime_op == "QLinearConv") *e = mma::Elem::kInt8;
  else if (n.input(roles(n).x)->dtype == DType::kFloat16) *e = mma::Elem::kF16;
  else if (ctx.options.allow_tf32) *e = mma::Elem::kTf32;
  else return false;
  return true;
}

// Whether the build wants node n channels-last: always with --layout nhwc; by default where the
// target runs n's operands on tensor cores.
bool wanted(const PassContext& ctx, const ir::Node& n) {
  mma::Elem e;
  switch (ctx.options.layout) {
    case ActivationLayout::kChannelsFirst: return false;
    case ActivationLayout::kChannelsLast: return true;
    case ActivationLayout::kAuto:
      return ctx.opencl_target && tensor_core_elem(ctx, n, &e) && mma::available(ctx.target_caps, e);
  }
  return false;
}

}  // namespace

Status run_channels_last(ir::Graph& g, const PassContext& ctx) {
  // Dynamic plans re-derive shapes per range from ONNX's rules, which know one layout.
  if (ctx.options.layout == ActivationLayout::kChannelsFirst || !ctx.options.min_shapes.empty() ||
      !ctx.options.max_shapes.empty())
    return Status::ok();
  std::set<ir::Node*> candidates;
  std::map<ir::Node*, SpaceToDepthConv> stems;
  std::vector<ir::Node*> followers;  // in graph order
  for (const auto& n : g.nodes()) {
    SpaceToDepthConv s2d;
    if (!eligible(*n, &s2d)) continue;
    if (is_follower(*n)) followers.push_back(n.get());
    else if (wanted(ctx, *n)) candidates.insert(n.get());
    if (s2d.block) stems[n.get()] = s2d;
  }
  const auto readers = g.consumers();
  // Followers of a convolution that goes channels-last join where they lead to another (ResNet's
  // stem pool before layer1; in FP8 builds with its Cast and QuantizeLinear), which keeps the Transpose
  // off the larger tensor before a pool, or a spatial mean (the global pooling: a Transpose of N x
  // C values after it instead of N x C x H x W before). First every follower of the region, in
  // graph order, then, in reverse, only those that lead somewhere.
  std::set<ir::Node*> joined;
  for (ir::Node* f : followers) {
    const ir::Value* x = f->input(roles(*f).x);
    if (x->producer && (candidates.count(x->producer) || joined.count(x->producer))) joined.insert(f);
  }
  for (auto f = followers.rbegin(); f != followers.rend(); ++f) {
    if (!joined.count(*f) || is_spatial_mean(**f)) continue;
    bool leads = false;
    auto it = readers.find((*f)->outputs[0]);
    if (it != readers.end())
      for (ir::Node* r : it->second)
        leads |= (candidates.count(r) || joined.count(r)) && reads_only_nhwc(*r, (*f)->outputs[0]);
    if (!leads) joined.erase(*f);
  }
  candidates.insert(joined.begin(), joined.end());
  std::set<ir::Node*> region;
  for (ir::Node* n : candidates) {
    bool neighbour = false;
    for (int i : {roles(*n).x, roles(*n).residual}) {
      const ir::Value* v = n->input(i);
      neighbour |= v && v->producer && candidates.count(v->producer);
    }
    auto it = readers.find(n->outputs[0]);
    if (it != readers.end())
      for (ir::Node* r : it->second) neighbour |= candidates.count(r) && reads_only_nhwc(*r, n->outputs[0]);
    if (neighbour || ctx.options.layout == ActivationLayout::kChannelsLast) region.insert(n);
  }
  if (region.empty()) return Status::ok();
  std::vector<ir::Value*> nhwc;
  for (auto& [n, s2d] : stems)
    if (region.count(n)) {
      KILN_TRY(rewrite_as_space_to_depth(g, n, roles(*n).x, roles(*n).w, s2d, g.opsets.at(""), &nhwc.emplace_back()));
    }
  ChannelsLast pass(g, g.opsets.at(""), nhwc);
  KILN_TRY(pass.run(region));
  remove_dead_nodes(g);
  return Status::ok();
}

}  // namespace kiln
