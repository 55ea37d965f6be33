#include "runtime/backends/quantize_geometry.h"

#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

// Element strides of `in` (right-aligned) over the dims `out`, 0 where `in` broadcasts.
std::vector<int64_t> batch_strides(const Shape& in, const Shape& out, int64_t unit) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t s = unit;
  for (int64_t i = static_cast<int64_t>(in.size()) - 1, j = static_cast<int64_t>(out.size()) - 1; i >= 0 && j >= 0;
       --i, --j) {
    st[j] = in[i] == 1 ? 0 : s;
    s *= in[i];
  }
  return st;
}

// A convolution in ONNX's layout: w [M, Cg, k...], x [N, C, in...], the output [N, M, out...].
Status qgemm_geometry_channels_first(const PlanNode& node, const Shape& a_shape, const Shape& b_shape,
                                     const Shape& out_shape, QGemm* g) {
  if (b_shape.size() < 3) return invalid_plan(node.op + " '" + node.name + "': x must have rank >= 3");
  const size_t nd = b_shape.size() - 2;
  g->images = b_shape[0];
  g->C = b_shape[1];
  g->groups = node.attrs.get_int("group", 1);
  if (g->groups < 1 || a_shape.empty() || a_shape[0] % g->groups || g->C % g->groups)
    return invalid_plan(node.op + " '" + node.name + "': group " + std::to_string(g->groups) +
                        " does not divide the channels");
  g->Cg = g->C / g->groups;
  g->M = a_shape[0] / g->groups;
  g->ks = node.attrs.get_ints("kernel_shape");
  g->strides = node.attrs.get_ints("strides");
  g->dil = node.attrs.get_ints("dilations");
  std::vector<int64_t> pads = node.attrs.get_ints("pads");
  if (g->ks.size() != nd || g->strides.size() != nd || g->dil.size() != nd || pads.size() != 2 * nd ||
      out_shape.size() != nd + 2)
    return invalid_plan(node.op + " '" + node.name + "': malformed convolution attributes");
  g->pads.assign(pads.begin(), pads.begin() + nd);
  g->K = g->Cg;
  g->N = 1;
  for (size_t d = 0; d < nd; ++d) {
    g->in_sp.push_back(b_shape[2 + d]);
    g->out_sp.push_back(out_shape[2 + d]);
    g->K *= g->ks[d];
    g->N *= out_shape[2 + d];
    g->in_size *= b_shape[2 + d];
  }
  g->batches = g->images * g->groups;
  return Status::ok();
}

Status qgemm_geometry_matmul(const PlanNode& node, const Shape& a_shape, const Shape& b_shape, const Shape& za_shape,
                             const Shape& zb_shape, QGemm* g) {
  Shape a = a_shape, b = b_shape;
  if (a.size() == 1) a.insert(a.begin(), 1);
  if (b.size() == 1) b.push_back(1);
  g->M = a[a.size() - 2];
  g->K = a.back();
  g->N = b.back();
  const Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  Status st = broadcast_shapes(ab, bb, &g->batch_dims);
  if (!st) return invalid_plan(node.op + " '" + node.name + "': " + st.message());
  g->a_bstride = batch_strides(ab, g->batch_dims, g->M * g->K);
  g->b_bstride = batch_strides(bb, g->batch_dims, g->K * g->N);
  g->batches = shape_numel(g->batch_dims);
  if (za_shape.size() >= 2) g->za_bstride = batch_strides(Shape(za_shape.begin(), za_shape.end() - 2), g->batch_dims, g->M);
  if (zb_shape.size() >= 2) g->zb_bstride = batch_strides(Shape(zb_shape.begin(), zb_shape.end() - 2), g->batch_dims, g->N);
  return Status::ok();
}

}  // namespace

bool has_qlinear_epilogue(const PlanNode& node, DType out_dtype) {
  return out_dtype == DType::kFloat32 || out_dtype == DType::kFloat16 || node.attrs.has("activation") ||
         node.attrs.get_int("residual", 0) != 0 || node.attrs.get_int(kAttrBiasColumns, 0) != 0;
}

QuantLayout quant_layout(const PlanNode& node, const Shape& x) {
  QuantLayout l;
  l.qmode = static_cast<int>(node.attrs.get_int("qmode", 0));
  l.saturate = node.attrs.get_int("saturate", 1) != 0;
  if (l.qmode == 0 || x.empty()) {
    l.qmode = 0;
    l.inner = shape_numel(x);
    return l;
  }
  const int64_t axis = node.attrs.get_int("axis", 0);
  for (int64_t d = 0; d < static_cast<int64_t>(x.size()); ++d) {
    if (d < axis) l.outer *= x[d];
    else if (d > axis) l.inner *= x[d];
  }
  l.C = x[axis];
  if (l.qmode == 2) {
    l.block = node.attrs.get_int("block_size", 1);
    l.cblocks = (l.C + l.block - 1) / l.block;
  }
  return l;
}

void QGemm::offsets(int64_t b, int64_t* a_off, int64_t* b_off, int64_t* c_off, int64_t* row_base,
                    int64_t* za_boff, int64_t* zb_boff) const {
  *c_off = b * M * N;
  *za_boff = *zb_boff = 0;
  if (conv) {
    const int64_t img = b / groups, g = b % groups;
    *a_off = g * M * K;
    *b_off = (img * C + g * Cg) * in_size;
    *row_base = g * M;
    return;
  }
  *a_off = *b_off = 0;
  *row_base = 0;
  int64_t rem = b;
  for (int64_t d = static_cast<int64_t>(batch_dims.size()) - 1; d >= 0; --d) {
    const int64_t i = rem % batch_dims[d];
    rem /= batch_dims[d];
    *a_off += i * a_bstride[d];
    *b_off += i * b_bstride[d];
    if (!za_bstride.empty()) *za_boff += i * za_bstride[d];
    if (!zb_bstride.empty()) *zb_boff += i * zb_bstride[d];
  }
}

Status qgemm_geometry(const PlanNode& node, const Shape& a_shape, const Shape& b_shape, const Shape& za_shape,
                      const Shape& zb_shape, const Shape& out_shape, QGemm* g) {
  *g = QGemm();
  if (node.op == "ConvInteger" || node.op == "QLinearConv" || node.op == "Fp8Conv") {
    // Channels-last (runtime/ops/channels_last.h): the same geometry, read from the permuted shapes.
    g->conv = true;
    g->channels_last = is_channels_last(node.attrs);
    if (g->channels_last) {
      const Shape w = channels_first_shape(a_shape), x = channels_first_shape(b_shape);
      KILN_TRY(qgemm_geometry_channels_first(node, w, x, channels_first_shape(out_shape), g));
      if (g->groups != 1) return invalid_plan(node.op + " '" + node.name + "': channels_last takes group 1");
      return Status::ok();
    }
    return qgemm_geometry_channels_first(node, a_shape, b_shape, out_shape, g);
  }
  return qgemm_geometry_matmul(node, a_shape, b_shape, za_shape, zb_shape, g);
}

}  // namespace kiln
