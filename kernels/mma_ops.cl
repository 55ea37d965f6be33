// Warp-level tensor-core operations for kernels/mma_gemm.cl: cp.async, ldmatrix and mma.sync.
// With -D KILN_PTX=1 (NVIDIA OpenCL, compute capability >= 8.0; 8.9 for FP8) they are inline PTX.
// Without it every one is emulated in plain OpenCL C with the same operand layouts (PTX ISA,
// "Matrix fragments for mma.m16n8k16 / m16n8k32"), so the whole kernel - tiling, gathers,
// fragment bookkeeping, epilogues - runs and is tested on any OpenCL device (PoCL in CI). The
// emulation passes values between the lanes of a warp through `xch`, a per-warp __local area of
// 32 x 8 words, with work-group barriers: every call must be reached by all work-items alike.
//
// Shared memory is addressed as byte offsets into one __local uchar array (`smem`).
//
// Fragments (g = lane / 4, t = lane % 4; "k" in elements):
//   f16 m16n8k16:  A regs {a0..a3}: (row g, k 2t..2t+1), (g+8, 2t), (g, 2t+8), (g+8, 2t+8)
//                  B regs {b0, b1}: (k 2t..2t+1, col g), (k 2t+8.., col g)
//   8-bit m16n8k32: A regs: (row g, k 4t..4t+3), (g+8, 4t), (g, 4t+16), (g+8, 4t+16)
//                  B regs: (k 4t..4t+3, col g), (k 4t+16.., col g)
//   C (both):      c0, c1: (row g, col 2t, 2t+1); c2, c3: (row g+8, col 2t, 2t+1)
//   tf32 m16n8k8:  A regs: (row g, k t), (g+8, t), (g, t+4), (g+8, t+4); B regs: (k t, col g),
//                  (k t+4, col g): in bytes the same places as the 8-bit fragments, so both load
//                  with the same ldmatrix addressing.
// Element codes of 8-bit operands (the MMA_*_KIND options of mma_gemm.cl): 0 s8, 1 u8,
// 2 e4m3, 3 e5m2.

#if KILN_PTX

#define MMA_XCH_PARAM
#define MMA_XCH_ARG
#define MMA_XCH_DECL

inline uint smem_addr(__local uchar* smem, uint off) { return (uint)(size_t)(smem + off); }

// Copies `bytes` (0..16) from src and zero-fills the rest of the 16 bytes at smem + off.
inline void cp_async16(__local uchar* smem, uint off, __global const uchar* src, uint bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(smem, off)), "l"(src), "r"(bytes));
}
inline void cp_async_wait_all(void) { asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;"); }
// Closes the copies issued since the last commit into one group.
inline void cp_async_commit(void) { asm volatile("cp.async.commit_group;"); }
#define MMA_STR2(x) #x
#define MMA_STR(x) MMA_STR2(x)
// Waits until at most MMA_PENDING (a build option: an immediate in the PTX) groups are pending.
inline void cp_async_wait_pending(void) { asm volatile("cp.async.wait_group " MMA_STR(MMA_PENDING) ";"); }

// ldmatrix.x4: lane l gives the byte offset of row l % 8 of matrix l / 8; r[j] is matrix j's
// fragment (row lane / 4, bytes 4 * (lane % 4) ..+3).
inline void ldsm_x4(__local uchar* smem, uint off, uint r[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem, off)));
}
// Transposed: r[j] holds 16-bit elements (row 2 * (lane % 4) and +1, column lane / 4).
inline void ldsm_x4_trans(__local uchar* smem, uint off, uint r[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem, off)));
}

// The lanes of this warp meet (their shared-memory writes visible to each other); the
// "memory" clobber keeps the compiler from moving __local accesses across it.
inline void warp_sync(void) { asm volatile("bar.warp.sync -1;" : : : "memory"); }
// Orders this item's global memory accesses before and after it for every work-group of the
// launch (split-K's partial sums, published by a counter).
inline void device_fence(void) { asm volatile("fence.acq_rel.gpu;" : : : "memory"); }

inline void mma_f16(float c[4], const uint a[4], const uint b[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// FP32 values rounded to TF32 (10-bit mantissa, nearest, ties away), as cuBLAS does.
inline uint tf32_round(uint x) {
  uint r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(as_float(x)));
  return r;
}

inline void mma_tf32(float c[4], const uint a[4], const uint b[2]) {
  asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

#define MMA8_ASM(shape_types, ct, c, a, b)                                                              \
  asm volatile("mma.sync.aligned.m16n8k32.row.col." shape_types " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};" \
               : "+" ct(c[0]), "+" ct(c[1]), "+" ct(c[2]), "+" ct(c[3])                                \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]))

