// Storage of the float tensors of kernels shared by FP32 and FP16 nodes. Built with
// -DKILN_HALF the tensors are half in memory and every load/store converts (vload_half /
// vstore_half_rte: no cl_khr_fp16 needed, so PoCL and NVIDIA run it); the math stays float.
// Kernels declare float tensors as `__global store_t*` and access them only through
// LOADF/STOREF with element indices (no pointer arithmetic on half pointers).
#ifdef KILN_HALF
#define store_t half
#define LOADF(p, i) vload_half((i), (p))
#define STOREF(p, i, v) vstore_half_rte((v), (i), (p))
#define STOREF2(p, i, v0, v1) vstore_half2_rte(kiln_float2((v0), (v1)), (i) >> 1, (p))
#else
#define store_t float
#define LOADF(p, i) ((p)[i])
#define STOREF(p, i, v) ((p)[i] = (v))
#define STOREF2(p, i, v0, v1) vstore2(kiln_float2((v0), (v1)), (i) >> 1, (p))
#endif
// STOREF2: elements i (even) and i + 1 in one 4- or 8-byte store. (A function, not a vector
// literal: scripts/check_mma_ptx.py compiles these kernels as CUDA too.)
inline float2 kiln_float2(float a, float b) {
  float2 r;
  r.x = a;
  r.y = b;
  return r;
}
