// Tensor-core GEMM and implicit-GEMM convolution (mma.sync through kernels/mma_ops.cl, which
// also emulates it on devices without PTX). Per batch item b (get_group_id(2)):
//   acc[m][n] = sum_k A[m][k] * B[k][n]
// A (the row side: weights of a convolution, the left operand of a matmul) is K-contiguous:
// element (m, k) at A[a_off + m * lda + k]. B (the column side) is, by -D MMA_BMODE:
//   0  K-contiguous:  B[b_off + n * ldb + k]           (Gemm transB, repacked weights)
//   1  N-contiguous:  B[b_off + k * ldb + n], f16 only, loaded with cp.async
//   2  N-contiguous, gathered element by element (8-bit operands, unaligned rows)
//   3  convolution: the implicit im2col of an NCHW x whose columns n run over (image, output
//      position) of every image (so small feature maps still fill the tiles); batch item b is
//      the group. kernels/qgemm_geometry.cl's ConvGeo describes it.
//   4  pointwise convolution (1x1, stride 1, no padding): as 3, but B is [k][position] in each
//      image. f16 (positions per image a multiple of 8): 8 columns arrive by one cp.async, as in
//      mode 1. 8-bit (a multiple of 4): each item loads 4 columns x 4 rows as 4 words and
//      transposes them in registers into the [n][k] words the tile keeps.
// Operands: -D MMA_ELEM=1 f16 (m16n8k16), 2 8-bit integers (m16n8k32, int32 accumulation), 3 FP8
// (m16n8k32, float accumulation), 4 FP32 through TF32 (m16n8k8, operands rounded to TF32 as
// they reach the tensor cores); the 8-bit kinds are MMA_A_KIND / MMA_B_KIND (mma_ops.cl).
// Tiles: a work-group of MMA_WM x MMA_WN warps computes MMA_BM x MMA_BN outputs, stepping K by
// MMA_BK elements (MMA_BK * ES = 32 or 64 bytes per tile row) through MMA_STAGES shared-memory
// stages. When both operands arrive by cp.async, MMA_STAGES - 1 tiles are in flight while one
// computes (MMA_PENDING = MMA_STAGES - 2 copy groups may still be pending when a tile is used):
// the latency of global/L2 reads is hidden only by enough tiles in flight, and the 48 KB of
// __local an OpenCL work-group gets allows 4 stages of 32-byte rows at 128x128. Gathered tiles
// (word by word through registers) use two stages: the next tile's words are loaded into
// registers while the current one computes.
// Shared memory is not padded but XOR-swizzled in 16-byte chunks (SWZ), so the 8 rows an
// ldmatrix reads hit 8 different bank groups without wasting a fifth of the 48 KB on padding.
// -D MMA_AVEC=1: A rows are 16-byte aligned (cp.async); 0: loaded word by word.
// -D MMA_AMODE=1: A is the implicit im2col of a channels-last convolution's x, its rows the
// output positions of every image (B then holds the weights [M][kernel][C], mode 0), so the
// output [position][channel] is the channels-last output; K-contiguous rows, copied by cp.async.
// -D MMA_WGMMA=1 (Hopper): each warpgroup of 4 warps multiplies its 64 rows of the tile by all
// MMA_BN columns with wgmma straight from shared memory (kernels/wgmma_ops.cl), MMA_WM = MMA_BM / 16
// and MMA_WN = 1, so every warp's 16 rows x MMA_BN columns of accumulators are laid out as
// mma.sync's and the epilogue is shared. B is then always kept [n][k] (f16 convolutions gather
// it so), the layout wgmma reads K-major.
// Results go through the family epilogue prepended by the host (kernels/epilogue_*.cl), which
// defines MMA_EPI_PARAMS (its kernel parameters), MMA_EPI_OUT_T, MMA_EPI_VALUE(v, b, row, m, n, ci)
// (output element ci's value, of that type, from accumulator v; it may read ci's residual),
// MMA_EPI_WRITE(ci, y) and optionally MMA_EPI_PREP(b) (declarations computed once per work-group
// before the stores) and MMA_EPI_COLS(n) (declarations of column n computed once per column a lane
// finishes, before its rows: per-column scales and biases loaded once, not per element).
// The accumulators reach the output stage through shared memory (the stages are free by then),
// 16 rows x 32 columns of a warp at a time, so that a warp stores 32 consecutive columns of one
// row per instruction (coalesced, and in NCHW convolutions 32 consecutive positions) instead of
// 2 columns of 8 rows straight from the fragments, and each lane divides its column into (image,
// position) once per pass. On an H100 this made ResNet-50 FP16 at batch 128 1.30x faster (its
// 1x1 convolutions 1.7x), INT8 1.09x, BERT-base FP16 1.23x (perf/results/2026-12-06-h100-epilogue.md).

#define MMA_THREADS (MMA_WM * MMA_WN * 32)
#ifndef MMA_AMODE
#define MMA_AMODE 0
#endif
#ifndef MMA_EPI_VEC
#define MMA_EPI_VEC 1
#endif
#ifndef MMA_SPLITK
#define MMA_SPLITK 0
#endif
#if MMA_ELEM == 1
#define ES 2
#define KSTEP 16
typedef float acc_t;
#elif MMA_ELEM == 2
#define ES 1
#define KSTEP 32
typedef int acc_t;
#elif MMA_ELEM == 3
#define ES 1
#define KSTEP 32
typedef float acc_t;
#else
#define ES 4
#define KSTEP 8
typedef float acc_t;
#endif
#define EPW (4 / ES)                 // elements per 32-bit word
#define WTM (MMA_BM / MMA_WM)        // warp tile
#define WTN (MMA_BN / MMA_WN)
#define MI (WTM / 16)
#define NI (WTN / 8)
#define ROWB (MMA_BK * ES)           // bytes of a K-contiguous tile row
#define SROW ROWB
#define A_BYTES (MMA_BM * SROW)
// f16 with an N-contiguous B keeps B as [k][n] (ldmatrix.trans); everything else as [n][k].
#define B_KN (MMA_ELEM == 1 && MMA_BMODE != 0 && !MMA_WGMMA)
#if B_KN
#define SROWB (MMA_BN * 2)
#define B_BYTES (MMA_BK * SROWB)
#else
#define B_BYTES (MMA_BN * SROW)
#endif
// Byte `byte` of row `row` in a tile of `rowb`-byte rows: its 16-byte chunk XOR-ed with the row's
// place among the rows that share a 128-byte bank line, so that 8 consecutive rows read at one
// logical chunk land in 8 distinct bank groups.
#define SWZ_L(rowb) ((rowb) >= 128 ? 1 : 128 / (rowb))
#define SWZ_X(rowb) ((rowb) / 16 < 8 ? (rowb) / 16 : 8)
#define SWZ(row, byte, rowb) \
  ((row) * (rowb) + ((((byte) >> 4) ^ (((row) / SWZ_L(rowb)) % SWZ_X(rowb))) << 4) + ((byte) & 15))
