// MaxPool, AveragePool and the reductions (ReduceMean is GlobalAveragePool) on oneDNN's pooling
// and reduction primitives, in whatever layout their input arrives (channels-last inside
// convolution chains). Declined (reference kernel) where oneDNN's semantics differ from ONNX's:
// MaxPool's Indices output, an average pool whose ceil-mode windows reach past the padding
// while counting it, windows that see only padding, empty reductions.
#include <algorithm>
#include <functional>

#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/normalization_geometry.h"
#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

using dnnl::memory;
using namespace dnnl_util;

// A primitive from src to dst of one dtype; subclasses say how to build it for given shapes.
class SrcDstPlan : public FastNodePlan {
 public:
  LayoutUse input_use(size_t i) const override { return i == 0 ? LayoutUse::kAny : LayoutUse::kPlain; }
  LayoutUse output_use(size_t) const override { return LayoutUse::kAny; }
  std::unique_ptr<FastKernel> instance() const override;
  // The primitive for src descriptor `src` and output dims `dst_dims` (dst layout left to
  // oneDNN, or fixed by `dst` when it is not zero); throws dnnl::error.
  virtual dnnl::primitive_desc make(const PlanNode& node, const memory::desc& src, const memory::desc& dst) const = 0;
  // The output dims as oneDNN sees them (a reduction keeps the reduced dims as 1s).
  virtual Shape dst_dims(const PlanNode& node, const Shape& x, const Shape& y) const { return y; }
};

class SrcDstKernel : public FastKernel {
 public:
  explicit SrcDstKernel(const SrcDstPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    Entry* e = nullptr;
    KILN_TRY(cache_.get(a, &e, [&](Entry& n) { return build(a, &n); }));
    FastRunContext& c = a.ctx;
    void* dst = e->dst_reorder ? c.scratch_for(2, e->dst_md) : a.outputs[0].data;
    e->args.set(DNNL_ARG_SRC, a.inputs[0].data);
    e->args.set(DNNL_ARG_DST, dst);
    e->args.set(DNNL_ARG_SCRATCHPAD, c.scratch_for(kScratchpadSlot, e->scratch_md));
    e->args.execute(e->prim, c.stream());
    if (e->dst_reorder) e->dst_r.run(c.stream(), dst, a.outputs[0].data);
    c.stream().wait();
    return Status::ok();
  }

 private:
  struct Entry {
    dnnl::primitive prim;
    BoundArgs args;
    memory::desc user_src, user_dst, dst_md, scratch_md;
    bool dst_reorder = false;
    BoundReorder dst_r;
  };
  Status build(const FastRunArgs& a, Entry* e) {
    const dt type = dtype_of(a.inputs[0].dtype);
    const Shape& x = a.inputs[0].shape;
    const Shape y = p_.dst_dims(a.node, x, a.outputs[0].shape);
    e->user_src = layout_md(x, type, a.in_layout[0]);
    HostLayout out = a.out_layout[0];
    // [N, C, 1, 1] is the same bytes in either layout: describe it like the input.
    if (y.size() == 4 && y[2] * y[3] == 1) out = a.in_layout[0];
    e->user_dst = layout_md(y, type, out);
    return creation_guard(a.node.op, [&] {
      dnnl::primitive_desc pd = p_.make(a.node, e->user_src, e->user_dst);
      e->dst_md = pd.query_md(dnnl::query::dst_md);
      e->scratch_md = pd.query_md(dnnl::query::scratchpad_md);
      e->prim = dnnl::primitive(pd);
      e->dst_reorder = e->dst_md != e->user_dst;
      if (e->dst_reorder) e->dst_r.init(e->dst_md, e->user_dst);
      e->args.add(DNNL_ARG_SRC, e->user_src);
      e->args.add(DNNL_ARG_DST, e->dst_md);
      e->args.add(DNNL_ARG_SCRATCHPAD, e->scratch_md);
    });
  }
  const SrcDstPlan& p_;
  ShapeCache<Entry> cache_;
};

