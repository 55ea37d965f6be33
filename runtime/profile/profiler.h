// Per-inference timings: every node (an OpenCL node replayed from its recorded launches by its
// kernels' own events; others bracketed by queue markers, so a CLBlast call that launches
// several kernels is timed whole), every host<->device transfer, on one host clock so CPU and
// device work line up in a trace.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/device/cl_check.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct ProfileEvent {
  enum class Kind : uint8_t { kNode, kUpload, kDownload };
  Kind kind = Kind::kNode;
  int32_t node = -1;       // plan node index (kNode)
  int32_t tensor = -1;     // transferred tensor (kUpload/kDownload)
  Backend backend = Backend::kCpu;
  int64_t start_ns = 0;    // host steady clock
  int64_t end_ns = 0;
  int32_t run = 0;         // which inference (0-based) of this profiler
  // Host time spent issuing the work (an OpenCL node's launches; for host work, all of it).
  int64_t host_ns = 0;
  // A CPU node that has a oneDNN kernel but ran kiln's reference kernel this time.
  bool cpu_reference = false;
};

class Profiler {
 public:
  ~Profiler();
  void begin_run();
  // Host-timed work (CPU nodes).
  void add_host(ProfileEvent::Kind kind, int32_t node, int32_t tensor, int64_t start_ns, int64_t end_ns,
                bool cpu_reference = false);
  // Device work bracketed by two events enqueued at host time `enqueued_ns`: markers, timed
  // from the end of `before` to the end of `after`, or (`kernels`) the work's own first and last
  // kernel, timed from the start of `before` to the end of `after`. Takes ownership of both.
  void add_device(ProfileEvent::Kind kind, int32_t node, int32_t tensor, cl_event before, cl_event after,
                  int64_t enqueued_ns, int64_t host_ns = 0, bool kernels = false);
  // Reads the device timestamps of this run's events (call after the queue finished).
  Status end_run();

  const std::vector<ProfileEvent>& events() const { return events_; }
  int32_t runs() const { return run_; }
  void clear() { events_.clear(); run_ = 0; }

  static int64_t now_ns();

 private:
  struct Pending {
    ProfileEvent ev;
    cl_event before, after;
    int64_t enqueued_ns;
    bool kernels;
  };
  std::vector<Pending> pending_;
  std::vector<ProfileEvent> events_;
  int32_t run_ = 0;
};

}  // namespace kiln
