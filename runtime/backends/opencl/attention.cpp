// OpenCL fused Attention: one launch per node, a work-group per block of query rows of one
// (batch, head). Two kernels: the portable one (kernels/attention.cl, float math, any float
// storage) and, for FP16 nodes on devices with tensor cores, the "mma" variant
// (kernels/attention_mma.cl, FlashAttention-2 on mma.sync). Declines (the node then runs on the
// CPU) head dims above kMaxHeadDim, tiles that do not fit the device's __local memory, mixed or
// non-float dtypes and operands beyond the kernel's int indexing.
#include <algorithm>
#include <string>

#include "runtime/backends/attention_geometry.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/backends/opencl/normalization_cl.h"
#include "runtime/backends/opencl/quantize_cl.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/quantized_output.h"

namespace kiln {
namespace {

// Keys staged per tile.
constexpr int64_t kBlockN = 32;
// Largest head dim (D and Dv): each work-item keeps a row of Q and of the output in private
// memory, padded to a power of two.
constexpr int64_t kMaxHeadDim = 128;
constexpr size_t kMaxRowsPerGroup = 64;

int64_t padded_head_dim(const attngeo::Geometry& g) {
  int64_t p = 16;
  while (p < std::max(g.d, g.dv)) p *= 2;
  return p;
}

size_t tile_bytes(int64_t dmax) { return static_cast<size_t>(2 * kBlockN * dmax) * sizeof(float); }

Status geometry_of(const std::vector<Shape>& in, const Shape& y, const Attributes& attrs, attngeo::Geometry* g) {
  return attngeo::geometry(in[0], in[1], in[2], in.size() > attngeo::kMaskInput ? &in[attngeo::kMaskInput] : nullptr,
                           y, attrs, g);
}

bool node_geometry(const PlanNode& n, const Plan& p, attngeo::Geometry* g) {
  if (n.inputs.size() < 3 || n.outputs.empty()) return false;
  std::vector<Shape> in;
  for (size_t i = 0; i < std::min<size_t>(n.inputs.size(), attngeo::kMaskInput + 1); ++i) {
    if (n.inputs[i] < 0) {
      if (i < 3) return false;
      break;
    }
    in.push_back(p.tensors[n.inputs[i]].shape);
  }
  return geometry_of(in, p.tensors[n.outputs[0]].shape, n.attrs, g).is_ok();
}

// Float operands, plus an 8-bit quantized copy of Y where the node writes one.
bool attention_supports(const PlanNode& n, const Plan& p, const DeviceCaps& caps) {
  attngeo::Geometry g;
  if (!quantcl::copy_supported(n, p) || !node_geometry(n, p, &g) || !normcl::float_operands(own_operands(n), p, true))
    return false;
  if (std::max(g.d, g.dv) > kMaxHeadDim) return false;
  return caps.local_mem_bytes == 0 || tile_bytes(padded_head_dim(g)) <= caps.local_mem_bytes;
}

cl_int4 strides(const attngeo::Strides& s) {
  cl_int4 v;
  for (int i = 0; i < 4; ++i) v.s[i] = static_cast<cl_int>(s[i]);
  return v;
}

// Where Q, K and V start in their buffers (x, y, z).
cl_int4 offsets(const attngeo::Geometry& g) {
  cl_int4 v{};
  v.s[0] = static_cast<cl_int>(g.q_off);
  v.s[1] = static_cast<cl_int>(g.k_off);
  v.s[2] = static_cast<cl_int>(g.v_off);
  return v;
}

// ---- the tensor-core variant (kernels/attention_mma.cl)
constexpr int64_t kMmaRows = 64;  // query rows per work-group (4 warps of 16)

bool mma_head_dim(int64_t d) { return d == 16 || d == 32 || d == 64 || d == 128; }

// Keys per block: K and V of 64 keys at the largest head dim take 32 KB of the 44 KB of __local
// a work-group gets on NVIDIA's OpenCL (../shared/DEVICE.md).
constexpr int64_t kMmaBlockKeys = 64;
static_assert(2 * kMmaBlockKeys * 128 * 2 <= mma::kLocalBytes, "K and V blocks must fit __local");

bool mma_runs(const attngeo::Geometry& g) { return g.d == g.dv && mma_head_dim(g.d); }

bool mma_node(const PlanNode& n, const Plan& p) {
  return p.tensors[n.inputs[0]].dtype == DType::kFloat16 && p.tensors[n.outputs[0]].dtype == DType::kFloat16;
}

// Whether NVIDIA's compiler takes a register cap for `caps` (cl_nv_compiler_options).
bool register_cap_option(const DeviceCaps& caps) {
  return mma::uses_ptx(caps, mma::Elem::kF16) &&
         std::find(caps.extensions.begin(), caps.extensions.end(), "cl_nv_compiler_options") != caps.extensions.end();
}

// The compiler's own register count first (ptxas: 174 at head dim 64, two work-groups an SM),
// then caps of 168 and 128 registers (three and four work-groups an SM; ptxas spills 32 and 124
// bytes a thread), which --tune times.
std::vector<KernelChoice> attention_variants(const PlanNode& n, const Plan& p, const DeviceCaps& caps) {
  attngeo::Geometry g;
  if (!mma_node(n, p) || !mma::available(caps, mma::Elem::kF16) || !node_geometry(n, p, &g) || !mma_runs(g)) return {};
  std::vector<KernelChoice> out{KernelChoice{mma::kVariant, {}}};
  if (register_cap_option(caps) && g.d <= 64)
    for (int64_t regs : {168, 128}) out.push_back(KernelChoice{mma::kVariant, {{"regs", regs}}});
  return out;
}

// Whether an operand's rows (over its last dim, or with `transposed` over its row dim) are
// contiguous and start 16-byte aligned wherever the kernel copies them (the offset and the other
// strides multiples of 8 halves), so that they arrive by cp.async.
bool vector_rows(const attngeo::Strides& s, int64_t offset, bool transposed) {
  const int inner = transposed ? 2 : 3, outer = transposed ? 3 : 2;
  return s[inner] == 1 && offset % 8 == 0 && s[0] % 8 == 0 && s[1] % 8 == 0 && s[outer] % 8 == 0;
}

// `q`: the node's quantized copy of Y, written by the kernel too.
Status attention_mma(ClKernelArgs& a, const attngeo::Geometry& g, bool has_mask, const QuantizedOutput* q) {
  // K may arrive [key][d] (d contiguous) or transposed [d][key] (keys contiguous).
  const bool kt = g.k[3] != 1 && g.k[2] == 1;
  auto def = [](const char* name, int64_t v) { return std::string(" -D ") + name + "=" + std::to_string(v); };
  // Two stages of K and V (the next block's copy overlapping this one's products) where they fit
  // beside Q: head dims up to 64.
  const int64_t stages = kMmaRows * g.d * 2 + 2 * 2 * kMmaBlockKeys * g.d * 2 <= mma::kLocalBytes ? 2 : 1;
  const int64_t regs = a.variant().param("regs", 0);
  const bool y_pairs = g.y[3] == 1 && g.y[0] % 2 == 0 && g.y[1] % 2 == 0 && g.y[2] % 2 == 0;
  const std::string options = def("FA_D", g.d) + def("FA_BK", kMmaBlockKeys) + def("FA_KT", kt) + def("FA_VEC_Q", vector_rows(g.q, g.q_off, false)) +
                              def("FA_VEC_K", vector_rows(g.k, g.k_off, kt)) + def("FA_VEC_V", vector_rows(g.v, g.v_off, false)) +
                              def("FA_VEC_Y", y_pairs) + def("FA_STAGES", stages) + def("MMA_PENDING", stages - 1) +
                              def("FA_MASK", has_mask) + def("FA_MASK_ROWS", has_mask && g.mask[2] != 0) +
                              def("FA_HALF_SCORES", g.half_scores) +
                              def("KILN_PTX", mma::uses_ptx(a.cl.info().caps, mma::Elem::kF16)) +
                              " -D MMA_A_KIND=0 -D MMA_B_KIND=0" +
                              (regs > 0 && register_cap_option(a.cl.info().caps) ? " -cl-nv-maxrregcount=" + std::to_string(regs) : "");
  static const std::string source =
      std::string(embedded_kernel_source("mma_ops")) + "\n" + embedded_kernel_source("warp_shuffle") + "\n" +
      embedded_kernel_source("attention_mma");
  static const std::string quantizing = std::string(embedded_kernel_source("float8")) + "\n" +
                                        embedded_kernel_source("rint_div") + "\n" +
                                        embedded_kernel_source("quantize_value") + "\n" + source;
  std::string qopts;
  if (q && !quantcl::options(a.cl, a.outputs[q->output].dtype, &qopts))
    return unsupported("Attention '" + a.node.name + "': no OpenCL kernel writes " + dtype_name(a.outputs[q->output].dtype));
  cl_kernel k;
  KILN_TRY(a.cl.kernel(q ? quantizing : source, options + (q ? " -D FA_QOUT=1 " + qopts : std::string()), "attention_mma", &k));
  const size_t threads = 128;
  const size_t global[2] = {static_cast<size_t>((g.sq + kMmaRows - 1) / kMmaRows) * threads,
                            static_cast<size_t>(g.batch * g.heads)};
  const size_t local[2] = {threads, 1};
  const cl_mem mask = has_mask ? a.inputs[attngeo::kMaskInput].mem : nullptr;
  ClLaunch launch(a.cl, k, "attention_mma");
  launch.mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(a.inputs[2].mem).mem(mask).mem(a.outputs[0].mem)
      .arg(static_cast<cl_int>(g.heads)).arg(static_cast<cl_int>(g.sq)).arg(static_cast<cl_int>(g.sk)).arg(g.scale)
      .arg(strides(g.q)).arg(strides(g.k)).arg(strides(g.v)).arg(strides(g.y)).arg(strides(g.mask)).arg(offsets(g));
  if (q)
    launch.mem(a.outputs[q->output].mem).mem(a.inputs[q->scale_input].mem).mem(a.inputs[q->zero_point_input].mem)
        .arg(static_cast<cl_int>(q->saturate));
  return launch.run(2, global, local);
}

Status attention_portable(ClKernelArgs& a, const attngeo::Geometry& g, bool has_mask) {
  // Dynamic plans may run smaller dims than `supports` saw, never larger ones.
  if (std::max(g.d, g.dv) > kMaxHeadDim) return invalid_plan("Attention: head dim above the OpenCL kernel's limit");
  const int64_t dmax = padded_head_dim(g);
  const std::string opts = "-DDMAX=" + std::to_string(dmax) + " -DBLOCK_N=" + std::to_string(kBlockN);
  cl_kernel k;
  KILN_TRY(normcl::kernel(a, "attention", opts, "attention", &k));
  // One query row per work-item: a power of two covering Sq, up to what the kernel allows.
  size_t max_wg = 0;
  KILN_CL(clGetKernelWorkGroupInfo(k, a.cl.device(), CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, nullptr),
          "clGetKernelWorkGroupInfo(attention) of node '" + a.node.name + "'");
  size_t rows = 1;
  while (rows < static_cast<size_t>(g.sq) && rows * 2 <= std::min(max_wg, kMaxRowsPerGroup)) rows *= 2;
  const size_t groups = (static_cast<size_t>(g.sq) + rows - 1) / rows;
  const size_t global[2] = {groups * rows, static_cast<size_t>(g.batch * g.heads)};
  const size_t local[2] = {rows, 1};
  const cl_mem mask = has_mask ? a.inputs[attngeo::kMaskInput].mem : nullptr;
  return ClLaunch(a.cl, k, "attention")
      .mem(a.inputs[0].mem).mem(a.inputs[1].mem).mem(a.inputs[2].mem).mem(mask).mem(a.outputs[0].mem)
      .arg(static_cast<cl_int>(g.heads)).arg(static_cast<cl_int>(g.sq)).arg(static_cast<cl_int>(g.sk))
      .arg(static_cast<cl_int>(g.d)).arg(static_cast<cl_int>(g.dv)).arg(g.scale)
      .arg(strides(g.q)).arg(strides(g.k)).arg(strides(g.v)).arg(strides(g.y)).arg(strides(g.mask)).arg(offsets(g))
      .arg(static_cast<cl_int>(has_mask ? 1 : 0)).arg(static_cast<cl_int>(g.half_scores ? 1 : 0))
      .run(2, global, local);
}

Status attention_cl(ClKernelArgs& a) {
  const bool has_mask = a.has_input(attngeo::kMaskInput);
  std::vector<Shape> in;
  for (size_t i = 0; i < 3 + (has_mask ? 1 : 0); ++i) in.push_back(a.inputs[i].shape);
  attngeo::Geometry g;
  KILN_TRY(geometry_of(in, a.outputs[0].shape, a.attrs(), &g));
  if (g.sq == 0 || g.batch * g.heads == 0 || g.dv == 0) return Status::ok();
  QuantizedOutput q;
  const bool quantized = quantized_output(a.node, &q);
  if (a.variant().variant == mma::kVariant && mma_runs(g)) return attention_mma(a, g, has_mask, quantized ? &q : nullptr);
  KILN_TRY(attention_portable(a, g, has_mask));
  // The portable kernel leaves the quantized copy to QuantizeLinear's own kernel.
  return quantized ? quantcl::quantized_copy(a, q) : Status::ok();
}

}  // namespace

void register_attention_opencl(ClRegistry& r) { r.add(attngeo::kOp, attention_cl, attention_supports, attention_variants); }

}  // namespace kiln