std::unique_ptr<FastKernel> SrcDstPlan::instance() const { return std::make_unique<SrcDstKernel>(*this); }

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// ---- pooling ----

class PoolPlan : public SrcDstPlan {
 public:
  bool max = true;
  bool count_pad = false;
  const char* name() const override { return "onednn:pooling"; }
  dnnl::primitive_desc make(const PlanNode& node, const memory::desc& src, const memory::desc& dst) const override {
    normgeo::PoolGeom g;
    const memory::dims sd = src.dims(), dd = dst.dims();
    const Shape x(sd.begin(), sd.end()), y(dd.begin(), dd.end());
    if (!normgeo::pool_geom(x, y, node.attrs, &g).is_ok()) throw dnnl::error(dnnl_invalid_arguments, "pooling geometry");
    memory::dims k, s, d, pl, pr;
    for (int i = 3 - g.nsp; i < 3; ++i) {
      k.push_back(g.kernel[i]);
      s.push_back(g.stride[i]);
      d.push_back(g.dil[i] - 1);
      pl.push_back(g.pad_begin[i]);
      // oneDNN's end padding is whatever makes the output size come out (ceil mode extends it).
      pr.push_back((g.out[i] - 1) * g.stride[i] + (g.kernel[i] - 1) * g.dil[i] + 1 - g.in[i] - g.pad_begin[i]);
    }
    const auto alg = max ? dnnl::algorithm::pooling_max
                         : count_pad ? dnnl::algorithm::pooling_avg_include_padding
                                     : dnnl::algorithm::pooling_avg_exclude_padding;
    const memory::desc dst_any(dst.dims(), dst.data_type(), tag::any);
    dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_inference, alg, src, dst_any, s, k, d, pl, pr);
    return dnnl::pooling_v2_forward::primitive_desc(desc, user_scratchpad(), engine());
  }
};

Status prepare_pool(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  auto p = std::make_shared<PoolPlan>();
  p->max = node.op == "MaxPool";
  p->count_pad = node.attrs.get_int("count_include_pad", 0) != 0;
  if (node.inputs.empty() || node.outputs.size() != 1 || node.inputs[0] < 0) return Status::ok();  // Indices
  // An OpenCL plan's channels-last pool (runtime/ops/channels_last.h) runs the reference.
  if (is_channels_last(node.attrs)) return Status::ok();
  const PlanTensor& x = plan.tensors[node.inputs[0]];
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  const bool int8 = x.dtype == DType::kInt8 || x.dtype == DType::kUInt8;
  if (!(x.dtype == DType::kFloat32 || (int8 && p->max)) || y.dtype != x.dtype) return Status::ok();
  normgeo::PoolGeom g;
  KILN_TRY(normgeo::pool_geom(x.shape, y.shape, node.attrs, &g));
  for (int i = 3 - g.nsp; i < 3; ++i) {
    const int64_t eff = (g.kernel[i] - 1) * g.dil[i] + 1;
    const int64_t end = (g.out[i] - 1) * g.stride[i] + eff - g.in[i] - g.pad_begin[i];
    // A window over padding only (kiln: NaN or -inf semantics of its own), or a ceil-mode
    // window past the end padding that an including average would count.
    if (g.pad_begin[i] >= eff || end >= eff || (p->count_pad && end > g.pad_end[i])) return Status::ok();
  }
  try {
    (void)p->make(node, plain_md(x.shape, dtype_of(x.dtype)), plain_md(y.shape, dtype_of(y.dtype)));
  } catch (const dnnl::error&) {
    return Status::ok();
  }
  *out = std::move(p);
  return Status::ok();
}

// ---- reductions ----

