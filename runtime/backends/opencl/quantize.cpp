// OpenCL kernels of the quantize family (kernels/quantize.cl, kernels/qgemm.cl; float8
// conversions from kernels/float8.cl). Same canonical node forms and the same arithmetic as the
// CPU reference (runtime/backends/cpu/quantize.cpp), so results match it exactly.
#include <algorithm>
#include <string>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/backends/opencl/qgemm_geometry.h"
#include "runtime/backends/opencl/quantize_cl.h"
#include "runtime/backends/quantize_geometry.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/linear_epilogue.h"

namespace kiln {
namespace {

// Exact float32 division (x / scale, the requantize multiplier), as on the CPU; OpenCL's
// default division may be off by ulps.
const char* kExactDiv = "-cl-fp32-correctly-rounded-divide-sqrt";

std::string where(const ClKernelArgs& a) { return a.node.op + " '" + a.node.name + "'"; }

// OpenCL C type, integer range and kind (0 int, 1 e4m3fn, 2 e5m2) of a quantized dtype.
bool quant_type(DType t, std::string* cl_type, int* kind, int64_t* lo, int64_t* hi) {
  *kind = 0;
  switch (t) {
    case DType::kUInt8: *cl_type = "uchar"; *lo = 0; *hi = 255; return true;
    case DType::kInt8: *cl_type = "char"; *lo = -128; *hi = 127; return true;
    case DType::kUInt16: *cl_type = "ushort"; *lo = 0; *hi = 65535; return true;
    case DType::kInt16: *cl_type = "short"; *lo = -32768; *hi = 32767; return true;
    case DType::kInt32: *cl_type = "int"; *lo = INT32_MIN; *hi = INT32_MAX; return true;
    case DType::kFloat8E4M3FN: *cl_type = "uchar"; *kind = 1; *lo = *hi = 0; return true;
    case DType::kFloat8E5M2: *cl_type = "uchar"; *kind = 2; *lo = *hi = 0; return true;
    default: return false;
  }
}

// `half_x`: QuantizeLinear's x is float16.
Status quant_kernel(ClKernelArgs& a, DType qt, const char* fn, cl_kernel* k, bool half_x = false) {
  std::string options;
  if (!quantcl::options(a.cl, qt, &options))
    return unsupported(where(a) + ": dtype " + dtype_name(qt) + " has no OpenCL kernel");
  static const std::string source = std::string(embedded_kernel_source("float8")) + "\n" +
                                    embedded_kernel_source("float_storage") + "\n" +
                                    embedded_kernel_source("float_storage_x8") + "\n" + embedded_kernel_source("rint_div") +
                                    "\n" + embedded_kernel_source("quantize_value") + "\n" +
                                    embedded_kernel_source("quantize");
  return a.cl.kernel(source, options + (half_x ? " -DKILN_HALF" : ""), fn, k);
}

}  // namespace

namespace quantcl {

bool options(const ClRuntime& cl, DType qt, std::string* out) {
  std::string type;
  int kind;
  int64_t lo, hi;
  if (!quant_type(qt, &type, &kind, &lo, &hi)) return false;
  *out = std::string(kExactDiv) + " -D QT=" + type + " -D QKIND=" + std::to_string(kind) + " -D QLO=" +
         std::to_string(lo) + " -D QHI=" + std::to_string(hi) +
         (kind != 0 && mma::uses_ptx(cl.info().caps, mma::Elem::kFp8) ? " -D KILN_PTX_FP8=1" : "");
  return true;
}

Status per_tensor(ClKernelArgs& a, cl_mem x, bool half_x, int64_t n, cl_mem scale, cl_mem zp, cl_mem y, DType qt,
                  bool saturate) {
  if (dtype_size(qt) != 1) return internal_error(where(a) + ": per-tensor quantization to " + dtype_name(qt));
  cl_kernel k;
  KILN_TRY(quant_kernel(a, qt, "quantize_linear_x8", &k, half_x));
  return ClLaunch(a.cl, k, where(a))
      .mem(x).mem(scale).mem(zp).arg(static_cast<cl_int>(zp != nullptr)).mem(y).arg(static_cast<cl_int>(n))
      .arg(static_cast<cl_int>(saturate))
      .run1d(static_cast<size_t>((n + 7) / 8), 256);
}

Status quantized_copy(ClKernelArgs& a, const QuantizedOutput& q) {
  const ClTensor& y = a.outputs[0];
  return per_tensor(a, y.mem, y.dtype == DType::kFloat16, y.numel(), a.inputs[q.scale_input].mem,
                    a.inputs[q.zero_point_input].mem, a.outputs[q.output].mem, a.outputs[q.output].dtype, q.saturate);
}

bool copy_supported(const PlanNode& n, const Plan& p) {
  QuantizedOutput q;
  return !quantized_output(n, &q) || quantized_output_dtype(p.tensors[n.outputs[q.output]].dtype);
}

}  // namespace quantcl

namespace {

Status quant_dequant_cl(ClKernelArgs& a, bool quantize) {
  const QuantLayout l = quant_layout(a.node, a.inputs[0].shape);
  const DType qt = quantize ? a.outputs[0].dtype : a.inputs[0].dtype;
  if (quantize && l.qmode == 0 && dtype_size(qt) == 1)
    return quantcl::per_tensor(a, a.inputs[0].mem, a.inputs[0].dtype == DType::kFloat16, a.inputs[0].numel(),
                               a.inputs[1].mem, a.has_input(2) ? a.inputs[2].mem : nullptr, a.outputs[0].mem, qt,
                               l.saturate);
  cl_kernel k;
  KILN_TRY(quant_kernel(a, qt, quantize ? "quantize_linear" : "dequantize_linear", &k,
                        quantize && a.inputs[0].dtype == DType::kFloat16));
  const cl_int n = static_cast<cl_int>(a.inputs[0].numel());
  ClLaunch launch(a.cl, k, where(a));
  launch.mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(a.has_input(2) ? a.inputs[2].mem : nullptr)
      .arg(static_cast<cl_int>(a.has_input(2))).mem(a.outputs[0].mem).arg(n)
      .arg(static_cast<cl_int>(l.qmode)).arg(static_cast<cl_int>(l.C)).arg(static_cast<cl_int>(l.inner))
      .arg(static_cast<cl_int>(l.block)).arg(static_cast<cl_int>(l.cblocks));
  if (quantize) launch.arg(static_cast<cl_int>(l.saturate));
  return launch.run1d(static_cast<size_t>(n), 256);
}

Status quantize_linear_cl(ClKernelArgs& a) { return quant_dequant_cl(a, true); }
Status dequantize_linear_cl(ClKernelArgs& a) { return quant_dequant_cl(a, false); }

bool quant_supports(const PlanNode& node, const Plan& plan, const DeviceCaps&) {
  const bool q = node.op == "QuantizeLinear";
  const PlanTensor& t = plan.tensors[q ? node.outputs[0] : node.inputs[0]];
  if (q && plan.tensors[node.inputs[0]].dtype != DType::kFloat32 && plan.tensors[node.inputs[0]].dtype != DType::kFloat16)
    return false;
  std::string type;
  int kind;
  int64_t lo, hi;
  return quant_type(t.dtype, &type, &kind, &lo, &hi) && shape_numel(t.shape) < INT32_MAX;
}

// ---- DynamicQuantizeLinear ----

constexpr int kDqlGroup = 256;
// Up to this many elements one work-group does the whole op; above, a multi-group reduction.
constexpr int64_t kDqlSingleMax = 1 << 16;

Status dynamic_quantize_linear_cl(ClKernelArgs& a) {
  const int64_t n64 = a.inputs[0].numel();
  const cl_int n = static_cast<cl_int>(n64);
  cl_mem x = a.inputs[0].mem, y = a.outputs[0].mem, scale = a.outputs[1].mem, zp = a.outputs[2].mem;
  const std::string w = where(a);
  auto kernel = [&](const char* fn, cl_kernel* k) { return quant_kernel(a, DType::kUInt8, fn, k); };
  cl_kernel k;
  if (n64 <= kDqlSingleMax) {
    KILN_TRY(kernel("dql_single", &k));
    const size_t g = kDqlGroup, l = kDqlGroup;
    return ClLaunch(a.cl, k, w).mem(x).arg(n).mem(y).mem(scale).mem(zp).run(1, &g, &l);
  }
  // The min/max keys live in y's first 8 bytes (n > 8 here) until dql_apply overwrites them:
  // no scratch buffer to allocate at run time.
  KILN_TRY(kernel("dql_init", &k));
  KILN_TRY(ClLaunch(a.cl, k, w).mem(y).run1d(1));
  KILN_TRY(kernel("dql_reduce", &k));
  const size_t groups = std::min<int64_t>(256, (n64 + kDqlGroup * 16 - 1) / (kDqlGroup * 16));
  const size_t g = groups * kDqlGroup, l = kDqlGroup;
  KILN_TRY(ClLaunch(a.cl, k, w).mem(x).arg(n).mem(y).run(1, &g, &l));
  KILN_TRY(kernel("dql_finalize", &k));
  KILN_TRY(ClLaunch(a.cl, k, w).mem(y).mem(scale).mem(zp).run1d(1));
  KILN_TRY(kernel("dql_apply", &k));
  return ClLaunch(a.cl, k, w).mem(x).arg(n).mem(scale).mem(zp).mem(y).run1d(static_cast<size_t>(n), 256);
}

bool dql_supports(const PlanNode& node, const Plan& plan, const DeviceCaps&) {
  return shape_numel(plan.tensors[node.inputs[0]].shape) < INT32_MAX;
}

// ---- integer GEMM family ----

bool all_zero(const std::vector<int64_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int64_t s) { return s == 0; });
}