#define STAGE_BYTES (A_BYTES + B_BYTES)
// Loops over the accumulators, unrolled for the tensor cores: an array indexed at run time
// lives in local memory (NVIDIA's compiler spilled the mma.sync accumulators for a rolled
// epilogue; unrolled, ResNet-50 INT8 at batch 128 ran 6% faster on an H100). The emulation
// keeps them rolled (PoCL compiles it faster).
#if KILN_PTX
#define ACC_UNROLL _Pragma("unroll")
#else
#define ACC_UNROLL
#endif
#define GATHER_A (!MMA_AVEC)
#define GATHER_B (MMA_BMODE == 2 || MMA_BMODE == 3 || (MMA_BMODE == 4 && !B_KN))
// 8-bit B rows of 4-aligned columns, transposed in registers 4 x 4 bytes at a time: pointwise
// convolutions, and N-contiguous B (mode 2) whose rows and batch items start 4-byte aligned
// (-D MMA_B4=1).
#define B_T4 (!B_KN && (MMA_BMODE == 4 || (MMA_BMODE == 2 && MMA_B4)))
#define B_BLOCKS (MMA_BN * ROWB / 16)                              // 4 x 4 blocks of a B tile
#define B_BLKS ((B_BLOCKS + MMA_THREADS - 1) / MMA_THREADS)        // per item
#define IS_CONV (MMA_BMODE >= 3)
#define PIPELINED (!GATHER_A && !GATHER_B)
#define WG_OVERLAP (MMA_WGMMA && PIPELINED && MMA_STAGES >= 3)
#if !PIPELINED && MMA_STAGES != 2
#error "gathered tiles use two stages"
#endif
#define STAGE(t) (((t) % MMA_STAGES) * STAGE_BYTES)
#if WTN % (32 * MMA_EPI_VEC)
#error "the staged epilogue takes warp tiles of a multiple of 32 (paired: 64) columns"
#endif
// -D MMA_EPI_VEC=2 (host: matmul-shaped outputs whose rows, batch items and N are even, warp
// tiles of a multiple of 64 columns, families that define MMA_EPI_WRITE2(ci, y0, y1)): each lane
// stages, finishes and stores two adjacent columns, so a warp stores 64 columns of a row per
// instruction and each output costs half the index arithmetic and stores. Why: the FP16 1x1
// convolutions channels-last wrote ~1 TB/s whatever the tile. Measured (H100): ResNet-50's layer2
// 1x1s 1.15x faster, layer1's 256-channel ones (K = 64) 0.75x, a wash over the network; BERT-base
// FP16 ~3% faster (perf/results/2026-12-06-fp16nhwc.md; KILN_MMA_PAIRED_COLUMNS=0 turns it off).
// The staged epilogue's rows: 32 (or 64) accumulators and 8 words of padding, so that the 8 rows
// of a half-warp's 8-byte writes (lane / 4) fall into distinct banks.
#define EPI_COLS (32 * MMA_EPI_VEC)
#define EPI_ROW_WORDS (EPI_COLS + 8)
#define EPI_BYTES ((MMA_THREADS / 32) * 16 * EPI_ROW_WORDS * 4)
// -D MMA_RES_TILE=RB (host: matmul-shaped outputs whose rows start 16-byte aligned, where it fits
// in __local): the output stage's residual, RB bytes an element, is copied for the whole
// MMA_BM x MMA_BN tile by cp.async before the stage starts, after the staging rows; the family's
// MMA_EPI_VALUE reads element (m, n) at MMA_RES_AT(m, n) and names its residual MMA_EPI_RES_PTR.
// Why: read a row at a time, an 8-bit residual kept 512 bytes in flight per warp, which left
// INT8's residual layers at a quarter of the bandwidth FP16's reached (ResNet-50's 1x1
// expansions, perf/results/2026-12-06-nhwc.md).
#ifndef MMA_RES_TILE
#define MMA_RES_TILE 0
#endif
#if MMA_EPI_VEC != 1 && (IS_CONV || MMA_RES_TILE || MMA_ELEM == 2)
#error "paired output columns take float accumulators of matmul-shaped outputs without a residual tile"
#endif
#define RES_TILE_BYTES (MMA_BM * MMA_BN * MMA_RES_TILE)
#define MMA_RES_AT(m, n) (smem + EPI_BYTES + ((m) - m0) * (MMA_BN * MMA_RES_TILE) + ((n) - n0) * MMA_RES_TILE)
#define SMEM_BYTES (MMA_STAGES * STAGE_BYTES > EPI_BYTES + RES_TILE_BYTES ? MMA_STAGES * STAGE_BYTES : EPI_BYTES + RES_TILE_BYTES)
// A pass's 16 rows go EPI_GROUP at a time: the group's values first (their loads in flight
// together), then its stores, which the compiler may not move loads across (the output could
// alias an input). Groups stay rolled, so the output stage is inlined 4-8 times, not 64: fully
// unrolled, the 8-bit stages (an exact division, FP8 encoding) made 200-280 KB programs, beyond
// the instruction cache. The host sets EPI_GROUP (a divisor of 16) per problem where the kernel
// runs as PTX (mma_gemm.cpp's output_rows_in_flight); these are the defaults.
#ifndef EPI_GROUP
#if MMA_ELEM == 1 || MMA_ELEM == 4
#define EPI_GROUP 4
#else
#define EPI_GROUP 2
#endif
#endif
#ifndef MMA_EPI_PREP
#define MMA_EPI_PREP(b)
#endif
#ifndef MMA_EPI_COLS
#define MMA_EPI_COLS(n)
#endif
// Row r of an output group: its value(s) y[r] (and y1[r]) stored at ci[r].
#if MMA_EPI_VEC == 2
#define EPI_STORE_ROW(r) MMA_EPI_WRITE2(ci[r], y[r], y1[r])
#else
#define EPI_STORE_ROW(r) MMA_EPI_WRITE(ci[r], y[r])
#endif
// Element (k, n) of a pointwise convolution's B (mode 4): channel k of column n's image.
#define POINTWISE_AT(k, n) ((long)((n) / geo.v[21] * geo.v[18] + b * geo.v[19] + (k)) * geo.v[21] + (n) % geo.v[21])
// for (c = tid; c < total; c += MMA_THREADS), unrolled: the trip count is a build-time constant,
// and NVIDIA's OpenCL compiler left the plain loop rolled (a branch per 16-byte copy).
#define CHUNKS(c, total)                                                                            \
  _Pragma("unroll") for (int it_ = 0; it_ < ((total) + MMA_THREADS - 1) / MMA_THREADS; ++it_)       \
    for (int c = tid + it_ * MMA_THREADS, once_ = 1; once_ && ((total) % MMA_THREADS == 0 || c < (total)); once_ = 0)
