// Hopper-only instructions (wgmma, setmaxnreg) through OpenCL: NVIDIA's OpenCL C compiler targets
// sm_90 and rejects them, but a program built from PTX text for sm_90a runs
// (../shared/DEVICE.md). Kernels write such instructions as `//@@` PTX comments inside inline asm
// (kernels/wgmma_ops.cl), so the compiler allocates their operands; a program built with the
// build option below is then rebuilt from its own PTX with the comments opened and the target
// raised to sm_90a (runtime/device/cl_runtime.cpp).
#pragma once
#include <string>

#include "runtime/core/status.h"

namespace kiln {

// The build option that asks for the rebuild, and the one that caps the registers per work-item
// (followed by the number): a `.maxnreg` directive on the kernel, which OpenCL C cannot write.
constexpr const char* kPtxSm90aOption = "-D KILN_PTX_SM90A=1";
constexpr const char* kPtxMaxnregOption = "-D KILN_PTX_MAXNREG=";

// `ptx` (NVIDIA's OpenCL C output for `.target sm_90`) with every `//@@` opened, the target
// sm_90a and, where `max_registers` > 0, `.maxnreg max_registers` on its kernel. Fails, naming
// what is missing, on anything else.
Status ptx_for_sm90a(const std::string& ptx, int max_registers, std::string* out);

// The register cap `options` asks for with kPtxMaxnregOption, 0 where none.
int ptx_max_registers(const std::string& options);

}  // namespace kiln
