#include "runtime/backends/opencl/linear_gemm.h"

#include <clblast_c.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/core/half.h"
#include "runtime/ops/kernel_api.h"

namespace kiln::linear {
namespace {

// CLBlast compiles its GEMM kernels once per process and context (about 1.5 s per context on
// PoCL: the 11 Gemm conformance cases took 16.4 s with CLBlast, 1-2 s with kiln's kernel) and
// adds a few launches per call, but its kernels run faster once built (PoCL, steady state:
// 256^3 3.1 ms vs 5.9 ms, 1x1 conv 256->64 @56x56 14.7 vs 32 ms, 3x3 conv 64->64 @56x56 62 vs
// 96 ms). So kiln's tiled kernel takes the tiny GEMMs (where the fused epilogue also saves a
// pass) and CLBlast everything from this many multiply-adds up. On GPUs the bar is 16x higher:
// on the H100 CLBlast's calls do not overlap across contexts (resnet_mini at concurrency 4 vs 1:
// 1.08x with CLBlast for its 38M-MAC convolutions, 1.81x with kiln's kernel, which is also as
// fast alone; perf/results/2026-11-23-h100-session2.md), while ResNet-18's 100M+ MAC layers keep
// CLBlast's faster kernels.
// KILN_CLBLAST_MIN_MACS overrides it (0 = always CLBlast), for measurements.
int64_t clblast_min_macs(const DeviceCaps& caps) {
  static const int64_t env = [] {
    const char* e = std::getenv("KILN_CLBLAST_MIN_MACS");
    return e ? static_cast<int64_t>(std::atoll(e)) : int64_t{-1};
  }();
  if (env >= 0) return env;
  const bool gpu = (caps.device_type & CL_DEVICE_TYPE_GPU) != 0;
  return static_cast<int64_t>(1) << (gpu ? 26 : 22);
}

Status clblast_status(CLBlastStatusCode code, const std::string& what) {
  if (code == CLBlastSuccess) return Status::ok();
  // Codes above -1000 are OpenCL's own.
  if (code > -1000) return cl_status(static_cast<cl_int>(code), "CLBlast " + what);
  const char* name = "CLBlast error";
  switch (code) {
    case CLBlastNotImplemented: name = "not implemented"; break;
    case CLBlastInvalidDimension: name = "invalid dimension"; break;
    case CLBlastInsufficientMemoryA: name = "buffer of A too small"; break;
    case CLBlastInsufficientMemoryB: name = "buffer of B too small"; break;
    case CLBlastInsufficientMemoryC: name = "buffer of C too small"; break;
    case CLBlastInvalidLocalMemUsage: name = "not enough local memory"; break;
    case CLBlastDatabaseError: name = "no tuning database entry for the device"; break;
    default: break;
  }
  return device_error("CLBlast " + what + ": " + name + " (code " + std::to_string(code) + ")");
}

cl_int8 dims8(const std::vector<int64_t>& v) {
  cl_int8 r;
  for (int i = 0; i < 8; ++i) r.s[i] = i < static_cast<int>(v.size()) ? static_cast<cl_int>(v[i]) : 1;
  return r;
}

ClLaunch& epilogue_args(ClLaunch& l, const ClGemm& g) {
  const bool has_bias = g.bias != nullptr;
  const cl_mem bias = has_bias ? g.bias : g.C;
  const int res_mode = g.residual ? g.ep.residual : 0;
  const cl_mem res = g.residual ? g.residual : g.C;
  return l.arg(g.beta)
      .arg(cl_int(has_bias))
      .mem(bias)
      .arg(cl_int(g.bias_off))
      .arg(cl_int(g.bias_rs))
      .arg(cl_int(g.bias_cs))
      .arg(cl_int(g.bias_bstride))
      .arg(cl_int(g.bias_bmod > 0 ? g.bias_bmod : 1))
      .mem(res)
      .arg(cl_int(g.res_off))
      .arg(cl_int(res_mode))
      .arg(cl_int(static_cast<int>(g.ep.act)))
      .arg(g.ep.act_alpha)
      .arg(g.ep.act_beta);
}

int64_t num_batches(const ClGemm& g) {
  int64_t n = 1;
  for (int64_t d : g.batch) n *= d;
  return n;
}

}  // namespace

// The float storage macros, the fused activations and the output stage, which every linear
// kernel (and the mma variant) starts with.
const std::string& linear_prelude() {
  static const std::string prelude =
      std::string(embedded_kernel_source("float_storage")) + embedded_kernel_source("linear_activation") +
      embedded_kernel_source("epilogue_float");
  return prelude;
}

const std::string& linear_kernel_source(const std::string& name) {
  static const std::string conv = linear_prelude() + embedded_kernel_source("conv");
  static const std::string gemm = linear_prelude() + embedded_kernel_source("gemm");
  return name == "conv" ? conv : gemm;
}

Status mma_linear(ClRuntime& cl, const ClGemm& g, const mma::Problem& p, const mma::Tile& t, const std::string& what) {
  if (g.half != (p.elem == mma::Elem::kF16) || g.ta || g.a_off || g.b_off)
    return internal_error("the mma variant does not take " + what);
  auto args = [&](ClLaunch& l) {
    l.mem(g.C).arg(cl_int(g.c_off)).arg(g.alpha);
    epilogue_args(l, g);
  };
  const std::string fixed = mma::fixed_epilogue_options(static_cast<int>(g.ep.act), g.bias != nullptr,
                                                        g.residual ? static_cast<int>(g.ep.residual) : 0);
  mma::Epilogue epi{&linear_prelude(), linear_kernel_options(g.half), args, fixed, g.residual != nullptr};
  epi.paired_writes = true;  // kernels/epilogue_float.cl's MMA_EPI_WRITE2
  return mma::launch(cl, p, t, epi, what);
}

const char* linear_kernel_options(bool half, bool mad) {
  if (mad) return half ? "-cl-mad-enable -DKILN_HALF" : "-cl-mad-enable";
  return half ? "-DKILN_HALF" : "";
}

namespace {

Status own_gemm(ClRuntime& cl, const ClGemm& g, const std::string& what) {
  cl_kernel k;
  const GemmTile t = g.tile;
  if (t.ts <= 0 || t.wpt <= 0 || t.ts % t.wpt || (t.ts / t.wpt) * (t.ts / t.wpt) > 1024)
    return invalid_plan("bad tiled-GEMM tile " + std::to_string(t.ts) + "/" + std::to_string(t.wpt) + " for " + what);
  const std::string options = std::string(linear_kernel_options(g.half)) + " -DTS=" + std::to_string(t.ts) +
                              " -DWPT=" + std::to_string(t.wpt);
  KILN_TRY(cl.kernel(linear_kernel_source("gemm"), options, "gemm_tiled", &k));
  const int64_t nb = num_batches(g);
  ClLaunch l(cl, k, "gemm_tiled (" + what + ")");
  l.arg(cl_int(g.M)).arg(cl_int(g.N)).arg(cl_int(g.K)).arg(g.alpha);
  l.mem(g.A).arg(cl_int(g.a_off)).arg(cl_int(g.lda)).arg(cl_int(g.ta));
  l.mem(g.B).arg(cl_int(g.b_off)).arg(cl_int(g.ldb)).arg(cl_int(g.tb));
  l.mem(g.C).arg(cl_int(g.c_off)).arg(cl_int(g.ldc)).arg(cl_int(g.c_bstride));
  l.arg(cl_int(g.batch.size())).arg(dims8(g.batch)).arg(dims8(g.a_bstr)).arg(dims8(g.b_bstr));
  epilogue_args(l, g);
  const size_t wg = static_cast<size_t>(t.ts / t.wpt);
  const size_t global[3] = {static_cast<size_t>((g.N + t.ts - 1) / t.ts) * wg,
                            static_cast<size_t>((g.M + t.ts - 1) / t.ts) * wg, static_cast<size_t>(nb)};
  const size_t local[3] = {wg, wg, 1};
  return l.run(3, global, local);
}

Status clblast_gemm(ClRuntime& cl, const ClGemm& g, const std::string& what) {
  const int64_t nb = num_batches(g);
  cl_command_queue q = cl.queue();
  const auto ta = g.ta ? CLBlastTransposeYes : CLBlastTransposeNo;
  const auto tb = g.tb ? CLBlastTransposeYes : CLBlastTransposeNo;
  // CLBlast computes alpha*AB + beta*C; C holds garbage, so clear it rather than trust beta=0.
  const float zero = 0.f;
  const size_t c_bytes = static_cast<size_t>(((nb - 1) * g.c_bstride + (g.M - 1) * g.ldc + g.N) * 4);
  KILN_CL(clEnqueueFillBuffer(q, g.C, &zero, sizeof(zero), static_cast<size_t>(g.c_off) * 4, c_bytes, 0, nullptr,
                              nullptr),
          "clearing the output of " + what);
  // One uniform stride per operand: a single strided-batched call.
  int64_t a_stride = 0, b_stride = 0;
  bool uniform = g.batch.size() <= 1;
  if (g.batch.size() == 1) {
    a_stride = g.a_bstr[0];
    b_stride = g.b_bstr[0];
  }
  cl_event ev = nullptr;
  CLBlastStatusCode st;
  // CLBlast fills its per-device database and program caches on the first call of a
  // configuration, and two contexts doing that at once crashed inside Database construction on
  // the H100 (kiln bench --concurrency 4). So the first call of each (queue's device, shape,
  // layout) runs alone; once it has filled the caches, later calls of it run concurrently
  // (serializing all of them cut 4-context throughput by 40% there).
  static std::mutex clblast_mu;
  static std::set<std::string> clblast_warm;
  const std::string warm_key = std::to_string(reinterpret_cast<uintptr_t>(cl.device())) + ":" +
                               std::to_string(g.M) + "x" + std::to_string(g.N) + "x" + std::to_string(g.K) + ":" +
                               std::to_string(g.ta) + std::to_string(g.tb) + ":" + std::to_string(nb) + ":" +
                               std::to_string(uniform);
  std::unique_lock<std::mutex> lock(clblast_mu);
  const bool warm = clblast_warm.count(warm_key) != 0;
  if (warm) lock.unlock();
  if (nb == 1 || uniform) {
    if (nb == 1)
      st = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, g.M, g.N, g.K, g.alpha, g.A, g.a_off, g.lda, g.B, g.b_off,
                        g.ldb, 0.f, g.C, g.c_off, g.ldc, &q, &ev);
    else
      st = CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, g.M, g.N, g.K, g.alpha, g.A, g.a_off, g.lda,
                                      a_stride, g.B, g.b_off, g.ldb, b_stride, 0.f, g.C, g.c_off, g.ldc,
                                      g.c_bstride, nb, &q, &ev);
  } else {
    std::vector<size_t> ao(nb), bo(nb), co(nb);
    std::vector<float> alphas(nb, g.alpha), betas(nb, 0.f);
    std::vector<int64_t> idx(g.batch.size(), 0);
    for (int64_t b = 0; b < nb; ++b) {
      int64_t a = g.a_off, bb = g.b_off;
      for (size_t d = 0; d < g.batch.size(); ++d) {
        a += idx[d] * g.a_bstr[d];
        bb += idx[d] * g.b_bstr[d];
      }
      ao[b] = a;
      bo[b] = bb;
      co[b] = g.c_off + b * g.c_bstride;
      advance_index(idx, g.batch, g.batch.size());
    }
    st = CLBlastSgemmBatched(CLBlastLayoutRowMajor, ta, tb, g.M, g.N, g.K, alphas.data(), g.A, ao.data(), g.lda,
                             g.B, bo.data(), g.ldb, betas.data(), g.C, co.data(), g.ldc, nb, &q, &ev);
  }
  if (!warm && st == CLBlastSuccess) clblast_warm.insert(warm_key);
  if (lock.owns_lock()) lock.unlock();
  if (ev) clReleaseEvent(ev);
  KILN_TRY(clblast_status(st, "SGEMM " + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" +
                                   std::to_string(g.K) + " for " + what));
  if (!g.bias && !g.residual && g.ep.act == Activation::kNone) return Status::ok();
  cl_kernel k;
  KILN_TRY(cl.kernel(linear_kernel_source("gemm"), linear_kernel_options(g.half), "gemm_epilogue", &k));
  ClLaunch l(cl, k, "gemm_epilogue (" + what + ")");
  l.arg(cl_int(g.M)).arg(cl_int(g.N)).mem(g.C).arg(cl_int(g.c_off)).arg(cl_int(g.ldc)).arg(cl_int(g.c_bstride));
  epilogue_args(l, g);
  const size_t global[3] = {static_cast<size_t>(g.N), static_cast<size_t>(g.M), static_cast<size_t>(nb)};
  return l.run(3, global, nullptr);
}

