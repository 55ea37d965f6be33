// A device-to-device copy of `bytes` from the start of `in` to the start of `out` on the node's
// queue: clEnqueueCopyBuffer, or a copy kernel on GPUs (runtime/backends/opencl/movement.cpp
// says why). Copy-family nodes (Reshape and friends) use it when they do not run in place.
#pragma once
#include <cstddef>

#include "runtime/ops/kernel_api.h"

namespace kiln {

Status cl_device_copy(ClKernelArgs& a, cl_mem in, cl_mem out, size_t bytes);

}  // namespace kiln
