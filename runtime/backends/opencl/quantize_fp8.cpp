// OpenCL launcher of the FP8 linear ops Fp8Conv and Fp8MatMul (kernels/fp8_linear.cl with the
// float8 conversions of kernels/float8.cl): FP8 decoded in the kernel, float32 accumulation,
// the same arithmetic and order as the CPU reference (runtime/backends/cpu/quantize_fp8.cpp).
#include <algorithm>
#include <string>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/backends/opencl/qgemm_geometry.h"
#include "runtime/backends/quantize_fp8_geometry.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

// The output stage (epilogue_fp8.cl with the FP8 conversions, kiln_div and kiln_act before it), shared by
// the portable kernel and the mma variant.
const std::string& fp8_prelude() {
  static const std::string s = std::string(embedded_kernel_source("float8")) + "\n" +
                               embedded_kernel_source("rint_div") + "\n" + embedded_kernel_source("linear_activation") +
                               "\n" + embedded_kernel_source("epilogue_fp8");
  return s;
}

// The tensor-core problem: both operands FP8 (float32 operands take the portable kernel).
bool fp8_mma_problem(const Fp8Linear& f, bool b_packed, mma::Problem* p) {
  auto kind = [](int k) { return k == 1 ? mma::kE4M3 : mma::kE5M2; };
  if (f.ka == 0 || f.kb == 0) return false;
  return mma::quantized_problem(f.g, mma::Elem::kFp8, kind(f.ka), kind(f.kb), b_packed, p);
}

// The bytes of a residual element the output stage can keep in __local (kernels/epilogue_fp8.cl
// under MMA_RES_TILE), 0 without a residual.
int residual_tile_bytes(const Fp8Linear& f) {
  if (f.ep.residual == linear::kResidualNone) return 0;
  return f.kr == 0 ? 4 : f.kr == kFp8Half ? 2 : 1;
}

Status fp8_linear_cl(ClKernelArgs& a) {
  std::vector<Fp8Operand> ops;
  for (const ClTensor& t : a.inputs) ops.push_back({t.mem ? t.dtype : DType::kUndefined, t.shape});
  Fp8Linear f;
  KILN_TRY(fp8_linear_setup(a.node, ops, {a.outputs[0].dtype, a.outputs[0].shape}, &f));
  const QGemm& g = f.g;
  const bool epi = f.ep.act != linear::Activation::kNone || f.ep.residual != linear::kResidualNone;
  mma::Tile tile;
  mma::Problem p;
  const bool use_mma = mma::tile_of(a.variant(), &tile) && fp8_mma_problem(f, mma::reads_packed(a.variant(), f.b), &p);
  p.residual_tile_bytes = residual_tile_bytes(f);
  // A channels-last convolution on the tensor cores has the weights as columns: the scales trade
  // places (the same float product) and the bias is per column.
  const bool swap = use_mma && mma::operands_swapped(p);
  const int row_scale = swap ? f.sb : f.sa, col_scale = swap ? f.sa : f.sb;
  const bool row_vec = swap ? f.sb_vec : f.sa_vec, col_vec = swap ? f.sa_vec : f.sb_vec;
  const std::string options = "-cl-fp32-correctly-rounded-divide-sqrt -D AK=" + std::to_string(f.ka) +
                              " -D BK=" + std::to_string(f.kb) + " -D YK=" + std::to_string(f.ky) +
                              " -D CONV=" + (g.conv ? "1" : "0") + " -D NHWC=" + (g.channels_last ? "1" : "0") +
                              " -D BIAS_ROW=" + (f.bias_per_row && !swap ? "1" : "0") +
                              " -D EPI=" + (epi ? "1" : "0") + " -D RK=" + std::to_string(f.kr) +
                              (mma::uses_ptx(a.cl.info().caps, mma::Elem::kFp8) ? " -D KILN_PTX_FP8=1" : "");
  const std::string what = a.node.op + " '" + a.node.name + "'";
  // The output stage's arguments (epilogue_fp8.cl's F8EPI_PARAMS), the same for both kernels.
  auto epilogue_args = [&](ClLaunch& l) {
    l.mem(a.outputs[0].mem).mem(a.inputs[row_scale].mem).arg(static_cast<cl_int>(row_vec)).mem(a.inputs[col_scale].mem)
        .arg(static_cast<cl_int>(col_vec)).mem(a.inputs[Fp8Linear::kYScale].mem)
        .mem(f.has_bias ? a.inputs[Fp8Linear::kBias].mem : nullptr).arg(static_cast<cl_int>(f.has_bias))
        .arg(static_cast<cl_int>(f.saturate));
    if (epi) {
      const bool res = f.ep.residual != linear::kResidualNone;
      l.arg(static_cast<cl_int>(f.ep.act)).arg(f.ep.act_alpha).arg(f.ep.act_beta)
          .arg(static_cast<cl_int>(f.ep.residual)).mem(res ? a.inputs[Fp8Linear::kResidual].mem : nullptr)
          .mem(res && f.kr > 0 && f.kr != kFp8Half ? a.inputs[Fp8Linear::kResidualScale].mem : nullptr);
    }
  };
  if (use_mma) {
    p.A = a.inputs[swap ? f.b : f.a].mem;
    p.B = a.inputs[swap ? f.a : f.b].mem;
    const std::string fixed = mma::fixed_epilogue_options(epi ? static_cast<int>(f.ep.act) : -1, f.has_bias,
                                                          epi ? static_cast<int>(f.ep.residual) : 0) +
                              " -D KILN_FP8_SAT=" + (f.saturate ? "1" : "0");
    return mma::launch(a.cl, p, tile,
                       {&fp8_prelude(), options, epilogue_args, fixed, epi && f.ep.residual != linear::kResidualNone}, what);
  }
  static const std::string source = std::string(embedded_kernel_source("qgemm_geometry")) + "\n" + fp8_prelude() +
                                    "\n" + embedded_kernel_source("fp8_linear");
  cl_kernel k;
  KILN_TRY(a.cl.kernel(source, options, "fp8_linear", &k));
  const ClDims bdims = cl_dims(g.batch_dims), abs = cl_dims(g.a_bstride), bbs = cl_dims(g.b_bstride);
  ClLaunch launch(a.cl, k, what);
  launch.mem(a.inputs[f.a].mem).mem(a.inputs[f.b].mem)
      .arg(static_cast<cl_int>(g.M)).arg(static_cast<cl_int>(g.N)).arg(static_cast<cl_int>(g.K))
      .arg(static_cast<cl_int>(g.batch_dims.size())).arg(bdims).arg(abs).arg(bbs).arg(cl_conv_geo(g));
  epilogue_args(launch);
  // 64x64 output tiles of 16x16 items (kernels/fp8_linear.cl).
  const size_t global[3] = {ClRuntime::round_up(static_cast<size_t>(g.N), 64) / 4,
                            ClRuntime::round_up(static_cast<size_t>(g.M), 64) / 4, static_cast<size_t>(g.batches)};
  const size_t local[3] = {16, 16, 1};
  return launch.run(3, global, local);
}

