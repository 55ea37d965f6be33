#include "runtime/profile/profiler.h"

#include <chrono>

namespace kiln {

int64_t Profiler::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Profiler::~Profiler() {
  for (auto& p : pending_) {
    clReleaseEvent(p.before);
    clReleaseEvent(p.after);
  }
}

void Profiler::begin_run() {}

void Profiler::add_host(ProfileEvent::Kind kind, int32_t node, int32_t tensor, int64_t start_ns, int64_t end_ns,
                        bool cpu_reference) {
  ProfileEvent e;
  e.cpu_reference = cpu_reference;
  e.kind = kind;
  e.node = node;
  e.tensor = tensor;
  e.backend = Backend::kCpu;
  e.start_ns = start_ns;
  e.end_ns = end_ns;
  e.run = run_;
  e.host_ns = end_ns - start_ns;
  events_.push_back(e);
}

void Profiler::add_device(ProfileEvent::Kind kind, int32_t node, int32_t tensor, cl_event before,
                          cl_event after, int64_t enqueued_ns, int64_t host_ns, bool kernels) {
  Pending p;
  p.ev.host_ns = host_ns;
  p.ev.kind = kind;
  p.ev.node = node;
  p.ev.tensor = tensor;
  p.ev.backend = Backend::kOpenCL;
  p.ev.run = run_;
  p.before = before;
  p.after = after;
  p.enqueued_ns = enqueued_ns;
  p.kernels = kernels;
  pending_.push_back(p);
}

Status Profiler::end_run() {
  // The device clock differs from the host's: anchor it on the first event, whose QUEUED
  // timestamp corresponds to the host time it was enqueued at.
  int64_t offset = 0;
  bool anchored = false;
  Status st;
  for (Pending& p : pending_) {
    cl_ulong queued = 0, before_end = 0, after_end = 0;
    cl_int e1 = clGetEventProfilingInfo(p.before, CL_PROFILING_COMMAND_QUEUED, sizeof queued, &queued, nullptr);
    // A kernel's work starts at its START; a marker's END is when the work before it is done.
    cl_int e2 = clGetEventProfilingInfo(p.before, p.kernels ? CL_PROFILING_COMMAND_START : CL_PROFILING_COMMAND_END,
                                        sizeof before_end, &before_end, nullptr);
    cl_int e3 = clGetEventProfilingInfo(p.after, CL_PROFILING_COMMAND_END, sizeof after_end, &after_end, nullptr);
    clReleaseEvent(p.before);
    clReleaseEvent(p.after);
    if (e1 != CL_SUCCESS || e2 != CL_SUCCESS || e3 != CL_SUCCESS) {
      if (st.is_ok()) st = cl_status(e1 != CL_SUCCESS ? e1 : e2 != CL_SUCCESS ? e2 : e3, "reading profiling timestamps");
      continue;
    }
    if (!anchored) {
      offset = p.enqueued_ns - static_cast<int64_t>(queued);
      anchored = true;
    }
    p.ev.start_ns = static_cast<int64_t>(before_end) + offset;
    p.ev.end_ns = std::max(static_cast<int64_t>(after_end), static_cast<int64_t>(before_end)) + offset;
    events_.push_back(p.ev);
  }
  pending_.clear();
  ++run_;
  return st;
}

}  // namespace kiln
