// The tensor-core ("mma") kernel variant of the linear op families: INT8 QLinearConv /
// QLinearMatMul, FP16 Conv / Gemm / MatMul and FP8 Fp8Conv / Fp8MatMul, on random shapes (tile
// edges, K tails, groups, strides, dilations, padding, 1-D to 3-D, batch broadcasts) against the
// CPU reference kernels. On PoCL the variant runs emulated in plain OpenCL C with the same
// fragment layouts as the PTX (kernels/mma_ops.cl): ctest runs these tests with
// KILN_MMA_EMULATE=1 (test mma_variant_emulated); on an NVIDIA GPU they run the real tensor cores
// (perf/device/). INT8 accumulates exactly in int32, so it must match the CPU bit for bit; FP16
// and FP8 sum in another order than the CPU, so they match within float rounding.
#include <filesystem>

#include "runtime/backends/opencl/mma_gemm.h"
#include "runtime/core/float8.h"
#include "runtime/core/npy.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/quantized_linear.h"
#include "tests/ops/graph_builder.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

#define REQUIRE_MMA()                                                                                  \
  if (!opencl_offers_mma(mma::Elem::kFp8)) GTEST_SKIP() << "no tensor cores (KILN_MMA_EMULATE=1 emulates them: ctest mma_variant_emulated)"

HostTensor random_int8(DType t, const Shape& s, std::mt19937& rng) {
  return random_tensor(t, s, rng, t == DType::kUInt8 ? 0 : -128, t == DType::kUInt8 ? 256 : 128);
}

// Random FP8 codes (no NaN) of values around [-2, 2].
HostTensor random_fp8(DType t, const Shape& s, std::mt19937& rng) {
  HostTensor f = random_tensor(DType::kFloat32, s, rng, -2, 2), h(t, s);
  for (int64_t i = 0; i < h.numel(); ++i) h.as<uint8_t>()[i] = float_to_float8(t, f.as<float>()[i], true);
  return h;
}

// Float outputs of FP8 products: Hopper's wgmma sums FP8 products in less than float32
// precision (on the H100, K = 96: 1e-4 relative, 1.2e-3 absolute at worst, around 2), the
// emulation and mma.sync in float32.
constexpr double kFp8SumRtol = 2e-3, kFp8SumAtol = 2e-3;

// Runs `spec` on the OpenCL device, checks that its node chose the mma variant, and compares
// with the CPU.
// `chosen`, when given, receives the node's choice.
::testing::AssertionResult mma_matches_cpu(const OpSpec& spec, double rtol, double atol,
                                           KernelChoice* chosen = nullptr) {
  std::vector<HostTensor> cl, cpu;
  Plan plan;
  Status st = run_op(spec, "opencl", &cl, &plan);
  if (!st) return ::testing::AssertionFailure() << "opencl: " << st.message();
  bool mma = false;
  for (const PlanNode& n : plan.nodes)
    if (n.backend == Backend::kOpenCL && n.choice.variant == "mma") {
      mma = true;
      if (chosen) *chosen = n.choice;
    }
  if (!mma) return ::testing::AssertionFailure() << spec.op_type << " did not choose the mma variant";
  st = run_op(spec, "cpu", &cpu);
  if (!st) return ::testing::AssertionFailure() << "cpu: " << st.message();
  for (size_t i = 0; i < cl.size(); ++i) {
    auto r = tensors_close(cl[i], cpu[i], rtol, atol);
    if (!r) return r << " (output " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

struct ConvCase {
  Shape x, w;
  int64_t group;
  std::vector<int64_t> strides, dil, pads;
};

Attributes conv_attrs(const ConvCase& c) {
  Attributes a;
  a.set("group", c.group);
  a.set("strides", c.strides);
  a.set("dilations", c.dil);
  a.set("pads", c.pads);
  a.set("kernel_shape", std::vector<int64_t>(c.w.begin() + 2, c.w.end()));
  return a;
}

// Geometries over the kernel's edges: K tails (Cg * kernel not a multiple of the 64-byte tile
// row), output columns (images x positions) past a tile, groups, 1-D and 3-D, dilation, padding.
std::vector<ConvCase> conv_cases() {
  return {
      {{1, 192, 4, 4}, {16, 192, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}},       // 3 K tiles
      {{2, 16, 9, 9}, {32, 16, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}},
      {{1, 3, 17, 15}, {16, 3, 7, 7}, 1, {2, 2}, {1, 1}, {3, 3, 3, 3}},       // the stem: K = 147
      {{3, 64, 5, 6}, {48, 64, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}},       // 1x1, N = 90
      {{2, 32, 8, 8}, {32, 16, 3, 3}, 2, {2, 1}, {1, 2}, {0, 1, 1, 0}},       // groups, dilation
      {{1, 24, 40}, {40, 24, 5}, 1, {1}, {1}, {2, 2}},                        // 1-D
      {{1, 8, 4, 5, 6}, {16, 8, 3, 3, 3}, 1, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}},  // 3-D
      {{4, 128, 7, 7}, {130, 128, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}},    // M past a tile
      {{3, 32, 4, 6}, {48, 16, 1, 1}, 2, {1, 1}, {1, 1}, {0, 0, 0, 0}},       // pointwise, 8 | H*W
  };
}

TEST(MmaVariant, Int8ConvMatchesCpuExactly) {
  REQUIRE_MMA();
  std::mt19937 rng(31);
  int i = 0;
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE("x " + shape_str(c.x) + " w " + shape_str(c.w));
    const DType tx = i % 2 ? DType::kUInt8 : DType::kInt8, ty = i % 3 ? DType::kInt8 : DType::kUInt8;
    const int64_t M = c.w[0];
    OpSpec s{"QLinearConv", 10, conv_attrs(c),
             {random_int8(tx, c.x, rng), scalar_of(DType::kFloat32, 0.05), scalar_of(tx, 0), random_int8(DType::kInt8, c.w, rng),
              random_tensor(DType::kFloat32, i % 2 ? Shape{M} : Shape{}, rng, 0.01, 0.05),
              i % 2 ? HostTensor(DType::kInt8, {M}) : scalar_of(DType::kInt8, 0), scalar_of(DType::kFloat32, 2.0 + i),
              scalar_of(ty, ty == DType::kUInt8 ? 100 : -3), random_tensor(DType::kInt32, {M}, rng, -3000, 3000)},
             {false, true, true, true, true, true, true, true, true}};
    EXPECT_TRUE(mma_matches_cpu(s, 0, 0));
    ++i;
  }
}

