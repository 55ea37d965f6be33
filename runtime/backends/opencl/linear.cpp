// Conv, ConvTranspose, Gemm, MatMul on OpenCL (float32, and float16 storage with float32 math). GEMMs go through cl_gemm
// (linear_gemm.cpp: kiln's tiled kernel or CLBlast by size). Conv runs as a direct kernel with
// the fused epilogue where the GEMM would be badly shaped (depthwise, few output channels per
// group, tiny reductions), else as im2col (kernels/conv.cl, into a reused scratch buffer;
// skipped for 1x1 stride-1 kernels) + GEMM. ConvTranspose runs as a gather-form direct kernel.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "runtime/backends/linear_check.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/opencl/linear_gemm.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

using linear::ClGemm;

constexpr int kScratchIm2col = 0x11;  // ClRuntime::scratch slot of the im2col columns

std::string node_what(const ClKernelArgs& a) { return "node '" + a.node.name + "'"; }

// Every kernel starts here (through read_ep): shapes that agree with the attributes.
Status check_node(const ClKernelArgs& a) {
  std::vector<const Shape*> in;
  for (size_t i = 0; i < a.inputs.size(); ++i) in.push_back(a.has_input(i) ? &a.inputs[i].shape : nullptr);
  if (a.outputs.size() != 1) return invalid_plan(node_what(a) + ": expected one output");
  return linear::check_linear_shapes(a.node.op, a.node.name, a.attrs(), in, a.outputs[0].shape);
}

Status read_ep(const ClKernelArgs& a, linear::Epilogue* ep) {
  KILN_TRY(check_node(a));
  KILN_TRY_CTX(linear::read_epilogue(a.attrs(), ep), node_what(a));
  if (ep->residual && !a.has_input(linear::kResidualInput))
    return invalid_plan(node_what(a) + ": fused residual input is missing");
  return Status::ok();
}

// FP16 nodes: every float operand is float16 (supports() checks they agree).
bool half_storage(const ClKernelArgs& a) { return a.outputs[0].dtype == DType::kFloat16; }

struct ClConv {
  int64_t N = 0, C = 0, M = 0, group = 1, in_size = 1, out_size = 1, ksize = 1;
  std::vector<int64_t> in, out, ks, st, dl, pb;  // padded to 3 spatial dims
  bool channels_last = false;                     // runtime/ops/channels_last.h
};

ClConv conv_geometry(const Attributes& attrs, const Shape& x_in, const Shape& w_in, const Shape& y_in) {
  ClConv p;
  p.channels_last = is_channels_last(attrs);
  const Shape x = p.channels_last ? channels_first_shape(x_in) : x_in;
  const Shape w = p.channels_last ? channels_first_shape(w_in) : w_in;
  const Shape y = p.channels_last ? channels_first_shape(y_in) : y_in;
  const size_t sp = x.size() - 2;
  p.N = x[0];
  p.C = x[1];
  p.M = y[1];
  p.group = attrs.get_int("group", 1);
  const std::vector<int64_t> strides = attrs.get_ints("strides", std::vector<int64_t>(sp, 1));
  const std::vector<int64_t> dil = attrs.get_ints("dilations", std::vector<int64_t>(sp, 1));
  const std::vector<int64_t> pads = attrs.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
  // Leading size-1 dims turn 1-D/2-D convolutions into the kernels' 3-D form.
  const size_t lead = 3 - sp;
  p.in.assign(lead, 1);
  p.out.assign(lead, 1);
  p.ks.assign(lead, 1);
  p.st.assign(lead, 1);
  p.dl.assign(lead, 1);
  p.pb.assign(lead, 0);
  for (size_t i = 0; i < sp; ++i) {
    p.in.push_back(x[2 + i]);
    p.out.push_back(y[2 + i]);
    p.ks.push_back(w[2 + i]);
    p.st.push_back(i < strides.size() ? strides[i] : 1);
    p.dl.push_back(i < dil.size() ? dil[i] : 1);
    p.pb.push_back(i < pads.size() ? pads[i] : 0);
  }
  for (int i = 0; i < 3; ++i) {
    p.in_size *= p.in[i];
    p.out_size *= p.out[i];
    p.ksize *= p.ks[i];
  }
  return p;
}