// The output stage (rint_div.cl and epilogue_qgemm.cl, after kiln_act for the fused epilogue):
// what both the portable kernel and the mma variant end with. Built once: ClRuntime::kernel looks
// kernels up by the source's content on every launch.
const std::string& qgemm_prelude(bool epilogue) {
  static const std::string plain = std::string(embedded_kernel_source("rint_div")) + embedded_kernel_source("epilogue_qgemm");
  static const std::string with_act = std::string(embedded_kernel_source("linear_activation")) + plain;
  return epilogue ? with_act : plain;
}

// The portable kernel: qgemm.cl after its index math (qgemm_geometry.cl) and the output stage.
const std::string& qgemm_source(bool epilogue) {
  static const std::string plain =
      std::string(embedded_kernel_source("qgemm_geometry")) + qgemm_prelude(false) + embedded_kernel_source("qgemm");
  static const std::string with_act =
      std::string(embedded_kernel_source("qgemm_geometry")) + qgemm_prelude(true) + embedded_kernel_source("qgemm");
  return epilogue ? with_act : plain;
}

// The tensor-core problem of an integer GEMM: 8-bit operands without zero points (absent, or
// constant zeros: checked by qgemm_variants). Convolutions run every image in one launch.
bool qgemm_mma_problem(const QGemm& g, DType a_type, DType b_type, bool b_packed, mma::Problem* p) {
  auto kind = [](DType t) { return t == DType::kUInt8 ? mma::kU8 : mma::kS8; };
  for (DType t : {a_type, b_type})
    if (t != DType::kInt8 && t != DType::kUInt8) return false;
  return mma::quantized_problem(g, mma::Elem::kInt8, kind(a_type), kind(b_type), b_packed, p);
}

