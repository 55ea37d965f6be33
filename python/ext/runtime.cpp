// kiln.Plan's and kiln.Context's native halves over the runtime C API (include/kiln/kiln.h).
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <mutex>
#include <vector>

#include "ext.h"

namespace kiln_py {
namespace {

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

using PlanPtr = std::shared_ptr<kiln_plan>;

PlanPtr adopt(kiln_plan* p) {
  return PlanPtr(p, [](kiln_plan* q) { kiln_plan_release(q); });
}

nb::list dims_list(const int64_t* dims, int32_t rank) {
  nb::list l;
  for (int32_t i = 0; i < rank; ++i) l.append(dims[i]);
  return l;
}

nb::dict info_dict(const kiln_tensor_info& info) {
  nb::dict d;
  d["name"] = std::string(info.name);
  d["dtype"] = dtype_name(info.dtype);
  d["shape"] = dims_list(info.dims, info.rank);
  return d;
}

class Plan {
 public:
  explicit Plan(PlanPtr p) : plan_(std::move(p)) {}

  static Plan load_memory(nb::bytes data) {
    kiln_plan* p = nullptr;
    kiln_status s;
    {
      nb::gil_scoped_release r;
      s = kiln_plan_load_memory(data.c_str(), data.size(), &p);
    }
    check(s);
    return Plan(adopt(p));
  }

  nb::list inputs() const {
    nb::list out;
    for (int32_t i = 0; i < kiln_plan_num_inputs(plan_.get()); ++i) {
      kiln_tensor_info info;
      int64_t lo[KILN_MAX_RANK], hi[KILN_MAX_RANK];
      check(kiln_plan_input_info(plan_.get(), i, &info));
      check(kiln_plan_input_range(plan_.get(), i, lo, hi));
      nb::dict d = info_dict(info);
      d["min_shape"] = dims_list(lo, info.rank);
      d["max_shape"] = dims_list(hi, info.rank);
      out.append(d);
    }
    return out;
  }

  nb::list outputs() const {
    nb::list out;
    for (int32_t i = 0; i < kiln_plan_num_outputs(plan_.get()); ++i) {
      kiln_tensor_info info;
      check(kiln_plan_output_info(plan_.get(), i, &info));
      out.append(info_dict(info));
    }
    return out;
  }

  std::string target_device() const { return kiln_plan_target_device(plan_.get()); }

  std::string inspect_json() const {
    size_t needed = 0;
    check(kiln_plan_inspect_json(plan_.get(), nullptr, 0, &needed));
    std::string s(needed, '\0');
    check(kiln_plan_inspect_json(plan_.get(), &s[0], s.size(), &needed));
    s.resize(needed - 1);
    return s;
  }

  const PlanPtr& ptr() const { return plan_; }

 private:
  PlanPtr plan_;
};

// One asynchronous inference's Python objects, alive until its callback has run.
struct Pending {
  std::vector<nb::object> keep;  // the bound input arrays
  nb::dict outputs;
  nb::object future;
};

class Context {
 public:
  Context(const Plan& plan, const std::string& device, int32_t cpu_threads, bool profiling) : plan_(plan.ptr()) {
    kiln_context_options* o = nullptr;
    check(kiln_context_options_create(&o));
    std::unique_ptr<kiln_context_options, void (*)(kiln_context_options*)> guard(o, kiln_context_options_release);
    check(kiln_context_options_set_device(o, device.c_str()));
    check(kiln_context_options_set_cpu_threads(o, cpu_threads));
    check(kiln_context_options_set_profiling(o, profiling));
    kiln_status s;
    {
      nb::gil_scoped_release r;  // weights upload, program builds
      s = kiln_context_create_with_options(plan_.get(), o, &ctx_);
    }
    check(s);
    for (int32_t i = 0; i < kiln_plan_num_inputs(plan_.get()); ++i) {
      kiln_tensor_info info;
      check(kiln_plan_input_info(plan_.get(), i, &info));
      inputs_.push_back(info.name);
    }
  }
  ~Context() { close(); }

  void close() {
    if (!ctx_) return;
    // At interpreter exit a run in flight could never take the GIL for its callback: leave the
    // context to the process's end instead of waiting on it.
    if (finalizing()) {
      ctx_ = nullptr;
      return;
    }
    // Runs still in flight call back into Python: wait for them without the GIL.
    nb::gil_scoped_release r;
    std::lock_guard<std::mutex> lock(mu_);
    wait_pending_locked();
    kiln_context_release(ctx_);
    ctx_ = nullptr;
  }

  std::string device() {
    live();
    return kiln_context_device(ctx_);
  }

  nb::dict run(nb::dict feeds) {
    std::unique_lock<std::mutex> lock = acquire();
    std::vector<nb::object> keep;
    nb::dict outputs = bind(feeds, &keep);
    kiln_status s;
    {
      nb::gil_scoped_release r;
      s = kiln_context_run(ctx_);
    }
    check(s);
    return outputs;
  }

  // Starts one inference; `future` (a concurrent.futures.Future already set running) gets the
  // outputs or a kiln.Error.
  void enqueue(nb::dict feeds, nb::object future) {
    std::unique_lock<std::mutex> lock = acquire();
    auto p = std::make_unique<Pending>();
    p->outputs = bind(feeds, &p->keep);
    p->future = future;
    kiln_event* ev = nullptr;
    check(kiln_enqueue(ctx_, &ev));
    pending_ = ev;
    Pending* raw = p.release();
    const kiln_status s = kiln_event_set_callback(ev, &Context::done, raw);
    if (s != KILN_OK) {
      // Without a callback the inference still runs: wait for it, then report.
      {
        nb::gil_scoped_release r;
        kiln_wait(ev);
      }
      delete raw;
      check(s);
    }
  }