ClConv read_cl_conv(const ClKernelArgs& a) {
  return conv_geometry(a.attrs(), a.inputs[0].shape, a.inputs[1].shape, a.outputs[0].shape);
}

cl_int8 dims8(const std::vector<int64_t>& v) {
  cl_int8 r;
  for (int i = 0; i < 8; ++i) r.s[i] = i < static_cast<int>(v.size()) ? static_cast<cl_int>(v[i]) : 1;
  return r;
}

// ---- the tensor-core variant (FP16 storage): operand layouts from shapes alone, so the
// variants function (plan shapes) and the kernels (run-time shapes) derive them alike.

// FP16 nodes multiply halves; FP32 nodes may run on TF32 tensor cores only when the build
// allowed it (--allow-tf32 sets the attribute), as TensorRT does.
bool mma_elem_of(DType out, const Attributes& attrs, mma::Elem* e) {
  if (out == DType::kFloat16) *e = mma::Elem::kF16;
  else if (out == DType::kFloat32 && attrs.get_int(linear::kAttrAllowTf32, 0) != 0) *e = mma::Elem::kTf32;
  else return false;
  return true;
}

// The bytes of a fused residual element the float output stage can keep in __local (mma::Problem's
// residual_tile_bytes; kernels/epilogue_float.cl under MMA_RES_TILE), 0 without a residual.
int residual_tile_bytes(bool residual, DType out) { return residual ? static_cast<int>(dtype_size(out)) : 0; }

// 1x1, stride 1, no padding: the input of each image is already the GEMM's B.
bool is_pointwise(const ClConv& c) {
  bool pointwise = true;
  for (int i = 0; i < 3; ++i) pointwise &= c.ks[i] == 1 && c.st[i] == 1 && c.pb[i] == 0 && c.in[i] == c.out[i];
  return pointwise;
}

// A convolution with at least 16 output channels per group: every image in one launch.
// `gathered`: every convolution as the implicit GEMM with B gathered [n][k] (the layout wgmma
// reads); otherwise an FP16 1x1 convolution reads B [k][n] 8 positions at a time.
// Channels-last: rows are the output positions of every image (A read by mma::AMode::kConvRows),
// columns the output channels (B the OHWI weights), the output [position][channel].
bool conv_mma_problem(const ClConv& c, mma::Elem elem, mma::Problem* p, bool gathered = false) {
  const int64_t Mg = c.M / c.group, Cg = c.C / c.group;
  if (Mg < 16) return false;
  for (int i = 0; i < 3; ++i) {
    p->geo.v[i] = static_cast<cl_int>(c.in[i]);
    p->geo.v[3 + i] = static_cast<cl_int>(c.out[i]);
    p->geo.v[6 + i] = static_cast<cl_int>(c.ks[i]);
    p->geo.v[9 + i] = static_cast<cl_int>(c.st[i]);
    p->geo.v[12 + i] = static_cast<cl_int>(c.dl[i]);
    p->geo.v[15 + i] = static_cast<cl_int>(c.pb[i]);
  }
  p->geo.v[18] = static_cast<cl_int>(c.C);
  p->geo.v[19] = static_cast<cl_int>(Cg);
  p->geo.v[20] = static_cast<cl_int>(c.group);
  p->geo.v[21] = static_cast<cl_int>(c.in_size);
  p->geo.v[22] = static_cast<cl_int>(c.ksize);
  p->elem = elem;
  if (c.channels_last) {
    p->amode = mma::AMode::kConvRows;
    p->bmode = mma::BMode::kNK;
    p->M = c.N * c.out_size;
    p->N = c.M;
    p->K = c.C * c.ksize;
    p->lda = c.C;
    p->ldb = p->K;
    p->ldc = c.M;
    return mma::fits(*p);
  }
  p->M = Mg;
  p->K = Cg * c.ksize;
  p->lda = p->K;
  p->N = c.N * c.out_size;
  p->bmode = mma::BMode::kConv;
  p->batches = c.group;
  // A 1x1 convolution reads 8 positions of an image at once where they stay within the image.
  if (mma::pointwise(p->geo) && elem == mma::Elem::kF16 && !gathered) {
    p->bmode = mma::BMode::kConvPointwise;
    if (mma::fits(*p)) return true;
    p->bmode = mma::BMode::kConv;
  }
  return mma::fits(*p);
}

