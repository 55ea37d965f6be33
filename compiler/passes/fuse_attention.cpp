// Fuses scaled-dot-product attention, Softmax(Q K^T * scale [+ mask]) V, into one Attention
// node (runtime/backends/attention_geometry.h) in the forms exporters write it:
//  - BERT (transformers eager): MatMul(Q, Transpose(K)) -> Div(c) -> Add(mask) -> Softmax -> MatMul(., V)
//  - nn.MultiheadAttention: MatMul(Mul(Q, c), Transpose(K)) [-> Mul(1) -> Add(mask)] -> Softmax -> MatMul
//  - scaled_dot_product_attention: MatMul(Mul(Q, sqrt c), Mul(Transpose(K), sqrt c)) [-> Add(mask)] -> ...
//  - K already transposed ([.., D, Sk], e.g. Transpose(perm 0,2,3,1) of the head split): read as is
// The scale is any chain of Mul/Div by scalar constants on Q, on K^T or on the scores (before
// the mask Add); the mask is one additive tensor that broadcasts to the scores, whatever
// computes it. 2-D to 4-D operands with equal batch dims ([B, H, S, D] and [B*H, S, D]).
// Every intermediate must have no reader outside the pattern. The head-split Transposes around
// it (Q, K, V from [batch, seq, heads, dim], the output back to it) are absorbed too: the node
// reads and writes those layouts through strides (attngeo::kAttrBshd).
//
// Runs last among the fusions, on the graph as they left it: after the linear epilogues (a mask
// Add may have become the score MatMul's bias or residual input), after the fp16 conversion (so
// the node is made in its final precision and needs no fp16 rule of its own) and after
// fuse_elementwise (the scale and mask ops are then one Elementwise program, which is decoded
// here instruction by instruction).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <unordered_map>

#include "compiler/ops/op_schema.h"
#include "compiler/passes/passes.h"
#include "runtime/backends/attention_geometry.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/ops/elementwise_program.h"

namespace kiln {
namespace {

using Readers = std::unordered_map<const ir::Value*, std::vector<ir::Node*>>;

struct Match {
  ir::Node* qk = nullptr;
  ir::Node* pv = nullptr;
  std::vector<ir::Node*> nodes;  // every node folded into the Attention node, pv included
  ir::Value* q = nullptr;
  ir::Value* k = nullptr;
  ir::Value* v = nullptr;
  ir::Value* mask = nullptr;
  bool k_transposed = true;  // the score MatMul's B input is K^T as stored
  double scale = 1.0;
  bool mask_to_half = false;  // `mask` is float32, cast (saturating) to float16 for the node
  const ir::Node* q_reader = nullptr;  // the pattern's node that reads q, and k
  const ir::Node* k_reader = nullptr;
  int64_t bshd = 0;            // attngeo::kAttrBshd: operands stored [batch, seq, heads, dim]
  ir::Node* y_transpose = nullptr;  // the (0, 2, 1, 3) Transpose of the output, absorbed
  ir::Node* y_quantize = nullptr;   // a per-tensor QuantizeLinear between the output and y_transpose
};

// One step between the score MatMul and the Softmax, in the order it applies.
struct Step {
  double factor = 1.0;           // a scale step
  ir::Value* add = nullptr;      // a mask step
  bool add_to_half = false;      // the mask is `add` cast (saturating) to float16 first
};

class Matcher {
 public:
  Matcher(const ir::Graph& g, const Readers& readers) : g_(g), readers_(readers) {}

  bool match(ir::Node* softmax, Match* m) {
    if (!live(softmax) || softmax->runtime_op != "Softmax" || softmax->outputs.size() != 1 || softmax->inputs.size() != 1)
      return false;
    const ir::Value* p = softmax->outputs[0];
    const int64_t rank = static_cast<int64_t>(p->shape.size());
    if (softmax->attrs.get_int("axis", -1) != rank - 1) return false;
    ir::Node* pv = sole_reader(p);
    if (!pv || !plain_matmul(*pv) || pv->inputs[0] != p) return false;
    m->pv = pv;
    m->v = pv->inputs[1];
    m->nodes = {softmax, pv};
    std::vector<Step> steps;  // from the Softmax down
    if (!scores(softmax->inputs[0], softmax, &steps, m)) return false;
    return finish(steps, m);
  }

 private:
  static bool live(const ir::Node* n) { return n && !n->dead; }

