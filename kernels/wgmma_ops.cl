// Warpgroup-level tensor-core operations (Hopper's wgmma) for kernels/mma_gemm.cl with
// -D MMA_WGMMA=1: a warpgroup (4 warps) multiplies a 64-row A tile by an MMA_BN-column B tile,
// both read straight from shared memory through 64-bit matrix descriptors, into accumulators
// that stay in the registers of its 128 work-items.
//
// OpenCL C compiles to PTX for `.target sm_90`, where NVIDIA's compiler rejects wgmma (it needs
// sm_90a). So the instructions are written here as PTX comments, `//@@wgmma...`, inside inline
// asm whose operands are the accumulators and descriptors: the compiler allocates them and
// substitutes them into the comment. With -D KILN_PTX_SM90A=1 the runtime takes the built PTX,
// uncomments every `//@@`, retargets it to sm_90a and, with -D KILN_PTX_MAXNREG=N, caps its
// registers (runtime/device/ptx_sm90a.cpp) before building it again from that PTX: the same
// kernel, tiles and epilogues as the mma.sync variant.
// Without KILN_PTX the operations are emulated in plain OpenCL C from the descriptors, with the
// shared-memory layout the hardware defines (so PoCL checks the layout the kernel writes).
//
// Shared-memory layout (PTX ISA, "Shared Memory Matrix Layout"): K-major tiles of ROWB-byte rows
// with a ROWB-byte swizzle (ROWB = 64: 64B swizzle, 32: 32B swizzle), 8 rows = one core-matrix
// group (stride byte offset 8 * ROWB), the leading byte offset unused; the 16-byte chunk c of
// row r sits at chunk c ^ ((address >> 7) & (ROWB / 16 - 1)), which mma_gemm.cl's SWZ produces
// for tiles that start at a multiple of 1024 bytes. One k-step (32 bytes of K) further along a
// row is the descriptor's start address plus 32 bytes, before the swizzle.
//
// Accumulators: warp w of the warpgroup holds rows 16 w .. 16 w + 15; acc[j][0..3] are the
// mma.sync C fragment of columns 8 j .. 8 j + 7 (rows lane / 4 and + 8, columns 2 (lane % 4) + 0, 1).

#if MMA_WGMMA

#define WG_NI (MMA_BN / 8)
// mma_gemm.cl's ROWB and acc_t, which it defines after this file.
#define WG_ROWB (MMA_BK * (MMA_ELEM == 1 ? 2 : 1))
#if MMA_ELEM == 2
typedef int wg_acc_t;
#else
typedef float wg_acc_t;
#endif
// Descriptor bits besides the start address: leading byte offset 1 (unused), stride byte offset
// 8 rows, swizzle mode (2: 64B, 3: 32B) in bits 62-63.
#define WG_DESC_HI (((ulong)1 << 16) | ((ulong)(8 * WG_ROWB / 16) << 32) | ((ulong)(WG_ROWB == 64 ? 2 : 3) << 62))

#if KILN_PTX

inline ulong wg_desc(__local uchar* smem, uint off) { return ((ulong)(smem_addr(smem, off) & 0x3ffff) >> 4) | WG_DESC_HI; }

// Operand lists: the accumulators of one warpgroup tile, a[j][r] for j < WG_NI.
#if MMA_ELEM == 2
#define WG_CT "r"
#else
#define WG_CT "f"
#endif
#define WG_O(x) "+" WG_CT(x)
#define WG_J(a, j) WG_O(a[j][0]), WG_O(a[j][1]), WG_O(a[j][2]), WG_O(a[j][3])
#define WG_8(a, j) WG_J(a, j), WG_J(a, j + 1), WG_J(a, j + 2), WG_J(a, j + 3), WG_J(a, j + 4), WG_J(a, j + 5), WG_J(a, j + 6), WG_J(a, j + 7)
#define WG_REGS_8 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
#define WG_DESCS_8 "%32, %33"
#define WG_SCALE_8 "%34"
#define WG_REGS_16 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"
#define WG_DESCS_16 "%64, %65"
#define WG_SCALE_16 "%66"
#define WG_REGS_32 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}"
#define WG_DESCS_32 "%128, %129"
#define WG_SCALE_32 "%130"
#define WG_REGS_24 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95}"
#define WG_DESCS_24 "%96, %97"
#define WG_SCALE_24 "%98"
#if MMA_BN == 64
#define WG_OPS(a) WG_8(a, 0)
#define WG_REGS WG_REGS_8
#define WG_DESCS WG_DESCS_8
#define WG_SCALE WG_SCALE_8
#elif MMA_BN == 128
#define WG_OPS(a) WG_8(a, 0), WG_8(a, 8)
#define WG_REGS WG_REGS_16
#define WG_DESCS WG_DESCS_16
#define WG_SCALE WG_SCALE_16
#elif MMA_BN == 192
#define WG_OPS(a) WG_8(a, 0), WG_8(a, 8), WG_8(a, 16)
#define WG_REGS WG_REGS_24
#define WG_DESCS WG_DESCS_24
#define WG_SCALE WG_SCALE_24
#elif MMA_BN == 256
#define WG_OPS(a) WG_8(a, 0), WG_8(a, 8), WG_8(a, 16), WG_8(a, 24)
#define WG_REGS WG_REGS_32
#define WG_DESCS WG_DESCS_32
#define WG_SCALE WG_SCALE_32
#else
#error "wgmma tiles are 64, 128, 192 or 256 columns wide"
#endif

