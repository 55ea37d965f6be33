// Turns OpenCL error codes into kiln statuses with context. Every cl* call in kiln goes
// through KILN_CL so no error code is ever dropped.
#pragma once
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <string>

#include "runtime/core/status.h"

namespace kiln {

const char* cl_error_name(cl_int err);

// kOutOfMemory for allocation failures, kDevice otherwise.
Status cl_status(cl_int err, const std::string& what);

}  // namespace kiln

#define KILN_CL(call, what)                                              \
  do {                                                                   \
    cl_int kiln_cl_err_ = (call);                                        \
    if (kiln_cl_err_ != CL_SUCCESS) return ::kiln::cl_status(kiln_cl_err_, what); \
  } while (0)