  // The node that alone reads `v` (once); nullptr for graph outputs and shared values.
  ir::Node* sole_reader(const ir::Value* v) const {
    if (!v || g_.is_graph_output(v)) return nullptr;
    auto it = readers_.find(v);
    if (it == readers_.end() || it->second.size() != 1 || !live(it->second[0])) return nullptr;
    return it->second[0];
  }
  bool only_read_by(const ir::Value* v, const ir::Node* n) const { return v && !v->constant && sole_reader(v) == n; }

  static bool is_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat16; }

  // A MatMul with no fused epilogue.
  static bool plain_matmul(const ir::Node& n) {
    return n.runtime_op == "MatMul" && n.op_type == "MatMul" && n.inputs.size() == 2 && n.outputs.size() == 1 &&
           n.inputs[0] && n.inputs[1] && !n.attrs.has(linear::kAttrActivation) && !n.attrs.has(linear::kAttrResidual);
  }

  static bool scalar_constant(const ir::Value* v, double* out) {
    if (!v || !v->constant || v->constant->numel() != 1 || !is_float(v->dtype)) return false;
    *out = tensor_double_at(v->constant->view(), 0);
    return std::isfinite(*out);
  }

  static bool load(const ir::Node& n, ew::Program* p) {
    if (n.runtime_op != ew::kRuntimeOp || n.outputs.size() != 1) return false;
    std::vector<DType> dt;
    for (const ir::Value* v : n.inputs) {
      if (!v) return false;
      dt.push_back(v->dtype);
    }
    return ew::Program::from_attrs(n.attrs, dt, p).is_ok() && !p->code.empty();
  }

  // An Elementwise node computing x * c, c * x or x / c for one runtime x of the output's shape
  // and scalar constants c (any chain of them): *x and the product of the factors.
  bool scale_only(const ir::Node& n, ir::Value** x, double* factor) const {
    ew::Program p;
    if (!load(n, &p)) return false;
    const int nin = static_cast<int>(n.inputs.size());
    int chain = -1;  // the register carrying x
    double f = 1.0;
    for (size_t i = 0; i < p.code.size(); ++i) {
      const ew::Instr& in = p.code[i];
      if (in.op != ew::Op::Mul && in.op != ew::Op::Div) return false;
      double c;
      int through;
      if (in.b >= 0 && in.b < nin && scalar_constant(n.inputs[in.b], &c)) {
        through = in.a;
        f = in.op == ew::Op::Mul ? f * c : f / c;
      } else if (in.op == ew::Op::Mul && in.a >= 0 && in.a < nin && scalar_constant(n.inputs[in.a], &c)) {
        through = in.b;
        f *= c;
      } else {
        return false;
      }
      if (i == 0) {
        if (through < 0 || through >= nin || n.inputs[through]->constant) return false;
        chain = through;
      } else if (through != nin + static_cast<int>(i) - 1) {
        return false;
      }
    }
    *x = n.inputs[chain];
    *factor = f;
    return (*x)->shape == n.outputs[0]->shape && (*x)->dtype == n.outputs[0]->dtype;
  }

  // The Elementwise program of `n` as a chain of scale and mask steps from one input, for each
  // input that may be that start (an Add of two inputs could start from either). `starts`
  // receives the candidate start inputs with their steps in application order. Beside the
  // chain, a program may cast a float32 input to float16 for the mask Add (FP16 plans: the mask's
  // saturating Cast from convert_fp16, fused here when the mask has the scores' shape).
  void chains(const ir::Node& n, std::vector<std::pair<ir::Value*, std::vector<Step>>>* starts) const {
    ew::Program p;
    if (!load(n, &p)) return;
    const int nin = static_cast<int>(n.inputs.size());
    for (int start = 0; start < nin; ++start) {
      if (n.inputs[start]->constant) continue;
      std::vector<Step> steps;
      std::unordered_map<int, ir::Value*> half_of;  // register -> the float32 input it casts
      int chain = start;
      bool ok = true;
      for (size_t i = 0; i < p.code.size() && ok; ++i) {
        const ew::Instr& in = p.code[i];
        const int reg = nin + static_cast<int>(i);
        if (in.op == ew::Op::CastSat && in.dtype == DType::kFloat16 && in.a >= 0 && in.a < nin && in.a != start &&
            n.inputs[in.a]->dtype == DType::kFloat32 && i + 1 < p.code.size()) {
          half_of[reg] = n.inputs[in.a];
          continue;
        }
        const bool a_chain = in.a == chain, b_chain = in.b == chain;
        const int other = a_chain ? in.b : in.a;
        double c;
        ok = (a_chain != b_chain) && other >= 0 && other != start && (other < nin || half_of.count(other));
        if (!ok) break;
        if (other >= nin) {
          ok = in.op == ew::Op::Add;
          if (ok) steps.push_back(Step{1.0, half_of[other], true});
        } else if ((in.op == ew::Op::Mul || (in.op == ew::Op::Div && a_chain)) && scalar_constant(n.inputs[other], &c)) {
          steps.push_back(Step{in.op == ew::Op::Mul ? c : 1.0 / c, nullptr});
        } else if (in.op == ew::Op::Add) {
          steps.push_back(Step{1.0, n.inputs[other]});
        } else {
          ok = false;
        }
        chain = reg;
      }
      if (ok && n.inputs[start]->shape == n.outputs[0]->shape) starts->push_back({n.inputs[start], steps});
    }
  }

