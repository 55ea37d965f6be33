// Vector access to the tensors of kernels/float_storage.cl (included after it; kept apart
// because the tensor-core kernels' CUDA check, scripts/check_mma_ptx.py, has no float8).
// Eight consecutive elements [8 * i8, 8 * i8 + 8) in one 16- or 32-byte access; the tensor's
// start and every such group must be aligned to it (kiln's buffers are aligned to at least 64
// bytes, so whole rows of a multiple of 8 elements are).
#ifdef KILN_HALF
inline float8 load8f(__global const half* p, int i8) {
  const uint4 r = ((__global const uint4*)p)[i8];
  return vload_half8(0, (const __private half*)&r);
}
inline void store8f(__global half* p, int i8, float8 v) {
  uint4 r;
  vstore_half8_rte(v, 0, (__private half*)&r);
  ((__global uint4*)p)[i8] = r;
}
// store8f that returns the values as stored (rounded to half), for a kernel that also derives
// something from its stored output (a quantized copy: runtime/ops/quantized_output.h).
inline float8 store8f_stored(__global half* p, int i8, float8 v) {
  uint4 r;
  vstore_half8_rte(v, 0, (__private half*)&r);
  ((__global uint4*)p)[i8] = r;
  return vload_half8(0, (const __private half*)&r);
}
#else
inline float8 load8f(__global const float* p, int i8) { return ((__global const float8*)p)[i8]; }
inline void store8f(__global float* p, int i8, float8 v) { ((__global float8*)p)[i8] = v; }
inline float8 store8f_stored(__global float* p, int i8, float8 v) {
  store8f(p, i8, v);
  return v;
}
#endif