// B of a GEMM: rows of K (transB) copied as vectors, N-contiguous rows as vectors where they
// are 16-byte aligned, else gathered.
void gemm_b_mode(bool tb, mma::Problem* p) {
  if (tb) {
    p->bmode = mma::BMode::kNK;
    return;
  }
  p->bmode = mma::BMode::kKNVector;
  if (!mma::fits(*p)) p->bmode = mma::BMode::kKNGather;
}

// Operands of a (possibly batched) GEMM as cl_gemm receives them: A not transposed, no offsets.
bool gemm_mma_problem(const linear::ClGemm& g, mma::Elem elem, bool b_packed, mma::Problem* p) {
  if (g.ta || g.a_off || g.b_off || g.c_off || (b_packed && (g.tb || !g.batch.empty()))) return false;
  p->elem = elem;
  p->M = g.M;
  p->N = g.N;
  p->K = g.K;
  p->lda = g.lda;
  p->ldb = g.ldb;
  p->batch_dims = g.batch;
  p->a_bstride = g.a_bstr;
  p->b_bstride = g.b_bstr;
  p->batches = 1;
  for (int64_t d : g.batch) p->batches *= d;
  p->c_bstride = g.c_bstride;
  p->ldc = g.ldc;
  if (b_packed) p->ldb = packed_row_elems(g.K, elem == mma::Elem::kF16 ? 2 : 4);
  gemm_b_mode(g.tb || b_packed, p);
  return mma::fits(*p);
}

Status conv_direct(ClKernelArgs& a, const ClConv& p, const linear::Epilogue& ep, bool transpose) {
  const char* fn = transpose ? "conv_transpose_direct" : "conv_direct";
  cl_kernel k;
  const std::string options =
      std::string(linear::linear_kernel_options(half_storage(a))) + (p.channels_last ? " -DKILN_NHWC" : "");
  KILN_TRY(a.cl.kernel(linear::linear_kernel_source("conv"), options, fn, &k));
  const bool has_bias = a.has_input(2);
  const cl_mem y = a.outputs[0].mem;
  ClLaunch l(a.cl, k, fn);
  l.mem(a.inputs[0].mem).mem(a.inputs[1].mem).arg(cl_int(has_bias)).mem(has_bias ? a.inputs[2].mem : y).mem(y);
  l.arg(cl_int(p.C)).arg(cl_int(p.M)).arg(cl_int(p.group));
  l.arg(dims8(p.in)).arg(dims8(p.out)).arg(dims8(p.ks)).arg(dims8(p.st)).arg(dims8(p.dl)).arg(dims8(p.pb));
  l.mem(ep.residual ? a.inputs[3].mem : y).arg(cl_int(ep.residual)).arg(cl_int(static_cast<int>(ep.act)));
  l.arg(ep.act_alpha).arg(ep.act_beta);
  const size_t global[3] = {static_cast<size_t>(p.out_size), static_cast<size_t>(p.M), static_cast<size_t>(p.N)};
  return l.run(3, global, nullptr);
}

// Channels-last (runtime/ops/channels_last.h): the tensor-core variant where the node chose it,
// else the direct kernel (plans built for NVIDIA stay portable; other devices gain nothing).
Status conv_channels_last(ClKernelArgs& a, const ClConv& p, const linear::Epilogue& ep) {
  mma::Tile tile;
  mma::Problem mp;
  mma::Elem elem;
  if (!mma::tile_of(a.variant(), &tile) || !mma_elem_of(a.outputs[0].dtype, a.attrs(), &elem) ||
      !conv_mma_problem(p, elem, &mp))
    return conv_direct(a, p, ep, false);
  ClGemm g;
  g.ep = ep;
  g.half = half_storage(a);
  g.C = a.outputs[0].mem;
  if (a.has_input(2)) {
    g.bias = a.inputs[2].mem;
    g.bias_cs = 1;  // per output channel: per column
  }
  if (ep.residual) g.residual = a.inputs[3].mem;
  mp.A = a.inputs[0].mem;
  mp.B = a.inputs[1].mem;
  mp.residual_tile_bytes = residual_tile_bytes(ep.residual != linear::kResidualNone, a.outputs[0].dtype);
  return linear::mma_linear(a.cl, g, mp, tile, node_what(a));
}