TEST(MmaVariant, Int8MatMulMatchesCpuExactly) {
  REQUIRE_MMA();
  std::mt19937 rng(32);
  struct Case {
    Shape a, b;
  };
  const Case cases[] = {{{64, 64}, {64, 64}}, {{37, 100}, {100, 70}}, {{3, 20, 33}, {33, 130}},
                        {{2, 3, 16, 9}, {3, 9, 24}}, {{130, 256}, {256, 17}}};
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE("a " + shape_str(c.a) + " b " + shape_str(c.b));
    const DType ta = i % 2 ? DType::kUInt8 : DType::kInt8, ty = i % 2 ? DType::kUInt8 : DType::kInt8;
    const int64_t N = c.b.back();
    OpSpec s{"QLinearMatMul", 10, {},
             {random_int8(ta, c.a, rng), scalar_of(DType::kFloat32, 0.02), scalar_of(ta, 0), random_int8(DType::kInt8, c.b, rng),
              random_tensor(DType::kFloat32, i % 2 ? Shape{N} : Shape{}, rng, 0.01, 0.05), scalar_of(DType::kInt8, 0),
              scalar_of(DType::kFloat32, 1.5), scalar_of(ty, ty == DType::kUInt8 ? 128 : 5)},
             {false, true, true, true, true, true, true, true}};
    KernelChoice chosen;
    EXPECT_TRUE(mma_matches_cpu(s, 0, 0, &chosen));
    // A 2-D constant B is read packed (transposed once on the device); a batched one gathered.
    EXPECT_EQ(chosen.param("packed_input", -1), c.b.size() == 2 ? 3 : -1) << chosen.str();
    ++i;
  }
}

// The split-K choices (kernel choice parameter "ks"): SplitKMatchesCpu runs them; the sweeps
// below leave them out, since where a device splits a tile they add to the choices they count.
bool split_k(const KernelChoice& c) { return c.variant == mma::kVariant && c.param("ks", 1) > 1; }

bool only_64x64(const KernelChoice& c) {
  return c.variant == mma::kVariant && c.param("bm", 0) == 64 && c.param("bn", 0) == 64 && !split_k(c);
}

// Every work-group shape with 32-byte rows in two stages (the one pipeline every shape runs
// packed and gathered), and every pipeline of the 64x64 shape.
bool shape_or_pipeline_sweep(const KernelChoice& c) {
  return only_64x64(c) ||
         (c.variant == mma::kVariant && !mma::is_wgmma(c) && c.param("kb", 64) == 32 && c.param("st", 2) == 2 &&
          !split_k(c));
}

// A QLinearMatMul of a random A (type `ta`, zero point 0) and a constant random INT8 B, INT8 out.
OpSpec qlinear_matmul(DType ta, const Shape& a, const Shape& b, std::mt19937& rng) {
  return OpSpec{"QLinearMatMul", 10, {},
                {random_int8(ta, a, rng), scalar_of(DType::kFloat32, 0.02), scalar_of(ta, 0), random_int8(DType::kInt8, b, rng),
                 scalar_of(DType::kFloat32, 0.03), scalar_of(DType::kInt8, 0), scalar_of(DType::kFloat32, 1.5),
                 scalar_of(DType::kInt8, 3)},
                {false, true, true, true, true, true, true, true}};
}

// A QLinearConv of a random UINT8 x (zero point 0) and random INT8 weights, INT8 out.
OpSpec qlinear_conv(const ConvCase& c, std::mt19937& rng) {
  return OpSpec{"QLinearConv", 10, conv_attrs(c),
                {random_int8(DType::kUInt8, c.x, rng), scalar_of(DType::kFloat32, 0.05), scalar_of(DType::kUInt8, 0),
                 random_int8(DType::kInt8, c.w, rng), scalar_of(DType::kFloat32, 0.02), scalar_of(DType::kInt8, 0),
                 scalar_of(DType::kFloat32, 1.0), scalar_of(DType::kInt8, 1)},
                {false, true, true, true, true, true, true, true}};
}

// GELU as the fused activation (fuse_gelu's Gelu/GeluTanh) in the tensor-core output stages: an
// FP16 Gemm with bias, and an INT8 QLinearMatMul that requantizes after it (the FFN's first
// layer in an INT8 BERT). The device's erf/tanh may differ from the CPU's in the last bit, so a
// requantized output may land one step away where GELU's value sits at a rounding boundary.
TEST(MmaVariant, GeluEpiloguesMatchCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(35);
  for (const char* act : {"Gelu", "GeluTanh"}) {
    SCOPED_TRACE(act);
    OpSpec f{"Gemm", 13, {},
             {random_tensor(DType::kFloat32, {80, 96}, rng), random_tensor(DType::kFloat32, {96, 130}, rng, -0.3, 0.3),
              random_tensor(DType::kFloat32, {130}, rng)},
             {false, true, true}};
    f.attrs.set("activation", std::string(act));
    f.precision = "fp16";
    EXPECT_TRUE(mma_matches_cpu(f, 2e-2, 2e-2));
    OpSpec q = qlinear_matmul(DType::kInt8, {70, 96}, {96, 130}, rng);
    q.attrs.set("activation", std::string(act));
    EXPECT_TRUE(mma_matches_cpu(q, 0, 1));
  }
}

