// Warp shuffles as inline PTX, for kernels built with -D KILN_PTX=1 (NVIDIA): kernels without it
// exchange through __local memory instead.
#if KILN_PTX
// Lane `lane ^ mask`'s value of v, within the warp of 32.
inline float warp_shfl_xor(float v, int mask) {
  float r;
  asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(r) : "f"(v), "r"(mask));
  return r;
}
#endif