  // `x` (read only by `reader`) is the scores after the steps already in *steps (which run
  // closer to the Softmax): walks down to the score MatMul.
  bool scores(ir::Value* x, ir::Node* reader, std::vector<Step>* steps, Match* m) {
    if (!only_read_by(x, reader)) return false;
    ir::Node* n = x->producer;
    if (!live(n)) return false;
    if (n->runtime_op == "MatMul" && n->op_type == "MatMul") return score_matmul(n, steps, m);
    std::vector<std::pair<ir::Value*, std::vector<Step>>> starts;
    chains(*n, &starts);
    for (auto& [start, own] : starts) {
      std::vector<Step> all = *steps;
      all.insert(all.end(), own.rbegin(), own.rend());
      Match trial = *m;
      trial.nodes.push_back(n);
      if (scores(start, n, &all, &trial)) {
        *steps = all;
        *m = trial;
        return true;
      }
    }
    return false;
  }

  // The score MatMul: its epilogue's bias or residual (the mask Add that fuse_residual_add moved
  // into it), then the scale chains on its two inputs.
  bool score_matmul(ir::Node* qk, std::vector<Step>* steps, Match* m) {
    if (qk->outputs.size() != 1 || qk->inputs.size() < 2 || !qk->inputs[0] || !qk->inputs[1] ||
        qk->attrs.has(linear::kAttrActivation))
      return false;
    ir::Value* bias = qk->input(linear::kBiasInput);
    ir::Value* residual = qk->input(linear::kResidualInput);
    if (qk->inputs.size() > linear::kResidualInput + 1 || (bias && residual)) return false;
    if (bias || residual) steps->push_back(Step{1.0, bias ? bias : residual});
    m->qk = qk;
    m->nodes.push_back(qk);
    // Q: scalar scales on the way down.
    ir::Value* q = qk->inputs[0];
    const ir::Node* reader = qk;
    ir::Value* x;
    double f;
    while (live(q->producer) && only_read_by(q, reader) && scale_only(*q->producer, &x, &f)) {
      m->scale *= f;
      m->nodes.push_back(q->producer);
      reader = q->producer;
      q = x;
    }
    m->q = q;
    m->q_reader = reader;
    // K^T: scalar scales and at most one Transpose of the last two dims.
    ir::Value* k = qk->inputs[1];
    reader = qk;
    while (live(k->producer) && only_read_by(k, reader)) {
      ir::Node* p = k->producer;
      if (scale_only(*p, &x, &f)) {
        m->scale *= f;
      } else if (m->k_transposed && swaps_last_two(*p)) {
        x = p->inputs[0];
        m->k_transposed = false;
      } else {
        break;
      }
      m->nodes.push_back(p);
      reader = p;
      k = x;
    }
    m->k = k;
    m->k_reader = reader;
    return true;
  }

  static bool swaps_last_two(const ir::Node& n) {
    if (n.runtime_op != "Transpose" || n.inputs.size() != 1 || !n.inputs[0] || n.outputs.size() != 1) return false;
    const std::vector<int64_t> perm = n.attrs.get_ints("perm");
    const size_t r = perm.size();
    if (r < 2 || r != n.inputs[0]->shape.size()) return false;
    for (size_t i = 0; i + 2 < r; ++i)
      if (perm[i] != static_cast<int64_t>(i)) return false;
    return perm[r - 2] == static_cast<int64_t>(r - 1) && perm[r - 1] == static_cast<int64_t>(r - 2);
  }