TEST(MmaVariant, EveryTileAndPackingMatchesCpuExactly) {
  REQUIRE_MMA();
  std::mt19937 rng(37);
  // B [96, 80] constant: every tile, with B packed (transposed on the device: both operands by
  // cp.async, so every pipeline) and gathered (two stages).
  const OpSpec s = qlinear_matmul(DType::kInt8, {70, 96}, {96, 80}, rng);
  // Emulated, every variant would take minutes: a sweep of the shapes, and one of the pipelines.
  int runs = 0;
  EXPECT_TRUE(every_variant_matches_cpu(s, 0, 0, &runs, shape_or_pipeline_sweep));
  // 5 shapes x packed/gathered, 3 more pipelines packed and 1 more gathered at 64x64, portable.
  EXPECT_EQ(runs, 10 + 4 + 1);

  // A pointwise convolution (B transposed in registers, 4 x 4 bytes per item) on every shape.
  const OpSpec conv = qlinear_conv({{2, 96, 6, 6}, {72, 96, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}}, rng);
  runs = 0;
  EXPECT_TRUE(every_variant_matches_cpu(conv, 0, 0, &runs, shape_or_pipeline_sweep));
  EXPECT_EQ(runs, 5 + 1 + 1) << "5 shapes with 32-byte rows, 64-byte rows at 64x64, portable";
}

// An FP16 Gemm of A [m, k] and a constant B ([k, n], or [n, k] with transB) plus a bias.
OpSpec fp16_gemm(int64_t m, int64_t n, int64_t k, int transB, std::mt19937& rng) {
  Attributes a;
  a.set("transB", int64_t{transB});
  OpSpec s{"Gemm", 13, a,
           {random_tensor(DType::kFloat32, {m, k}, rng),
            random_tensor(DType::kFloat32, transB ? Shape{n, k} : Shape{k, n}, rng, -0.2, 0.2),
            random_tensor(DType::kFloat32, {n}, rng)},
           {false, true, true}};
  s.precision = "fp16";
  return s;
}

// Every pipeline (of the 64x64 shape) of the 16-bit (ldmatrix.trans for a [K][N] B, also a
// pointwise convolution's) and 32-bit (TF32) layouts, several K tiles deep so that the deeper
// pipelines wrap around their stages.
// The output stage's paired columns (kernels/mma_gemm.cl's MMA_EPI_VEC = 2): tiles whose warps
// span 64 or more columns (128x128 with 2x2 warps; wgmma's 128x128) store two adjacent outputs per
// lane where N, the rows and the batch items are even (a FP16 Gemm with bias and a batched TF32
// MatMul), one where N is odd.
bool wide_warp_tiles(const KernelChoice& c) {
  return c.variant == mma::kVariant && c.param("bm", 0) == 128 && c.param("bn", 0) == 128 &&
         c.param("bn", 0) / c.param("wn", 1) >= 64 && c.param("kb", 64) == 64 && c.param("st", 2) == 2 &&
         c.param("packed_input", -1) < 0 && !split_k(c);
}

TEST(MmaVariant, PairedOutputColumnsMatchCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(39);
  for (int64_t n : {136, 133}) {
    SCOPED_TRACE("fp16 gemm n " + std::to_string(n));
    int runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(fp16_gemm(70, n, 48, 1, rng), 2e-2, 2e-2, &runs, wide_warp_tiles));
    EXPECT_GE(runs, 2 + 3) << "two wide tiles; the portable kernels";
  }
  OpSpec mm{"MatMul", 17, {}, {random_tensor(DType::kFloat32, {2, 33, 40}, rng), random_tensor(DType::kFloat32, {2, 40, 130}, rng)},
            {false, false}};
  mm.allow_tf32 = true;
  int runs = 0;
  EXPECT_TRUE(every_variant_matches_cpu(mm, 5e-3, 5e-3, &runs, wide_warp_tiles));
  EXPECT_GE(runs, 1 + 1);
}

TEST(MmaVariant, EveryPipelineOfFp16AndTf32MatchesCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(38);
  for (int tb = 0; tb < 2; ++tb) {
    SCOPED_TRACE("fp16 gemm transB " + std::to_string(tb));
    const OpSpec s = fp16_gemm(40, 72, 200, tb, rng);
    int runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(s, 2e-2, 2e-2, &runs, only_64x64));
    // Both layouts arrive by cp.async: every pipeline; then the portable kernels of the Gemm and of
    // the plan's two FP16 conversions.
    EXPECT_EQ(runs, 4 + 3);
  }
  {
    SCOPED_TRACE("fp16 pointwise conv");
    const ConvCase c{{3, 96, 4, 6}, {40, 96, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}};
    OpSpec s{"Conv", 17, conv_attrs(c),
             {random_tensor(DType::kFloat32, c.x, rng), random_tensor(DType::kFloat32, c.w, rng, -0.2, 0.2)},
             {false, true}};
    s.precision = "fp16";
    int runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(s, 2e-2, 2e-2, &runs, only_64x64));
    EXPECT_EQ(runs, 4 + 3);
  }
  OpSpec mm{"MatMul", 17, {}, {random_tensor(DType::kFloat32, {33, 136}, rng), random_tensor(DType::kFloat32, {136, 24}, rng)},
            {false, true}};
  mm.allow_tf32 = true;
  int runs = 0;
  EXPECT_TRUE(every_variant_matches_cpu(mm, 5e-3, 5e-3, &runs, only_64x64));
  EXPECT_EQ(runs, 4 + 2 + 1) << "B packed: every pipeline; gathered: two; portable";
}

