// The tensor-core GEMM / implicit-GEMM convolution (kernels/mma_gemm.cl) behind the "mma" kernel
// variant of the float (FP16), integer (INT8) and FP8 linear op families. Each family maps its
// node onto a Problem and brings its own output stage (kernels/epilogue_*.cl); this file owns the
// tiles, the build options and the launch.
//
// The variant runs as inline PTX (mma.sync, ldmatrix, cp.async) on NVIDIA devices of compute
// capability 8.0 or newer (8.9 for FP8). KILN_MMA_EMULATE=1 offers it on any OpenCL device,
// emulated in plain OpenCL C with the same fragment layouts (slow: for testing it on PoCL).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/backends/opencl/qgemm_geometry.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/plan/plan.h"

namespace kiln::mma {

// Operand element types: kernels/mma_gemm.cl's MMA_ELEM (kTf32: FP32 operands rounded to TF32).
enum class Elem : int { kF16 = 1, kInt8 = 2, kFp8 = 3, kTf32 = 4 };
// Codes of 8-bit operands (kernels/mma_ops.cl).
enum Kind : int { kS8 = 0, kU8 = 1, kE4M3 = 2, kE5M2 = 3 };
// How B (the column side) is laid out: kernels/mma_gemm.cl's MMA_BMODE.
enum class BMode : int { kNK = 0, kKNVector = 1, kKNGather = 2, kConv = 3, kConvPointwise = 4 };
// How A (the row side) is read: kernels/mma_gemm.cl's MMA_AMODE. kConvRows: the implicit im2col
// of a channels-last convolution's x (runtime/ops/channels_last.h), rows = output positions of
// every image, geometry in `geo`; B is then the weights [M][kernel][C] (kNK) and the output
// [position][channel] (ldc = channels).
enum class AMode : int { kRows = 0, kConvRows = 1 };

// The tunable parameters of the variant: the output tile and its warps, the bytes of K a tile row
// holds per stage (32 or 64) and the shared-memory stages (more than 2 only where both operands
// arrive by cp.async; all of them within the 48 KB of __local an OpenCL work-group gets).
// `wg`: Hopper's wgmma (kernels/wgmma_ops.cl) instead of mma.sync, one warpgroup per 64 rows
// (wm = bm / 16, wn = 1), on compute capability 9.0 only (kernel choice parameter "wg").
// `splits`: the K tiles split over that many work-groups per output tile, the last of which adds
// up their partial sums before the output stage (kernel choice parameter "ks"; kernels/mma_gemm.cl's
// MMA_SPLITK), where the output tiles alone would leave most of the GPU idle (batch 1).
struct Tile {
  int bm = 128, bn = 128, wm = 2, wn = 4, kb = 64, stages = 2;
  bool wg = false;
  int splits = 1;
};
constexpr int kMaxSplits = 32;
constexpr const char* kVariant = "mma";
// __local a work-group may use on NVIDIA's OpenCL: 48 KB, less what the driver keeps (a 48 KB
// launch fails, 44 KB runs: ../shared/DEVICE.md). The tensor-core GEMMs and attention fit in it.
constexpr int64_t kLocalBytes = 44 * 1024;

struct Problem {
  Elem elem = Elem::kF16;
  int a_kind = kS8, b_kind = kS8;  // 8-bit operands only
  int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0;
  cl_mem A = nullptr, B = nullptr;
  AMode amode = AMode::kRows;
  BMode bmode = BMode::kNK;
  // Batch items (grid z): convolution groups, or the output batch dims of a matmul with the
  // element strides of A and B over them (0 = broadcast).
  int64_t batches = 1;
  std::vector<int64_t> batch_dims, a_bstride, b_bstride;
  ClConvGeo geo;                  // bmode kConv / kConvPointwise or amode kConvRows, else unused
  int64_t c_bstride = 0, ldc = 0;  // output of a matmul: ci = b * c_bstride + m * ldc + n
  // Bytes of a residual element that the family's output stage reads from a tile in __local
  // (kernels/mma_gemm.cl's MMA_RES_TILE) where the tile fits; 0: no residual, or one it reads
  // from global memory.
  int residual_tile_bytes = 0;
};

// Build options fixing the output stage's activation, bias and residual mode for one launch
// (kernels/linear_activation.cl's KILN_ACT / KILN_EPI_BIAS / KILN_EPI_RES), so the epilogue
// carries only the code it runs. `act` < 0: left to the run-time argument.
std::string fixed_epilogue_options(int act, bool has_bias, int res_mode);

// The family's side of a launch.
struct Epilogue {
  const std::string* prelude = nullptr;  // OpenCL C before mma_ops.cl, ending with its epilogue
  std::string options;                   // its build options
  std::function<void(ClLaunch&)> args;   // its kernel arguments (MMA_EPI_PARAMS)
  // fixed_epilogue_options() of this launch: added where the kernel runs as PTX (the code size
  // matters to the instruction cache there); emulated, one program serves every output stage,
  // which keeps the number of programs PoCL compiles (slowly) as it was.
  std::string fixed;
  bool residual = false;  // the output stage reads a residual (Problem::residual_tile_bytes: how)
  // The stage defines MMA_EPI_WRITE2 (two adjacent outputs in one store): matmul-shaped outputs
  // then run two columns per lane (kernels/mma_gemm.cl's MMA_EPI_VEC).
  bool paired_writes = false;
};

// Whether `caps` runs the variant for operands of type `e` (PTX, or KILN_MMA_EMULATE=1).
bool available(const DeviceCaps& caps, Elem e);
// Whether a kernel built for `caps` runs its warp operations as PTX (-D KILN_PTX=1), not emulated.
bool uses_ptx(const DeviceCaps& caps, Elem e);
// Whether the problem's layout suits the kernel (16-byte aligned rows where it copies vectors).
bool fits(const Problem& p);
// Whether a convolution's geometry is 1x1, stride 1, unpadded (its input is the GEMM's B).
bool pointwise(const ClConvGeo& g);
// The problem of an integer or FP8 GEMM in QGemm geometry (runtime/backends/quantize_geometry.h):
// a convolution over every image at once, or a matmul whose B is gathered from [K][N] or, with
// `b_packed`, read from the packed layout. False where the kernel does not fit it. A
// channels-last convolution's problem has the operands swapped (operands_swapped): A is x (the
// QGemm's column side, `b_kind`), B the weights, and the output channels are its columns.
bool quantized_problem(const QGemm& g, Elem elem, int a_kind, int b_kind, bool b_packed, Problem* p);
// Whether the tensor cores pay for `p`: 16 rows or more (a depthwise convolution's single row per
// group would leave 15/16 of each tile idle), or a matmul of few rows over a large B (a batch-1
// classifier: the portable kernel reads its 2048 x 1000 INT8 weights in 196 us on an H100, too
// few work-items to fill the GPU; the tiles, split over K, do it in a fraction of that).
bool worth_tensor_cores(const Problem& p);
// Whether the problem's A is the QGemm's column side (x) and B its row side (the weights).
inline bool operands_swapped(const Problem& p) { return p.amode == AMode::kConvRows; }
// The tiles and pipelines that run `p`, best first by the estimate in mma_gemm.cpp (waves and
// occupancy on `caps`, operand reuse, row width and spills as measured), as kernel choices.
// The first one splits K where split_count() says so; the same tile split 2, 4 and 8 ways (and
// unsplit, where the first is split) follow at the end, for --tune to time.
// The wgmma tiles among them come first where wgmma_first(caps) (Hopper) and the problem has more
// than 64 columns, last otherwise. On short reductions whose output stage reads a residual it can
// keep in __local (p.residual_tile_bytes), the tiles where that fits come first.
// A matmul whose smallest tile leaves SMs idle (batch 1) is latency-bound: there the tile,
// pipeline and split that a latency model (mma_gemm.cpp) finishes soonest come first instead.
std::vector<KernelChoice> choices(const Problem& p, const DeviceCaps& caps);
// Whether `p` is such a latency-bound matmul on `caps` (choices() then starts with its pick).
bool latency_bound(const Problem& p, const DeviceCaps& caps);
// Only the wgmma tiles that run `p` (none where the device does not offer them), best first.
std::vector<KernelChoice> wgmma_choices(const Problem& p, const DeviceCaps& caps);
// Whether the estimate ranks wgmma tiles before mma.sync's on `caps`: on a Hopper GPU, where the
// 4096^3 GEMMs ran 1.3x faster on them than on the best mma.sync tile
// (perf/results/2026-12-05-wgmma.md); when emulated elsewhere (KILN_MMA_EMULATE=1) they come
// last, so that the other tests keep testing mma.sync's.
bool wgmma_first(const DeviceCaps& caps);
bool tile_of(const KernelChoice& c, Tile* t);
// How many ways the tile `t` of `p` splits K on `caps` (1: not at all): only where the output
// tiles would leave most SMs of an NVIDIA GPU idle; the count minimizes the time modelled in
// mma_gemm.cpp (a K tile's latency for a work-group alone on its SM, the partial sums' traffic).
int split_count(const Problem& p, const Tile& t, const DeviceCaps& caps);
// Choices reading input `input` (a 2-D constant B [K, N]) packed (runtime/ops/kernel_api.h:
// transposed once on the device, rows padded), so B tiles arrive K-contiguous by cp.async
// instead of gathered: `packed`'s choices (of the packed problem) marked so, first, then `plain`.
std::vector<KernelChoice> with_packed_input(const std::vector<KernelChoice>& plain,
                                            const std::vector<KernelChoice>& packed, int input);
// Whether node input `i` is a 2-D constant that a variant may read packed.
bool packable(const PlanNode& n, const Plan& plan, int i);
// Whether a choice is one of the wgmma tiles.
inline bool is_wgmma(const KernelChoice& c) { return c.variant == kVariant && c.param("wg", 0) == 1; }
// Whether the chosen variant reads input `i` packed.
inline bool reads_packed(const KernelChoice& c, int i) { return c.param(kPackedInputParam, -1) == i; }

Status launch(ClRuntime& cl, const Problem& p, const Tile& t, const Epilogue& epi, const std::string& what);

}  // namespace kiln::mma