  nb::list profile_records() {
    std::unique_lock<std::mutex> lock = acquire();
    nb::list out;
    const int32_t n = kiln_context_profile_count(ctx_);
    static const char* kinds[] = {"node", "upload", "download"};
    for (int32_t i = 0; i < n; ++i) {
      kiln_profile_record r;
      check(kiln_context_profile_record(ctx_, i, &r));
      nb::dict d;
      d["kind"] = kinds[r.kind >= 0 && r.kind <= 2 ? r.kind : 0];
      d["run"] = r.run;
      d["node"] = r.node;
      d["name"] = std::string(r.name);
      d["op"] = std::string(r.op);
      d["backend"] = std::string(r.backend);
      d["start_ns"] = r.start_ns;
      d["end_ns"] = r.end_ns;
      d["ms"] = (r.end_ns - r.start_ns) / 1e6;
      d["host_us"] = r.host_ns / 1e3;
      d["flops"] = r.flops;
      d["bytes"] = r.bytes;
      out.append(d);
    }
    return out;
  }

  void clear_profile() {
    std::unique_lock<std::mutex> lock = acquire();
    kiln_status s;
    {
      nb::gil_scoped_release r;
      s = kiln_context_profile_clear(ctx_);
    }
    check(s);
  }

 private:
  static void done(kiln_status status, const char* message, void* user) {
    const std::string msg = message ? message : "";
    nb::gil_scoped_acquire g;
    std::unique_ptr<Pending> p(static_cast<Pending*>(user));
    try {
      if (status == KILN_OK) {
        p->future.attr("set_result")(p->outputs);
      } else {
        nb::object error = nb::module_::import_("kiln._kiln").attr("Error");
        p->future.attr("set_exception")(error(msg));
      }
    } catch (nb::python_error& e) {
      e.discard_as_unraisable("kiln: completing a run_async future");
    }
  }

  void live() const {
    if (!ctx_) throw Error("the context was closed");
  }

  // The context's lock (taken without the GIL, which runs on other threads may need), with any
  // inference in flight finished: a context holds one set of bindings.
  std::unique_lock<std::mutex> acquire() {
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    {
      nb::gil_scoped_release r;
      lock.lock();
      wait_pending_locked();
    }
    live();
    return lock;
  }

  void wait_pending_locked() {
    if (!pending_) return;
    kiln_wait(pending_);  // its status went to its future
    kiln_event_release(pending_);
    pending_ = nullptr;
  }

  // Binds every input from `feeds` (each plan input must be there: a stale binding from an
  // earlier run would point at freed memory) and a fresh array for every output.
  nb::dict bind(nb::dict feeds, std::vector<nb::object>* keep) {
    for (const std::string& name : inputs_)
      if (!feeds.contains(name.c_str())) throw Error("input '" + name + "' is missing from the feeds");
    for (auto [key, value] : feeds) {
      if (!nb::isinstance<nb::str>(key)) throw Error("feed names must be strings");
      const std::string name = nb::cast<std::string>(key);
      Array a;
      if (!nb::try_cast<Array>(value, a, false))
        throw Error("input '" + name + "': expected a C-contiguous numpy array");
      const int32_t dtype = kiln_dtype_of(a.dtype(), "input '" + name + "'");
      if (a.ndim() > KILN_MAX_RANK) throw Error("input '" + name + "': rank above " + std::to_string(KILN_MAX_RANK));
      int64_t dims[KILN_MAX_RANK];
      for (size_t d = 0; d < a.ndim(); ++d) dims[d] = static_cast<int64_t>(a.shape(d));
      check(kiln_context_bind_input(ctx_, name.c_str(), dtype, dims, static_cast<int32_t>(a.ndim()), a.data(),
                                    a.nbytes()));
      keep->push_back(nb::borrow(value));
    }
    nb::dict outputs;
    for (int32_t i = 0; i < kiln_plan_num_outputs(plan_.get()); ++i) {
      kiln_tensor_info info;
      check(kiln_context_output_info(ctx_, i, &info));
      void* data = nullptr;
      nb::object arr = new_array(info.dtype, info.dims, info.rank, &data);
      check(kiln_context_bind_output(ctx_, info.name, data, info.size_bytes));
      outputs[info.name] = arr;
    }
    return outputs;
  }

  PlanPtr plan_;
  kiln_context* ctx_ = nullptr;
  std::mutex mu_;
  kiln_event* pending_ = nullptr;
  std::vector<std::string> inputs_;
};

}  // namespace

void bind_runtime(nb::module_& m) {
  nb::class_<Plan>(m, "Plan")
      .def_static("load_memory", &Plan::load_memory)
      .def("inputs", &Plan::inputs)
      .def("outputs", &Plan::outputs)
      .def("target_device", &Plan::target_device)
      .def("inspect_json", &Plan::inspect_json);
  nb::class_<Context>(m, "Context")
      .def(nb::init<const Plan&, const std::string&, int32_t, bool>(), nb::arg("plan"), nb::arg("device"),
           nb::arg("cpu_threads"), nb::arg("profiling"))
      .def("close", &Context::close)
      .def("device", &Context::device)
      .def("run", &Context::run)
      .def("enqueue", &Context::enqueue)
      .def("profile_records", &Context::profile_records)
      .def("clear_profile", &Context::clear_profile);
}

}  // namespace kiln_py
