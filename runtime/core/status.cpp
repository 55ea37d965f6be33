#include "runtime/core/status.h"

namespace kiln {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kInvalidPlan: return "invalid plan";
    case StatusCode::kInvalidModel: return "invalid model";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kNotFound: return "not found";
    case StatusCode::kDevice: return "device error";
    case StatusCode::kOutOfMemory: return "out of memory";
    case StatusCode::kIo: return "I/O error";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown status";
}

}  // namespace kiln