// The wgmma tiles (Hopper; emulated from their shared-memory descriptors on PoCL): every tile and
// pipeline of an INT8 matmul with B packed, and per operand type the layouts wgmma is offered
// for: B gathered, B transposed in registers (pointwise convolution), an implicit-GEMM
// convolution (FP16 too, 1x1 and 3x3), FP16 with B packed or K-contiguous (Gemm transB) and FP8.
TEST(MmaVariant, EveryWgmmaTileMatchesCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(39);
  // K = 208: three 64-byte K tiles (so the pipelines wrap) and a tail; M, N past one tile.
  const OpSpec s = qlinear_matmul(DType::kUInt8, {140, 208}, {208, 136}, rng);
  // Emulated, each tile takes PoCL ~10 s to build: every pipeline of 64x128, every shape in 32-byte
  // rows, the default tile gathered.
  auto sweep = [](const KernelChoice& c) {
    if (!mma::is_wgmma(c) || split_k(c)) return false;
    if (c.param("packed_input", -1) < 0) return c.param("bm", 0) == 128 && c.param("bn", 0) == 128 && c.param("kb", 64) == 64;
    return (c.param("bm", 0) == 64 && c.param("bn", 0) == 128) || (c.param("kb", 64) == 32 && c.param("st", 2) == 2);
  };
  int runs = 0;
  EXPECT_TRUE(every_variant_matches_cpu(s, 0, 0, &runs, sweep));
  EXPECT_EQ(runs, 5 + 4 + 1 + 1) << "packed: 5 pipelines + 4 shapes; gathered: 1; portable";

  auto two_stage_128 = [](const KernelChoice& c) {
    return mma::is_wgmma(c) && c.param("bm", 0) == 128 && c.param("bn", 0) == 128 && c.param("kb", 64) == 64 &&
           c.param("st", 2) == 2 && !split_k(c);
  };
  const ConvCase convs[] = {{{2, 96, 6, 6}, {72, 96, 1, 1}, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}},
                            {{2, 40, 9, 9}, {130, 40, 3, 3}, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}}};
  for (const ConvCase& c : convs) {
    SCOPED_TRACE("int8 conv w " + shape_str(c.w));
    const OpSpec conv = qlinear_conv(c, rng);
    runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(conv, 0, 0, &runs, two_stage_128));
    EXPECT_EQ(runs, 1 + 1);
  }
  for (int tb = 0; tb < 2; ++tb) {
    SCOPED_TRACE("fp16 gemm transB " + std::to_string(tb));
    const OpSpec g = fp16_gemm(70, 136, 200, tb, rng);
    runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(g, 2e-2, 2e-2, &runs, two_stage_128));
    EXPECT_EQ(runs, 1 + 3) << "the tile; the portable Gemm and the two FP16 conversions";
  }
  for (const ConvCase& c : convs) {
    // The 1x1 one with B gathered [n][k] (mma.sync reads it [k][n], 8 positions at a time).
    SCOPED_TRACE("fp16 conv w " + shape_str(c.w));
    OpSpec conv{"Conv", 17, conv_attrs(c),
                {random_tensor(DType::kFloat32, c.x, rng), random_tensor(DType::kFloat32, c.w, rng, -0.2, 0.2)},
                {false, true}};
    conv.precision = "fp16";
    runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(conv, 2e-2, 2e-2, &runs, two_stage_128));
    EXPECT_EQ(runs, 1 + 3);
  }
  {
    SCOPED_TRACE("fp8 matmul");
    OpSpec f{"Fp8MatMul", 19, {},
             {random_fp8(DType::kFloat8E4M3FN, {2, 40, 96}, rng), scalar_of(DType::kFloat32, 0.5),
              random_fp8(DType::kFloat8E5M2, {96, 136}, rng), random_tensor(DType::kFloat32, {136}, rng, 0.05, 0.5),
              scalar_of(DType::kFloat32, 1)},
             {false, true, true, true, true}};
    f.attrs.set("output_dtype", static_cast<int64_t>(DType::kFloat32));
    runs = 0;
    EXPECT_TRUE(every_variant_matches_cpu(f, kFp8SumRtol, kFp8SumAtol, &runs, two_stage_128));
    EXPECT_EQ(runs, 2 + 1) << "packed and gathered; portable";
  }
}

TEST(MmaVariant, Fp16ConvGemmMatMulMatchCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(33);
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE("x " + shape_str(c.x) + " w " + shape_str(c.w));
    OpSpec s{"Conv", 17, conv_attrs(c),
             {random_tensor(DType::kFloat32, c.x, rng), random_tensor(DType::kFloat32, c.w, rng, -0.2, 0.2),
              random_tensor(DType::kFloat32, {c.w[0]}, rng)},
             {false, true, true}};
    s.precision = "fp16";
    EXPECT_TRUE(mma_matches_cpu(s, 2e-2, 2e-2));
  }
  struct Case {
    Shape a, b;
    bool b_const;
  };
  const Case mm[] = {{{64, 64}, {64, 64}, true},   {{37, 100}, {100, 70}, true},     {{3, 20, 33}, {33, 130}, true},
                     {{2, 3, 16, 24}, {3, 24, 40}, false}, {{130, 256}, {256, 17}, false}};
  for (const Case& c : mm) {
    SCOPED_TRACE("matmul a " + shape_str(c.a) + " b " + shape_str(c.b));
    OpSpec s{"MatMul", 17, {}, {random_tensor(DType::kFloat32, c.a, rng), random_tensor(DType::kFloat32, c.b, rng)},
             {false, c.b_const}};
    s.precision = "fp16";
    EXPECT_TRUE(mma_matches_cpu(s, 2e-2, 3e-2));
  }
  for (int tb = 0; tb < 2; ++tb) {
    SCOPED_TRACE("gemm transB " + std::to_string(tb));
    Attributes a;
    a.set("transB", int64_t{tb});
    a.set("alpha", 0.5f);
    OpSpec s{"Gemm", 13, a,
             {random_tensor(DType::kFloat32, {50, 72}, rng),
              random_tensor(DType::kFloat32, tb ? Shape{90, 72} : Shape{72, 90}, rng),
              random_tensor(DType::kFloat32, {90}, rng)},
             {false, true, true}};
    s.precision = "fp16";
    EXPECT_TRUE(mma_matches_cpu(s, 2e-2, 2e-2));
  }
}

TEST(MmaVariant, Tf32OnlyWhenAllowedAndWithinTf32Rounding) {
  REQUIRE_MMA();
  std::mt19937 rng(36);
  // TF32 keeps 10 mantissa bits: products carry ~5e-4 relative error, sums stay float32.
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE("x " + shape_str(c.x) + " w " + shape_str(c.w));
    OpSpec s{"Conv", 17, conv_attrs(c),
             {random_tensor(DType::kFloat32, c.x, rng), random_tensor(DType::kFloat32, c.w, rng, -0.2, 0.2),
              random_tensor(DType::kFloat32, {c.w[0]}, rng)},
             {false, true, true}};
    s.allow_tf32 = true;
    EXPECT_TRUE(mma_matches_cpu(s, 5e-3, 5e-3));
  }
  OpSpec mm{"MatMul", 17, {}, {random_tensor(DType::kFloat32, {3, 37, 100}, rng), random_tensor(DType::kFloat32, {100, 70}, rng)},
            {false, true}};
  mm.allow_tf32 = true;
  EXPECT_TRUE(mma_matches_cpu(mm, 5e-3, 5e-3));
  // Without --allow-tf32 an FP32 node never takes the tensor cores.
  mm.allow_tf32 = false;
  Plan plan;
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(mm, "opencl", &out, &plan).is_ok());
  for (const PlanNode& n : plan.nodes) EXPECT_NE(n.choice.variant, "mma") << n.name;
}

