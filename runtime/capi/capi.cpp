// The C API over Plan/ExecutionContext. Every entry point catches C++ exceptions (bad_alloc
// included) so nothing escapes into C callers.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <string>

#include "kiln/kiln.h"
#include "runtime/capi/capi_internal.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan_format.h"
#include "runtime/version.h"

struct kiln_plan {
  std::shared_ptr<const kiln::Plan> plan;
};
struct kiln_context {
  // Declared first so it outlives ctx, whose destructor waits for runs that use it.
  std::unique_ptr<kiln::capi::ContextExtras> extras;  // capi_options.cpp
  std::unique_ptr<kiln::ExecutionContext> ctx;
};
struct kiln_event {
  std::shared_ptr<kiln::InferenceEvent> ev;
};

namespace {
thread_local std::string g_last_error;

kiln_status report(const kiln::Status& s) {
  g_last_error = s.is_ok() ? "" : s.message();
  return static_cast<kiln_status>(s.code());
}

template <typename F>
kiln_status guarded(F&& f) {
  try {
    return report(f());
  } catch (const std::bad_alloc&) {
    return report(kiln::out_of_memory("host allocation failed"));
  } catch (const std::exception& e) {
    return report(kiln::internal_error(std::string("unexpected exception: ") + e.what()));
  }
}

// `shape` and `bytes`: the tensor's in a context (dynamic plans), else the plan's.
kiln::Status fill_info(const kiln::Plan& p, int32_t tensor, kiln_tensor_info* info,
                       const kiln::Shape* shape = nullptr, uint64_t bytes = 0) {
  const kiln::PlanTensor& t = p.tensors[tensor];
  if (!shape) {
    shape = &t.shape;
    bytes = t.bytes();
  }
  if (shape->size() > KILN_MAX_RANK) return kiln::unsupported("tensor rank above KILN_MAX_RANK");
  info->name = t.name.c_str();
  info->dtype = static_cast<int32_t>(t.dtype);
  info->rank = static_cast<int32_t>(shape->size());
  for (size_t i = 0; i < shape->size(); ++i) info->dims[i] = (*shape)[i];
  info->size_bytes = bytes;
  return kiln::Status::ok();
}
}  // namespace

// For the C API's other files (capi_internal.h).
namespace kiln::capi {
std::shared_ptr<const Plan> plan_of(const kiln_plan* plan) { return plan ? plan->plan : nullptr; }
ExecutionContext* context_of(const kiln_context* ctx) { return ctx ? ctx->ctx.get() : nullptr; }
ContextExtras* extras_of(const kiln_context* ctx) { return ctx ? ctx->extras.get() : nullptr; }
kiln_context* adopt_context(std::unique_ptr<ExecutionContext> ctx, std::unique_ptr<ContextExtras> extras) {
  return new kiln_context{std::move(extras), std::move(ctx)};
}
kiln_status report(const Status& s) { return ::report(s); }
}  // namespace kiln::capi

extern "C" {

const char* kiln_version(void) { return KILN_VERSION_STRING; }

const char* kiln_status_string(kiln_status status) {
  return kiln::status_code_name(static_cast<kiln::StatusCode>(status));
}

const char* kiln_last_error(void) { return g_last_error.c_str(); }

int32_t kiln_device_count(void) { return static_cast<int32_t>(kiln::opencl_devices().size()); }

const char* kiln_device_name(int32_t index) {
  const auto& d = kiln::opencl_devices();
  if (index < 0 || index >= static_cast<int32_t>(d.size())) return nullptr;
  return d[index].caps.name.c_str();
}

kiln_status kiln_plan_load_memory(const void* data, size_t size, kiln_plan** out) {
  return guarded([&] {
    if (!out || (!data && size)) return kiln::invalid_argument("kiln_plan_load_memory: NULL argument");
    *out = nullptr;
    auto plan = std::make_shared<kiln::Plan>();
    KILN_TRY(kiln::parse_plan(static_cast<const uint8_t*>(data), size, plan.get()));
    *out = new kiln_plan{std::move(plan)};
    return kiln::Status::ok();
  });
}

kiln_status kiln_plan_load_file(const char* path, kiln_plan** out) {
  return guarded([&] {
    if (!path || !out) return kiln::invalid_argument("kiln_plan_load_file: NULL argument");
    *out = nullptr;
    std::ifstream f(path, std::ios::binary);
    if (!f) return kiln::not_found(std::string("cannot open plan file '") + path + "'");
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (f.bad()) return kiln::io_error(std::string("error reading plan file '") + path + "'");
    auto plan = std::make_shared<kiln::Plan>();
    KILN_TRY_CTX(kiln::parse_plan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                  plan.get()),
                 std::string("plan '") + path + "'");
    *out = new kiln_plan{std::move(plan)};
    return kiln::Status::ok();
  });
}

