// Test hook for failure paths that real hardware rarely takes: arm a site and its n-th next
// occurrence fails as the real failure would (the OpenCL error code, a null allocation, a
// bad_alloc). Tests (tests/unit/fault_injection_test.cpp) check that each returns a status
// naming what failed and leaves the context reusable or cleanly destroyable, without leaks.
// Unarmed, a site costs one relaxed atomic load.
#pragma once

namespace kiln {

enum class FaultSite : int {
  kProgramBuild = 0,  // building an OpenCL program (CL_BUILD_PROGRAM_FAILURE)
  kDeviceAlloc,       // clCreateBuffer (CL_MEM_OBJECT_ALLOCATION_FAILURE): load or run
  kHostArena,         // the host activation arena at context creation
  kKernelScratch,     // a CPU kernel's scratch allocation at run time (std::bad_alloc)
  kKernelLaunch,      // enqueueing an OpenCL kernel mid-inference (CL_OUT_OF_RESOURCES)
  kKernelCreate,      // a CPU kernel finding no oneDNN primitive it can create at run time
  kCount
};

// Makes the `nth` next occurrence of `site` fail (1: the next one); 0 disarms it.
void arm_fault(FaultSite site, int nth);
void disarm_faults();
// Called at each site: true when this occurrence must fail (and disarms the site).
bool fault_now(FaultSite site);

}  // namespace kiln