// GlobalAveragePool's (and GlobalMaxPool's ReduceMax) reduction over H, W of a 4-D tensor:
// oneDNN 2.6 has no optimized kernel for it on channels-last data (ref:any), so this loop
// does it. Channels-last: each image sums its H*W rows of C values (contiguous, vectorized);
// plain: each (n, c) plane is one contiguous run.
bool spatial_reduce(const PlanNode& node, const FastRunArgs& a, bool mean, bool max) {
  const Shape& x = a.inputs[0].shape;
  const std::vector<int64_t> axes = node.attrs.get_ints("axes");
  if (x.size() != 4 || axes != std::vector<int64_t>{2, 3} || !(mean || max)) return false;
  const int64_t N = x[0], C = x[1], HW = x[2] * x[3];
  const float* in = a.inputs[0].as<float>();
  float* out = a.outputs[0].as<float>();
  const float scale = mean ? 1.f / static_cast<float>(HW) : 1.f;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.ctx.threads, N * C * HW / 16384)));
  if (a.in_layout[0] == HostLayout::kChannelsLast) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      float* o = out + n * C;
      const float* xi = in + n * HW * C;
      for (int64_t c = 0; c < C; ++c) o[c] = xi[c];
      for (int64_t p = 1; p < HW; ++p) {
        const float* row = xi + p * C;
        if (max)
          for (int64_t c = 0; c < C; ++c) o[c] = row[c] > o[c] || row[c] != row[c] ? row[c] : o[c];
        else
          for (int64_t c = 0; c < C; ++c) o[c] += row[c];
      }
      if (mean)
        for (int64_t c = 0; c < C; ++c) o[c] *= scale;
    }
    return true;
  }
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < N * C; ++i) {
    const float* xp = in + i * HW;
    float acc = xp[0];
    for (int64_t p = 1; p < HW; ++p) acc = max ? (xp[p] > acc || xp[p] != xp[p] ? xp[p] : acc) : acc + xp[p];
    out[i] = acc * scale;
  }
  return true;
}

// A plain reduction over a middle run of dims, [outer, R, inner] with inner > 1 after merging
// (BERT's mean pooling over the sequence): oneDNN 2.6 has only ref:any for it. Each output row
// of `inner` values accumulates R input rows (contiguous, vectorized).
bool middle_reduce(const FastRunArgs& a, dnnl::algorithm alg) {
  using A = dnnl::algorithm;
  if (alg != A::reduction_sum && alg != A::reduction_mean && alg != A::reduction_max && alg != A::reduction_min)
    return false;
  if (a.in_layout[0] != HostLayout::kPlain) return false;
  const normgeo::ReduceGeom g = normgeo::reduce_geom(a.inputs[0].shape, a.node.attrs.get_ints("axes"));
  int64_t outer = 1, R = 1, inner = 1;
  const size_t nd = g.dims.size();
  if (nd == 3 && !g.reduced[0] && g.reduced[1] && !g.reduced[2]) outer = g.dims[0], R = g.dims[1], inner = g.dims[2];
  else if (nd == 2 && g.reduced[0] && !g.reduced[1]) R = g.dims[0], inner = g.dims[1];
  else return false;
  if (inner < 8 || R < 1) return false;
  const float* in = a.inputs[0].as<float>();
  float* out = a.outputs[0].as<float>();
  const bool max = alg == A::reduction_max, min = alg == A::reduction_min;
  const float scale = alg == A::reduction_mean ? 1.f / static_cast<float>(R) : 1.f;
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(a.ctx.threads, outer * R * inner / 16384)));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t o = 0; o < outer; ++o) {
    float* y = out + o * inner;
    const float* x = in + o * R * inner;
    for (int64_t i = 0; i < inner; ++i) y[i] = x[i];
    for (int64_t r = 1; r < R; ++r) {
      const float* row = x + r * inner;
      if (max)
        for (int64_t i = 0; i < inner; ++i) y[i] = row[i] > y[i] || row[i] != row[i] ? row[i] : y[i];
      else if (min)
        for (int64_t i = 0; i < inner; ++i) y[i] = row[i] < y[i] || row[i] != row[i] ? row[i] : y[i];
      else
        for (int64_t i = 0; i < inner; ++i) y[i] += row[i];
    }
    if (scale != 1.f)
      for (int64_t i = 0; i < inner; ++i) y[i] *= scale;
  }
  return true;
}