TEST(MmaVariant, Fp8ConvMatMulMatchCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(34);
  const DType e4 = DType::kFloat8E4M3FN, e5 = DType::kFloat8E5M2;
  int i = 0;
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE("x " + shape_str(c.x) + " w " + shape_str(c.w));
    const DType tx = i % 3 == 2 ? e5 : e4, tw = i % 2 ? e5 : e4, ty = i % 2 ? DType::kFloat32 : e4;
    OpSpec s{"Fp8Conv", 19, conv_attrs(c),
             {random_fp8(tx, c.x, rng), scalar_of(DType::kFloat32, 0.25), random_fp8(tw, c.w, rng),
              random_tensor(DType::kFloat32, {c.w[0]}, rng, 0.01, 0.05), scalar_of(DType::kFloat32, ty == e4 ? 0.05 : 1),
              random_tensor(DType::kFloat32, {c.w[0]}, rng)},
             {false, true, true, true, true, true}};
    s.attrs.set("output_dtype", static_cast<int64_t>(ty));
    // FP8 outputs may land one code apart where the float sums differ in the last bits.
    EXPECT_TRUE(mma_matches_cpu(s, ty == e4 ? 0.07 : kFp8SumRtol, ty == e4 ? 0.02 : kFp8SumAtol));
    ++i;
  }
  OpSpec s{"Fp8MatMul", 19, {},
           {random_fp8(e4, {3, 40, 96}, rng), scalar_of(DType::kFloat32, 0.5), random_fp8(e5, {96, 72}, rng),
            random_tensor(DType::kFloat32, {72}, rng, 0.05, 0.5), scalar_of(DType::kFloat32, 1)},
           {false, true, true, true, true}};
  s.attrs.set("output_dtype", static_cast<int64_t>(DType::kFloat32));
  EXPECT_TRUE(mma_matches_cpu(s, kFp8SumRtol, kFp8SumAtol));
}

// Split-K (kernels/mma_gemm.cl's MMA_SPLITK): the K tiles of each output tile spread over 2, 4 and
// 8 work-groups, the last of which adds up their partial sums before the output stage. INT8
// exactly (int32 partial sums): a matmul with B packed (the cp.async pipeline; a K range that ends in the
// K tail), a batched one with B gathered, an NCHW 3x3 convolution (the gathered im2col) with
// groups; FP16 with a bias and FP8 within their rounding. A range past the last K tile (9 tiles
// split 4 ways: ranges of 3) stays empty and adds zeros. Each runs every split choice offered (of
// the first tile, packed and not) and the portable kernel.
TEST(MmaVariant, SplitKMatchesCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(41);
  struct Run {
    OpSpec spec;
    double rtol, atol;
    int splits;  // split choices offered, at least
  };
  std::vector<Run> runs;
  runs.push_back({qlinear_matmul(DType::kUInt8, {24, 550}, {550, 40}, rng), 0, 0, 2});
  runs.push_back({qlinear_matmul(DType::kInt8, {2, 20, 512}, {2, 512, 36}, rng), 0, 0, 2});
  runs.push_back({qlinear_conv({{2, 64, 6, 5}, {32, 32, 3, 3}, 2, {1, 1}, {1, 1}, {1, 1, 1, 1}}, rng), 0, 0, 1});
  OpSpec f16 = fp16_gemm(20, 72, 600, 1, rng);
  runs.push_back({f16, 2e-2, 2e-2, 2});
  OpSpec f8{"Fp8MatMul", 19, {},
            {random_fp8(DType::kFloat8E4M3FN, {18, 512}, rng), scalar_of(DType::kFloat32, 0.5),
             random_fp8(DType::kFloat8E4M3FN, {512, 40}, rng), random_tensor(DType::kFloat32, {40}, rng, 0.05, 0.5),
             scalar_of(DType::kFloat32, 1)},
            {false, true, true, true, true}};
  f8.attrs.set("output_dtype", static_cast<int64_t>(DType::kFloat32));
  runs.push_back({f8, kFp8SumRtol, 4 * kFp8SumAtol, 2});
  for (const Run& r : runs) {
    SCOPED_TRACE(r.spec.op_type + " x " + shape_str(r.spec.inputs[0].shape()));
    int ran = 0;
    EXPECT_TRUE(every_variant_matches_cpu(r.spec, r.rtol, r.atol, &ran, split_k));
    EXPECT_GE(ran, r.splits + 1) << "split choices and the portable kernel";
  }

  // One context runs a split plan three times (then from its recorded launches) on two different
  // inputs: each run's output is the CPU's, which it is only if every run left the tile counters
  // at zero (else no work-group would find itself last, and the output keep the last run's).
  OpSpec other = runs[0].spec;
  other.inputs[0] = random_int8(other.inputs[0].dtype(), other.inputs[0].shape(), rng);
  const OpSpec* specs[2] = {&runs[0].spec, &other};
  std::vector<HostTensor> want[2];
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(run_op(*specs[i], "cpu", &want[i]).is_ok());
  auto plan = std::make_shared<Plan>();
  ASSERT_TRUE(build_op_plan(other, "opencl", plan.get()).is_ok());
  ResolvedDevice dev;
  ASSERT_TRUE(resolve_device("opencl", &dev).is_ok());
  bool split = false;
  for (PlanNode& n : plan->nodes)
    for (const KernelChoice& c : opencl_variants(n, *plan, dev.caps))
      if (!split && split_k(c)) {
        n.choice = c;
        split = true;
      }
  ASSERT_TRUE(split);
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(plan, "opencl", &ctx, &notice).is_ok());
  const PlanTensor& y = plan->tensors[plan->outputs[0]];
  HostTensor got(y.dtype, y.shape);
  ASSERT_TRUE(ctx->bind_output(y.name, got.data(), got.size_bytes()).is_ok());
  for (int run = 0; run < 3; ++run) {
    ASSERT_TRUE(bind_op_inputs(*ctx, *plan, *specs[run % 2]).is_ok());
    ASSERT_TRUE(ctx->run().is_ok());
    EXPECT_TRUE(tensors_close(got, want[run % 2][0], 0, 0)) << "run " << run;
  }
}