bool has_extension(const ClRuntime& cl, const char* ext) {
  for (const std::string& e : cl.info().caps.extensions)
    if (e == ext) return true;
  return false;
}

// Half storage on a device with cl_khr_fp16: CLBlast's native-half GEMM (one matrix; beta 0
// with C cleared first, as for SGEMM), then the half epilogue kernel.
// Untested here: neither PoCL nor NVIDIA's OpenCL reports cl_khr_fp16.
Status clblast_hgemm(ClRuntime& cl, const ClGemm& g, const std::string& what) {
  cl_command_queue q = cl.queue();
  const cl_half zero = 0;
  const size_t c_bytes = static_cast<size_t>(((g.M - 1) * g.ldc + g.N) * sizeof(cl_half));
  KILN_CL(clEnqueueFillBuffer(q, g.C, &zero, sizeof(zero), static_cast<size_t>(g.c_off) * sizeof(cl_half), c_bytes,
                              0, nullptr, nullptr),
          "clearing the output of " + what);
  cl_event ev = nullptr;
  const CLBlastStatusCode st =
      CLBlastHgemm(CLBlastLayoutRowMajor, g.ta ? CLBlastTransposeYes : CLBlastTransposeNo,
                   g.tb ? CLBlastTransposeYes : CLBlastTransposeNo, g.M, g.N, g.K, float_to_half(g.alpha), g.A, g.a_off,
                   g.lda, g.B, g.b_off, g.ldb, zero, g.C, g.c_off, g.ldc, &q, &ev);
  if (ev) clReleaseEvent(ev);
  KILN_TRY(clblast_status(st, "HGEMM " + std::to_string(g.M) + "x" + std::to_string(g.N) + "x" +
                                   std::to_string(g.K) + " for " + what));
  if (!g.bias && !g.residual && g.ep.act == Activation::kNone) return Status::ok();
  cl_kernel k;
  KILN_TRY(cl.kernel(linear_kernel_source("gemm"), linear_kernel_options(true), "gemm_epilogue", &k));
  ClLaunch l(cl, k, "gemm_epilogue (" + what + ")");
  l.arg(cl_int(g.M)).arg(cl_int(g.N)).mem(g.C).arg(cl_int(g.c_off)).arg(cl_int(g.ldc)).arg(cl_int(g.c_bstride));
  epilogue_args(l, g);
  const size_t global[3] = {static_cast<size_t>(g.N), static_cast<size_t>(g.M), 1};
  return l.run(3, global, nullptr);
}

