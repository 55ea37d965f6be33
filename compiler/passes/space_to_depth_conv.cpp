#include "compiler/passes/space_to_depth_conv.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "compiler/passes/passes.h"
#include "runtime/ops/channels_last.h"

namespace kiln {
namespace {

constexpr int64_t kRunBytes = 16;    // the tensor cores' cp.async runs (runtime/ops/channels_last.h)
constexpr int64_t kMaxGrowth = 4;    // multiplications the rewrite may add, as a factor
constexpr int64_t kOwnNodesOpset = 13;  // kiln's own nodes are not bound by the model's opset

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// [M, C, kh, kw] -> [M, s*s*C', kbh, kbw]: channel (dy*s + dx)*C' + c of block (bh, bw) holds tap
// (bh*s + dy - u_h, bw*s + dx - u_w) of channel c, zero where that tap or channel does not exist.
std::shared_ptr<HostTensor> space_to_depth_weights(const HostTensor& w, const SpaceToDepthConv& f, const int64_t u[2]) {
  const Shape& ws = w.shape();
  const int64_t M = ws[0], C = ws[1], kh = ws[2], kw = ws[3], s = f.block, Cp = f.channels;
  const int64_t kbh = f.kernel[0], kbw = f.kernel[1], Cs = s * s * Cp;
  auto out = std::make_shared<HostTensor>(w.dtype(), Shape{M, Cs, kbh, kbw});
  std::fill(out->bytes().begin(), out->bytes().end(), uint8_t{0});  // zero in every dtype here
  const size_t es = dtype_size(w.dtype());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t th = 0; th < kh; ++th)
        for (int64_t tw = 0; tw < kw; ++tw) {
          const int64_t ph = u[0] + th, pw = u[1] + tw;
          const int64_t cs = ((ph % s) * s + pw % s) * Cp + c;
          const int64_t to = ((m * Cs + cs) * kbh + ph / s) * kbw + pw / s;
          const int64_t from = ((m * C + c) * kh + th) * kw + tw;
          std::copy_n(w.data() + from * es, es, out->data() + to * es);
        }
  return out;
}

ir::Value* add_node_value(ir::Graph& g, ir::Node* n, const std::string& hint) {
  ir::Value* v = g.add_unique_value(hint);
  v->producer = n;
  n->outputs = {v};
  return v;
}

}  // namespace

bool space_to_depth_form(const ir::Node& n, int x_index, int w_index, SpaceToDepthConv* f) {
  const ir::Value* x = n.input(x_index);
  const ir::Value* w = n.input(w_index);
  const ir::Value* y = n.outputs.empty() ? nullptr : n.outputs[0];
  if (!x || !w || !y || !x->has_shape || !y->has_shape || !w->is_constant()) return false;
  if (x->shape.size() != 4 || w->shape.size() != 4 || y->shape.size() != 4) return false;
  if (n.attrs.get_int("group", 1) != 1) return false;
  const auto st = n.attrs.get_ints("strides", {1, 1}), dl = n.attrs.get_ints("dilations", {1, 1}),
             pd = n.attrs.get_ints("pads", {0, 0, 0, 0});
  if (st.size() != 2 || dl.size() != 2 || pd.size() != 4 || st[0] != st[1] || st[0] < 2 || dl[0] != 1 || dl[1] != 1)
    return false;
  const int64_t s = st[0], C = x->shape[1], es = static_cast<int64_t>(dtype_size(x->dtype));
  if (es < 1 || (C * es) % kRunBytes == 0 || x->shape[2] % s || x->shape[3] % s || w->shape[1] != C) return false;
  int64_t Cp = C;
  while ((Cp * s * s * es) % kRunBytes) ++Cp;
  f->block = s;
  f->channels = Cp;
  for (int a = 0; a < 2; ++a) {
    const int64_t k = w->shape[2 + a], p = pd[a], q = ceil_div(p, s), u = q * s - p;
    f->kernel[a] = ceil_div(u + k, s);
    f->pads[a] = q;
    // The end pad that keeps the output extent: o' = X/s + q + end - kb + 1 = o.
    f->pads[2 + a] = y->shape[2 + a] - 1 + f->kernel[a] - x->shape[2 + a] / s - q;
    if (f->pads[2 + a] < 0) return false;
  }
  const int64_t before = C * w->shape[2] * w->shape[3], after = s * s * Cp * f->kernel[0] * f->kernel[1];
  return after <= kMaxGrowth * before;
}

Status rewrite_as_space_to_depth(ir::Graph& g, ir::Node* n, int x_index, int w_index, const SpaceToDepthConv& f,
                                 int64_t opset, ir::Value** nhwc_x) {
  ir::Value* x = n->inputs[x_index];
  ir::Node* s2d = g.insert_node_before(n, "SpaceToDepth", n->name + "_space_to_depth");
  s2d->attrs.set("blocksize", f.block);
  s2d->inputs = {x};
  ir::Value* y = add_node_value(g, s2d, x->name + "_s2d_nhwc");
  // ONNX's form first (version, runtime op), then the channels-last one with the added channels.
  KILN_TRY(infer_and_fold_node(*s2d, g, std::max(opset, kOwnNodesOpset)));
  s2d->attrs.set(kAttrChannelsLast, int64_t{1});
  s2d->attrs.set("channels", f.channels);
  const Shape& xs = x->shape;
  y->shape = {xs[0], xs[2] / f.block, xs[3] / f.block, f.block * f.block * f.channels};
  *nhwc_x = y;

  const auto pd = n->attrs.get_ints("pads", {0, 0, 0, 0});
  const int64_t u[2] = {f.pads[0] * f.block - pd[0], f.pads[1] * f.block - pd[1]};
  const ir::Value* w = n->inputs[w_index];
  n->inputs[x_index] = y;
  n->inputs[w_index] = g.add_constant(w->name + "_s2d", space_to_depth_weights(*w->constant, f, u));
  n->attrs.set("kernel_shape", std::vector<int64_t>{f.kernel[0], f.kernel[1]});
  n->attrs.set("strides", std::vector<int64_t>{1, 1});
  n->attrs.set("dilations", std::vector<int64_t>{1, 1});
  n->attrs.set("pads", std::vector<int64_t>(f.pads, f.pads + 4));
  return Status::ok();
}

}  // namespace kiln