  // Folds the steps (Softmax side first) into scale and mask: the mask must be added after
  // every scale (a scale after it would scale the mask too), and there is at most one.
  bool finish(const std::vector<Step>& steps, Match* m) {
    bool scaled_after_mask = false;
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
      if (it->add) {
        if (m->mask) return false;
        m->mask = it->add;
        m->mask_to_half = it->add_to_half;
      } else {
        m->scale *= it->factor;
        scaled_after_mask |= m->mask && it->factor != 1.0;
      }
    }
    if (scaled_after_mask || !std::isfinite(m->scale)) return false;
    const DType t = m->pv->outputs[0]->dtype;
    for (const ir::Value* v : {m->q, m->k, m->v, m->mask_to_half ? nullptr : m->mask, m->pv->outputs[0]})
      if (v && (v->dtype != t || !is_float(t))) return false;
    if (m->mask_to_half && t != DType::kFloat16) return false;
    // Shapes the kernels handle (equal batch dims, a broadcastable mask): the runtime's own check.
    Attributes a = attrs(*m);
    attngeo::Geometry geo;
    const Shape mask_shape = m->mask ? m->mask->shape : Shape{};
    if (!attngeo::geometry(m->q->shape, m->k->shape, m->v->shape, m->mask ? &mask_shape : nullptr,
                           m->pv->outputs[0]->shape, a, &geo))
      return false;
    // The scores the pattern computed must be the [.., Sq, Sk] the node computes.
    Shape s(m->q->shape.begin(), m->q->shape.end() - 1);
    s.push_back(geo.sk);
    return m->qk->outputs[0]->shape == s;
  }

 public:
  // The head-split Transposes around the pattern (exporters write Q, K and V as Transpose(0, 2,
  // 1, 3) of a [batch, seq, heads, dim] reshape, K^T as its (0, 2, 3, 1), and transpose the
  // output back): the node reads and writes those layouts through strides instead (bshd).
  void absorb_head_transposes(Match* m) const {
    const std::vector<int64_t> split{0, 2, 1, 3};
    if (ir::Node* t = transpose_of(m->q, m->q_reader, split)) take_input(t, &m->q, attngeo::kBshdQ, m);
    if (ir::Node* t = transpose_of(m->k, m->k_reader, m->k_transposed ? std::vector<int64_t>{0, 2, 3, 1} : split)) {
      take_input(t, &m->k, attngeo::kBshdK, m);
      m->k_transposed = false;
    }
    if (ir::Node* t = transpose_of(m->v, m->pv, split)) take_input(t, &m->v, attngeo::kBshdV, m);
    ir::Node* y = sole_reader(m->pv->outputs[0]);
    // INT8/FP8 plans quantize the output before its Transpose (post-training quantization runs
    // first): a per-tensor QuantizeLinear commutes with it, so the Transpose is absorbed and the
    // QuantizeLinear reads the node's [batch, seq, heads, dim] output instead.
    ir::Node* q = y && per_tensor_quantize(*y) ? y : nullptr;
    if (q) y = sole_reader(q->outputs[0]);
    if (y && is_transpose(*y, split)) {
      m->y_transpose = y;
      m->y_quantize = q;
      m->nodes.push_back(y);
      m->bshd |= attngeo::kBshdY;
    }
  }

  static Attributes attrs(const Match& m) {
    Attributes a;
    a.set(attngeo::kAttrScale, static_cast<float>(m.scale));
    a.set(attngeo::kAttrKTransposed, static_cast<int64_t>(m.k_transposed ? 1 : 0));
    // FP16 with a mask: scores rounded to half as the separate Add stored them, so a saturated
    // mask (-65504) masks a whole row as float32's lowest does (attention_geometry.h).
    if (m.mask && m.pv->outputs[0]->dtype == DType::kFloat16) a.set(attngeo::kAttrHalfScores, int64_t{1});
    if (m.bshd) a.set(attngeo::kAttrBshd, m.bshd);
    return a;
  }

 private:
  // The Transpose by `perm` that produces `v` for `reader` alone; nullptr if there is none.
  ir::Node* transpose_of(const ir::Value* v, const ir::Node* reader, const std::vector<int64_t>& perm) const {
    if (!reader || !only_read_by(v, reader) || !live(v->producer)) return nullptr;
    return is_transpose(*v->producer, perm) ? v->producer : nullptr;
  }
  static bool per_tensor_quantize(const ir::Node& n) {
    auto one = [](const ir::Value* v) { return !v || (v->constant && v->constant->numel() == 1); };
    return n.runtime_op == "QuantizeLinear" && n.outputs.size() == 1 && n.inputs.size() >= 2 && one(n.inputs[1]) &&
           (n.inputs.size() < 3 || one(n.inputs[2]));
  }
  static bool is_transpose(const ir::Node& t, const std::vector<int64_t>& perm) {
    return t.runtime_op == "Transpose" && t.inputs.size() == 1 && t.inputs[0] && t.outputs.size() == 1 &&
           t.inputs[0]->shape.size() == 4 && t.attrs.get_ints("perm") == perm;
  }
  static void take_input(ir::Node* t, ir::Value** operand, int64_t bit, Match* m) {
    *operand = t->inputs[0];
    m->nodes.push_back(t);
    m->bshd |= bit;
  }

