// The C API over Plan/ExecutionContext. Every entry point catches C++ exceptions (bad_alloc
// included) so nothing escapes into C callers.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <new>
#include <string>

#include "kiln/kiln.h"
#include "runtime/capi/capi_internal.h"
#include "runtime/core/c_enum.h"
#include "runtime/core/guarded_call.h"
#include "runtime/capi/handle_table.h"
#include "runtime/core/text.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan_file.h"
#include "runtime/plan/plan_format.h"
#include "runtime/version.h"

struct kiln_plan {
  std::shared_ptr<const kiln::Plan> plan;
};
struct kiln_context {
  // The context and what the C API's additions keep for it (capi_internal.h), shared so that a
  // call in flight keeps both alive across a racing release. ctx is declared last so it is
  // destroyed first: its destructor waits for runs that write to the extras' profiler.
  struct State {
    std::unique_ptr<kiln::capi::ContextExtras> extras;
    std::unique_ptr<kiln::ExecutionContext> ctx;
  };
  std::shared_ptr<State> state;
};
struct kiln_event {
  std::shared_ptr<kiln::InferenceEvent> ev;
};

namespace {
thread_local std::string g_last_error;

// Every handle handed out, so stale and foreign pointers are refused (runtime/capi/handle_table.h).
kiln::HandleTable<kiln_plan>& plans() {
  static auto* t = new kiln::HandleTable<kiln_plan>();  // never destroyed: handles may outlive main
  return *t;
}
kiln::HandleTable<kiln_context>& contexts() {
  static auto* t = new kiln::HandleTable<kiln_context>();
  return *t;
}
kiln::HandleTable<kiln_event>& events() {
  static auto* t = new kiln::HandleTable<kiln_event>();
  return *t;
}

std::shared_ptr<const kiln::Plan> plan_of(const kiln_plan* h) {
  return plans().lookup(h, [](const kiln_plan& s) { return s.plan; });
}
std::shared_ptr<kiln::ExecutionContext> context_of(const kiln_context* h) {
  return contexts().lookup(
      h, [](const kiln_context& s) { return std::shared_ptr<kiln::ExecutionContext>(s.state, s.state->ctx.get()); });
}
std::shared_ptr<kiln::InferenceEvent> event_of(const kiln_event* h) {
  return events().lookup(h, [](const kiln_event& s) { return s.ev; });
}

kiln::Status stale(const char* fn, const char* what) {
  return kiln::invalid_argument(std::string(fn) + ": the " + what + " handle is NULL or was already released");
}

kiln_status report(const kiln::Status& s) {
  g_last_error = s.is_ok() ? "" : kiln::one_line(s.message());
  return static_cast<kiln_status>(s.code());
}

template <typename F>
kiln_status guarded_as(const char* fn, F&& f) {
  return report(kiln::guarded_call(fn, std::forward<F>(f)));
}
// Errors name the API function that failed.
#define guarded(...) guarded_as(__func__, __VA_ARGS__)

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
std::shared_ptr<const Plan> plan_of(const kiln_plan* plan) { return ::plan_of(plan); }
std::shared_ptr<ExecutionContext> context_of(const kiln_context* ctx) { return ::context_of(ctx); }
std::shared_ptr<ContextExtras> extras_of(const kiln_context* ctx) {
  return contexts().lookup(
      ctx, [](const kiln_context& s) { return std::shared_ptr<ContextExtras>(s.state, s.state->extras.get()); });
}
kiln_context* adopt_context(std::unique_ptr<ExecutionContext> ctx, std::unique_ptr<ContextExtras> extras) {
  auto state = std::make_shared<kiln_context::State>();
  state->extras = std::move(extras);
  state->ctx = std::move(ctx);
  return contexts().add(std::make_unique<kiln_context>(kiln_context{std::move(state)}));
}
kiln_status report(const Status& s) { return ::report(s); }
}  // namespace kiln::capi

extern "C" {

const char* kiln_version(void) { return KILN_VERSION_STRING; }

const char* kiln_status_string(kiln_status status) {
  return kiln::status_code_name(static_cast<kiln::StatusCode>(kiln::c_enum_value(status)));
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
    *out = plans().add(std::make_unique<kiln_plan>(kiln_plan{std::move(plan)}));
    return kiln::Status::ok();
  });
}

kiln_status kiln_plan_load_file(const char* path, kiln_plan** out) { return kiln_plan_load_file_pinned(path, nullptr, out); }

kiln_status kiln_plan_load_file_pinned(const char* path, const char* expect_sha256, kiln_plan** out) {
  return guarded([&] {
    if (!path || !out) return kiln::invalid_argument("kiln_plan_load_file: NULL argument");
    *out = nullptr;
    auto plan = std::make_shared<kiln::Plan>();
    KILN_TRY(kiln::load_plan_file(path, expect_sha256 ? expect_sha256 : "", plan.get()));
    *out = plans().add(std::make_unique<kiln_plan>(kiln_plan{std::move(plan)}));
    return kiln::Status::ok();
  });
}

