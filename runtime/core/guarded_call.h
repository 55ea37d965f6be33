// The body of a C API entry point: f() returns a Status, and no C++ exception may cross into C
// callers, so bad_alloc and any other exception become statuses naming the function. Shared by
// libkiln_runtime's and libkiln_compiler's C APIs.
#pragma once
#include <new>
#include <stdexcept>
#include <string>

#include "runtime/core/status.h"

namespace kiln {

template <typename F>
Status guarded_call(const char* fn, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return out_of_memory(std::string(fn) + ": a host allocation failed (out of memory)");
  } catch (const std::exception& e) {
    return internal_error(std::string(fn) + ": unexpected exception: " + e.what());
  }
}

}  // namespace kiln