// ClRuntime::scratch slots of the float copies a widened half GEMM works on.
constexpr int kScratchWideA = 0x12, kScratchWideB = 0x13, kScratchWideC = 0x14;

// Half storage without native half: the operands widened to float scratch (whole buffers, so
// the element offsets and strides stay valid), CLBlast's SGEMM there, and the epilogue
// rounding into the half C. On PoCL this is as fast as FP32 plus the widening passes, where
// kiln's own tiled kernel is 2x slower than CLBlast on these sizes.
Status widened_clblast_gemm(ClRuntime& cl, const ClGemm& g, const std::string& what) {
  cl_kernel widen;
  KILN_TRY(cl.kernel(linear_kernel_source("gemm"), linear_kernel_options(true), "widen_half", &widen));
  // Elements [0, extent) of each operand: what the GEMM reads/writes at its offsets.
  auto extent = [&](int64_t off, const std::vector<int64_t>& bstr, int64_t rows, int64_t cols, int64_t ld) {
    int64_t e = off + (rows - 1) * ld + cols;
    for (size_t d = 0; d < g.batch.size() && d < bstr.size(); ++d) e += (g.batch[d] - 1) * bstr[d];
    return e;
  };
  auto widened = [&](cl_mem half, int slot, int64_t elems, bool copy, cl_mem* out) -> Status {
    size_t bytes = 0;
    KILN_CL(clGetMemObjectInfo(half, CL_MEM_SIZE, sizeof bytes, &bytes, nullptr), "sizing an operand of " + what);
    if (elems <= 0 || static_cast<size_t>(elems) * 2 > bytes)
      return internal_error("GEMM operand extent " + std::to_string(elems) + " outside its buffer for " + what);
    KILN_TRY(cl.scratch(slot, static_cast<size_t>(elems) * sizeof(float), out, "float copy of an operand of " + what));
    if (!copy) return Status::ok();
    return ClLaunch(cl, widen, "widen_half (" + what + ")").mem(half).mem(*out).arg(cl_int(elems)).run1d(elems, 256);
  };
  ClGemm f = g;
  f.half = false;
  f.bias = nullptr;
  f.residual = nullptr;
  f.ep = Epilogue{};
  const int64_t nb = num_batches(g);
  KILN_TRY(widened(g.A, kScratchWideA, extent(g.a_off, g.a_bstr, g.ta ? g.K : g.M, g.ta ? g.M : g.K, g.lda), true, &f.A));
  if (!g.b_float)
    KILN_TRY(widened(g.B, kScratchWideB, extent(g.b_off, g.b_bstr, g.tb ? g.N : g.K, g.tb ? g.K : g.N, g.ldb), true, &f.B));
  KILN_TRY(widened(g.C, kScratchWideC, g.c_off + (nb - 1) * g.c_bstride + (g.M - 1) * g.ldc + g.N, false, &f.C));
  KILN_TRY(clblast_gemm(cl, f, what));
  cl_kernel k;
  KILN_TRY(cl.kernel(linear_kernel_source("gemm"), linear_kernel_options(true), "gemm_epilogue_from_float", &k));
  ClLaunch l(cl, k, "gemm_epilogue_from_float (" + what + ")");
  l.arg(cl_int(g.M)).arg(cl_int(g.N)).mem(f.C).mem(g.C).arg(cl_int(g.c_off)).arg(cl_int(g.ldc)).arg(cl_int(g.c_bstride));
  epilogue_args(l, g);
  const size_t global[3] = {static_cast<size_t>(g.N), static_cast<size_t>(g.M), static_cast<size_t>(nb)};
  return l.run(3, global, nullptr);
}

}  // namespace