// Declines what the kernel does not index: more than 3 spatial dims or 8 batch dims, sizes past
// int32, and malformed nodes (the CPU kernel reports those by name).
bool fp8_linear_supports(const PlanNode& node, const Plan& plan, const DeviceCaps&) {
  std::vector<Fp8Operand> ops;
  for (int32_t t : node.inputs)
    ops.push_back(t >= 0 ? Fp8Operand{plan.tensors[t].dtype, plan.tensors[t].shape} : Fp8Operand{});
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  Fp8Linear f;
  if (!fp8_linear_setup(node, ops, {y.dtype, y.shape}, &f)) return false;
  if (f.g.conv && f.g.in_sp.size() > 3) return false;
  if (f.g.batch_dims.size() > static_cast<size_t>(kClMaxDims) || f.g.batches >= 65536) return false;
  for (const Fp8Operand& o : ops)
    if (shape_numel(o.shape) >= INT32_MAX) return false;
  return shape_numel(y.shape) < INT32_MAX;
}

// The mma variant where both operands are FP8 and the tensor cores pay (mma::worth_tensor_cores).
std::vector<KernelChoice> fp8_linear_variants(const PlanNode& node, const Plan& plan, const DeviceCaps& caps) {
  if (!mma::available(caps, mma::Elem::kFp8)) return {};
  std::vector<Fp8Operand> ops;
  for (int32_t t : node.inputs)
    ops.push_back(t >= 0 ? Fp8Operand{plan.tensors[t].dtype, plan.tensors[t].shape} : Fp8Operand{});
  const PlanTensor& y = plan.tensors[node.outputs[0]];
  Fp8Linear f;
  mma::Problem p;
  if (!fp8_linear_setup(node, ops, {y.dtype, y.shape}, &f) || !fp8_mma_problem(f, false, &p) ||
      !mma::worth_tensor_cores(p))
    return {};
  p.residual_tile_bytes = residual_tile_bytes(f);
  const std::vector<KernelChoice> plain = mma::choices(p, caps);
  mma::Problem packed;
  if (!f.g.conv && mma::packable(node, plan, f.b) && fp8_mma_problem(f, true, &packed)) {
    packed.residual_tile_bytes = p.residual_tile_bytes;
    return mma::with_packed_input(plain, mma::choices(packed, caps), f.b);
  }
  return plain;
}

}  // namespace

void register_quantize_fp8_opencl(ClRegistry& r) {
  r.add("Fp8Conv", fp8_linear_cl, fp8_linear_supports, fp8_linear_variants);
  r.add("Fp8MatMul", fp8_linear_cl, fp8_linear_supports, fp8_linear_variants);
}

}  // namespace kiln