// Words each item gathers per tile.
#define A_WORDS (MMA_BM * ROWB / 4 / MMA_THREADS)
#if B_KN
#define B_WORDS (MMA_BK * MMA_BN / 2 / MMA_THREADS)
#else
#define B_WORDS (MMA_BN * ROWB / 4 / MMA_THREADS)
#endif

#if MMA_ELEM == 1
typedef ushort elem_t;
#elif MMA_ELEM == 4
typedef uint elem_t;
#else
typedef uchar elem_t;
#endif

// One im2col row k of the current tile: the input offset it adds and its kernel offsets.
typedef struct { int off, dz, dy, dx; } KDec;
// One output column n: where its receptive field starts.
typedef struct { int base, bz, by, bx; } ColBase;

inline ColBase conv_col(int n, int N, int b, ConvGeo geo) {
  ColBase c;
  const int P = geo.v[3] * geo.v[4] * geo.v[5];
  if (n >= N) {
    c.base = 0;
    c.bz = -(1 << 29);  // every tap out of bounds, whatever the row adds
    c.by = c.bx = 0;
    return c;
  }
  const int img = n / P, p = n % P;
  const int ox = p % geo.v[5], oy = (p / geo.v[5]) % geo.v[4], oz = p / (geo.v[4] * geo.v[5]);
  c.bz = oz * geo.v[9] - geo.v[15];
  c.by = oy * geo.v[10] - geo.v[16];
  c.bx = ox * geo.v[11] - geo.v[17];
  c.base = (img * geo.v[18] + b * geo.v[19]) * geo.v[21] + (c.bz * geo.v[1] + c.by) * geo.v[2] + c.bx;
  return c;
}

inline KDec conv_kdec(int k, int K, ConvGeo geo) {
  KDec d;
  if (k >= K) {
    d.off = 0;
    d.dz = 1 << 28;  // out of bounds for every column
    d.dy = d.dx = 0;
    return d;
  }
  const int ks = geo.v[22];
  const int c = k / ks, kr = k % ks;
  const int kx = kr % geo.v[8], ky = (kr / geo.v[8]) % geo.v[7], kz = kr / (geo.v[7] * geo.v[8]);
  d.dz = kz * geo.v[12];
  d.dy = ky * geo.v[13];
  d.dx = kx * geo.v[14];
  d.off = c * geo.v[21] + (d.dz * geo.v[1] + d.dy) * geo.v[2] + d.dx;
  return d;
}

inline uint conv_load(__global const elem_t* B, ColBase c, KDec d, ConvGeo geo) {
  const int iz = c.bz + d.dz, iy = c.by + d.dy, ix = c.bx + d.dx;
  if ((uint)iz >= (uint)geo.v[0] || (uint)iy >= (uint)geo.v[1] || (uint)ix >= (uint)geo.v[2]) return 0;
  return (uint)B[c.base + d.off];
}

// -D MMA_SPLITK=1 (host: mma_gemm.cpp's split_count, where the output tiles alone would leave most
// SMs idle, as at batch 1): grid z runs batch items x `kslices`, and each work-group multiplies one
// range of the K tiles. It writes its raw accumulators to `part` (slice after slice, each tile's
// in the order a work-item holds them: element e of item tid at e * MMA_THREADS + tid, coalesced)
// and counts itself in its tile's `counters` entry; the last of a tile's work-groups to arrive sums
// every slice's accumulators in slice order (deterministic), resets the count to zero for the next
// launch and runs the output stage. One launch, not a second one that adds up: at batch 1 a launch
// costs ~5.5 us on an H100 (perf/results/2026-12-07-b1.md), more than most tiles' sums.
#if MMA_SPLITK
#define MMA_SPLIT_PARAMS , __global acc_t* part, __global int* counters, int kslices
#else
#define MMA_SPLIT_PARAMS
#endif

