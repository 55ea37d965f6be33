// OpenCL Softmax, LogSoftmax, BatchNormalization, InstanceNormalization, LayerNormalization
// (kernels/softmax.cl, kernels/norm.cl); registers the family's reductions and pooling too.
#include <algorithm>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/backends/opencl/normalization_cl.h"
#include "runtime/backends/opencl/quantize_cl.h"
#include "runtime/ops/quantized_output.h"

namespace kiln {

void register_normalization_reduce_opencl(ClRegistry& r);
void register_normalization_pool_opencl(ClRegistry& r);

namespace {

// Float32 or float16 (FP16 nodes) operands whose element counts fit the kernels' int indexing.
bool float_operands(const PlanNode& n, const Plan& p, const DeviceCaps&) { return normcl::float_operands(n, p, true); }

template <bool kLog>
Status softmax_cl(ClKernelArgs& a) {
  const normgeo::Rows r = normgeo::softmax_rows(a.inputs[0].shape, a.attrs());
  const int rows = static_cast<int>(r.outer * r.inner), n = static_cast<int>(r.n), inner = static_cast<int>(r.inner);
  if (rows == 0 || n == 0) return Status::ok();
  const std::string opts = kLog ? "-DLOG=1" : "-DLOG=0";
  cl_kernel k;
  if (normcl::use_group_per_row(rows, n, inner == 1)) {
    KILN_TRY(normcl::kernel(a, "softmax", opts, "softmax_group", &k));
    const size_t ls = normcl::group_size(a, k);
    // A slice of about n / 4 work-items per row (at least a warp's 32), several rows per group.
    size_t slice = 32;
    while (slice * 4 < static_cast<size_t>(n) && slice < ls) slice *= 2;
    slice = std::min(slice, ls);
    const size_t per_group = ls / slice;
    const size_t global = (static_cast<size_t>(rows) + per_group - 1) / per_group * ls;
    return ClLaunch(a.cl, k, "softmax_group")
        .mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(rows).arg(n).arg(inner).arg(static_cast<int>(slice))
        .local(ls * sizeof(float)).run(1, &global, &ls);
  }
  KILN_TRY(normcl::kernel(a, "softmax", opts, "softmax_item", &k));
  return ClLaunch(a.cl, k, "softmax_item")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).arg(rows).arg(n).arg(inner)
      .run1d(rows, 64);
}

Status batchnorm_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const int total = static_cast<int>(x.numel());
  const int64_t c = x.shape[1];
  const int inner = static_cast<int>(c && x.shape[0] ? x.numel() / (x.shape[0] * c) : 1);
  const int params = static_cast<int>(a.inputs[1].numel());
  const int per_channel = params == c ? 1 : 0;
  const float eps = a.attrs().get_float("epsilon", 1e-5f);
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "norm", "", "batchnorm", &k));
  return ClLaunch(a.cl, k, "batchnorm")
      .mem(x.mem).mem(a.outputs[0].mem).mem(a.inputs[1].mem).mem(a.inputs[2].mem).mem(a.inputs[3].mem)
      .mem(a.inputs[4].mem).arg(total).arg(std::max(inner, 1)).arg(params).arg(per_channel).arg(eps)
      .run1d(total, 256);
}

struct NormParams {
  cl_int w_mod, w_a, w_b, b_mod, b_a, b_b, has_b, want_mean, want_inv, j_div;
};