// The tiles the tiled variant offers (TS, WPT): 64/4 (16x16 items) is the all-round default,
// 32/2 wastes less on thin matrices, 128/8 reuses operands more on large ones.
constexpr GemmTile kGemmTiles[] = {{64, 4}, {32, 2}, {128, 8}};

std::vector<KernelChoice> gemm_path_choices(int64_t M, int64_t N, int64_t macs, const DeviceCaps& caps) {
  std::vector<KernelChoice> tiled;
  for (const GemmTile& t : kGemmTiles) tiled.push_back({kTiledVariant, {{"ts", t.ts}, {"wpt", t.wpt}}});
  if (std::min(M, N) <= 32) std::swap(tiled[0], tiled[1]);
  const KernelChoice clblast{kClblastVariant, {}};
  std::vector<KernelChoice> out;
  if (macs >= clblast_min_macs(caps)) out.push_back(clblast);
  out.insert(out.end(), tiled.begin(), tiled.end());
  if (macs < clblast_min_macs(caps)) out.push_back(clblast);
  return out;
}

GemmPath gemm_path_of(const KernelChoice& c) {
  return c.variant == kTiledVariant ? GemmPath::kTiled : c.variant == kClblastVariant ? GemmPath::kClblast : GemmPath::kAuto;
}