Status conv_cl(ClKernelArgs& a) {
  linear::Epilogue ep;
  KILN_TRY(read_ep(a, &ep));
  const ClConv p = read_cl_conv(a);
  const int64_t Cg = p.C / p.group, Mg = p.M / p.group, Kg = Cg * p.ksize;
  // A GEMM with few rows or a short reduction wastes most of each 64x64 tile: the direct
  // kernel (one output per work-item, fused epilogue) is faster there and needs no scratch.
  if (Mg < 16 || Kg < 16) return conv_direct(a, p, ep, false);
  if (p.channels_last) return conv_channels_last(a, p, ep);

  const bool pointwise = is_pointwise(p);
  ClGemm g;
  g.M = Mg;
  g.N = p.out_size;
  g.K = Kg;
  g.A = a.inputs[1].mem;
  g.lda = Kg;
  g.ldb = p.out_size;
  g.C = a.outputs[0].mem;
  g.ldc = p.out_size;
  g.c_bstride = Mg * p.out_size;
  g.ep = ep;
  g.half = half_storage(a);
  g.path = linear::gemm_path_of(a.variant());
  g.tile = linear::gemm_tile_of(a.variant());
  if (a.has_input(2)) {
    g.bias = a.inputs[2].mem;
    g.bias_rs = 1;
    g.bias_bstride = Mg;
    g.bias_bmod = p.group;
  }
  if (ep.residual) g.residual = a.inputs[3].mem;
  mma::Tile tile;
  mma::Problem mp;
  mma::Elem elem;
  if (mma::tile_of(a.variant(), &tile) && mma_elem_of(a.outputs[0].dtype, a.attrs(), &elem) &&
      conv_mma_problem(p, elem, &mp, mma::is_wgmma(a.variant()))) {
    mp.A = a.inputs[1].mem;
    mp.B = a.inputs[0].mem;
    return linear::mma_linear(a.cl, g, mp, tile, node_what(a));
  }
  if (pointwise) {
    // The input already is the [C][positions] column matrix: every image and group in one launch.
    g.B = a.inputs[0].mem;
    g.batch = {p.N, p.group};
    g.a_bstr = {0, Mg * Kg};
    g.b_bstr = {p.C * p.in_size, Cg * p.in_size};
    return linear::cl_gemm(a.cl, g, node_what(a));
  }
  g.batch = {p.group};
  g.a_bstr = {Mg * Kg};
  g.b_bstr = {Kg * p.out_size};
  // A widened FP16 GEMM reads float columns: im2col writes them directly.
  g.b_float = linear::gemm_widens(a.cl, g);
  cl_mem col;
  const size_t col_elems = static_cast<size_t>(p.C * p.ksize * p.out_size);
  const size_t col_size = g.b_float ? sizeof(float) : dtype_size(a.outputs[0].dtype);
  KILN_TRY(a.cl.scratch(kScratchIm2col, col_elems * col_size, &col, "im2col of " + node_what(a)));
  g.B = col;
  for (int64_t n = 0; n < p.N; ++n) {
    // Fetched per launch: a recorded launch keeps its kernel object's arguments.
    cl_kernel k;
    KILN_TRY(a.cl.kernel(linear::linear_kernel_source("conv"),
                         g.b_float ? "-DKILN_HALF -DKILN_COL_FLOAT" : linear::linear_kernel_options(g.half, false),
                         "im2col", &k));
    ClLaunch l(a.cl, k, "im2col");
    l.mem(a.inputs[0].mem).arg(cl_int(n * p.C * p.in_size)).mem(col);
    l.arg(dims8(p.in)).arg(dims8(p.out)).arg(dims8(p.ks)).arg(dims8(p.st)).arg(dims8(p.dl)).arg(dims8(p.pb));
    const size_t global[2] = {static_cast<size_t>(p.out_size), static_cast<size_t>(p.C * p.ksize)};
    KILN_TRY(l.run(2, global, nullptr));
    g.c_off = n * p.M * p.out_size;
    g.res_off = g.c_off;
    KILN_TRY(linear::cl_gemm(a.cl, g, node_what(a)));
  }
  return Status::ok();
}