// The first choice for the square GEMMs timed on Hopper (perf/results/2026-12-05-h200-pipelines.md,
// 2026-12-05-wgmma.md). With B packed (INT8, FP8; FP16's constant B too, by linear.cpp) the wgmma
// tile 128x192 in two stages of 64-byte rows: the fastest of every candidate for FP16, INT8 and
// FP8 on the H100 (1.13-1.17x the 128x128 wgmma tile, 1.3x the best mma.sync tile). With an
// N-contiguous FP16 B, which wgmma does not read, mma.sync's 128x128 on 2x4 warps, 64-byte rows,
// two stages (the fastest there, or within 2%). No device needed.
// Channels-last convolutions (runtime/ops/channels_last.h, kernels/mma_gemm.cl MMA_AMODE 1) of
// every 2-D, group-1 geometry above whose channels fill 16-byte runs: INT8 bit for bit against
// the CPU's NCHW kernel; FP8 (float output) within its summation order (k runs kernel offset
// first channels-last); FP16 within half rounding.
// `spec` built channels-last on the OpenCL device (its convolution on the tensor cores) against
// the CPU's NCHW kernel.
::testing::AssertionResult channels_last_matches_cpu(OpSpec spec, double rtol, double atol) {
  std::vector<HostTensor> cl, cpu;
  Plan plan;
  spec.layout = ActivationLayout::kChannelsLast;
  Status st = run_op(spec, "opencl", &cl, &plan);
  if (!st) return ::testing::AssertionFailure() << "opencl: " << st.message();
  const int mma = channels_last_on_mma(plan);
  if (mma != 1) return ::testing::AssertionFailure() << "no channels-last " << spec.op_type << " on the tensor cores";
  spec.layout = ActivationLayout::kChannelsFirst;
  st = run_op(spec, "cpu", &cpu);
  if (!st) return ::testing::AssertionFailure() << "cpu: " << st.message();
  return tensors_close(cl[0], cpu[0], rtol, atol);
}

TEST(MmaVariant, ChannelsLastConvsMatchCpu) {
  REQUIRE_MMA();
  std::mt19937 rng(39);
  int cases = 0;
  for (const ConvCase& c : conv_cases()) {
    if (c.x.size() != 4 || c.group != 1 || c.x[1] % 16) continue;
    SCOPED_TRACE("x " + shape_str(c.x) + " w " + shape_str(c.w));
    EXPECT_TRUE(channels_last_matches_cpu(qlinear_conv(c, rng), 0, 0));
    const DType e4 = DType::kFloat8E4M3FN;
    OpSpec f{"Fp8Conv", 19, conv_attrs(c),
             {random_fp8(e4, c.x, rng), scalar_of(DType::kFloat32, 0.25), random_fp8(e4, c.w, rng),
              random_tensor(DType::kFloat32, {c.w[0]}, rng, 0.01, 0.05), scalar_of(DType::kFloat32, 1),
              random_tensor(DType::kFloat32, {c.w[0]}, rng)},
             {false, true, true, true, true, true}};
    f.attrs.set("output_dtype", static_cast<int64_t>(DType::kFloat32));
    EXPECT_TRUE(channels_last_matches_cpu(f, kFp8SumRtol, kFp8SumAtol));
    OpSpec h{"Conv", 17, conv_attrs(c),
             {random_tensor(DType::kFloat32, c.x, rng), random_tensor(DType::kFloat32, c.w, rng, -0.2, 0.2),
              random_tensor(DType::kFloat32, {c.w[0]}, rng)},
             {false, true, true}};
    h.precision = "fp16";
    EXPECT_TRUE(channels_last_matches_cpu(h, 2e-2, 2e-2));
    ++cases;
  }
  EXPECT_EQ(cases, 4);
}

// The capabilities of an H100/H200 as NVIDIA's OpenCL reports them (132 SMs, compute capability 9.0).
DeviceCaps hopper_caps() {
  DeviceCaps c;
  c.kind = "opencl";
  c.vendor = "NVIDIA Corporation";
  c.compute_units = 132;
  c.compute_capability = 90;
  return c;
}

TEST(MmaVariant, EstimatePicksWhatHopperTimings) {
  DeviceCaps h200 = hopper_caps();
  for (int64_t n : {4096, 8192}) {
    mma::Problem f16;
    f16.elem = mma::Elem::kF16;
    f16.M = f16.N = f16.K = f16.lda = f16.ldb = n;
    f16.bmode = mma::BMode::kKNVector;
    mma::Problem f16_packed = f16, i8 = f16, f8 = f16;
    f16_packed.bmode = mma::BMode::kNK;
    i8.elem = mma::Elem::kInt8;
    i8.bmode = mma::BMode::kNK;  // B packed
    f8.elem = mma::Elem::kFp8;
    f8.bmode = mma::BMode::kNK;
    EXPECT_EQ(mma::choices(f16, h200).front().str(), "mma[bm=128,bn=128,wm=2,wn=4]") << n;
    for (const mma::Problem* p : {&f16_packed, &i8, &f8}) {
      const KernelChoice c = mma::choices(*p, h200).front();
      EXPECT_EQ(c.str(), "mma[bm=128,bn=192,wm=8,wn=1,wg=1]") << n << " elem " << static_cast<int>(p->elem);
    }
  }
  // Not Hopper (compute capability 8.9, or 10.0 where wgmma is gone): mma.sync first (and no
  // wgmma tile at all, unless KILN_MMA_EMULATE=1 appends the emulated ones).
  for (uint32_t cc : {89u, 100u}) {
    h200.compute_capability = cc;
    mma::Problem i8;
    i8.elem = mma::Elem::kInt8;
    i8.M = i8.N = i8.K = i8.lda = i8.ldb = 4096;
    EXPECT_FALSE(mma::is_wgmma(mma::choices(i8, h200).front())) << cc;
  }
}

