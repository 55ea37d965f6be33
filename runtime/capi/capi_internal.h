// What the C API's other files need from capi.cpp's handles: look a handle up (nullptr when it
// is NULL or not a live handle), hand a new context out, report a status. Keeps the additions
// (capi_options.cpp, capi_inspect.cpp) out of capi.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "runtime/core/guarded_call.h"
#include "runtime/core/status.h"
#include "runtime/exec/execution_context.h"
#include "runtime/profile/profiler.h"

namespace kiln::capi {

// Per-context state of the additions: the profiler of a context created with profiling.
struct ContextExtras {
  std::unique_ptr<Profiler> profiler;
  std::vector<double> node_flops;      // per node at the shapes that ran, refreshed by profile_count
  std::vector<uint64_t> node_bytes;
};

std::shared_ptr<const Plan> plan_of(const kiln_plan* plan);
// Shared references: a release racing with the call frees nothing under it.
std::shared_ptr<ExecutionContext> context_of(const kiln_context* ctx);
std::shared_ptr<ContextExtras> extras_of(const kiln_context* ctx);
kiln_context* adopt_context(std::unique_ptr<ExecutionContext> ctx, std::unique_ptr<ContextExtras> extras);
kiln_status report(const Status& s);

template <typename F>
kiln_status guarded(const char* fn, F&& f) {
  return report(guarded_call(fn, std::forward<F>(f)));
}

}  // namespace kiln::capi