Status conv_transpose_cl(ClKernelArgs& a) {
  linear::Epilogue ep;
  KILN_TRY(read_ep(a, &ep));
  return conv_direct(a, read_cl_conv(a), ep, true);
}

void bias_strides(const Shape& s, int64_t* rs, int64_t* cs) {
  const int64_t cn = s.empty() ? 1 : s.back();
  const int64_t cm = s.size() >= 2 ? s[s.size() - 2] : 1;
  *cs = cn == 1 ? 0 : 1;
  *rs = cm == 1 ? 0 : cn;
}

// The layout of a Gemm (dims, transposes, bias strides; no buffers) from its shapes.
ClGemm gemm_layout(const Attributes& attrs, const Shape& a, const Shape& b, const Shape* bias, const Shape& out) {
  ClGemm g;
  g.ta = attrs.get_int("transA", 0) != 0;
  g.tb = attrs.get_int("transB", 0) != 0;
  g.alpha = attrs.get_float("alpha", 1.f);
  g.beta = attrs.get_float("beta", 1.f);
  g.M = out[0];
  g.N = out[1];
  g.K = g.ta ? a[0] : a[1];
  g.lda = a[1];
  g.ldb = b[1];
  g.ldc = g.N;
  if (bias && g.beta != 0.f) bias_strides(*bias, &g.bias_rs, &g.bias_cs);
  return g;
}

// The layout of a MatMul: one tall GEMM when B is shared (weights), else batched with
// broadcast strides.
Status matmul_layout(const std::string& what, Shape as, Shape bs, const Shape* bias, ClGemm* out) {
  ClGemm& g = *out;
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  g.M = as[as.size() - 2];
  g.K = as.back();
  g.N = bs.back();
  const Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  Shape batch;
  KILN_TRY(broadcast_shapes(abatch, bbatch, &batch));
  g.lda = g.K;
  g.ldb = g.N;
  g.ldc = g.N;
  g.c_bstride = g.M * g.N;
  if (bias) bias_strides(*bias, &g.bias_rs, &g.bias_cs);
  if (shape_numel(bbatch) == 1 && shape_numel(abatch) == shape_numel(batch) && g.bias_rs == 0) {
    // Shared B (weights): one tall GEMM over every batch's rows.
    g.M *= shape_numel(batch);
    return Status::ok();
  }
  const std::vector<int64_t> ast = broadcast_strides(abatch, batch), bst = broadcast_strides(bbatch, batch);
  g.batch = batch;
  for (size_t d = 0; d < batch.size(); ++d) {
    g.a_bstr.push_back(ast[d] * g.M * g.K);
    g.b_bstr.push_back(bst[d] * g.K * g.N);
  }
  if (g.batch.size() > 8) return unsupported(what + ": more than 8 batch dims");
  return Status::ok();
}

// Binds a Gemm/MatMul's buffers and the node's variant to `g` (its layout and epilogue set), then
// runs it through the mma variant where the node chose it and it applies, else cl_gemm.
Status run_gemm(ClKernelArgs& a, ClGemm& g, bool use_bias) {
  g.half = half_storage(a);
  g.path = linear::gemm_path_of(a.variant());
  g.tile = linear::gemm_tile_of(a.variant());
  g.A = a.inputs[0].mem;
  g.B = a.inputs[1].mem;
  g.C = a.outputs[0].mem;
  if (use_bias) g.bias = a.inputs[2].mem;
  if (g.ep.residual) g.residual = a.inputs[3].mem;
  mma::Tile tile;
  mma::Problem mp;
  mma::Elem elem;
  if (mma::tile_of(a.variant(), &tile) && mma_elem_of(a.outputs[0].dtype, a.attrs(), &elem) &&
      gemm_mma_problem(g, elem, mma::reads_packed(a.variant(), 1), &mp)) {
    mp.A = g.A;
    mp.B = g.B;
    mp.residual_tile_bytes = residual_tile_bytes(g.residual != nullptr, a.outputs[0].dtype);
    return linear::mma_linear(a.cl, g, mp, tile, node_what(a));
  }
  return linear::cl_gemm(a.cl, g, node_what(a));
}