// Batch 1 on Hopper's 132 SMs: ResNet-50's layer-4 3x3 convolution channels-last (49 positions x
// 512 channels, K = 4608: 4 output tiles) and BERT-base's FFN output (128 x 768, K = 3072) split K
// so that each SM has a work-group; at batch 128 their tiles fill the GPU and nothing splits. A
// batch-1 classifier (1 x 1000, K = 2048) takes the tensor cores, split; a depthwise convolution's
// single row does not.
// The problem of a channels-last convolution: `positions` output positions (every image's) by
// `channels` output channels over K = kernel size x `c` input channels.
mma::Problem channels_last_problem(mma::Elem e, int64_t positions, int64_t channels, int64_t k, int64_t c) {
  mma::Problem p;
  p.elem = e;
  p.amode = mma::AMode::kConvRows;
  p.bmode = mma::BMode::kNK;
  p.M = positions;
  p.N = p.ldc = channels;
  p.K = p.ldb = k;
  p.lda = c;
  return p;
}

TEST(MmaVariant, SplitsKWhereTheTilesLeaveTheGpuIdle) {
  const DeviceCaps h100 = hopper_caps();
  const mma::Problem conv = channels_last_problem(mma::Elem::kF16, 49, 512, 4608, 512);
  mma::Problem ffn;
  ffn.elem = mma::Elem::kInt8;
  ffn.bmode = mma::BMode::kNK;
  ffn.M = 128;
  ffn.N = ffn.ldc = 768;
  ffn.K = ffn.lda = ffn.ldb = 3072;
  for (const mma::Problem& p : {conv, ffn}) {
    mma::Tile t;
    ASSERT_TRUE(mma::tile_of(mma::choices(p, h100).front(), &t));
    const int64_t groups = (p.M + t.bm - 1) / t.bm * ((p.N + t.bn - 1) / t.bn);
    EXPECT_GT(t.splits, 2) << mma::choices(p, h100).front().str();
    EXPECT_LE(groups * t.splits, 132);
    mma::Problem big = p;
    big.M *= 128;
    ASSERT_TRUE(mma::tile_of(mma::choices(big, h100).front(), &t));
    EXPECT_EQ(t.splits, 1) << mma::choices(big, h100).front().str();
  }
  mma::Problem fc = ffn;
  fc.M = 1;
  fc.N = fc.ldc = 1000;
  fc.K = fc.lda = fc.ldb = 2048;
  EXPECT_TRUE(mma::worth_tensor_cores(fc));
  mma::Tile t;
  ASSERT_TRUE(mma::tile_of(mma::choices(fc, h100).front(), &t));
  EXPECT_GT(t.splits, 1);
  mma::Problem depthwise = conv;
  depthwise.amode = mma::AMode::kRows;
  depthwise.bmode = mma::BMode::kConv;
  depthwise.M = 1;
  EXPECT_FALSE(mma::worth_tensor_cores(depthwise));
  // A large GEMM is offered no split even for --tune: 8192^3 INT8's partial sums would take over
  // 256 MiB split two ways (launch() would run it unsplit).
  mma::Problem large = ffn;
  large.M = large.N = large.ldc = large.K = large.lda = large.ldb = 8192;
  for (const KernelChoice& c : mma::choices(large, h100)) EXPECT_FALSE(split_k(c)) << c.str();
  // Not an NVIDIA GPU: never split by the estimate.
  DeviceCaps other = h100;
  other.vendor = "Portable Computing Language";
  ASSERT_TRUE(mma::tile_of(mma::choices(conv, other).front(), &t));
  EXPECT_EQ(t.splits, 1);
}