void kiln_plan_release(kiln_plan* plan) { delete plan; }

int32_t kiln_plan_num_inputs(const kiln_plan* plan) {
  return plan ? static_cast<int32_t>(plan->plan->inputs.size()) : 0;
}
int32_t kiln_plan_num_outputs(const kiln_plan* plan) {
  return plan ? static_cast<int32_t>(plan->plan->outputs.size()) : 0;
}

kiln_status kiln_plan_input_info(const kiln_plan* plan, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    if (!plan || !info) return kiln::invalid_argument("kiln_plan_input_info: NULL argument");
    if (index < 0 || index >= kiln_plan_num_inputs(plan))
      return kiln::invalid_argument("input index " + std::to_string(index) + " out of range");
    return fill_info(*plan->plan, plan->plan->inputs[index], info);
  });
}

kiln_status kiln_plan_output_info(const kiln_plan* plan, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    if (!plan || !info) return kiln::invalid_argument("kiln_plan_output_info: NULL argument");
    if (index < 0 || index >= kiln_plan_num_outputs(plan))
      return kiln::invalid_argument("output index " + std::to_string(index) + " out of range");
    return fill_info(*plan->plan, plan->plan->outputs[index], info);
  });
}

kiln_status kiln_plan_input_range(const kiln_plan* plan, int32_t index, int64_t* min_dims, int64_t* max_dims) {
  return guarded([&] {
    if (!plan || !min_dims || !max_dims) return kiln::invalid_argument("kiln_plan_input_range: NULL argument");
    if (index < 0 || index >= kiln_plan_num_inputs(plan))
      return kiln::invalid_argument("input index " + std::to_string(index) + " out of range");
    const kiln::Plan& p = *plan->plan;
    const int32_t t = p.inputs[index];
    const kiln::Shape& s = p.tensors[t].shape;
    if (s.size() > KILN_MAX_RANK) return kiln::unsupported("tensor rank above KILN_MAX_RANK");
    for (size_t d = 0; d < s.size(); ++d) min_dims[d] = max_dims[d] = s[d];
    for (const kiln::DynInputDim& di : p.dyn_inputs)
      if (di.tensor == t) min_dims[di.dim] = p.dyn_vars[di.var].min;
    return kiln::Status::ok();
  });
}

const char* kiln_plan_target_device(const kiln_plan* plan) {
  return plan ? plan->plan->target.name.c_str() : "";
}

kiln_status kiln_context_create(const kiln_plan* plan, const char* device, kiln_context** out) {
  return guarded([&] {
    if (!plan || !out) return kiln::invalid_argument("kiln_context_create: NULL argument");
    *out = nullptr;
    std::unique_ptr<kiln::ExecutionContext> ctx;
    std::string notice;
    KILN_TRY(kiln::ExecutionContext::create(plan->plan, device ? device : "", &ctx, &notice));
    if (!notice.empty()) std::fprintf(stderr, "kiln: note: %s\n", notice.c_str());
    *out = new kiln_context{nullptr, std::move(ctx)};
    return kiln::Status::ok();
  });
}

void kiln_context_release(kiln_context* ctx) { delete ctx; }

