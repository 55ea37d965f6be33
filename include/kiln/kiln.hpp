// Header-only C++ RAII wrappers over kiln.h. Errors become kiln::Error exceptions carrying the
// status and kiln_last_error()'s message.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln {

class Error : public std::runtime_error {
 public:
  Error(kiln_status s, const std::string& msg) : std::runtime_error(msg), status(s) {}
  kiln_status status;
};

inline void check(kiln_status s) {
  if (s != KILN_OK) throw Error(s, std::string(kiln_status_string(s)) + ": " + kiln_last_error());
}

class PlanHandle {
 public:
  // `expect_sha256`: "" or the content hash the file must have (kiln_plan_load_file_pinned).
  static PlanHandle load_file(const std::string& path, const std::string& expect_sha256 = "") {
    kiln_plan* p = nullptr;
    check(kiln_plan_load_file_pinned(path.c_str(), expect_sha256.c_str(), &p));
    return PlanHandle(p);
  }
  static PlanHandle load_memory(const void* data, size_t size) {
    kiln_plan* p = nullptr;
    check(kiln_plan_load_memory(data, size, &p));
    return PlanHandle(p);
  }
  kiln_plan* get() const { return p_.get(); }
  std::vector<kiln_tensor_info> inputs() const {
    std::vector<kiln_tensor_info> v(kiln_plan_num_inputs(get()));
    for (int32_t i = 0; i < static_cast<int32_t>(v.size()); ++i) check(kiln_plan_input_info(get(), i, &v[i]));
    return v;
  }
  std::vector<kiln_tensor_info> outputs() const {
    std::vector<kiln_tensor_info> v(kiln_plan_num_outputs(get()));
    for (int32_t i = 0; i < static_cast<int32_t>(v.size()); ++i) check(kiln_plan_output_info(get(), i, &v[i]));
    return v;
  }

 private:
  explicit PlanHandle(kiln_plan* p) : p_(p, kiln_plan_release) {}
  std::shared_ptr<kiln_plan> p_;
};

class ContextHandle {
 public:
  ContextHandle(const PlanHandle& plan, const std::string& device) : plan_(plan) {
    kiln_context* c = nullptr;
    check(kiln_context_create(plan.get(), device.c_str(), &c));
    c_.reset(c);
  }
  void bind_input(const kiln_tensor_info& info, const void* data) {
    check(kiln_context_bind_input(c_.get(), info.name, info.dtype, info.dims, info.rank, data,
                                  info.size_bytes));
  }
  void bind_output(const kiln_tensor_info& info, void* data) {
    check(kiln_context_bind_output(c_.get(), info.name, data, info.size_bytes));
  }
  void run() { check(kiln_context_run(c_.get())); }
  // Page-locked host memory for input/output `name` (see kiln_context_host_buffer).
  void* host_buffer(const std::string& name, size_t* size_bytes = nullptr) {
    void* d = nullptr;
    size_t n = 0;
    check(kiln_context_host_buffer(c_.get(), name.c_str(), &d, &n));
    if (size_bytes) *size_bytes = n;
    return d;
  }
  // Device-resident tensors (see kiln_context_output_device / _bind_input_device).
  void* output_device(const std::string& name) {
    void* m = nullptr;
    check(kiln_context_output_device(c_.get(), name.c_str(), &m));
    return m;
  }
  void bind_input_device(const std::string& name, void* cl_mem) {
    check(kiln_context_bind_input_device(c_.get(), name.c_str(), cl_mem));
  }
  // Threads of the CPU nodes per inference (0: default; see kiln_context_set_threads).
  void set_threads(int32_t threads) { check(kiln_context_set_threads(c_.get(), threads)); }
  // Dynamic plans: reshapes the context (see kiln_context_set_input_shape).
  void set_input_shape(const std::string& name, const std::vector<int64_t>& dims) {
    check(kiln_context_set_input_shape(c_.get(), name.c_str(), dims.data(), static_cast<int32_t>(dims.size())));
  }
  // Inputs and outputs at the context's current shapes.
  std::vector<kiln_tensor_info> inputs() const {
    std::vector<kiln_tensor_info> v(kiln_plan_num_inputs(plan_.get()));
    for (int32_t i = 0; i < static_cast<int32_t>(v.size()); ++i) check(kiln_context_input_info(get(), i, &v[i]));
    return v;
  }
  std::vector<kiln_tensor_info> outputs() const {
    std::vector<kiln_tensor_info> v(kiln_plan_num_outputs(plan_.get()));
    for (int32_t i = 0; i < static_cast<int32_t>(v.size()); ++i) check(kiln_context_output_info(get(), i, &v[i]));
    return v;
  }
  kiln_context* get() const { return c_.get(); }

 private:
  struct Release {
    void operator()(kiln_context* c) const { kiln_context_release(c); }
  };
  PlanHandle plan_;  // keeps the plan alive as long as the context
  std::unique_ptr<kiln_context, Release> c_;
};

}  // namespace kiln