// The instruction: shape m64 x MMA_BN x (32 bytes of K), operand types, and the immediates after
// scale-d (operand scales 1; f16 also: neither operand transposed).
#if MMA_ELEM == 1
#define WG_TYPES "k16.f32.f16.f16"
#define WG_IMM ", 1, 1, 0, 0"
#elif MMA_ELEM == 2
#define WG_IMM ""
#if MMA_A_KIND == 1 && MMA_B_KIND == 1
#define WG_TYPES "k32.s32.u8.u8"
#elif MMA_A_KIND == 1
#define WG_TYPES "k32.s32.u8.s8"
#elif MMA_B_KIND == 1
#define WG_TYPES "k32.s32.s8.u8"
#else
#define WG_TYPES "k32.s32.s8.s8"
#endif
#elif MMA_ELEM == 3
#define WG_IMM ", 1, 1"
#if MMA_A_KIND == 2 && MMA_B_KIND == 2
#define WG_TYPES "k32.f32.e4m3.e4m3"
#elif MMA_A_KIND == 2
#define WG_TYPES "k32.f32.e4m3.e5m2"
#elif MMA_B_KIND == 2
#define WG_TYPES "k32.f32.e5m2.e4m3"
#else
#define WG_TYPES "k32.f32.e5m2.e5m2"
#endif
#else
#error "wgmma: f16, 8-bit integer or FP8 operands"
#endif

// a += A(da) x B(db) for one k-step, asynchronously: the registers of `a` are the hardware's
// until wg_wait; wg_fence and wg_wait name them too, so the compiler neither reads them early
// nor moves them between the two.
#define wgmma(a, smem, da, db)                                                                             \
  asm volatile("{\n\t.reg .pred p;\n\tsetp.ne.b32 p, " WG_SCALE ", 0;\n\t"                                \
               "//@@wgmma.mma_async.sync.aligned.m64n" MMA_STR(MMA_BN) WG_TYPES " " WG_REGS ", " WG_DESCS ", p" WG_IMM ";\n}" \
               : WG_OPS(a)                                                                                 \
               : "l"(da), "l"(db), "r"(1))
#define wg_fence(a) asm volatile("//@@wgmma.fence.sync.aligned;" : WG_OPS(a) : : "memory")
#define wg_commit() asm volatile("//@@wgmma.commit_group.sync.aligned;" : : : "memory")
#define wg_wait(a) asm volatile("//@@wgmma.wait_group.sync.aligned 0;" : WG_OPS(a) : : "memory")
// All but the newest group done: that group's registers are still the hardware's.
#define wg_wait1(a) asm volatile("//@@wgmma.wait_group.sync.aligned 1;" : WG_OPS(a) : : "memory")
// Shared memory written by cp.async or st.shared (the generic proxy) becomes visible to wgmma's
// reads (the async proxy) only after this fence; each writer issues it before the barrier.
#define wg_proxy_fence() asm volatile("//@@fence.proxy.async.shared::cta;" : : : "memory")

#else  // emulation

inline ulong wg_desc(__local uchar* smem, uint off) { return ((ulong)(off & 0x3ffff) >> 4) | WG_DESC_HI; }

// Byte `kbyte` of row `row` of the operand `desc` describes, through the swizzle as the hardware
// applies it to the address.
inline uint wg_byte(__local uchar* smem, ulong desc, int row, int kbyte) {
  const uint start = (uint)(desc & 0x3fff) << 4, sbo = (uint)((desc >> 32) & 0x3fff) << 4;
  const uint mode = (uint)(desc >> 62), width = mode == 1 ? 128 : mode == 2 ? 64 : 32;
  uint addr = start + (row / 8) * sbo + (row % 8) * width + kbyte;
  addr ^= ((addr >> 7) & (width / 16 - 1)) << 4;
  return smem[addr];
}
#if MMA_ELEM == 1
#define WG_KSTEP 16
#define WG_A(r, k) emu_half(wg_byte(smem, da, r, 2 * (k)) | (wg_byte(smem, da, r, 2 * (k) + 1) << 8))
#define WG_B(n, k) emu_half(wg_byte(smem, db, n, 2 * (k)) | (wg_byte(smem, db, n, 2 * (k) + 1) << 8))
#elif MMA_ELEM == 2
#define WG_KSTEP 32
#define WG_A(r, k) emu_i8(wg_byte(smem, da, r, k), MMA_A_KIND)
#define WG_B(n, k) emu_i8(wg_byte(smem, db, n, k), MMA_B_KIND)
#else
#define WG_KSTEP 32
#define WG_A(r, k) emu_f8(wg_byte(smem, da, r, k), MMA_A_KIND)
#define WG_B(n, k) emu_f8(wg_byte(smem, db, n, k), MMA_B_KIND)
#endif
// Each work-item sums its own accumulators; the tiles are not written while they compute.
inline void wgmma_emu(wg_acc_t a[WG_NI][4], __local uchar* smem, ulong da, ulong db) {
  const int lane = get_local_id(0) % 32, w = (get_local_id(0) / 32) % 4;
  for (int j = 0; j < WG_NI; ++j)
    for (int r = 0; r < 4; ++r) {
      const int row = 16 * w + lane / 4 + 8 * (r / 2), col = 8 * j + 2 * (lane % 4) + r % 2;
      wg_acc_t s = a[j][r];
      for (int k = 0; k < WG_KSTEP; ++k) s += WG_A(row, k) * WG_B(col, k);
      a[j][r] = s;
    }
}
#define wgmma(a, smem, da, db) wgmma_emu(a, smem, da, db)
#define wg_fence(a)
#define wg_commit()
#define wg_wait(a)
#define wg_wait1(a)
#define wg_proxy_fence()

#endif
#else
#define wg_proxy_fence()
#endif
