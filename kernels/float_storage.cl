// Storage of the float tensors of kernels shared by FP32 and FP16 nodes. Built with
// -DKILN_HALF the tensors are half in memory and every load/store converts (vload_half /
// vstore_half_rte: no cl_khr_fp16 needed, so PoCL and NVIDIA run it); the math stays float.
// Kernels declare float tensors as `__global store_t*` and access them only through
// LOADF/STOREF with element indices (no pointer arithmetic on half pointers).
#ifdef KILN_HALF
#define store_t half
#define LOADF(p, i) vload_half((i), (p))
#define STOREF(p, i, v) vstore_half_rte((v), (i), (p))
#else
#define store_t float
#define LOADF(p, i) ((p)[i])
#define STOREF(p, i, v) ((p)[i] = (v))
#endif
