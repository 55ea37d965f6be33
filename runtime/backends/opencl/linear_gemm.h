// The OpenCL GEMM driver shared by Gemm, MatMul and the GEMM path of Conv: picks kiln's own
// tiled kernel (kernels/gemm.cl, fused epilogue, no per-process compile cost beyond kiln's
// program cache) or CLBlast (large problems, followed by the epilogue kernel when needed).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/ops/linear_epilogue.h"
#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/device/cl_runtime.h"

namespace kiln::linear {

// Kiln's tiled kernel or CLBlast: the plan's choice (variants "tiled" / "clblast"), or by size
// for plans that carry none.
enum class GemmPath { kAuto, kTiled, kClblast };
constexpr const char* kTiledVariant = "tiled";
constexpr const char* kClblastVariant = "clblast";
// The tiled variant's parameters: TS x TS outputs per work-group, WPT x WPT per item.
struct GemmTile {
  int ts = 64, wpt = 4;
};
// Both paths (the tiled one in several tiles) for an M x N output of `macs` multiply-adds, the
// one the size rule prefers first (CLBlast from 2^26 multiply-adds on GPUs, 2^22 elsewhere: its
// per-process compile and launch costs against its faster large-matrix kernels).
std::vector<KernelChoice> gemm_path_choices(int64_t M, int64_t N, int64_t macs, const DeviceCaps& caps);
GemmPath gemm_path_of(const KernelChoice& c);
GemmTile gemm_tile_of(const KernelChoice& c);

struct ClGemm {
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.f;
  cl_mem A = nullptr;
  int64_t a_off = 0, lda = 0;
  bool ta = false;
  cl_mem B = nullptr;
  int64_t b_off = 0, ldb = 0;
  bool tb = false;
  cl_mem C = nullptr;
  int64_t c_off = 0, ldc = 0, c_bstride = 0;
  // Batches: index b splits over `batch` dims (row-major); A/B advance by a_bstr/b_bstr
  // elements per step of each dim (0 = broadcast). Empty: one matrix.
  std::vector<int64_t> batch, a_bstr, b_bstr;
  // Epilogue: bias (i, j) of batch b at bias[bias_off + (b % bias_bmod) * bias_bstride +
  // i * bias_rs + j * bias_cs] scaled by beta; residual laid out like C from res_off.
  float beta = 1.f;
  cl_mem bias = nullptr;
  int64_t bias_off = 0, bias_rs = 0, bias_cs = 0, bias_bstride = 0, bias_bmod = 1;
  cl_mem residual = nullptr;
  int64_t res_off = 0;
  Epilogue ep;
  // Every operand (A, B, C, bias, residual) stored as half (FP16 nodes); math stays float.
  bool half = false;
  // With `half`: B is already float (im2col wrote float columns); only where gemm_widens().
  bool b_float = false;
  GemmPath path = GemmPath::kAuto;
  GemmTile tile;
};

// Whether cl_gemm runs this half GEMM as CLBlast SGEMM on float copies of its operands (so a
// producer of B can write float directly: ClGemm::b_float).
bool gemm_widens(const ClRuntime& cl, const ClGemm& g);

// Enqueues the GEMM; `what` names the node in errors.
Status cl_gemm(ClRuntime& cl, const ClGemm& g, const std::string& what);

// kernels/<name>.cl (conv or gemm) with the float storage macros and the shared fused
// activations prepended; built once.
const std::string& linear_kernel_source(const std::string& name);

// Build options of the linear kernels: `base` plus -DKILN_HALF for half storage.
const char* linear_kernel_options(bool half, bool mad = true);

// The tensor-core variant of an FP16 GEMM: operands as `p` describes them (p.A, p.B set), output
// and fused epilogue as in `g` (half storage, no transposed A, no operand offsets).
Status mma_linear(ClRuntime& cl, const ClGemm& g, const mma::Problem& p, const mma::Tile& t, const std::string& what);

}  // namespace kiln::linear