Status gemm_cl(ClKernelArgs& a) {
  const bool has_bias = a.has_input(2);
  ClGemm g = gemm_layout(a.attrs(), a.inputs[0].shape, a.inputs[1].shape, has_bias ? &a.inputs[2].shape : nullptr,
                         a.outputs[0].shape);
  KILN_TRY(read_ep(a, &g.ep));
  return run_gemm(a, g, has_bias && g.beta != 0.f);
}

Status matmul_cl(ClKernelArgs& a) {
  ClGemm g;
  KILN_TRY(read_ep(a, &g.ep));
  const bool has_bias = a.has_input(2);
  KILN_TRY(matmul_layout(node_what(a), a.inputs[0].shape, a.inputs[1].shape, has_bias ? &a.inputs[2].shape : nullptr, &g));
  return run_gemm(a, g, has_bias);
}

// Plans index with 32-bit ints in the kernels; larger tensors and >3 spatial dims stay on CPU.
// Every operand has the output's dtype: float32, or float16 (FP16 nodes, half storage).
bool fits_int32(const PlanNode& n, const Plan& plan) {
  if (n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0 || n.outputs.size() != 1) return false;
  const DType dt = plan.tensors[n.outputs[0]].dtype;
  if (dt != DType::kFloat32 && dt != DType::kFloat16) return false;
  for (int32_t t : n.inputs)
    if (t >= 0 && (plan.tensors[t].dtype != dt || shape_numel(plan.tensors[t].shape) >= (1LL << 31)))
      return false;
  for (int32_t t : n.outputs)
    if (shape_numel(plan.tensors[t].shape) >= (1LL << 31)) return false;
  return true;
}

bool supports_conv(const PlanNode& n, const Plan& plan, const DeviceCaps&) {
  if (!fits_int32(n, plan)) return false;
  const size_t rank = plan.tensors[n.inputs[0]].shape.size();
  if (rank < 3 || rank > 5) return false;
  // im2col columns of one image must fit 32-bit indexing too.
  const Shape& w = plan.tensors[n.inputs[1]].shape;
  const Shape& y = plan.tensors[n.outputs[0]].shape;
  int64_t cols = plan.tensors[n.inputs[0]].shape[1];
  for (size_t i = 2; i < rank; ++i)
    if (__builtin_mul_overflow(cols, w[i], &cols) || __builtin_mul_overflow(cols, y[i], &cols)) return false;
  return cols < (1LL << 31);
}

bool supports_matmul(const PlanNode& n, const Plan& plan, const DeviceCaps&) {
  if (!fits_int32(n, plan)) return false;
  return plan.tensors[n.outputs[0]].shape.size() <= 10;
}

bool supports_gemm(const PlanNode& n, const Plan& plan, const DeviceCaps&) { return fits_int32(n, plan); }