kiln_status kiln_plan_release(kiln_plan* plan) {
  return guarded([&] {
    if (!plan) return kiln::Status::ok();
    if (!plans().remove(plan, [](kiln_plan& s) { return std::move(s.plan); })) return stale("kiln_plan_release", "plan");
    return kiln::Status::ok();
  });
}

int32_t kiln_plan_num_inputs(const kiln_plan* plan) {
  auto p = plan_of(plan);
  return p ? static_cast<int32_t>(p->inputs.size()) : 0;
}
int32_t kiln_plan_num_outputs(const kiln_plan* plan) {
  auto p = plan_of(plan);
  return p ? static_cast<int32_t>(p->outputs.size()) : 0;
}

kiln_status kiln_plan_input_info(const kiln_plan* plan, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    auto p = plan_of(plan);
    if (!p) return stale("kiln_plan_input_info", "plan");
    if (!info) return kiln::invalid_argument("kiln_plan_input_info: NULL argument");
    if (index < 0 || index >= static_cast<int32_t>(p->inputs.size()))
      return kiln::invalid_argument("input index " + std::to_string(index) + " out of range");
    // The plan stays alive while the handle does: the name pointer is the plan's own string.
    return fill_info(*p, p->inputs[index], info);
  });
}

kiln_status kiln_plan_output_info(const kiln_plan* plan, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    auto p = plan_of(plan);
    if (!p) return stale("kiln_plan_output_info", "plan");
    if (!info) return kiln::invalid_argument("kiln_plan_output_info: NULL argument");
    if (index < 0 || index >= static_cast<int32_t>(p->outputs.size()))
      return kiln::invalid_argument("output index " + std::to_string(index) + " out of range");
    return fill_info(*p, p->outputs[index], info);
  });
}

kiln_status kiln_plan_input_range(const kiln_plan* plan, int32_t index, int64_t* min_dims, int64_t* max_dims) {
  return guarded([&] {
    auto pp = plan_of(plan);
    if (!pp) return stale("kiln_plan_input_range", "plan");
    if (!min_dims || !max_dims) return kiln::invalid_argument("kiln_plan_input_range: NULL argument");
    const kiln::Plan& p = *pp;
    if (index < 0 || index >= static_cast<int32_t>(p.inputs.size()))
      return kiln::invalid_argument("input index " + std::to_string(index) + " out of range");
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
  auto p = plan_of(plan);
  return p ? p->target.name.c_str() : "";
}

kiln_status kiln_context_create(const kiln_plan* plan, const char* device, kiln_context** out) {
  return guarded([&] {
    if (!out) return kiln::invalid_argument("kiln_context_create: NULL argument");
    *out = nullptr;
    auto p = plan_of(plan);
    if (!p) return stale("kiln_context_create", "plan");
    std::unique_ptr<kiln::ExecutionContext> ctx;
    std::string notice;
    KILN_TRY(kiln::ExecutionContext::create(p, device ? device : "", &ctx, &notice));
    if (!notice.empty()) std::fprintf(stderr, "kiln: note: %s\n", notice.c_str());
    *out = kiln::capi::adopt_context(std::move(ctx), nullptr);
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_release(kiln_context* ctx) {
  return guarded([&] {
    if (!ctx) return kiln::Status::ok();
    // The context is destroyed (after its inferences finish) when the last call using it returns.
    if (!contexts().remove(ctx, [](kiln_context& s) { return std::move(s.state); }))
      return stale("kiln_context_release", "context");
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_set_threads(kiln_context* ctx, int32_t threads) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_set_threads", "context");
    if (threads < 0 || threads > 1024)
      return kiln::invalid_argument("cpu threads must be 0 (the default) or 1..1024, got " + std::to_string(threads));
    c->wait_idle();
    c->set_cpu_threads(threads);
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_bind_input(kiln_context* ctx, const char* name, int32_t dtype,
                                    const int64_t* dims, int32_t rank, const void* data,
                                    size_t size_bytes) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_bind_input", "context");
    if (!name || (rank > 0 && !dims) || rank < 0 || rank > KILN_MAX_RANK)
      return kiln::invalid_argument("kiln_context_bind_input: bad argument");
    kiln::Shape shape(dims, dims + rank);
    return c->bind_input(name, static_cast<kiln::DType>(dtype), shape, data, size_bytes);
  });
}

kiln_status kiln_context_set_input_shape(kiln_context* ctx, const char* name, const int64_t* dims, int32_t rank) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_set_input_shape", "context");
    if (!name || (rank > 0 && !dims) || rank < 0 || rank > KILN_MAX_RANK)
      return kiln::invalid_argument("kiln_context_set_input_shape: bad argument");
    return c->set_input_shape(name, kiln::Shape(dims, dims + rank));
  });
}

kiln_status kiln_context_input_info(const kiln_context* ctx, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_input_info", "context");
    if (!info) return kiln::invalid_argument("kiln_context_input_info: NULL argument");
    const kiln::Plan& p = c->plan();
    if (index < 0 || index >= static_cast<int32_t>(p.inputs.size()))
      return kiln::invalid_argument("input index " + std::to_string(index) + " out of range");
    const int32_t t = p.inputs[index];
    return fill_info(p, t, info, &c->tensor_shape(t), c->tensor_bytes(t));
  });
}

