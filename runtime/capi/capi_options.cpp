// Context options (device, CPU threads, profiling) and per-node profile records as data.
#include <cstdio>

#include "runtime/capi/capi_internal.h"
#include "runtime/profile/node_cost.h"

using kiln::capi::guarded;

struct kiln_context_options {
  std::string device;
  int32_t cpu_threads = 0;
  bool profiling = false;
};

namespace {
kiln::Status need(const char* fn, const void* a) {
  return a ? kiln::Status::ok() : kiln::invalid_argument(std::string(fn) + ": NULL argument");
}
}  // namespace

extern "C" {

kiln_status kiln_context_options_create(kiln_context_options** out) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, out));
    *out = new kiln_context_options();
    return kiln::Status::ok();
  });
}

void kiln_context_options_release(kiln_context_options* opts) { delete opts; }

kiln_status kiln_context_options_set_device(kiln_context_options* o, const char* device) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->device = device ? device : "";
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_options_set_cpu_threads(kiln_context_options* o, int32_t threads) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    if (threads < 0 || threads > 1024)
      return kiln::invalid_argument("cpu threads must be 0 (the default) or 1..1024, got " + std::to_string(threads));
    o->cpu_threads = threads;
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_options_set_profiling(kiln_context_options* o, int32_t enabled) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->profiling = enabled != 0;
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_create_with_options(const kiln_plan* plan, const kiln_context_options* opts,
                                             kiln_context** out) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, out));
    *out = nullptr;
    auto p = kiln::capi::plan_of(plan);
    if (!p) return kiln::invalid_argument("kiln_context_create_with_options: NULL or released plan");
    const kiln_context_options defaults;
    const kiln_context_options& o = opts ? *opts : defaults;
    std::unique_ptr<kiln::ExecutionContext> ctx;
    std::string notice;
    KILN_TRY(kiln::ExecutionContext::create(p, o.device, &ctx, &notice));
    if (!notice.empty()) std::fprintf(stderr, "kiln: note: %s\n", notice.c_str());
    auto extras = std::make_unique<kiln::capi::ContextExtras>();
    ctx->set_cpu_threads(o.cpu_threads);
    if (o.profiling) {
      extras->profiler = std::make_unique<kiln::Profiler>();
      ctx->set_profiler(extras->profiler.get());
    }
    *out = kiln::capi::adopt_context(std::move(ctx), std::move(extras));
    return kiln::Status::ok();
  });
}

int32_t kiln_context_profile_count(const kiln_context* ctx) {
  auto x = kiln::capi::extras_of(ctx);
  auto c = kiln::capi::context_of(ctx);
  if (!x || !x->profiler || !c) return 0;
  try {
    // Costs at the shapes that ran (a dynamic plan stores its max shapes).
    const kiln::Plan& p = c->plan();
    kiln::Plan shaped;
    shaped.tensors = p.tensors;
    shaped.nodes = p.nodes;
    for (size_t t = 0; t < shaped.tensors.size(); ++t) shaped.tensors[t].shape = c->tensor_shape(static_cast<int32_t>(t));
    x->node_flops.assign(p.nodes.size(), 0);
    x->node_bytes.assign(p.nodes.size(), 0);
    for (size_t n = 0; n < p.nodes.size(); ++n) {
      const kiln::NodeCost cost = kiln::node_cost(shaped, shaped.nodes[n]);
      x->node_flops[n] = cost.flops;
      x->node_bytes[n] = cost.bytes;
    }
  } catch (...) {
    return 0;
  }
  return static_cast<int32_t>(x->profiler->events().size());
}

kiln_status kiln_context_profile_record(const kiln_context* ctx, int32_t index, kiln_profile_record* rec) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, rec));
    auto x = kiln::capi::extras_of(ctx);
    auto c = kiln::capi::context_of(ctx);
    if (!c) return kiln::invalid_argument("kiln_context_profile_record: NULL context");
    if (!x || !x->profiler)
      return kiln::invalid_argument("the context was not created with profiling (kiln_context_options_set_profiling)");
    const auto& events = x->profiler->events();
    if (index < 0 || index >= static_cast<int32_t>(events.size()))
      return kiln::invalid_argument("profile record " + std::to_string(index) + " out of range (" +
                                    std::to_string(events.size()) + " records)");
    const kiln::ProfileEvent& e = events[index];
    const kiln::Plan& p = c->plan();
    rec->kind = e.kind == kiln::ProfileEvent::Kind::kNode     ? KILN_PROFILE_NODE
                : e.kind == kiln::ProfileEvent::Kind::kUpload ? KILN_PROFILE_UPLOAD
                                                              : KILN_PROFILE_DOWNLOAD;
    rec->run = e.run;
    rec->backend = e.cpu_reference ? "cpu-ref" : kiln::backend_name(e.backend);
    rec->start_ns = e.start_ns;
    rec->end_ns = e.end_ns;
    rec->host_ns = e.host_ns;
    if (e.kind == kiln::ProfileEvent::Kind::kNode && e.node >= 0 && e.node < static_cast<int32_t>(p.nodes.size())) {
      rec->node = e.node;
      rec->name = p.nodes[e.node].name.c_str();
      rec->op = p.nodes[e.node].op.c_str();
      const bool costed = static_cast<size_t>(e.node) < x->node_flops.size();
      rec->flops = costed ? x->node_flops[e.node] : 0;
      rec->bytes = costed ? x->node_bytes[e.node] : 0;
    } else {
      rec->node = -1;
      const bool valid = e.tensor >= 0 && e.tensor < static_cast<int32_t>(p.tensors.size());
      rec->name = valid ? p.tensors[e.tensor].name.c_str() : "";
      rec->op = "";
      rec->flops = 0;
      rec->bytes = valid ? c->tensor_bytes(e.tensor) : 0;
    }
    return kiln::Status::ok();
  });
}

kiln_status kiln_context_profile_clear(kiln_context* ctx) {
  return guarded(__func__, [&] {
    auto x = kiln::capi::extras_of(ctx);
    if (!kiln::capi::context_of(ctx)) return kiln::invalid_argument("kiln_context_profile_clear: NULL context");
    if (!x || !x->profiler)
      return kiln::invalid_argument("the context was not created with profiling (kiln_context_options_set_profiling)");
    kiln::capi::context_of(ctx)->wait_idle();
    x->profiler->clear();
    return kiln::Status::ok();
  });
}

}  // extern "C"
