// Helpers shared by the normalization family's OpenCL host code.
#pragma once
#include <string>
#include <vector>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"

namespace kiln::normcl {

// Kernel `fn` of kernels/<file>.cl (after kernels/float_storage.cl, float_storage_x8.cl and
// warp_shuffle.cl) built with `options`, plus
// -DKILN_HALF for FP16 nodes (float16 output: the node's float tensors are stored as half).
// `preludes`: more kernels/<name>.cl files between those and <file>.cl.
Status kernel(ClKernelArgs& a, const char* file, const std::string& options, const char* fn, cl_kernel* out,
              const std::vector<const char*>& preludes = {});

// Whether the node's float tensors (inputs, and outputs where `outputs`) are all float32 or
// all float16, and every element count fits the kernels' int indexing.
bool float_operands(const PlanNode& n, const Plan& p, bool outputs);

// Work-group size for the one-group-per-row kernels: a power of two (the __local trees halve
// it) no larger than 256 or what the device allows for this kernel.
inline size_t group_size(ClKernelArgs& a, cl_kernel k) {
  size_t max_wg = 0;
  if (clGetKernelWorkGroupInfo(k, a.cl.device(), CL_KERNEL_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, nullptr) !=
          CL_SUCCESS ||
      max_wg == 0)
    max_wg = 64;
  size_t g = 1;
  while (g * 2 <= max_wg && g * 2 <= 256) g *= 2;
  return g;
}

// Whether rows of n elements (`contiguous`: stride 1) go one work-group per row. Short rows
// run one work-item per row; long strided rows too when there are enough of them that
// neighbouring work-items read neighbouring addresses and the device is still filled.
inline bool use_group_per_row(int64_t rows, int64_t n, bool contiguous) {
  if (n < 64) return false;
  if (contiguous) return true;
  return rows < 4096;
}

// True when every element count fits the kernels' 32-bit int indexing.
inline bool fits_int(int64_t n) { return n < (int64_t{1} << 31); }

}  // namespace kiln::normcl