kiln_status kiln_context_output_info(const kiln_context* ctx, int32_t index, kiln_tensor_info* info) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_output_info", "context");
    if (!info) return kiln::invalid_argument("kiln_context_output_info: NULL argument");
    const kiln::Plan& p = c->plan();
    if (index < 0 || index >= static_cast<int32_t>(p.outputs.size()))
      return kiln::invalid_argument("output index " + std::to_string(index) + " out of range");
    const int32_t t = p.outputs[index];
    return fill_info(p, t, info, &c->tensor_shape(t), c->tensor_bytes(t));
  });
}

kiln_status kiln_context_bind_output(kiln_context* ctx, const char* name, void* data,
                                     size_t size_bytes) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_bind_output", "context");
    if (!name) return kiln::invalid_argument("kiln_context_bind_output: NULL argument");
    return c->bind_output(name, data, size_bytes);
  });
}

kiln_status kiln_context_host_buffer(kiln_context* ctx, const char* name, void** data, size_t* size_bytes) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_host_buffer", "context");
    if (!name || !data || !size_bytes) return kiln::invalid_argument("kiln_context_host_buffer: NULL argument");
    c->wait_idle();
    return c->host_buffer(name, data, size_bytes);
  });
}

kiln_status kiln_context_output_device(kiln_context* ctx, const char* name, void** cl_mem) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_output_device", "context");
    if (!name || !cl_mem) return kiln::invalid_argument("kiln_context_output_device: NULL argument");
    c->wait_idle();
    _cl_mem* m = nullptr;
    KILN_TRY(c->output_device(name, &m));
    *cl_mem = m;
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_bind_input_device(kiln_context* ctx, const char* name, void* cl_mem) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_bind_input_device", "context");
    if (!name || !cl_mem) return kiln::invalid_argument("kiln_context_bind_input_device: NULL argument");
    c->wait_idle();
    return c->bind_input_device(name, static_cast<_cl_mem*>(cl_mem));
  });
}

kiln_status kiln_context_run(kiln_context* ctx) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_context_run", "context");
    c->wait_idle();
    return c->run();
  });
}

kiln_status kiln_enqueue(kiln_context* ctx, kiln_event** event) {
  return guarded([&] {
    auto c = context_of(ctx);
    if (!c) return stale("kiln_enqueue", "context");
    auto ev = c->enqueue();
    if (event) *event = events().add(std::make_unique<kiln_event>(kiln_event{std::move(ev)}));
    return kiln::Status::ok();
  });
}

kiln_status kiln_wait(kiln_event* event) {
  return guarded([&] {
    auto ev = event_of(event);
    if (!ev) return stale("kiln_wait", "event");
    std::string msg;
    int code = ev->wait(&msg);
    return kiln::Status(static_cast<kiln::StatusCode>(code), msg);
  });
}

int32_t kiln_event_is_done(kiln_event* event) {
  auto ev = event_of(event);
  return ev && ev->done() ? 1 : 0;
}

kiln_status kiln_event_set_callback(kiln_event* event,
                                    void (*callback)(kiln_status, const char*, void*), void* user) {
  return guarded([&] {
    auto ev = event_of(event);
    if (!ev) return stale("kiln_event_set_callback", "event");
    if (!callback) return kiln::invalid_argument("kiln_event_set_callback: NULL argument");
    ev->on_complete([callback, user](int code, const std::string& msg) {
      callback(static_cast<kiln_status>(code), msg.c_str(), user);
    });
    return kiln::Status::ok();
  });
}

kiln_status kiln_event_release(kiln_event* event) {
  return guarded([&] {
    if (!event) return kiln::Status::ok();
    if (!events().remove(event, [](kiln_event& s) { return std::move(s.ev); })) return stale("kiln_event_release", "event");
    return kiln::Status::ok();
  });
}

const char* kiln_context_device(const kiln_context* ctx) {
  // The label lives in the context: valid while the handle is (as documented for every string).
  auto c = context_of(ctx);
  return c ? c->device().label.c_str() : "";
}

}  // extern "C"