// Integer operands: A is s8 (weights / row side); B s8 or u8.
inline void mma_i8(int c[4], const uint a[4], const uint b[2]) {
#if MMA_A_KIND == 1 && MMA_B_KIND == 1
  MMA8_ASM("s32.u8.u8.s32", "r", c, a, b);
#elif MMA_A_KIND == 1
  MMA8_ASM("s32.u8.s8.s32", "r", c, a, b);
#elif MMA_B_KIND == 1
  MMA8_ASM("s32.s8.u8.s32", "r", c, a, b);
#else
  MMA8_ASM("s32.s8.s8.s32", "r", c, a, b);
#endif
}

#if MMA_ELEM == 3
inline void mma_f8(float c[4], const uint a[4], const uint b[2]) {
#if MMA_A_KIND == 2 && MMA_B_KIND == 2
  MMA8_ASM("f32.e4m3.e4m3.f32", "f", c, a, b);
#elif MMA_A_KIND == 2
  MMA8_ASM("f32.e4m3.e5m2.f32", "f", c, a, b);
#elif MMA_B_KIND == 2
  MMA8_ASM("f32.e5m2.e4m3.f32", "f", c, a, b);
#else
  MMA8_ASM("f32.e5m2.e5m2.f32", "f", c, a, b);
#endif
}
#endif

#else  // emulation

#define MMA_XCH_PARAM , __local uint* xch
#define MMA_XCH_ARG , xch
// 32 lanes x 8 words per warp.
#define MMA_XCH_DECL __local uint xch_all[(MMA_THREADS / 32) * 256]; __local uint* xch = xch_all + (get_local_id(0) / 32) * 256;

inline void cp_async16(__local uchar* smem, uint off, __global const uchar* src, uint bytes) {
  for (uint i = 0; i < 16; ++i) smem[off + i] = i < bytes ? src[i] : (uchar)0;
}
inline void cp_async_wait_all(void) {}
inline void cp_async_commit(void) {}
inline void cp_async_wait_pending(void) {}

inline uint emu_lane(void) { return get_local_id(0) % 32; }
// Emulated warps are not lock-step: the whole work-group meets (every item calls it alike).
inline void warp_sync(void) { barrier(CLK_LOCAL_MEM_FENCE); }
inline void device_fence(void) { mem_fence(CLK_GLOBAL_MEM_FENCE); }

inline uint smem_word(__local uchar* smem, uint off) {
  return (uint)smem[off] | ((uint)smem[off + 1] << 8) | ((uint)smem[off + 2] << 16) | ((uint)smem[off + 3] << 24);
}
inline uint smem_u16(__local uchar* smem, uint off) { return (uint)smem[off] | ((uint)smem[off + 1] << 8); }

inline void ldsm_x4_emu(__local uchar* smem, uint off, uint r[4], __local uint* xch, int trans) {
  const uint lane = emu_lane();
  xch[lane] = off;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int j = 0; j < 4; ++j) {
    if (!trans) {
      r[j] = smem_word(smem, xch[8 * j + lane / 4] + 4 * (lane % 4));
    } else {
      const uint lo = smem_u16(smem, xch[8 * j + 2 * (lane % 4)] + 2 * (lane / 4));
      const uint hi = smem_u16(smem, xch[8 * j + 2 * (lane % 4) + 1] + 2 * (lane / 4));
      r[j] = lo | (hi << 16);
    }
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}
#define ldsm_x4(smem, off, r) ldsm_x4_emu(smem, off, r, xch, 0)
#define ldsm_x4_trans(smem, off, r) ldsm_x4_emu(smem, off, r, xch, 1)

// Publishes this lane's A and B registers; lane L's are at xch[8 L .. 8 L + 5].
inline void emu_publish(const uint a[4], const uint b[2], __local uint* xch) {
  const uint lane = emu_lane();
  for (int i = 0; i < 4; ++i) xch[8 * lane + i] = a[i];
  xch[8 * lane + 4] = b[0];
  xch[8 * lane + 5] = b[1];
  barrier(CLK_LOCAL_MEM_FENCE);
}