GemmTile gemm_tile_of(const KernelChoice& c) {
  GemmTile t;
  if (c.variant != kTiledVariant) return t;
  t.ts = static_cast<int>(c.param("ts", t.ts));
  t.wpt = static_cast<int>(c.param("wpt", t.wpt));
  return t;
}

namespace {

// The tiled kernel handles K == 0 (the epilogue on zeros); CLBlast rejects it.
bool uses_clblast(const ClRuntime& cl, const ClGemm& g) {
  if (g.K <= 0) return false;
  if (g.path != GemmPath::kAuto) return g.path == GemmPath::kClblast;
  return g.M * g.N * g.K * num_batches(g) >= clblast_min_macs(cl.info().caps);
}

}  // namespace

bool gemm_widens(const ClRuntime& cl, const ClGemm& g) {
  return g.half && uses_clblast(cl, g) && !(num_batches(g) == 1 && has_extension(cl, "cl_khr_fp16"));
}

Status cl_gemm(ClRuntime& cl, const ClGemm& g, const std::string& what) {
  if (g.M <= 0 || g.N <= 0) return Status::ok();
  const bool large = uses_clblast(cl, g);
  // Half storage: kiln's kernel with half loads/stores (FP32 math) for small GEMMs; large ones
  // through CLBlast: HGEMM where the device has native half, else SGEMM on widened copies.
  if (g.half) {
    if (gemm_widens(cl, g)) return widened_clblast_gemm(cl, g, what);
    if (g.b_float) return internal_error("float B for a half GEMM that is not widened (" + what + ")");
    return large ? clblast_hgemm(cl, g, what) : own_gemm(cl, g, what);
  }
  if (large) return clblast_gemm(cl, g, what);
  return own_gemm(cl, g, what);
}

}  // namespace kiln::linear
