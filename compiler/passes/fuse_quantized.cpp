// Keeps quantized graphs integer (or FP8) between layers. quantize_ptq (and fold_qdq for Q/DQ
// models) leave every integer / FP8 kernel as
//   QLinearConv/QLinearMatMul/Fp8Conv/Fp8MatMul -> DequantizeLinear -> [bias Add] [residual Add] [activation]
//   [residual Add] -> QuantizeLinear -> next integer kernel
// with the bias, residual and activation in FP32 and a round trip through memory for each.
// This pass folds the whole chain into the integer kernel's epilogue (operands:
// runtime/ops/quantized_linear.h): the kernel requantizes straight to the scale of
// the QuantizeLinear that ends the chain, so int8 activations flow from layer to layer. A
// residual that is itself a dequantized int8 tensor is read as int8. Consumers that need the
// FP32 value get one DequantizeLinear of the int8 result; a chain that ends in FP32 consumers
// only makes the kernel write FP32 directly.
#include <algorithm>
#include <cmath>
#include <memory>

#include "compiler/ops/linear_fusion.h"
#include "compiler/ops/op_schema.h"
#include "compiler/passes/passes.h"
#include "compiler/passes/zero_point.h"
#include "runtime/core/float8.h"
#include "runtime/ops/quantized_linear.h"