struct QEpilogueArgs {
  linear::Epilogue ep;
  bool bias_cols = false;
  cl_mem res = nullptr;
  const char* res_type = "float";
  cl_mem res_scale = nullptr, res_zp = nullptr;  // int8/uint8 residual only
};

// The fused-epilogue inputs and attributes (quantize_geometry.h), checked like the CPU kernel's.
Status read_qlinear_epilogue_cl(const ClKernelArgs& a, QEpilogueArgs* e) {
  const std::string w = where(a);
  e->bias_cols = a.node.attrs.get_int(kAttrBiasColumns, 0) != 0;
  KILN_TRY_CTX(linear::read_epilogue(a.node.attrs, &e->ep), w);
  if (e->ep.residual == linear::kResidualNone) return Status::ok();
  if (!a.has_input(kQResidualInput)) return invalid_plan(w + ": fused residual input is missing");
  const ClTensor& r = a.inputs[kQResidualInput];
  if (r.shape != a.outputs[0].shape) return invalid_plan(w + ": residual shape differs from the output's");
  e->res = r.mem;
  if (r.dtype == DType::kInt8 || r.dtype == DType::kUInt8) {
    e->res_type = r.dtype == DType::kInt8 ? "char" : "uchar";
    if (!a.has_input(kQResidualScaleInput) || !a.has_input(kQResidualZeroPointInput))
      return invalid_plan(w + ": quantized residual without its scale and zero point");
    const ClTensor& s = a.inputs[kQResidualScaleInput];
    const ClTensor& z = a.inputs[kQResidualZeroPointInput];
    if (s.dtype != DType::kFloat32 || shape_numel(s.shape) != 1 || z.dtype != r.dtype || shape_numel(z.shape) != 1)
      return invalid_plan(w + ": the residual's scale and zero point must be a float32 and a " + dtype_name(r.dtype) + " scalar");
    e->res_scale = s.mem;
    e->res_zp = z.mem;
  } else if (r.dtype == DType::kFloat16) {
    e->res_type = "half";
  } else if (r.dtype != DType::kFloat32) {
    return invalid_plan(w + ": residual must be float32, float16, int8 or uint8");
  }
  return Status::ok();
}