// Batch 1's 128-row MatMuls are latency-bound: the latency model's tile comes first, as --tune
// found on an H100 (perf/results/2026-12-07-qkv.md): BERT-base's 128 x 768 x 768 and 128 x 2304
// x 768 products on 64x64 tiles with three stages, unsplit (12.1-12.5 us, against 15.3-15.5 us
// for the 128x128 wgmma tile split 4 ways that ranked first by throughput), the FFN output's
// K = 3072 split with every work-group on its own SM; the next two by the model follow, for
// --tune. Products at batch 128 fill the GPU: no split among their first three.
TEST(MmaVariant, LatencyBoundMatMulsTakeTheLatencyModelsTile) {
  const DeviceCaps h100 = hopper_caps();
  auto problem = [](mma::Elem e, int64_t m, int64_t n, int64_t k) {
    mma::Problem p;
    p.elem = e;
    p.bmode = mma::BMode::kNK;
    p.M = m;
    p.N = p.ldc = n;
    p.K = p.lda = p.ldb = k;
    return p;
  };
  for (mma::Elem e : {mma::Elem::kF16, mma::Elem::kInt8})
    for (int64_t n : {768, 2304}) {
      const mma::Problem p = problem(e, 128, n, 768);
      const std::vector<KernelChoice> list = mma::choices(p, h100);
      EXPECT_EQ(list.front().str(), "mma[bm=64,bn=64,wm=2,wn=2,kb=64,st=3]") << n;
      EXPECT_TRUE(mma::latency_bound(p, h100));
      for (size_t i = 0; i < list.size(); ++i) EXPECT_EQ(std::count(list.begin(), list.end(), list[i]), 1) << list[i].str();
    }
  const mma::Problem ffn = problem(mma::Elem::kF16, 128, 768, 3072);
  mma::Tile t;
  ASSERT_TRUE(mma::tile_of(mma::choices(ffn, h100).front(), &t));
  EXPECT_GT(t.splits, 1);
  EXPECT_LE((ffn.M + t.bm - 1) / t.bm * ((ffn.N + t.bn - 1) / t.bn) * t.splits, 132);
  const mma::Problem big = problem(mma::Elem::kF16, 128 * 128, 768, 768);
  EXPECT_FALSE(mma::latency_bound(big, h100));
  const std::vector<KernelChoice> big_list = mma::choices(big, h100);
  ASSERT_GE(big_list.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_FALSE(split_k(big_list[i])) << big_list[i].str();
  // Not an NVIDIA GPU (no model of its latency): no pick.
  DeviceCaps other = h100;
  other.vendor = "Portable Computing Language";
  EXPECT_FALSE(mma::latency_bound(ffn, other));
}

// A short reduction whose 8-bit output stage reads a residual it can keep in __local (ResNet's
// channels-last 1x1 expansions): the tiles where that tile fits come first; a long one (or one
// without a residual) keeps the estimate's order.
TEST(MmaVariant, ShortReductionsWithAResidualPreferTilesThatKeepIt) {
  const DeviceCaps h100 = hopper_caps();
  mma::Problem p = channels_last_problem(mma::Elem::kInt8, 128 * 28 * 28, 512, 128, 128);
  const std::string plain = mma::choices(p, h100).front().str();
  EXPECT_EQ(plain, "mma[bm=128,bn=192,wm=8,wn=1,wg=1]");
  for (int bytes : {1, 2}) {
    p.residual_tile_bytes = bytes;
    const KernelChoice first = mma::choices(p, h100).front();
    mma::Tile t;
    ASSERT_TRUE(mma::tile_of(first, &t));
    // What the tile needs in __local: the staging rows (16 x 40 words a warp) and the residual.
    EXPECT_LE(int64_t{t.wm} * t.wn * 16 * 40 * 4 + int64_t{t.bm} * t.bn * bytes, mma::kLocalBytes) << first.str();
    EXPECT_NE(first.str(), plain) << bytes;
  }
  p.K = p.lda = p.ldb = 2048;
  EXPECT_EQ(mma::choices(p, h100).front().str(), "mma[bm=128,bn=192,wm=8,wn=1,wg=1]");
}

// FP8 post-training quantization of a residual block, channels-last on the tensor cores: the 1x1
// convolution's output stage keeps its fused residual tile in __local (kernels/epilogue_fp8.cl
// MMA_RES_TILE); against the cpu reference kernels' NCHW plan, built from the same calibration.
TEST(MmaVariant, Fp8ResidualTileMatchesCpu) {
  if (!opencl_offers_mma(mma::Elem::kFp8)) GTEST_SKIP() << "no FP8 tensor cores (KILN_MMA_EMULATE=1 emulates them)";
  const std::string dir = ::testing::TempDir() + "/kiln_mma_fp8_residual_calib";
  std::filesystem::create_directories(dir);
  std::mt19937 rng(41);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(write_npy(dir + "/" + std::to_string(i) + ".npy", random_tensor(DType::kFloat32, {2, 16, 8, 8}, rng)).is_ok());
  const HostTensor x = random_tensor(DType::kFloat32, {2, 16, 8, 8}, rng);
  // x -> a = Relu(Conv 3x3 16 -> 32) -> Relu(Conv 1x1 32 -> 32 of a + a) -> output (a build
  // rewrites its graph: one builder per plan).
  auto build = [&](const std::string& device, std::shared_ptr<Plan>* plan) {
    std::mt19937 wrng(42);
    GraphBuilder g;
    const std::string in = g.input(x);
    Attributes pads;
    pads.set("pads", std::vector<int64_t>(4, 1));
    const std::string a = g.node(
        "Relu", {g.node("Conv", {in, g.constant(random_tensor(DType::kFloat32, {32, 16, 3, 3}, wrng, -0.2, 0.2)),
                                 g.constant(random_tensor(DType::kFloat32, {32}, wrng, -0.1, 0.1))},
                        pads)});
    const std::string b = g.node("Conv", {a, g.constant(random_tensor(DType::kFloat32, {32, 32, 1, 1}, wrng, -0.3, 0.3)),
                                          g.constant(random_tensor(DType::kFloat32, {32}, wrng, -0.1, 0.1))});
    g.output(g.node("Relu", {g.node("Add", {b, a})}));
    BuildOptions o;
    o.device = device;
    o.precision = "fp8";
    o.calib_dir = dir;
    return g.build(plan, o);
  };
  std::shared_ptr<Plan> cl_plan, cpu_plan;
  Status st = build("opencl", &cl_plan);
  ASSERT_TRUE(st.is_ok()) << st.message();
  int residual_on_mma = 0;
  for (const PlanNode& n : cl_plan->nodes)
    residual_on_mma += n.op == "Fp8Conv" && is_channels_last(n.attrs) && n.choice.variant == mma::kVariant &&
                       n.inputs.size() > kFp8ResidualInput && n.inputs[kFp8ResidualInput] >= 0;
  EXPECT_EQ(residual_on_mma, 1);
  ASSERT_TRUE(build("cpu", &cpu_plan).is_ok());
  std::vector<HostTensor> want;
  {
    ScopedEnv ref("KILN_CPU_REFERENCE", "1");
    ASSERT_TRUE(run_plan(cpu_plan, {x}, &want).is_ok());
  }
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  ASSERT_TRUE(ExecutionContext::create(cl_plan, "opencl", &ctx, &notice).is_ok());
  ASSERT_TRUE(ctx->bind_input(cl_plan->tensors[cl_plan->inputs[0]].name, x.dtype(), x.shape(), x.data(), x.size_bytes()).is_ok());
  const PlanTensor& y = cl_plan->tensors[cl_plan->outputs[0]];
  HostTensor got(y.dtype, y.shape);
  ASSERT_TRUE(ctx->bind_output(y.name, got.data(), got.size_bytes()).is_ok());
  st = ctx->run();
  ASSERT_TRUE(st.is_ok()) << st.message();
  // FP8 intermediates may land one code apart where the sums differ in their last bits.
  EXPECT_TRUE(tensors_close(got, want[0], 0.07, 0.05));
}

TEST(MmaVariant, NotOfferedWithoutTensorCores) {
  if (!have_opencl() || opencl_offers_mma(mma::Elem::kF16)) GTEST_SKIP() << "the device offers the variant";
  std::mt19937 rng(35);
  const ConvCase c = conv_cases()[0];
  OpSpec s{"Conv", 17, conv_attrs(c),
           {random_tensor(DType::kFloat32, c.x, rng), random_tensor(DType::kFloat32, c.w, rng)}, {false, true}};
  s.precision = "fp16";
  Plan plan;
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "opencl", &out, &plan).is_ok());
  for (const PlanNode& n : plan.nodes) EXPECT_NE(n.choice.variant, "mma") << n.name;
}

}  // namespace
}  // namespace kiln::test