// The mma variant for FP16 nodes (half storage: tensor cores multiply halves, accumulate in
// float32) and for FP32 nodes built with --allow-tf32, first where the device has it; then
// kiln's tiled kernel and CLBlast, ordered by size.
std::vector<KernelChoice> linear_variants(const PlanNode& n, const Plan& plan, const DeviceCaps& caps) {
  mma::Elem elem = mma::Elem::kF16;
  const bool tensor_cores = mma_elem_of(plan.tensors[n.outputs[0]].dtype, n.attrs, &elem) && mma::available(caps, elem);
  auto shape = [&](size_t i) { return plan.tensors[n.inputs[i]].shape; };
  const bool has_bias = n.inputs.size() > 2 && n.inputs[2] >= 0;
  const Shape bias = has_bias ? shape(2) : Shape{};
  const Shape& out = plan.tensors[n.outputs[0]].shape;
  std::vector<KernelChoice> out_choices;
  ClGemm g;
  int64_t macs = 0, gm = 0, gn = 0;
  if (n.op == "Conv") {
    const ClConv c = conv_geometry(n.attrs, shape(0), shape(1), out);
    const int64_t Mg = c.M / c.group, Kg = c.C / c.group * c.ksize;
    if (Mg < 16 || Kg < 16) return {};  // the direct kernel, no GEMM to choose for
    mma::Problem p;
    // Channels-last: the tensor-core variant or the direct kernel (conv_channels_last). The
    // problems here leave residual_tile_bytes 0, so the estimate alone picks (a launch still keeps
    // the residual in __local where the chosen tile has room): preferring the tiles that keep it,
    // as the 8-bit stage does, lost on ResNet-50's layer2 and 3 (perf/results/2026-12-06-stem.md).
    // KILN_MMA_FLOAT_RESIDUAL_FIRST=1 prefers them, for measuring.
    if (c.channels_last) {
      if (!tensor_cores || !conv_mma_problem(c, elem, &p)) return out_choices;
      static const bool residual_first = [] {
        const char* e = std::getenv("KILN_MMA_FLOAT_RESIDUAL_FIRST");
        return e && std::string(e) == "1";
      }();
      const bool residual = n.inputs.size() > linear::kResidualInput && n.inputs[linear::kResidualInput] >= 0;
      if (residual_first) p.residual_tile_bytes = residual_tile_bytes(residual, plan.tensors[n.outputs[0]].dtype);
      return mma::choices(p, caps);
    }
    if (tensor_cores && conv_mma_problem(c, elem, &p)) {
      out_choices = mma::choices(p, caps);
      // FP16 1x1: wgmma needs B gathered [n][k]; offered last (untimed against mma.sync's
      // 8-position copies), for --tune.
      mma::Problem gathered;
      if (p.bmode == mma::BMode::kConvPointwise && conv_mma_problem(c, elem, &gathered, true)) {
        const std::vector<KernelChoice> wg = mma::wgmma_choices(gathered, caps);
        out_choices.insert(out_choices.end(), wg.begin(), wg.end());
      }
    }
    const bool pointwise = is_pointwise(c);
    // The GEMM cl_gemm sees: one per image (im2col), or every image at once (pointwise).
    macs = Mg * c.out_size * Kg * c.group * (pointwise ? c.N : 1);
    gm = Mg;
    gn = c.out_size;
  } else {
    if (n.op == "Gemm") g = gemm_layout(n.attrs, shape(0), shape(1), has_bias ? &bias : nullptr, out);
    else if (n.op != "MatMul" || !matmul_layout(n.name, shape(0), shape(1), has_bias ? &bias : nullptr, &g)) return {};
    macs = g.M * g.N * g.K;
    for (int64_t d : g.batch) macs *= d;
    gm = g.M;
    gn = g.N;
    mma::Problem p, packed;
    if (tensor_cores && gemm_mma_problem(g, elem, false, &p)) {
      out_choices = mma::choices(p, caps);
      const bool latency_bound = !out_choices.empty() && mma::latency_bound(p, caps);
      const KernelChoice plain_first = latency_bound ? out_choices.front() : KernelChoice{};
      // A constant B that is not K-contiguous already: packed choices too (f16 reads [K][N] fast
      // as it is, through ldmatrix.trans, so only TF32 gains; but wgmma reads B K-major only).
      if (mma::packable(n, plan, 1) && gemm_mma_problem(g, elem, true, &packed)) {
        if (elem == mma::Elem::kTf32) {
          out_choices = mma::with_packed_input(out_choices, mma::choices(packed, caps), 1);
        } else {
          const std::vector<KernelChoice> wg = mma::with_packed_input({}, mma::wgmma_choices(packed, caps), 1);
          out_choices.insert(mma::wgmma_first(caps) ? out_choices.begin() : out_choices.end(), wg.begin(), wg.end());
          // Batch 1: the latency model's pick (the plain problem's first) before the wgmma ones.
          if (latency_bound) {
            out_choices.erase(std::find(out_choices.begin(), out_choices.end(), plain_first));
            out_choices.insert(out_choices.begin(), plain_first);
          }
        }
      }
    }
  }
  for (const KernelChoice& c : linear::gemm_path_choices(gm, gn, macs, caps)) out_choices.push_back(c);
  return out_choices;
}

}  // namespace

void register_linear_opencl(ClRegistry& r) {
  r.add("Conv", conv_cl, supports_conv, linear_variants);
  r.add("ConvTranspose", conv_transpose_cl, supports_conv);
  r.add("Gemm", gemm_cl, supports_gemm, linear_variants);
  r.add("MatMul", matmul_cl, supports_matmul, linear_variants);
}

}  // namespace kiln