__kernel __attribute__((reqd_work_group_size(MMA_THREADS, 1, 1)))
void mma_gemm(__global const elem_t* A, __global const elem_t* B, int M, int N, int K, int lda, int ldb,
              int nbd, Dims bdims, Dims a_bs, Dims b_bs, ConvGeo geo, int c_bstride,
              int ldc MMA_SPLIT_PARAMS MMA_EPI_PARAMS) {
  // wgmma's swizzle is of address bits: tiles start at multiples of 1024 bytes.
  __local uchar smem[SMEM_BYTES] __attribute__((aligned(MMA_WGMMA ? 1024 : 16)));
#if MMA_BMODE == 3
  __local KDec kdec[2][MMA_BK];
#endif
  MMA_XCH_DECL
  const int tid = get_local_id(0), lane = tid % 32, warp = tid / 32;
  const int wm0 = (warp % MMA_WM) * WTM, wn0 = (warp / MMA_WM) * WTN;
  const int n0 = get_group_id(0) * MMA_BN, m0 = get_group_id(1) * MMA_BM;
#if MMA_SPLITK
  __local int split_last[1];  // an array: scripts/check_mma_ptx.py's shim makes those __shared__
  const int slice = get_group_id(2) % kslices;
  const int b = get_group_id(2) / kslices;
#else
  const int b = get_group_id(2);
#endif

  int a_off = 0, b_off = 0, row_base = 0;
#if IS_CONV
  row_base = b * M;
  a_off = row_base * lda;
#else
  {
    int rem = b;
    for (int d = nbd - 1; d >= 0; --d) {
      const int i = rem % bdims.v[d];
      rem /= bdims.v[d];
      a_off += i * a_bs.v[d];
      b_off += i * b_bs.v[d];
    }
  }
#endif
  __global const uchar* Ab = (__global const uchar*)A;
  __global const uchar* Bb = (__global const uchar*)B;

#if GATHER_A
  uint a_reg[A_WORDS];
#endif
#if B_T4
  uint b_reg[4 * B_BLKS];
#elif GATHER_B
  uint b_reg[B_WORDS];
#if MMA_BMODE == 3
  // This item's columns: one (8-bit, [n][k]) or two adjacent ones (f16, [k][n] words).
#if B_KN
  const int g_col = 2 * (tid % (MMA_BN / 2));
  const ColBase col0 = conv_col(n0 + g_col, N, b, geo), col1 = conv_col(n0 + g_col + 1, N, b, geo);
#else
  const int g_col = tid % MMA_BN;
  const ColBase col0 = conv_col(n0 + g_col, N, b, geo);
#endif
#endif
#endif

  acc_t acc[MI][NI][4];
  ACC_UNROLL for (int i = 0; i < MI; ++i)
    ACC_UNROLL for (int j = 0; j < NI; ++j)
      ACC_UNROLL for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;

  // This work-group's K tiles: [t_begin, t_end).
  const int ktiles = (K + MMA_BK - 1) / MMA_BK;
#if MMA_SPLITK
  const int per_slice = (ktiles + kslices - 1) / kslices;
  const int t_begin = min(ktiles, slice * per_slice);
  const int t_end = min(ktiles, t_begin + per_slice);
#else
  const int t_begin = 0, t_end = ktiles;
#endif

  // ---- tile loading, split into "issue" (global reads) and "commit" (shared-memory writes)
#define ISSUE_TILE(t)                                                                                      \
  do {                                                                                                     \
    const int k0_ = (t) * MMA_BK;                                                                          \
    const uint st_ = STAGE(t);                                                                           \
    ISSUE_A(k0_, st_);                                                                                     \
    ISSUE_B(k0_, st_, (t) & 1);                                                                            \
  } while (0)

#if MMA_AMODE == 1
  // A is a channels-last convolution's implicit im2col (runtime/ops/channels_last.h): row m an
  // output position of some image, k = (kernel offset, channel) with the channel fastest, so
  // each 16-byte chunk is a run of one input position's channels (C * ES a multiple of 16, so a
  // chunk never straddles two kernel offsets) or padding (zero-filled). This item's chunks keep
  // their rows across tiles: where their receptive fields start is decoded once.
#define A_ITERS ((MMA_BM * ROWB / 16 + MMA_THREADS - 1) / MMA_THREADS)
  int ar_img[A_ITERS], ar_z[A_ITERS], ar_y[A_ITERS], ar_x[A_ITERS];
  {
    const int P = geo.v[3] * geo.v[4] * geo.v[5];
    _Pragma("unroll") for (int it = 0; it < A_ITERS; ++it) {
      const int m = m0 + (tid + it * MMA_THREADS) / (ROWB / 16);
      const int mm = min(m, M - 1), img = mm / P, p = mm - img * P;
      const int ox = p % geo.v[5], oy = (p / geo.v[5]) % geo.v[4], oz = p / (geo.v[4] * geo.v[5]);
      ar_img[it] = img * geo.v[21];
      ar_z[it] = m < M ? oz * geo.v[9] - geo.v[15] : -(1 << 29);  // rows past M: all padding
      ar_y[it] = oy * geo.v[10] - geo.v[16];
      ar_x[it] = ox * geo.v[11] - geo.v[17];
    }
  }
  // Every chunk of this item has the same column (MMA_THREADS is a multiple of ROWB / 16), so one
  // kernel offset and channel per tile.
#define ISSUE_A(k0, st)                                                                                    \
  {                                                                                                        \
    const int col_ = tid % (ROWB / 16), k_ = (k0) + col_ * (16 / ES);                                      \
    const int tap_ = k_ / geo.v[18], ch_ = k_ - tap_ * geo.v[18];                                          \
    const int kx_ = tap_ % geo.v[8], ky_ = (tap_ / geo.v[8]) % geo.v[7], kz_ = tap_ / (geo.v[7] * geo.v[8]); \
    CHUNKS(c, MMA_BM * ROWB / 16) {                                                                       \
      const int iz = ar_z[it_] + kz_ * geo.v[12], iy = ar_y[it_] + ky_ * geo.v[13];                        \
      const int ix = ar_x[it_] + kx_ * geo.v[14];                                                          \
      uint bytes = 0;                                                                                      \
      __global const uchar* src = Ab;                                                                      \
      if (k_ < K && (uint)iz < (uint)geo.v[0] && (uint)iy < (uint)geo.v[1] && (uint)ix < (uint)geo.v[2]) { \
        bytes = 16;                                                                                        \
        src = Ab + ((long)(ar_img[it_] + (iz * geo.v[1] + iy) * geo.v[2] + ix) * geo.v[18] + ch_) * ES;    \
      }                                                                                                    \
      cp_async16(smem, (st) + SWZ(c / (ROWB / 16), col_ * 16, SROW), src, bytes);                         \
    }                                                                                                      \
  }
#define COMMIT_A(st)
#elif MMA_AVEC
#define ISSUE_A(k0, st)                                                                                    \
  CHUNKS(c, MMA_BM * ROWB / 16) {                                                                         \
    const int row = c / (ROWB / 16), col = c % (ROWB / 16);                                                \
    const int m = m0 + row, k = (k0) + col * (16 / ES);                                                    \
    uint bytes = 0;                                                                                        \
    __global const uchar* src = Ab;                                                                        \
    if (m < M && k < K) {                                                                                  \
      bytes = min(16, (K - k) * ES);                                                                       \
      src = Ab + ((long)a_off + (long)m * lda + k) * ES;                                                   \
    }                                                                                                      \
    cp_async16(smem, (st) + SWZ(row, col * 16, SROW), src, bytes);                                       \
  }
#define COMMIT_A(st)
#else
#define ISSUE_A(k0, st)                                                                                    \
  for (int i = 0; i < A_WORDS; ++i) {                                                                      \
    const int w = tid + i * MMA_THREADS;                                                                   \
    const int row = w / (ROWB / 4), kw = w % (ROWB / 4);                                                   \
    const int m = m0 + row;                                                                                \
    uint v = 0;                                                                                            \
    for (int e = 0; e < EPW; ++e) {                                                                        \
      const int k = (k0) + kw * EPW + e;                                                                   \
      if (m < M && k < K) v |= (uint)A[a_off + m * lda + k] << (8 * ES * e % 32);                          \
    }                                                                                                      \
    a_reg[i] = v;                                                                                          \
  }
#define COMMIT_A(st)                                                                                       \
  for (int i = 0; i < A_WORDS; ++i) {                                                                      \
    const int w = tid + i * MMA_THREADS;                                                                   \
    *(__local uint*)(smem + (st) + SWZ(w / (ROWB / 4), (w % (ROWB / 4)) * 4, SROW)) = a_reg[i];             \
  }
#endif

#if MMA_BMODE == 0
#define ISSUE_B(k0, st, s)                                                                                 \
  CHUNKS(c, MMA_BN * ROWB / 16) {                                                                         \
    const int row = c / (ROWB / 16), col = c % (ROWB / 16);                                                \
    const int n = n0 + row, k = (k0) + col * (16 / ES);                                                    \
    uint bytes = 0;                                                                                        \
    __global const uchar* src = Bb;                                                                        \
    if (n < N && k < K) {                                                                                  \
      bytes = min(16, (K - k) * ES);                                                                       \
      src = Bb + ((long)b_off + (long)n * ldb + k) * ES;                                                   \
    }                                                                                                      \
    cp_async16(smem, (st) + A_BYTES + SWZ(row, col * 16, SROW), src, bytes);                                  \
  }
#define COMMIT_B(st)
#elif MMA_BMODE == 1 || (MMA_BMODE == 4 && B_KN)
// [k][n], 8 columns per copy. KN_AT: the element offset of (k, n).
#if MMA_BMODE == 1
#define KN_AT(k, n) ((long)b_off + (long)(k) * ldb + (n))
#else
#define KN_AT(k, n) POINTWISE_AT(k, n)
#endif
#define ISSUE_B(k0, st, s)                                                                                 \
  CHUNKS(c, MMA_BK * MMA_BN / 8) {                                                                         \
    const int row = c / (MMA_BN / 8), col = c % (MMA_BN / 8);                                              \
    const int k = (k0) + row, n = n0 + col * 8;                                                            \
    uint bytes = 0;                                                                                        \
    __global const uchar* src = Bb;                                                                        \
    if (n < N && k < K) {                                                                                  \
      bytes = min(16, (N - n) * 2);                                                                        \
      src = Bb + KN_AT(k, n) * 2;                                                                          \
    }                                                                                                      \
    cp_async16(smem, (st) + A_BYTES + SWZ(row, col * 16, SROWB), src, bytes);                              \
  }
#define COMMIT_B(st)
#elif B_T4
// 4 x 4 blocks of (4 rows k) x (4 columns n): consecutive items take consecutive column groups,
// so a warp's loads of one row are contiguous. B4_ROW: the byte offset of (k, n).
#if MMA_BMODE == 4
#define B4_ROW(k, n) POINTWISE_AT(k, n)
#else
#define B4_ROW(k, n) ((long)b_off + (long)(k) * ldb + (n))
#endif
#define ISSUE_B(k0, st, s)                                                                                 \
  for (int i = 0; i < B_BLKS; ++i) {                                                                       \
    const int blk = tid + i * MMA_THREADS, n = n0 + (blk % (MMA_BN / 4)) * 4;                              \
    const int k = (k0) + (blk / (MMA_BN / 4)) * 4;                                                         \
    for (int r = 0; r < 4; ++r) {                                                                          \
      const bool in = blk < B_BLOCKS && n < N && k + r < K;                                                \
      b_reg[4 * i + r] = in ? *(__global const uint*)(Bb + B4_ROW(k + r, n)) : 0u;                         \
    }                                                                                                      \
  }
// Word c of a block: column n + c's 4 rows, byte r from row k + r.
#define COMMIT_B(st)                                                                                       \
  for (int i = 0; i < B_BLKS; ++i) {                                                                       \
    const int blk = tid + i * MMA_THREADS;                                                                 \
    if (blk < B_BLOCKS) {                                                                                  \
      const int col = (blk % (MMA_BN / 4)) * 4, kb = (blk / (MMA_BN / 4)) * 4;                             \
      for (int c = 0; c < 4; ++c) {                                                                        \
        const uint w = ((b_reg[4 * i] >> (8 * c)) & 0xffu) | (((b_reg[4 * i + 1] >> (8 * c)) & 0xffu) << 8) | \
                       (((b_reg[4 * i + 2] >> (8 * c)) & 0xffu) << 16) | (((b_reg[4 * i + 3] >> (8 * c)) & 0xffu) << 24); \
        *(__local uint*)(smem + (st) + A_BYTES + SWZ(col + c, kb, SROW)) = w;                              \
      }                                                                                                    \
    }                                                                                                      \
  }
#else
// Gathered B. Element (k, n) of the column side:
#if MMA_BMODE == 3
#define B_AT(kd, cb) conv_load(B, cb, kd, geo)
#define B_KD(s, kk) kdec[s][kk]
#else
#define B_AT(k, n) ((k) < K && (n) < N ? (uint)B[b_off + (k) * ldb + (n)] : 0u)
#endif
#if B_KN
// [k][n]: a word holds columns g_col, g_col + 1 of one k.
#if MMA_BMODE == 3
#define ISSUE_B(k0, st, s)                                                                                 \
  for (int i = 0; i < B_WORDS; ++i) {                                                                      \
    const int kk = tid / (MMA_BN / 2) + i * (MMA_THREADS / (MMA_BN / 2));                                  \
    const KDec d_ = B_KD(s, kk);                                                                           \
    b_reg[i] = B_AT(d_, col0) | (B_AT(d_, col1) << 16);                                                    \
  }
#else
#define ISSUE_B(k0, st, s)                                                                                 \
  for (int i = 0; i < B_WORDS; ++i) {                                                                      \
    const int kk = tid / (MMA_BN / 2) + i * (MMA_THREADS / (MMA_BN / 2));                                  \
    const int k = (k0) + kk, n = n0 + 2 * (tid % (MMA_BN / 2));                                            \
    b_reg[i] = B_AT(k, n) | (B_AT(k, n + 1) << 16);                                                        \
  }
#endif
#define COMMIT_B(st)                                                                                       \
  for (int i = 0; i < B_WORDS; ++i) {                                                                      \
    const int kk = tid / (MMA_BN / 2) + i * (MMA_THREADS / (MMA_BN / 2));                                  \
    *(__local uint*)(smem + (st) + A_BYTES + SWZ(kk, 4 * (tid % (MMA_BN / 2)), SROWB)) = b_reg[i];            \
  }
#else
// [n][k]: a word holds EPW consecutive k of column tid % BN.
#if MMA_BMODE == 3
#define ISSUE_B(k0, st, s)                                                                                 \
  for (int i = 0; i < B_WORDS; ++i) {                                                                      \
    const int kw = tid / MMA_BN + i * (MMA_THREADS / MMA_BN);                                              \
    uint v = 0;                                                                                            \
    for (int e = 0; e < EPW; ++e) v |= B_AT(B_KD(s, EPW * kw + e), col0) << (8 * ES * e % 32);             \
    b_reg[i] = v;                                                                                          \
  }
#else
#define ISSUE_B(k0, st, s)                                                                                 \
  for (int i = 0; i < B_WORDS; ++i) {                                                                      \
    const int kw = tid / MMA_BN + i * (MMA_THREADS / MMA_BN);                                              \
    const int n = n0 + tid % MMA_BN;                                                                       \
    uint v = 0;                                                                                            \
    for (int e = 0; e < EPW; ++e) v |= B_AT((k0) + EPW * kw + e, n) << (8 * ES * e % 32);                  \
    b_reg[i] = v;                                                                                          \
  }
#endif
#define COMMIT_B(st)                                                                                       \
  for (int i = 0; i < B_WORDS; ++i) {                                                                      \
    const int kw = tid / MMA_BN + i * (MMA_THREADS / MMA_BN);                                              \
    *(__local uint*)(smem + (st) + A_BYTES + SWZ(tid % MMA_BN, 4 * kw, SROW)) = b_reg[i];                   \
  }
#endif
#endif

#if MMA_BMODE == 3
  // The im2col rows of tile t, decoded once per work-group into kdec[t & 1].
#define DECODE_K(t)                                                                                        \
  for (int kk = tid; kk < MMA_BK; kk += MMA_THREADS) kdec[(t) & 1][kk] = conv_kdec((t) * MMA_BK + kk, K, geo)
#else
#define DECODE_K(t)
#endif

  // Where this lane's ldmatrix rows start, and their swizzle (SWZ): a fragment's 16 rows begin at
  // a multiple of 16, and SWZ_L x SWZ_X divides 16, so the XOR depends on the lane alone and is
  // computed once here rather than per load (per load it cost ~30 registers, ptxas).
  const int frag_row = (lane % 8) + 8 * ((lane / 8) % 2);  // of A rows, and of B_KN's k rows
  const uint a_frag = (wm0 + frag_row) * SROW;
  const int a_xor = (frag_row / SWZ_L(SROW)) % SWZ_X(SROW);
#if B_KN
  const int b_xor = frag_row % SWZ_X(SROWB);
#else
  const int b_row = (lane % 8) + 8 * (lane / 16);
  const uint b_frag = (wn0 + b_row) * SROW;
  const int b_xor = (b_row / SWZ_L(SROW)) % SWZ_X(SROW);
#endif

  // One tile's products from the stage at byte `cur`.
#if MMA_ELEM == 1
#define MMA_OP mma_f16
#elif MMA_ELEM == 2
#define MMA_OP mma_i8
#elif MMA_ELEM == 3
#define MMA_OP mma_f8
#else
#define MMA_OP mma_tf32
#endif
#define COMPUTE_TILE(cur)                                                                                  \
  for (int ks = 0; ks < MMA_BK / KSTEP; ++ks) {                                                            \
    uint af[MI][4], bf[NI][2];                                                                             \
    for (int i = 0; i < MI; ++i)                                                                           \
      ldsm_x4(smem, (cur) + a_frag + i * 16 * SROW + (((2 * ks + lane / 16) ^ a_xor) << 4), af[i]);        \
    for (int j = 0; j < NI / 2; ++j) {                                                                     \
      uint r[4];                                                                                           \
      LOAD_B_FRAGS(cur, ks, j, r);                                                                         \
      bf[2 * j][0] = r[0];                                                                                 \
      bf[2 * j][1] = r[1];                                                                                 \
      bf[2 * j + 1][0] = r[2];                                                                             \
      bf[2 * j + 1][1] = r[3];                                                                             \
    }                                                                                                      \
    ROUND_TF32(af, bf);                                                                                    \
    for (int i = 0; i < MI; ++i)                                                                           \
      for (int j = 0; j < NI; ++j) MMA_OP(acc[i][j], af[i], bf[j]);                                        \
  }
#if B_KN
#define LOAD_B_FRAGS(cur, ks, j, r)                                                                        \
  ldsm_x4_trans(smem, (cur) + A_BYTES + ((ks) * 16 + frag_row) * SROWB + (((wn0 / 8 + 2 * (j) + lane / 16) ^ b_xor) << 4), r)
#else
#define LOAD_B_FRAGS(cur, ks, j, r)                                                                        \
  ldsm_x4(smem, (cur) + A_BYTES + b_frag + (j) * 16 * SROW + (((2 * (ks) + (lane / 8) % 2) ^ b_xor) << 4), r)
#endif
#if MMA_WGMMA
  // This warpgroup's A rows and the B tile, in stage 0; a stage and a k-step add their bytes / 16.
  const ulong a_desc = wg_desc(smem, (warp / 4) * 64 * SROW), b_desc = wg_desc(smem, A_BYTES);
#undef COMPUTE_TILE
#define COMPUTE_TILE(cur)                                                                                  \
  do {                                                                                                     \
    wg_fence(acc[0]);                                                                                      \
    _Pragma("unroll") for (int ks = 0; ks < ROWB / 32; ++ks)                                               \
      wgmma(acc[0], smem, a_desc + (((cur) + 32 * ks) >> 4), b_desc + (((cur) + 32 * ks) >> 4));           \
    wg_commit();                                                                                           \
    WG_WAIT_TILE(acc[0]);                                                                                  \
  } while (0)
#if WG_OVERLAP
#define WG_WAIT_TILE(a) wg_wait1(a)
#define WG_DRAIN() wg_wait(acc[0])
#else
#define WG_WAIT_TILE(a) wg_wait(a)
#endif
#endif
#ifndef WG_DRAIN
#define WG_DRAIN()
#endif
#if MMA_ELEM == 4
#define ROUND_TF32(af, bf)                                                                                 \
  do {                                                                                                     \
    for (int i = 0; i < MI; ++i)                                                                           \
      for (int r = 0; r < 4; ++r) af[i][r] = tf32_round(af[i][r]);                                         \
    for (int j = 0; j < NI; ++j)                                                                           \
      for (int r = 0; r < 2; ++r) bf[j][r] = tf32_round(bf[j][r]);                                         \
  } while (0)
#else
#define ROUND_TF32(af, bf)
#endif

#if PIPELINED
  // MMA_STAGES - 1 tiles in flight: a tile's copies are one commit group; before tile t computes,
  // at most MMA_PENDING newer groups may still be pending. The barrier also tells every warp that
  // tile t - 1's stage, which tile t + MMA_STAGES - 1 now overwrites, is no longer read.
  // WG_OVERLAP (wgmma, 3 or more stages): a tile's wgmmas stay in flight while the next tile's
  // copies are awaited (wgmma.wait_group 1), so the stage tile t - 1 reads is not yet free and tile
  // t + MMA_STAGES - 2 is the one issued; the host passes MMA_PENDING = MMA_STAGES - 3 then.
  for (int s = 0; s < MMA_STAGES - 1 - WG_OVERLAP; ++s) {
    if (t_begin + s < t_end) ISSUE_TILE(t_begin + s);
    cp_async_commit();
  }
  for (int t = t_begin; t < t_end; ++t) {
    cp_async_wait_pending();
    wg_proxy_fence();
    barrier(CLK_LOCAL_MEM_FENCE);
    const int tn = t + MMA_STAGES - 1 - WG_OVERLAP;
    if (tn < t_end) ISSUE_TILE(tn);
    cp_async_commit();
    COMPUTE_TILE(STAGE(t));
  }
  WG_DRAIN();
#else
  // Prologue: the first tile into its stage (no barrier under the condition: see below).
  DECODE_K(t_begin);
  barrier(CLK_LOCAL_MEM_FENCE);
  if (t_begin < t_end) {
    ISSUE_TILE(t_begin);
    COMMIT_A(STAGE(t_begin));
    COMMIT_B(STAGE(t_begin));
  }
  cp_async_wait_all();
  wg_proxy_fence();
  barrier(CLK_LOCAL_MEM_FENCE);

  for (int t = t_begin; t < t_end; ++t) {
    const bool more = t + 1 < t_end;
    const uint cur = STAGE(t), nxt = STAGE(t + 1);
#if MMA_BMODE == 3
    // Outside the `if`: barriers in conditional code are not portable (PoCL skipped the decode).
    if (more) DECODE_K(t + 1);
    barrier(CLK_LOCAL_MEM_FENCE);
#endif
    if (more) ISSUE_TILE(t + 1);
    COMPUTE_TILE(cur);
    if (more) {
      COMMIT_A(nxt);
      COMMIT_B(nxt);
    }
    cp_async_wait_all();
    wg_proxy_fence();
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#endif

#if MMA_SPLITK
  {
    const long tile_elems = MMA_BM * MMA_BN;
    const long tile = ((long)b * get_num_groups(1) + get_group_id(1)) * get_num_groups(0) + get_group_id(0);
    const long slice_elems = (long)get_num_groups(0) * get_num_groups(1) * (get_num_groups(2) / kslices) * tile_elems;
    __global acc_t* at = part + tile * tile_elems + tid;
    ACC_UNROLL for (int i = 0; i < MI; ++i)
      ACC_UNROLL for (int j = 0; j < NI; ++j)
        ACC_UNROLL for (int r = 0; r < 4; ++r) at[slice * slice_elems + ((i * NI + j) * 4 + r) * MMA_THREADS] = acc[i][j][r];
    // Every item's sums visible to the whole GPU before the work-group counts itself.
    device_fence();
    barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);
    if (tid == 0) {
      split_last[0] = atomic_inc(counters + tile) == kslices - 1;
      if (split_last[0]) counters[tile] = 0;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (!split_last[0]) return;
    device_fence();
    // Volatile: read from L2, not from a line this SM's L1 may hold from before the others wrote.
    __global volatile const acc_t* sums = at;
    ACC_UNROLL for (int i = 0; i < MI; ++i)
      ACC_UNROLL for (int j = 0; j < NI; ++j)
        ACC_UNROLL for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;
    for (int s = 0; s < kslices; ++s, sums += slice_elems)
      ACC_UNROLL for (int i = 0; i < MI; ++i)
        ACC_UNROLL for (int j = 0; j < NI; ++j)
          ACC_UNROLL for (int r = 0; r < 4; ++r) acc[i][j][r] += sums[((i * NI + j) * 4 + r) * MMA_THREADS];
  }
#endif

  // ---- epilogue: lane holds rows g, g + 8 and columns 2t, 2t + 1 of each 16x8 tile.
  MMA_EPI_PREP(b)
#if IS_CONV
  const int P = geo.v[3] * geo.v[4] * geo.v[5];
  const int Mtot = M * geo.v[20];
#endif
  // Every warp is done reading the stages, which now hold each warp's 16 x EPI_COLS staging rows.
  barrier(CLK_LOCAL_MEM_FENCE);
#if MMA_RES_TILE
  {
    __global const uchar* rb = (__global const uchar*)MMA_EPI_RES_PTR;
    CHUNKS(c, MMA_BM * MMA_BN * MMA_RES_TILE / 16) {
      const int row = c / (MMA_BN * MMA_RES_TILE / 16), col = c % (MMA_BN * MMA_RES_TILE / 16);
      const int m = m0 + row, n = n0 + col * (16 / MMA_RES_TILE);
      uint bytes = 0;
      __global const uchar* src = rb;
      if (m < M && n < N) {
        bytes = min(16, (N - n) * MMA_RES_TILE);
        src = rb + ((long)b * c_bstride + (long)m * ldc + n) * MMA_RES_TILE;
      }
      cp_async16(smem, EPI_BYTES + row * (MMA_BN * MMA_RES_TILE) + col * 16, src, bytes);
    }
    cp_async_wait_all();
    barrier(CLK_LOCAL_MEM_FENCE);
  }
#endif
  __local acc_t* stg = (__local acc_t*)(smem + warp * (16 * EPI_ROW_WORDS * 4));
  const int g = lane / 4, t2 = 2 * (lane % 4);
  ACC_UNROLL for (int jc = 0; jc < WTN / EPI_COLS; ++jc) {
    // This lane's column (paired: first of two) in the pass. Outputs beyond M or N compute at the
    // last row / column and are not stored: the loads need no branch, so the compiler can issue a
    // pass's loads together.
    const bool n_ok = n0 + wn0 + jc * EPI_COLS + MMA_EPI_VEC * lane < N;
    const int n = min(n0 + wn0 + jc * EPI_COLS + MMA_EPI_VEC * lane, N - MMA_EPI_VEC);
    MMA_EPI_COLS(n)
#if IS_CONV
    const int img = n / P, pos = n - img * P;
    const int cn = img * Mtot * P + pos;
#endif
    ACC_UNROLL for (int i = 0; i < MI; ++i) {
      ACC_UNROLL for (int jj = 0; jj < EPI_COLS / 8; ++jj) {
        const int j = jc * (EPI_COLS / 8) + jj;
        __local acc_t* at = stg + g * EPI_ROW_WORDS + jj * 8 + t2;
        at[0] = acc[i][j][0];
        at[1] = acc[i][j][1];
        at[8 * EPI_ROW_WORDS] = acc[i][j][2];
        at[8 * EPI_ROW_WORDS + 1] = acc[i][j][3];
      }
      warp_sync();
      _Pragma("unroll 1") for (int r0 = 0; r0 < 16; r0 += EPI_GROUP) {
#if MMA_EPI_VEC == 2
        MMA_EPI_OUT_T y[EPI_GROUP], y1[EPI_GROUP];
#else
        MMA_EPI_OUT_T y[EPI_GROUP];
#endif
        int ci[EPI_GROUP];
        ACC_UNROLL for (int r = 0; r < EPI_GROUP; ++r) {
          const int m = min(m0 + wm0 + i * 16 + r0 + r, M - 1);
#if IS_CONV
          ci[r] = (row_base + m) * P + cn;
#else
          ci[r] = b * c_bstride + m * ldc + n;
#endif
#if MMA_EPI_VEC == 2
          const float2 v = *(const __local float2*)(stg + (r0 + r) * EPI_ROW_WORDS + 2 * lane);
          y[r] = MMA_EPI_VALUE(v.x, b, row_base + m, m, n, ci[r]);
          y1[r] = MMA_EPI_VALUE(v.y, b, row_base + m, m, n + 1, ci[r] + 1);
#else
          y[r] = MMA_EPI_VALUE(stg[(r0 + r) * EPI_ROW_WORDS + lane], b, row_base + m, m, n, ci[r]);
#endif
        }
        // A group wholly inside the output stores without a test per element: tested, the compiler
        // moved each value's arithmetic into its store's branch, one element after another.
        if (n_ok && m0 + wm0 + i * 16 + r0 + EPI_GROUP <= M) {
          ACC_UNROLL for (int r = 0; r < EPI_GROUP; ++r) EPI_STORE_ROW(r);
        } else {
          ACC_UNROLL for (int r = 0; r < EPI_GROUP; ++r)
            if (n_ok && m0 + wm0 + i * 16 + r0 + r < M) EPI_STORE_ROW(r);
        }
      }
      warp_sync();
    }
  }
}