inline float emu_half(uint bits) {
  const ushort h = (ushort)bits;
  return vload_half(0, (const __private half*)&h);
}

// Element (row r, k) of A and (k, col n) of B from the published fragments.
inline float emu_a16(__local uint* xch, int r, int k) {
  const uint w = xch[8 * ((r % 8) * 4 + (k % 8) / 2) + (r / 8) + (k / 8) * 2];
  return emu_half(k % 2 ? w >> 16 : w & 0xffff);
}
inline float emu_b16(__local uint* xch, int k, int n) {
  const uint w = xch[8 * (n * 4 + (k % 8) / 2) + 4 + k / 8];
  return emu_half(k % 2 ? w >> 16 : w & 0xffff);
}
inline uint emu_a8(__local uint* xch, int r, int k) {
  return (xch[8 * ((r % 8) * 4 + (k % 16) / 4) + (r / 8) + (k / 16) * 2] >> (8 * (k % 4))) & 0xff;
}
inline uint emu_b8(__local uint* xch, int k, int n) {
  return (xch[8 * (n * 4 + (k % 16) / 4) + 4 + k / 16] >> (8 * (k % 4))) & 0xff;
}

// One emulated mma.sync: each lane sums its four C elements (rows g, g + 8; columns 2t, 2t + 1)
// over k from the fragments every lane published.
#define EMU_MMA(name, acc_t, KDIM, A_AT, B_AT)                                             \
  inline void name(acc_t c[4], const uint a[4], const uint b[2], __local uint* xch) {      \
    emu_publish(a, b, xch);                                                                \
    const int g = emu_lane() / 4, t = emu_lane() % 4;                                      \
    for (int i = 0; i < 4; ++i) {                                                          \
      const int r = g + 8 * (i / 2), n = 2 * t + i % 2;                                    \
      acc_t s = c[i];                                                                      \
      for (int k = 0; k < KDIM; ++k) s += A_AT(r, k) * B_AT(k, n);                         \
      c[i] = s;                                                                            \
    }                                                                                      \
    barrier(CLK_LOCAL_MEM_FENCE);                                                          \
  }

#define F16_A(r, k) emu_a16(xch, r, k)
#define F16_B(k, n) emu_b16(xch, k, n)
EMU_MMA(mma_f16_emu, float, 16, F16_A, F16_B)
#define mma_f16(c, a, b) mma_f16_emu(c, a, b, xch)

inline uint tf32_round(uint x) {
  if ((x & 0x7f800000u) == 0x7f800000u) return x;  // Inf and NaN stay
  return (x + 0x1000u) & 0xffffe000u;
}

// Element (row r, k) of a TF32 A and (k, col n) of B.
inline float emu_a32(__local uint* xch, int r, int k) {
  return as_float(xch[8 * ((r % 8) * 4 + k % 4) + (r / 8) + (k / 4) * 2]);
}
inline float emu_b32(__local uint* xch, int k, int n) { return as_float(xch[8 * (n * 4 + k % 4) + 4 + k / 4]); }

#define TF32_A(r, k) emu_a32(xch, r, k)
#define TF32_B(k, n) emu_b32(xch, k, n)
EMU_MMA(mma_tf32_emu, float, 8, TF32_A, TF32_B)
#define mma_tf32(c, a, b) mma_tf32_emu(c, a, b, xch)

inline int emu_i8(uint v, int kind) { return kind == 1 ? (int)v : (int)(char)v; }

#define I8_A(r, k) emu_i8(emu_a8(xch, r, k), MMA_A_KIND)
#define I8_B(k, n) emu_i8(emu_b8(xch, k, n), MMA_B_KIND)
EMU_MMA(mma_i8_emu, int, 32, I8_A, I8_B)
#define mma_i8(c, a, b) mma_i8_emu(c, a, b, xch)

#if MMA_ELEM == 3
// FP8 decoding from kernels/float8.cl (in the FP8 family's prelude).
inline float emu_f8(uint v, int kind) { return kind == 2 ? f8e4m3fn_to_float((uchar)v) : f8e5m2_to_float((uchar)v); }

#define F8_A(r, k) emu_f8(emu_a8(xch, r, k), MMA_A_KIND)
#define F8_B(k, n) emu_f8(emu_b8(xch, k, n), MMA_B_KIND)
EMU_MMA(mma_f8_emu, float, 32, F8_A, F8_B)
#define mma_f8(c, a, b) mma_f8_emu(c, a, b, xch)
#endif

#endif
