// Build flags that `kiln build` and `kiln sweep` both take, set through the build C API
// (include/kiln/kiln_build.h) as an embedding application would.
#pragma once
#include <string>

#include "kiln/kiln_build.h"
#include "runtime/core/status.h"

namespace kiln::cli {

// A build C API status as a Status carrying kiln_build_last_error()'s message (after "what: ").
Status build_api_status(kiln_status s, const std::string& what = "");
// --calibrator C: entropy | minmax | mse | percentile[=P].
Status set_calibrator_flag(kiln_build_options* o, const std::string& text);
// --fallback-precision P: fp32 | fp16.
Status set_fallback_precision_flag(kiln_build_options* o, const std::string& text);

// --io-precision P: fp32 | fp16.
Status set_io_precision_flag(kiln_build_options* o, const std::string& text);

}  // namespace kiln::cli