  const ir::Graph& g_;
  const Readers& readers_;
};

Readers readers_of(const ir::Graph& g) {
  Readers r;
  for (const auto& n : g.nodes())
    if (!n->dead)
      for (ir::Value* v : n->inputs)
        if (v) r[v].push_back(n.get());
  return r;
}

// A saturating float16 Cast of `mask` placed before `reader`, as convert_fp16 casts (a float32
// lowest in the mask becomes -65504, not -inf).
Status insert_half_cast(ir::Graph& g, ir::Value* mask, ir::Node* reader, ir::Value** out) {
  ir::Node* cast = g.insert_node_before(reader, "Cast", mask->name + "_to_fp16");
  *out = g.add_unique_value(mask->name + "_fp16");
  cast->inputs = {mask};
  cast->outputs = {*out};
  cast->attrs.set("to", static_cast<int64_t>(DType::kFloat16));
  cast->attrs.set(kCastSaturateAttr, int64_t{1});
  (*out)->producer = cast;
  return infer_and_fold_node(*cast, g, g.opsets.at(""));
}

}  // namespace

Status run_fuse_attention(ir::Graph& g, const PassContext& ctx) {
  std::unordered_map<const ir::Node*, size_t> order;
  for (const auto& n : g.nodes()) order.emplace(n.get(), order.size());
  std::vector<ir::Node*> softmaxes;
  for (const auto& n : g.nodes())
    if (!n->dead && n->runtime_op == "Softmax") softmaxes.push_back(n.get());
  int fused = 0;
  // Float16 masks cast from float32 ones, one Cast per mask whatever the number of layers reading it.
  std::unordered_map<ir::Value*, ir::Value*> half_masks;
  for (ir::Node* sm : softmaxes) {
    // Readers change with every rewrite (the fused node reads Q, K, V and the mask).
    const Readers readers = readers_of(g);
    Match m;
    Matcher matcher(g, readers);
    if (!matcher.match(sm, &m)) continue;
    matcher.absorb_head_transposes(&m);
    std::sort(m.nodes.begin(), m.nodes.end(), [&](const ir::Node* a, const ir::Node* b) { return order[a] < order[b]; });
    std::vector<std::string> names;
    for (const ir::Node* n : m.nodes)
      if (n->fused.empty())
        names.push_back(n->name);
      else
        names.insert(names.end(), n->fused.begin(), n->fused.end());
    // The P V MatMul is the last node of the pattern, after every operand is computed: it
    // becomes the Attention node (keeping its name and output).
    ir::Node* at = m.pv;
    if (m.mask_to_half) {
      ir::Value*& half = half_masks[m.mask];
      if (!half) KILN_TRY(insert_half_cast(g, m.mask, at, &half));
      m.mask = half;
    }
    for (ir::Node* n : m.nodes)
      if (n != at) {
        n->dead = true;
        n->inputs.clear();
      }
    at->op_type = attngeo::kOp;
    at->domain = "kiln";
    at->runtime_op = attngeo::kOp;
    at->attrs = Matcher::attrs(m);
    at->inputs = {m.q, m.k, m.v};
    if (m.mask) at->inputs.push_back(m.mask);
    if (m.y_quantize) {
      // The float output in the Transpose's layout, quantized into the Transpose's output.
      ir::Value* y = at->outputs[0];
      ir::Value* moved = g.add_unique_value(y->name + "_bshd");
      moved->dtype = y->dtype;
      moved->shape = m.y_transpose->outputs[0]->shape;
      moved->has_shape = true;
      moved->producer = at;
      at->outputs = {moved};
      m.y_quantize->outputs[0]->producer = nullptr;
      m.y_quantize->inputs[0] = moved;
      m.y_quantize->outputs = m.y_transpose->outputs;
      m.y_quantize->outputs[0]->producer = m.y_quantize;
      m.y_transpose->outputs.clear();
    } else if (m.y_transpose) {
      at->outputs = m.y_transpose->outputs;
      at->outputs[0]->producer = at;
      m.y_transpose->outputs.clear();
    }
    at->fused = names;
    ++fused;
  }
  if (fused && ctx.options.report)
    std::fprintf(ctx.options.report, "attention: %d pattern%s fused into Attention nodes\n", fused, fused == 1 ? "" : "s");
  return Status::ok();
}

}  // namespace kiln