// The bytes of a residual element of type `t` the 8-bit output stage can keep in __local
// (kernels/epilogue_qgemm.cl under MMA_RES_TILE: 8-bit and half residuals), 0 without a residual.
int residual_tile_bytes(const PlanNode& node, DType t) {
  if (node.attrs.get_int(linear::kAttrResidual, linear::kResidualNone) == linear::kResidualNone) return 0;
  return t == DType::kInt8 || t == DType::kUInt8 ? 1 : t == DType::kFloat16 ? 2 : 0;
}

Status qgemm_cl(ClKernelArgs& a) {
  const QGemmInputs in = qgemm_inputs(a.node.op);
  auto opt = [&](int i) { return i >= 0 && a.has_input(i); };
  auto shape = [&](int i) { return opt(i) ? a.inputs[i].shape : Shape{}; };
  QGemm g;
  KILN_TRY(qgemm_geometry(a.node, a.inputs[in.a].shape, a.inputs[in.b].shape, shape(in.za), shape(in.zb),
                          a.outputs[0].shape, &g));
  const bool requant = in.sa >= 0;
  const DType out = a.outputs[0].dtype;
  const bool epi = requant && has_qlinear_epilogue(a.node, out);
  std::string options = std::string(kExactDiv) + " -D TA=" + (a.inputs[in.a].dtype == DType::kUInt8 ? "uchar" : "char") +
                        " -D TB=" + (a.inputs[in.b].dtype == DType::kUInt8 ? "uchar" : "char") +
                        " -D CONV=" + (g.conv ? "1" : "0") + " -D NHWC=" + (g.channels_last ? "1" : "0") +
                        " -D REQUANT=" + (requant ? "1" : "0") +
                        " -D EPI=" + (epi ? "1" : "0");
  const bool yzp_u8 = requant && a.inputs[in.yzp].dtype == DType::kUInt8;
  options += yzp_u8 ? " -D YZP_T=uchar -D QLO=0 -D QHI=255" : " -D YZP_T=char -D QLO=-128 -D QHI=127";
  if (!requant) options += " -D OUT_T=int";
  else if (out == DType::kFloat32 || out == DType::kFloat16)
    options += std::string(" -D OUT_T=float -D OUT_FLOAT=1 -D OUT_HALF=") + (out == DType::kFloat16 ? "1" : "0");
  else options += std::string(" -D OUT_FLOAT=0 -D OUT_T=") + (out == DType::kUInt8 ? "uchar" : "char");
  QEpilogueArgs ep;
  if (epi) {
    KILN_TRY(read_qlinear_epilogue_cl(a, &ep));
    options += std::string(" -D RES_T=") + ep.res_type + " -D RES_Q=" + (ep.res_scale ? "1" : "0") +
               " -D RES_HALF=" + (std::string(ep.res_type) == "half" ? "1" : "0");
  }
  auto mode = [&](int i) -> cl_int { return !opt(i) ? 0 : is_vector_param(a.inputs[i].shape) ? 2 : 1; };
  auto mem = [&](int i) -> cl_mem { return opt(i) ? a.inputs[i].mem : nullptr; };
  mma::Tile tile;
  mma::Problem p;
  const bool use_mma = mma::tile_of(a.variant(), &tile) &&
                       qgemm_mma_problem(g, a.inputs[in.a].dtype, a.inputs[in.b].dtype,
                                         mma::reads_packed(a.variant(), in.b), &p);
  p.residual_tile_bytes = residual_tile_bytes(a.node, a.has_input(kQResidualInput) ? a.inputs[kQResidualInput].dtype
                                                                                     : DType::kUndefined);
  // The tensor cores' rows and columns of a channels-last convolution are the QGemm's columns and
  // rows: the scales trade places (their product is the same float) and the bias is per column.
  const bool swap = use_mma && mma::operands_swapped(p);
  const int row_scale = swap ? in.sb : in.sa, col_scale = swap ? in.sa : in.sb;
  if (swap) options += " -D BIAS_N=1";
  // The output stage's arguments (epilogue_qgemm.cl's QEPI_PARAMS), the same for both kernels.
  auto epilogue_args = [&](ClLaunch& l) {
    l.mem(a.outputs[0].mem).mem(mem(row_scale)).arg(static_cast<cl_int>(mode(row_scale) == 2)).mem(mem(col_scale))
        .arg(static_cast<cl_int>(mode(col_scale) == 2)).mem(mem(in.sy)).mem(mem(in.yzp)).mem(mem(in.bias))
        .arg(static_cast<cl_int>(opt(in.bias)));
    if (epi)
      l.arg(static_cast<cl_int>(ep.bias_cols)).arg(static_cast<cl_int>(ep.ep.act)).arg(ep.ep.act_alpha)
          .arg(ep.ep.act_beta).arg(static_cast<cl_int>(ep.ep.residual)).mem(ep.res).mem(ep.res_scale).mem(ep.res_zp);
  };
  if (use_mma) {
    p.A = a.inputs[swap ? in.b : in.a].mem;
    p.B = a.inputs[swap ? in.a : in.b].mem;
    const std::string fixed = mma::fixed_epilogue_options(epi ? static_cast<int>(ep.ep.act) : -1, opt(in.bias),
                                                          epi ? static_cast<int>(ep.ep.residual) : 0);
    const mma::Epilogue stage{&qgemm_prelude(epi), options, epilogue_args, fixed,
                              epi && ep.ep.residual != linear::kResidualNone};
    return mma::launch(a.cl, p, tile, stage, where(a));
  }

  cl_kernel k;
  KILN_TRY(a.cl.kernel(qgemm_source(epi), options, "qgemm", &k));
  ClDims bdims = cl_dims(g.batch_dims), abs = cl_dims(g.a_bstride), bbs = cl_dims(g.b_bstride);
  const ClConvGeo geo = cl_conv_geo(g);
  ClLaunch launch(a.cl, k, where(a));
  launch.mem(a.inputs[in.a].mem).mem(a.inputs[in.b].mem)
      .mem(mem(in.za)).arg(mode(in.za)).mem(mem(in.zb)).arg(mode(in.zb))
      .arg(static_cast<cl_int>(g.M)).arg(static_cast<cl_int>(g.N)).arg(static_cast<cl_int>(g.K))
      .arg(static_cast<cl_int>(g.batch_dims.size())).arg(bdims).arg(abs).arg(bbs).arg(geo);
  epilogue_args(launch);
  // 64x64 output tiles of 16x16 items (kernels/qgemm.cl).
  const size_t global[3] = {ClRuntime::round_up(static_cast<size_t>(g.N), 64) / 4,
                            ClRuntime::round_up(static_cast<size_t>(g.M), 64) / 4, static_cast<size_t>(g.batches)};
  const size_t local[3] = {16, 16, 1};
  return launch.run(3, global, local);
}