kiln_status kiln_context_set_threads(kiln_context* ctx, int32_t threads) {
  return guarded([&] {
    if (!ctx) return kiln::invalid_argument("kiln_context_set_threads: NULL context");
    if (threads < 0 || threads > 1024)
      return kiln::invalid_argument("cpu threads must be 0 (the default) or 1..1024, got " + std::to_string(threads));
    ctx->ctx->wait_idle();
    ctx->ctx->set_cpu_threads(threads);
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_bind_input(kiln_context* ctx, const char* name, int32_t dtype,
                                    const int64_t* dims, int32_t rank, const void* data,
                                    size_t size_bytes) {
  return guarded([&] {
    if (!ctx || !name || (rank > 0 && !dims) || rank < 0 || rank > KILN_MAX_RANK)
      return kiln::invalid_argument("kiln_context_bind_input: bad argument");
    kiln::Shape shape(dims, dims + rank);
    return ctx->ctx->bind_input(name, static_cast<kiln::DType>(dtype), shape, data, size_bytes);
  });
}

kiln_status kiln_context_set_input_shape(kiln_context* ctx, const char* name, const int64_t* dims, int32_t rank) {
  return guarded([&] {
    if (!ctx || !name || (rank > 0 && !dims) || rank < 0 || rank > KILN_MAX_RANK)
      return kiln::invalid_argument("kiln_context_set_input_shape: bad argument");
    return ctx->ctx->set_input_shape(name, kiln::Shape(dims, dims + rank));
  });
}

kiln_status kiln_context_input_info(const kiln_context* ctx, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    if (!ctx || !info) return kiln::invalid_argument("kiln_context_input_info: NULL argument");
    const kiln::Plan& p = ctx->ctx->plan();
    if (index < 0 || index >= static_cast<int32_t>(p.inputs.size()))
      return kiln::invalid_argument("input index " + std::to_string(index) + " out of range");
    const int32_t t = p.inputs[index];
    return fill_info(p, t, info, &ctx->ctx->tensor_shape(t), ctx->ctx->tensor_bytes(t));
  });
}

kiln_status kiln_context_output_info(const kiln_context* ctx, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    if (!ctx || !info) return kiln::invalid_argument("kiln_context_output_info: NULL argument");
    const kiln::Plan& p = ctx->ctx->plan();
    if (index < 0 || index >= static_cast<int32_t>(p.outputs.size()))
      return kiln::invalid_argument("output index " + std::to_string(index) + " out of range");
    const int32_t t = p.outputs[index];
    return fill_info(p, t, info, &ctx->ctx->tensor_shape(t), ctx->ctx->tensor_bytes(t));
  });
}

kiln_status kiln_context_bind_output(kiln_context* ctx, const char* name, void* data,
                                     size_t size_bytes) {
  return guarded([&] {
    if (!ctx || !name) return kiln::invalid_argument("kiln_context_bind_output: NULL argument");
    return ctx->ctx->bind_output(name, data, size_bytes);
  });
}

kiln_status kiln_context_host_buffer(kiln_context* ctx, const char* name, void** data, size_t* size_bytes) {
  return guarded([&] {
    if (!ctx || !name || !data || !size_bytes) return kiln::invalid_argument("kiln_context_host_buffer: NULL argument");
    ctx->ctx->wait_idle();
    return ctx->ctx->host_buffer(name, data, size_bytes);
  });
}

kiln_status kiln_context_output_device(kiln_context* ctx, const char* name, void** cl_mem) {
  return guarded([&] {
    if (!ctx || !name || !cl_mem) return kiln::invalid_argument("kiln_context_output_device: NULL argument");
    ctx->ctx->wait_idle();
    _cl_mem* m = nullptr;
    KILN_TRY(ctx->ctx->output_device(name, &m));
    *cl_mem = m;
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_bind_input_device(kiln_context* ctx, const char* name, void* cl_mem) {
  return guarded([&] {
    if (!ctx || !name || !cl_mem) return kiln::invalid_argument("kiln_context_bind_input_device: NULL argument");
    ctx->ctx->wait_idle();
    return ctx->ctx->bind_input_device(name, static_cast<_cl_mem*>(cl_mem));
  });
}

kiln_status kiln_context_run(kiln_context* ctx) {
  return guarded([&] {
    if (!ctx) return kiln::invalid_argument("kiln_context_run: NULL context");
    ctx->ctx->wait_idle();
    return ctx->ctx->run();
  });
}

kiln_status kiln_enqueue(kiln_context* ctx, kiln_event** event) {
  return guarded([&] {
    if (!ctx) return kiln::invalid_argument("kiln_enqueue: NULL context");
    auto ev = ctx->ctx->enqueue();
    if (event) *event = new kiln_event{std::move(ev)};
    return kiln::Status::ok();
  });
}

kiln_status kiln_wait(kiln_event* event) {
  return guarded([&] {
    if (!event) return kiln::invalid_argument("kiln_wait: NULL event");
    std::string msg;
    int code = event->ev->wait(&msg);
    return kiln::Status(static_cast<kiln::StatusCode>(code), msg);
  });
}

int32_t kiln_event_is_done(kiln_event* event) { return event && event->ev->done() ? 1 : 0; }

kiln_status kiln_event_set_callback(kiln_event* event,
                                    void (*callback)(kiln_status, const char*, void*), void* user) {
  return guarded([&] {
    if (!event || !callback) return kiln::invalid_argument("kiln_event_set_callback: NULL argument");
    event->ev->on_complete([callback, user](int code, const std::string& msg) {
      callback(static_cast<kiln_status>(code), msg.c_str(), user);
    });
    return kiln::Status::ok();
  });
}

void kiln_event_release(kiln_event* event) { delete event; }

const char* kiln_context_device(const kiln_context* ctx) {
  return ctx ? ctx->ctx->device().label.c_str() : "";
}

}  // extern "C"