class ReduceKernel : public SrcDstKernel {
 public:
  ReduceKernel(const SrcDstPlan& p, dnnl::algorithm alg) : SrcDstKernel(p), alg_(alg) {}
  Status run(const FastRunArgs& a) override {
    const bool mean = alg_ == dnnl::algorithm::reduction_mean, max = alg_ == dnnl::algorithm::reduction_max;
    // Output [N, C, 1, 1] is the same bytes in either layout.
    if ((mean || max) && spatial_reduce(a.node, a, mean, max)) return Status::ok();
    if (middle_reduce(a, alg_)) return Status::ok();
    return SrcDstKernel::run(a);
  }

 private:
  dnnl::algorithm alg_;
};

class ReducePlan : public SrcDstPlan {
 public:
  dnnl::algorithm alg = dnnl::algorithm::reduction_sum;
  float p = 0.f;
  const char* name() const override { return "onednn:reduction"; }
  std::unique_ptr<FastKernel> instance() const override { return std::make_unique<ReduceKernel>(*this, alg); }
  Shape dst_dims(const PlanNode& node, const Shape& x, const Shape&) const override {
    Shape d = x;
    for (int64_t ax : node.attrs.get_ints("axes")) d[ax] = 1;
    return d;
  }
  dnnl::primitive_desc make(const PlanNode&, const memory::desc& src, const memory::desc& dst) const override {
    dnnl::reduction::desc desc(alg, src, memory::desc(dst.dims(), dst.data_type(), tag::any), p, 0.f);
    return dnnl::reduction::primitive_desc(desc, user_scratchpad(), engine());
  }
};

Status prepare_reduce(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  auto p = std::make_shared<ReducePlan>();
  using alg = dnnl::algorithm;
  const std::string& op = node.op;
  if (op == "ReduceSum") p->alg = alg::reduction_sum;
  else if (op == "ReduceMean") p->alg = alg::reduction_mean;
  else if (op == "ReduceMax") p->alg = alg::reduction_max;
  else if (op == "ReduceMin") p->alg = alg::reduction_min;
  else if (op == "ReduceL2") p->alg = alg::reduction_norm_lp_sum, p->p = 2.f;
  else if (op == "ReduceL1") p->alg = alg::reduction_norm_lp_sum, p->p = 1.f;
  else if (op == "ReduceSumSquare") p->alg = alg::reduction_norm_lp_power_p_sum, p->p = 2.f;
  else return Status::ok();
  if (node.inputs.empty() || node.inputs[0] < 0 || node.outputs.size() != 1 || !operands_are(plan, node, DType::kFloat32))
    return Status::ok();
  const Shape& x = plan.tensors[node.inputs[0]].shape;
  const std::vector<int64_t> axes = node.attrs.get_ints("axes");
  if (axes.empty() || x.empty() || x.size() > 6 || shape_numel(x) == 0) return Status::ok();
  for (int64_t ax : axes)
    if (ax < 0 || ax >= static_cast<int64_t>(x.size())) return Status::ok();
  const Shape d = p->dst_dims(node, x, {});
  if (d == x) return Status::ok();  // nothing reduced: a copy
  try {
    (void)p->make(node, plain_md(x, dt::f32), plain_md(d, dt::f32));
  } catch (const dnnl::error&) {
    return Status::ok();
  }
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_dnnl_pool_fast(FastRegistry& r) {
  r.add("MaxPool", prepare_pool);
  r.add("AveragePool", prepare_pool);
  for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL1", "ReduceL2", "ReduceSumSquare"})
    r.add(op, prepare_reduce);
}

}  // namespace kiln