// Declines what the kernel does not index: batch-varying N-D zero points, more than 3 spatial
// dims, more than 8 batch dims, or sizes past int32.
bool qgemm_supports(const PlanNode& node, const Plan& plan, const DeviceCaps&) {
  const QGemmInputs in = qgemm_inputs(node.op);
  auto shape = [&](int i) -> Shape {
    return i >= 0 && i < static_cast<int>(node.inputs.size()) && node.inputs[i] >= 0
               ? plan.tensors[node.inputs[i]].shape
               : Shape{};
  };
  QGemm g;
  if (!qgemm_geometry(node, shape(in.a), shape(in.b), shape(in.za), shape(in.zb),
                      plan.tensors[node.outputs[0]].shape, &g))
    return false;
  if (g.conv && g.in_sp.size() > 3) return false;
  if (g.batch_dims.size() > static_cast<size_t>(kClMaxDims)) return false;
  if (!all_zero(g.za_bstride) || !all_zero(g.zb_bstride)) return false;
  for (int i : {in.a, in.b})
    if (shape_numel(shape(i)) >= INT32_MAX) return false;
  return shape_numel(plan.tensors[node.outputs[0]].shape) < INT32_MAX && g.batches < 65536;
}

// A tensor (input i of the node) that is absent, or a constant of zeros.
bool zero_or_absent(const PlanNode& node, const Plan& plan, int i) {
  if (i < 0 || i >= static_cast<int>(node.inputs.size()) || node.inputs[i] < 0) return true;
  const PlanTensor& t = plan.tensors[node.inputs[i]];
  if (t.kind != TensorKind::kConstant) return false;
  const uint8_t* d = plan.weight_data(t);
  return std::all_of(d, d + t.weight_bytes, [](uint8_t b) { return b == 0; });
}