Status rownorm(ClKernelArgs& a, int64_t rows64, int64_t n64, float eps, cl_mem w, cl_mem b, cl_mem mean_out,
               cl_mem inv_out, const NormParams& p) {
  const int rows = static_cast<int>(rows64), n = static_cast<int>(n64);
  if (rows == 0) return Status::ok();
  // Unused buffer arguments get a valid buffer: some drivers reject null cl_mem arguments.
  cl_mem dummy = a.outputs[0].mem;
  cl_kernel k;
  // Rows up to 16 values a work-item (slices of 32..256 items): kept in registers (rownorm_slice).
  if (n >= 32) {
    size_t slice = 32;
    while (slice * 8 < static_cast<size_t>(n) && slice < 256) slice *= 2;
    const int vpt = static_cast<int>((static_cast<size_t>(n) + slice - 1) / slice);
    if (vpt <= 16) {
      KILN_TRY(normcl::kernel(a, "norm", "-DNORM_VPT=" + std::to_string(vpt), "rownorm_slice", &k));
      const size_t ls = normcl::group_size(a, k);
      if (ls >= slice) {
        const size_t per_group = ls / slice;
        const size_t global = (static_cast<size_t>(rows) + per_group - 1) / per_group * ls;
        return ClLaunch(a.cl, k, "rownorm_slice")
            .mem(a.inputs[0].mem).mem(a.outputs[0].mem).mem(w).mem(b ? b : dummy)
            .mem(mean_out ? mean_out : dummy).mem(inv_out ? inv_out : dummy).arg(rows).arg(n).arg(eps).arg(p)
            .arg(static_cast<cl_int>(slice)).local(ls * sizeof(float)).run(1, &global, &ls);
      }
    }
  }
  if (normcl::use_group_per_row(rows, n, true)) {
    KILN_TRY(normcl::kernel(a, "norm", "", "rownorm_group", &k));
    const size_t ls = normcl::group_size(a, k);
    const size_t global = static_cast<size_t>(rows) * ls;
    return ClLaunch(a.cl, k, "rownorm_group")
        .mem(a.inputs[0].mem).mem(a.outputs[0].mem).mem(w).mem(b ? b : dummy)
        .mem(mean_out ? mean_out : dummy).mem(inv_out ? inv_out : dummy).arg(n).arg(eps).arg(p)
        .local(ls * sizeof(float)).run(1, &global, &ls);
  }
  KILN_TRY(normcl::kernel(a, "norm", "", "rownorm_item", &k));
  return ClLaunch(a.cl, k, "rownorm_item")
      .mem(a.inputs[0].mem).mem(a.outputs[0].mem).mem(w).mem(b ? b : dummy)
      .mem(mean_out ? mean_out : dummy).mem(inv_out ? inv_out : dummy).arg(rows).arg(n).arg(eps).arg(p)
      .run1d(rows, 64);
}

Status instancenorm_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const int64_t nc = x.shape[0] * x.shape[1];
  const int64_t inner = nc ? x.numel() / nc : 0;
  const cl_int c = static_cast<cl_int>(x.shape[1]);
  NormParams p{c, 1, 0, c, 1, 0, 1, 0, 0, 1};
  return rownorm(a, nc, inner, a.attrs().get_float("epsilon", 1e-5f), a.inputs[1].mem, a.inputs[2].mem, nullptr,
                 nullptr, p);
}

// Rows of C/G channels x inner positions, one per (sample, group).
Status groupnorm_cl(ClKernelArgs& a) {
  const ClTensor& x = a.inputs[0];
  const int64_t groups = a.attrs().get_int("num_groups", 0);
  const bool per_group = a.attrs().get_int("group_params", 0) != 0;
  if (x.shape.size() < 2 || groups <= 0 || x.shape[1] % groups != 0 ||
      a.inputs[1].numel() != (per_group ? groups : x.shape[1]) || a.inputs[2].numel() != a.inputs[1].numel())
    return invalid_plan("GroupNormalization: num_groups, scale and bias do not match the input");
  const int64_t nc = x.shape[0] * x.shape[1];
  const cl_int inner = static_cast<cl_int>(nc ? x.numel() / nc : 1), g = static_cast<cl_int>(groups),
               cg = static_cast<cl_int>(x.shape[1] / groups);
  const NormParams p = per_group ? NormParams{g, 1, 0, g, 1, 0, 1, 0, 0, 1}
                                                           : NormParams{g, cg, 1, g, cg, 1, 1, 0, 0, std::max(inner, 1)};
  return rownorm(a, x.shape[0] * groups, static_cast<int64_t>(cg) * inner, a.attrs().get_float("epsilon", 1e-5f),
                 a.inputs[1].mem, a.inputs[2].mem, nullptr, nullptr, p);
}