namespace kiln {
namespace {

bool is_int8(DType t) { return t == DType::kInt8 || t == DType::kUInt8; }
bool is_quantized(DType t) { return is_int8(t) || float8_is_supported(t); }
bool is_fp8_kernel(const ir::Node& n) { return n.runtime_op == "Fp8Conv" || n.runtime_op == "Fp8MatMul"; }

// A build-time constant float32 scalar (or one-element tensor).
bool scalar_f32(const ir::Value* v, float* out) {
  if (!v || !v->constant || v->dtype != DType::kFloat32 || v->constant->numel() != 1) return false;
  *out = v->constant->as<float>()[0];
  return true;
}

// A build-time constant int8/uint8 scalar zero point; a missing one is 0 of type `t`.
bool scalar_zp(const ir::Value* v, DType t, int* out) {
  *out = 0;
  if (!v) return true;
  if (!v->constant || v->dtype != t || v->constant->numel() != 1) return false;
  const uint8_t byte = v->constant->as<uint8_t>()[0];
  if (float8_is_supported(t)) return (byte & 0x7F) == 0;  // FP8 zero points are (+-) zero
  *out = t == DType::kUInt8 ? byte : static_cast<int8_t>(byte);
  return true;
}

// Per-tensor quantization parameters of a QuantizeLinear/DequantizeLinear node.
struct QParams {
  float scale = 1.f;
  int zp = 0;
  DType type = DType::kUndefined;
  bool operator==(const QParams& o) const { return scale == o.scale && zp == o.zp && type == o.type; }
};

// The node's per-tensor parameters, with `type` the quantized side's dtype.
bool qparams(const ir::Node& n, DType type, QParams* p) {
  if (n.inputs.size() < 2 || !is_quantized(type)) return false;
  p->type = type;
  return scalar_f32(n.input(1), &p->scale) && p->scale > 0 && std::isfinite(p->scale) &&
         scalar_zp(n.input(2), type, &p->zp);
}

bool is_candidate(const ir::Node& n) {
  if (n.dead || n.outputs.size() != 1 || !n.outputs[0]) return false;
  if (n.attrs.has(linear::kAttrActivation) || n.attrs.has(linear::kAttrResidual)) return false;
  if (is_fp8_kernel(n)) return float8_is_supported(n.outputs[0]->dtype) && n.inputs.size() >= 5 && n.inputs.size() <= 6;
  if (n.runtime_op != "QLinearConv" && n.runtime_op != "QLinearMatMul") return false;
  return is_int8(n.outputs[0]->dtype) && n.inputs.size() >= 8 && n.inputs.size() <= 9;
}

// Where each kind of kernel keeps its output scale / zero point, bias and fused residual
// (runtime/ops/quantized_linear.h); -1: none.
struct KernelSlots {
  int y_scale, y_zp, bias, residual, residual_scale, residual_zp;
};
KernelSlots slots_of(const ir::Node& n) {
  if (is_fp8_kernel(n)) return {kFp8YScaleInput, -1, kFp8BiasInput, kFp8ResidualInput, kFp8ResidualScaleInput, -1};
  return {6, 7, static_cast<int>(kQBiasInput), static_cast<int>(kQResidualInput),
          static_cast<int>(kQResidualScaleInput), static_cast<int>(kQResidualZeroPointInput)};
}

void set_input(ir::Node* n, int i, ir::Value* v) {
  if (i < 0) return;
  if (n->inputs.size() <= static_cast<size_t>(i)) n->inputs.resize(static_cast<size_t>(i) + 1, nullptr);
  n->inputs[static_cast<size_t>(i)] = v;
}

size_t position(const ir::Graph& g, const ir::Node* n) {
  for (size_t i = 0; i < g.nodes().size(); ++i)
    if (g.nodes()[i].get() == n) return i;
  return g.nodes().size();
}

// Whether `v` is available before `n` runs (a graph input, constant, or produced earlier).
bool available_before(const ir::Graph& g, const ir::Value* v, const ir::Node* n) {
  return !v->producer || position(g, v->producer) < position(g, n);
}

// An explicit zero point (0 of v's type) where a Q/DQ node left it out.
ir::Value* zero_point(ir::Graph& g, const ir::Value* v) { return add_zero_point(g, v->name + "_zero_point", v->dtype); }

// FP8 QuantizeLinear/DequantizeLinear exist from opset 19 on (the same ops as 13 otherwise).
int64_t qdq_opset(int64_t opset, DType quantized) { return float8_is_supported(quantized) ? std::max<int64_t>(opset, 19) : opset; }

void retire(ir::Node* n) {
  n->dead = true;
  n->inputs.clear();
  n->outputs.clear();
}

// When `v` is DequantizeLinear(q, scale, zp) of a tensor available before `n` whose type n's
// epilogue reads (int8/uint8 for the integer kernels, FP8 for the FP8 ones), it can read q.
bool quantized_source(const ir::Graph& g, const ir::Value* v, const ir::Node* n, ir::Node** dq) {
  ir::Node* p = v->producer;
  if (!p || p->dead || p->op_type != "DequantizeLinear" || p->inputs.empty() || !p->inputs[0]) return false;
  if (is_fp8_kernel(*n) ? !float8_is_supported(p->inputs[0]->dtype) : !is_int8(p->inputs[0]->dtype)) return false;
  QParams rp;
  if (!qparams(*p, p->inputs[0]->dtype, &rp) || !available_before(g, p->inputs[0], n)) return false;
  *dq = p;
  return true;
}

// What the chain after the integer kernel folds into its epilogue.
struct Chain {
  std::vector<ir::Node*> nodes;  // after the DequantizeLinear, in order
  linear::Epilogue ep;
  ir::Value* residual = nullptr;
  ir::Node* residual_dq = nullptr;  // residual = residual_dq(int8): read the int8 tensor
  std::shared_ptr<HostTensor> column_bias;  // QLinearMatMul: int32 per output column
};

// Gemm-style bias [N] (or [1, N]) after a QLinearMatMul becomes an int32 bias at the
// accumulator's scale s_a * s_b[n]; false when it does not fit that form or int32.
bool column_bias(const ir::Node& n, const ir::Value* b, std::shared_ptr<HostTensor>* out) {
  const bool fp8 = n.runtime_op == "Fp8MatMul";
  if ((n.runtime_op != "QLinearMatMul" && !fp8) || n.input(fp8 ? 5 : 8) || !b->constant || b->dtype != DType::kFloat32)
    return false;
  const Shape& ys = n.outputs[0]->shape;
  if (ys.empty()) return false;
  const int64_t cols = ys.back();
  const Shape& bs = b->shape;
  if (!(bs == Shape{cols} || bs == Shape{1, cols})) return false;
  if (fp8) {  // the FP8 kernel adds a float32 bias itself
    *out = std::make_shared<HostTensor>(DType::kFloat32, Shape{cols});
    std::copy(b->constant->as<float>(), b->constant->as<float>() + cols, (*out)->as<float>());
    return true;
  }
  float sa;
  const ir::Value* sb = n.input(4);
  if (!scalar_f32(n.input(1), &sa) || !sb || !sb->constant || sb->dtype != DType::kFloat32) return false;
  if (sb->constant->numel() != 1 && sb->constant->numel() != cols) return false;
  auto t = std::make_shared<HostTensor>(DType::kInt32, Shape{cols});
  for (int64_t c = 0; c < cols; ++c) {
    const double s = static_cast<double>(sa) * sb->constant->as<float>()[sb->constant->numel() == 1 ? 0 : c];
    const double q = std::nearbyint(b->constant->as<float>()[c] / s);
    if (!(s > 0) || !(std::fabs(q) < 1e9)) return false;
    t->as<int32_t>()[c] = static_cast<int32_t>(q);
  }
  *out = t;
  return true;
}

Chain follow_chain(const ir::Graph& g, const linear::ConsumerMap& consumers, const ir::Node& n, ir::Value* start) {
  Chain ch;
  ir::Value* cur = start;
  for (;;) {
    ir::Node* c = linear::sole_consumer(g, consumers, cur);
    if (!c || !c->domain.empty() || c->outputs.size() != 1 || !c->outputs[0]) break;
    const ir::Value* out = c->outputs[0];
    if (out->dtype != DType::kFloat32 || out->shape != cur->shape || out->constant) break;
    if (c->op_type == "Add" && c->inputs.size() == 2) {
      ir::Value* other = c->inputs[0] == cur ? c->inputs[1] : c->inputs[0];
      if (ch.nodes.empty() && column_bias(n, other, &ch.column_bias)) {
        // folded into the int32 bias
      } else if (ch.ep.residual == linear::kResidualNone && !other->constant && other->dtype == DType::kFloat32 &&
                 other->shape == cur->shape &&
                 (available_before(g, other, &n) || quantized_source(g, other, &n, &ch.residual_dq))) {
        ch.ep.residual = ch.ep.act == linear::Activation::kNone ? linear::kResidualBeforeActivation
                                                                : linear::kResidualAfterActivation;
        ch.residual = other;
      } else {
        break;
      }
    } else {
      linear::Epilogue e;
      if (ch.ep.act != linear::Activation::kNone || ch.ep.residual == linear::kResidualAfterActivation ||
          c->inputs.empty() || c->inputs[0] != cur || !linear::activation_epilogue(*c, &e))
        break;
      ch.ep.act = e.act;
      ch.ep.act_alpha = e.act_alpha;
      ch.ep.act_beta = e.act_beta;
    }
    ch.nodes.push_back(c);
    cur = c->outputs[0];
  }
  return ch;
}

// Folds the chain after integer kernel `n`; false when there is nothing to fold.
bool fuse_one(ir::Graph& g, ir::Node* n, int64_t opset, Status* st) {
  const linear::ConsumerMap consumers = g.consumers();
  ir::Value* yq = n->outputs[0];
  ir::Node* dq = linear::sole_consumer(g, consumers, yq);
  if (!dq || dq->op_type != "DequantizeLinear" || dq->inputs.empty() || dq->inputs[0] != yq || !dq->outputs[0])
    return false;
  const KernelSlots slot = slots_of(*n);
  QParams y, d;
  if (!qparams(*dq, yq->dtype, &d) || !scalar_f32(n->input(slot.y_scale), &y.scale) ||
      !scalar_zp(slot.y_zp >= 0 ? n->input(slot.y_zp) : nullptr, yq->dtype, &y.zp))
    return false;
  y.type = yq->dtype;
  if (!(y == d)) return false;

  Chain ch = follow_chain(g, consumers, *n, dq->outputs[0]);
  ir::Value* end = ch.nodes.empty() ? dq->outputs[0] : ch.nodes.back()->outputs[0];

  // Where the chain's result goes: QuantizeLinear nodes that can take the kernel's int8 output
  // as theirs, and everything else (which then reads one DequantizeLinear of it).
  std::vector<ir::Node*> same_q;
  QParams target;
  bool others = g.is_graph_output(end);
  auto it = consumers.find(end);
  if (it != consumers.end())
    for (ir::Node* c : it->second) {
      QParams p;
      const bool q = c->op_type == "QuantizeLinear" && c->inputs[0] == end && c->outputs.size() == 1 &&
                     c->outputs[0] && c->attrs.get_int("saturate", 1) == 1 &&
                     qparams(*c, c->outputs[0]->dtype, &p) &&
                     // An integer kernel writes int8/uint8 only, an FP8 kernel FP8 only (a
                     // mixed-precision plan may quantize the next layer to the other kind).
                     (is_fp8_kernel(*n) ? float8_is_supported(p.type) : is_int8(p.type));
      // A second QuantizeLinear is merged into the first only when nothing names its output.
      if (q && (same_q.empty() || (p == target && !g.is_graph_output(c->outputs[0])))) {
        target = p;
        same_q.push_back(c);
      } else {
        others = true;
      }
    }
  if (same_q.empty() && !others) return false;

  // The epilogue reads a quantized residual directly when it is a dequantized tensor of its kind.
  ir::Value* res = ch.residual;
  ir::Value *res_scale = nullptr, *res_zp = nullptr;
  if (res && (ch.residual_dq || quantized_source(g, res, n, &ch.residual_dq))) {
    ir::Node* rdq = ch.residual_dq;
    res = rdq->inputs[0];
    res_scale = rdq->input(1);
    if (slot.residual_zp >= 0) res_zp = rdq->input(2) ? rdq->input(2) : zero_point(g, res);
  }

  // Rewire: the kernel produces the first QuantizeLinear's output (or `end` in float32).
  if (n->fused.empty()) n->fused.push_back(n->name);
  n->fused.push_back(dq->name);
  for (ir::Node* c : ch.nodes) linear::append_fused(n, *c);
  ir::Node* insert_at = ch.nodes.empty() ? dq : ch.nodes.back();
  if (!same_q.empty()) {
    ir::Node* q0 = same_q[0];
    ir::Value* out = q0->outputs[0];
    ir::Value* out_scale = q0->input(1);
    ir::Value* out_zp = q0->input(2);
    set_input(n, slot.y_scale, out_scale);
    set_input(n, slot.y_zp, out_zp ? out_zp : zero_point(g, out));
    for (ir::Node* q : same_q) {
      n->fused.push_back(q->name);
      if (q != q0) g.replace_uses(q->outputs[0], out);
    }
    n->outputs[0] = out;
    out->producer = n;
    for (ir::Node* q : same_q) retire(q);
    if (others) {
      ir::Node* back = g.insert_node_before(insert_at, "DequantizeLinear", end->name + "_dequantize");
      back->inputs = {out, out_scale};
      if (out_zp) back->inputs.push_back(out_zp);
      back->outputs = {end};
      end->producer = back;
      *st = infer_and_fold_node(*back, g, qdq_opset(opset, out->dtype));
    }
  } else {
    n->outputs[0] = end;
    end->producer = n;
    // The FP8 kernel divides by its y_scale also for a float32 output.
    if (is_fp8_kernel(*n)) {
      auto one = std::make_shared<HostTensor>(DType::kFloat32, Shape{});
      one->as<float>()[0] = 1.f;
      set_input(n, slot.y_scale, g.add_constant(n->name + "_unit_scale", one));
    }
  }
  yq->producer = nullptr;
  retire(dq);
  for (ir::Node* c : ch.nodes) retire(c);

  if (ch.ep.act != linear::Activation::kNone) {
    n->attrs.set(linear::kAttrActivation, std::string(linear::activation_name(ch.ep.act)));
    n->attrs.set(linear::kAttrActAlpha, ch.ep.act_alpha);
    n->attrs.set(linear::kAttrActBeta, ch.ep.act_beta);
  }
  if (ch.column_bias) {
    set_input(n, slot.bias, g.add_constant(n->name + "_bias", ch.column_bias));
    if (!is_fp8_kernel(*n)) n->attrs.set(kAttrBiasColumns, int64_t{1});
  }
  if (res) {
    n->attrs.set(linear::kAttrResidual, static_cast<int64_t>(ch.ep.residual));
    set_input(n, slot.residual, res);
    if (res_scale) set_input(n, slot.residual_scale, res_scale);
    if (res_zp) set_input(n, slot.residual_zp, res_zp);
  }
  while (!n->inputs.empty() && !n->inputs.back()) n->inputs.pop_back();
  return true;
}

// Ops that commute with per-tensor quantization (OpSchema::quantize_commutes): they only move
// or select values, so Q(op(x)) == op(Q(x)) exactly.
bool commutes_with_quantize(const ir::Node& n) {
  if (n.dead || !n.domain.empty() || n.outputs.size() != 1 || !n.outputs[0]) return false;
  const OpSchema* s = schema_registry().find(n.op_type);
  return s && s->quantize_commutes && n.outputs[0]->dtype == DType::kFloat32;
}

// QuantizeLinear(op(x)) -> op(QuantizeLinear(x)) for the ops above, when every reader of op's
// output quantizes it the same way: the op then moves int8 values, and the QuantizeLinear
// moves up to where it can end an integer kernel's epilogue.
bool hoist_quantize(ir::Graph& g, int64_t opset, Status* st) {
  const linear::ConsumerMap consumers = g.consumers();
  for (const auto& np : g.nodes()) {
    ir::Node* op = np.get();
    if (!commutes_with_quantize(*op)) continue;
    ir::Value* v = op->outputs[0];
    auto it = consumers.find(v);
    if (g.is_graph_output(v) || it == consumers.end() || it->second.empty()) continue;
    std::vector<ir::Node*> qs = it->second;
    QParams target;
    bool all_same = true;
    for (size_t i = 0; i < qs.size() && all_same; ++i) {
      ir::Node* q = qs[i];
      QParams p;
      all_same = q->op_type == "QuantizeLinear" && q->inputs[0] == v && q->outputs.size() == 1 && q->outputs[0] &&
                 q->attrs.get_int("saturate", 1) == 1 && qparams(*q, q->outputs[0]->dtype, &p) &&
                 (i == 0 || (p == target && !g.is_graph_output(q->outputs[0])));
      if (i == 0) target = p;
    }
    // MaxPool has integer kernels only (FP8 codes do not order like their values).
    if (!all_same || (op->op_type == "MaxPool" && !is_int8(target.type))) continue;
    ir::Node* q0 = qs[0];
    for (ir::Value*& in : op->inputs) {
      if (!in || in->dtype != DType::kFloat32) continue;
      ir::Node* qi = g.insert_node_before(op, "QuantizeLinear", in->name + "_quantize");
      ir::Value* out = g.add_unique_value(in->name + "_q");
      qi->inputs = {in, q0->inputs[1]};
      if (q0->input(2)) qi->inputs.push_back(q0->inputs[2]);
      qi->outputs = {out};
      out->producer = qi;
      *st = infer_and_fold_node(*qi, g, qdq_opset(opset, target.type));
      if (!st->is_ok()) return false;
      in = out;
    }
    ir::Value* qv = q0->outputs[0];
    for (ir::Node* q : qs)
      if (q != q0) g.replace_uses(q->outputs[0], qv);
    op->outputs[0] = qv;
    qv->producer = op;
    v->producer = nullptr;
    for (ir::Node* q : qs) retire(q);
    return true;
  }
  return false;
}

// QuantizeLinear(DequantizeLinear(q)) with the same parameters is q itself.
void cancel_round_trips(ir::Graph& g) {
  for (const auto& np : g.nodes()) {
    ir::Node* q = np.get();
    if (q->dead || q->op_type != "QuantizeLinear" || q->inputs.empty() || !q->inputs[0] || q->outputs.size() != 1)
      continue;
    ir::Node* dq = q->inputs[0]->producer;
    if (!dq || dq->dead || dq->op_type != "DequantizeLinear" || !dq->inputs[0] || g.is_graph_output(q->outputs[0])) continue;
    QParams a, b;
    if (dq->inputs[0]->dtype != q->outputs[0]->dtype || !qparams(*dq, dq->inputs[0]->dtype, &a) ||
        !qparams(*q, q->outputs[0]->dtype, &b) || !(a == b))
      continue;
    g.replace_uses(q->outputs[0], dq->inputs[0]);
    retire(q);
  }
}

}  // namespace

Status run_fuse_quantized(ir::Graph& g, const PassContext&) {
  const int64_t opset = g.opsets.count("") ? g.opsets.at("") : 21;
  Status hoisted;
  while (hoist_quantize(g, opset, &hoisted)) {
  }
  KILN_TRY(hoisted);
  cancel_round_trips(g);
  g.erase_dead();
  std::vector<ir::Node*> kernels;
  for (const auto& n : g.nodes())
    if (is_candidate(*n)) kernels.push_back(n.get());
  for (ir::Node* n : kernels) {
    Status st;
    fuse_one(g, n, opset, &st);
    KILN_TRY_CTX(st, n->describe());
  }
  g.erase_dead();
  return Status::ok();
}

}  // namespace kiln