// The mma variant for symmetric 8-bit GEMMs where the tensor cores pay (mma::worth_tensor_cores).
std::vector<KernelChoice> qgemm_variants(const PlanNode& node, const Plan& plan, const DeviceCaps& caps) {
  if (!mma::available(caps, mma::Elem::kInt8)) return {};
  const QGemmInputs in = qgemm_inputs(node.op);
  if (!zero_or_absent(node, plan, in.za) || !zero_or_absent(node, plan, in.zb)) return {};
  auto shape = [&](int i) -> Shape {
    return i >= 0 && i < static_cast<int>(node.inputs.size()) && node.inputs[i] >= 0 ? plan.tensors[node.inputs[i]].shape
                                                                                      : Shape{};
  };
  QGemm g;
  mma::Problem p;
  if (!qgemm_geometry(node, shape(in.a), shape(in.b), shape(in.za), shape(in.zb), plan.tensors[node.outputs[0]].shape,
                      &g) ||
      !qgemm_mma_problem(g, plan.tensors[node.inputs[in.a]].dtype, plan.tensors[node.inputs[in.b]].dtype, false, &p) ||
      !mma::worth_tensor_cores(p))
    return {};
  const bool has_res = node.inputs.size() > kQResidualInput && node.inputs[kQResidualInput] >= 0;
  p.residual_tile_bytes =
      residual_tile_bytes(node, has_res ? plan.tensors[node.inputs[kQResidualInput]].dtype : DType::kUndefined);
  const std::vector<KernelChoice> plain = mma::choices(p, caps);
  mma::Problem packed;
  if (!g.conv && mma::packable(node, plan, in.b) &&
      qgemm_mma_problem(g, plan.tensors[node.inputs[in.a]].dtype, plan.tensors[node.inputs[in.b]].dtype, true, &packed)) {
    packed.residual_tile_bytes = p.residual_tile_bytes;
    return mma::with_packed_input(plain, mma::choices(packed, caps), in.b);
  }
  return plain;
}

}  // namespace

void register_quantize_opencl(ClRegistry& r) {
  r.add("QuantizeLinear", quantize_linear_cl, quant_supports);
  r.add("DequantizeLinear", dequantize_linear_cl, quant_supports);
  r.add("DynamicQuantizeLinear", dynamic_quantize_linear_cl, dql_supports);
  for (const char* op : {"MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv"})
    r.add(op, qgemm_cl, qgemm_supports, qgemm_variants);
}

}  // namespace kiln