// LayerNormalization rows of a multiple of 8 values with W and B per position (rownorm_x8), in
// slices of whole warps holding at most 4 groups of 8 values a work-item; `*launched` stays false
// where the node does not have that shape.
// `q`: the node's quantized copy of Y, written by the same kernel (runtime/ops/quantized_output.h).
Status layernorm_x8(ClKernelArgs& a, int64_t rows64, int64_t n64, float eps, cl_mem mean_out, cl_mem inv_out,
                    const QuantizedOutput* q, bool* launched) {
  *launched = false;
  const bool has_b = a.has_input(2);
  if (n64 % 8 != 0 || n64 < 128 || a.inputs[1].numel() != n64 || (has_b && a.inputs[2].numel() != n64)) return Status::ok();
  int slice = 32;
  while (slice * 8 * 4 < n64 && slice < 256) slice *= 2;
  const int64_t chunks = (n64 / 8 + slice - 1) / slice;
  if (chunks > 4) return Status::ok();
  std::string options = "-DNORM_CHUNKS=" + std::to_string(chunks) +
                        " -DKILN_PTX=" + (mma::uses_ptx(a.cl.info().caps, mma::Elem::kF16) ? "1" : "0");
  std::vector<const char*> preludes;
  if (q) {
    std::string qopts;
    if (!quantcl::options(a.cl, a.outputs[q->output].dtype, &qopts)) return Status::ok();
    options += " -DNORM_QOUT " + qopts;
    preludes = {"float8", "rint_div", "quantize_value"};
  }
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "norm", options, "rownorm_x8", &k, preludes));
  const size_t ls = normcl::group_size(a, k);
  if (ls < static_cast<size_t>(slice)) return Status::ok();
  *launched = true;
  const size_t per_group = ls / slice;
  const size_t global = (static_cast<size_t>(rows64) + per_group - 1) / per_group * ls;
  cl_mem dummy = a.outputs[0].mem;  // unused buffer arguments (some drivers reject null ones)
  ClLaunch launch(a.cl, k, "rownorm_x8");
  launch.mem(a.inputs[0].mem).mem(a.outputs[0].mem).mem(a.inputs[1].mem).mem(has_b ? a.inputs[2].mem : dummy)
      .mem(mean_out ? mean_out : dummy).mem(inv_out ? inv_out : dummy).arg(static_cast<cl_int>(rows64))
      .arg(static_cast<cl_int>(n64)).arg(eps).arg(static_cast<cl_int>(has_b)).arg(static_cast<cl_int>(mean_out != nullptr))
      .arg(static_cast<cl_int>(inv_out != nullptr)).arg(static_cast<cl_int>(slice)).local(ls * sizeof(float));
  if (q)
    launch.mem(a.outputs[q->output].mem).mem(a.inputs[q->scale_input].mem).mem(a.inputs[q->zero_point_input].mem)
        .arg(static_cast<cl_int>(q->saturate));
  return launch.run(1, &global, &ls);
}

Status layernorm_cl(ClKernelArgs& a) {
  const normgeo::Rows r = normgeo::split_at(a.inputs[0].shape, a.attrs().get_int("axis", 0));
  const int64_t mask = a.attrs().get_int("output_mask", 1);
  const int mean_slot = normgeo::output_slot(a.outputs.size(), mask, 1);
  const int inv_slot = normgeo::output_slot(a.outputs.size(), mask, 2);
  cl_mem mean_out = mean_slot >= 0 ? a.outputs[mean_slot].mem : nullptr;
  cl_mem inv_out = inv_slot >= 0 ? a.outputs[inv_slot].mem : nullptr;
  const float eps = a.attrs().get_float("epsilon", 1e-5f);
  if (r.outer == 0) return Status::ok();
  QuantizedOutput q;
  const bool quantized = quantized_output(a.node, &q);
  bool launched = false;
  KILN_TRY(layernorm_x8(a, r.outer, r.n, eps, mean_out, inv_out, quantized ? &q : nullptr, &launched));
  if (launched) return Status::ok();
  const bool has_b = a.has_input(2);
  NormParams p{1, 0, a.inputs[1].numel() == 1 ? 0 : 1, 1, 0, has_b && a.inputs[2].numel() != 1 ? 1 : 0,
               has_b ? 1 : 0, mean_slot >= 0 ? 1 : 0, inv_slot >= 0 ? 1 : 0, 1};
  KILN_TRY(rownorm(a, r.outer, r.n, eps, a.inputs[1].mem, has_b ? a.inputs[2].mem : nullptr, mean_out, inv_out, p));
  // Rows the fused kernel does not take: QuantizeLinear's own kernel after it.
  return quantized ? quantcl::quantized_copy(a, q) : Status::ok();
}

// Float operands, plus an 8-bit quantized copy of Y where the node writes one.
bool layernorm_supports(const PlanNode& n, const Plan& p, const DeviceCaps&) {
  return quantcl::copy_supported(n, p) && normcl::float_operands(own_operands(n), p, true);
}

}  // namespace

void register_normalization_opencl(ClRegistry& r) {
  r.add("Softmax", softmax_cl<false>, float_operands);
  r.add("LogSoftmax", softmax_cl<true>, float_operands);
  r.add("BatchNormalization", batchnorm_cl, float_operands);
  r.add("InstanceNormalization", instancenorm_cl, float_operands);
  r.add("LayerNormalization", layernorm_cl, layernorm_supports);
  r.add("GroupNormalization", groupnorm_cl, float_operands);
  register_normalization_reduce_opencl(r);
  register_normalization_pool_opencl(r);
}

}  // namespace kiln
