// Control flow (If, Loop, Scan) has no OpenCL kernels: the partitioner puts these nodes on the
// CPU, which runs their subgraphs (runtime/backends/cpu/control_flow.cpp).
#include "runtime/ops/kernel_api.h"

namespace kiln {

void register_control_flow_opencl(ClRegistry&) {}

}  // namespace kiln
