// What the compiler C API's files share: the handle structs, error reporting (a thread-local
// message per kiln_build_last_error) and argument conversion.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "compiler/tools/compare.h"
#include "compiler/tools/sweep.h"
#include "kiln/kiln_build.h"
#include "runtime/core/guarded_call.h"

struct kiln_build_tensors {
  std::map<std::string, kiln::HostTensor> tensors;
  std::string error;  // set by a sample callback that fails
};

struct kiln_build_options {
  kiln::BuildOptions opts;
  kiln_build_sample_fn calib_fn = nullptr;
  void* calib_user = nullptr;
  kiln_build_log_fn log_fn = nullptr;
  void* log_user = nullptr;
};

namespace kiln::build_capi {

kiln_status report(const Status& s);
const char* last_error();

template <typename F>
kiln_status guarded(const char* fn, F&& f) {
  return report(guarded_call(fn, std::forward<F>(f)));
}

// A dense C-order tensor from caller memory, every argument checked (dtype, rank, dims, size).
Status tensor_from(const char* what, int32_t dtype, const int64_t* dims, int32_t rank, const void* data,
                   size_t size_bytes, HostTensor* out);
Status shape_from(const char* what, const int64_t* dims, int32_t rank, Shape* out);

// Calls `fn` for sample 0, 1, ... until it reports the end; every sample in memory.
Status collect_samples(kiln_build_sample_fn fn, void* user, const char* what, std::vector<CalibrationSample>* out);

// The options a build runs with: the in-memory calibration samples collected, the report
// routed to `report` (nullptr: none).
Status resolve_options(const kiln_build_options* o, std::FILE* report, BuildOptions* out);

}  // namespace kiln::build_capi
