// How many threads the cpu device's fast kernels (oneDNN primitives and kiln's OpenMP loops)
// use, and how concurrent inferences share the cores instead of oversubscribing them.
//
// oneDNN (Debian's build) and kiln's loops both run on GNU OpenMP, whose team size is a
// per-thread setting: each inference sets it on the thread it runs on, so contexts on different
// worker-pool threads never change each other's. Every inference in flight takes a fair share
// of the cores when it starts (CpuThreadShare): one context alone gets all it asks for, two
// contexts on a 2-core host get one thread each.
#pragma once

namespace kiln {

// Physical cores this process may run on (its affinity mask, one per core not per hyperthread).
int physical_cores();

// Threads an inference asks for when its context sets none: set_default_cpu_threads (the CLI's
// --threads), else KILN_NUM_THREADS, else physical_cores().
int default_cpu_threads();
// n >= 1 sets the process-wide default; n <= 0 restores the environment/hardware default.
void set_default_cpu_threads(int n);

// One inference's share of the cores, held while it runs.
class CpuThreadShare {
 public:
  // `want` threads (<= 0: default_cpu_threads()), at most cores / (inferences now running),
  // at least 1; unless `want` exceeds the cores (then the budget is `want`, as asked).
  explicit CpuThreadShare(int want);
  ~CpuThreadShare();
  CpuThreadShare(const CpuThreadShare&) = delete;
  CpuThreadShare& operator=(const CpuThreadShare&) = delete;
  int threads() const { return threads_; }

 private:
  int threads_ = 1;
};

// Sets the OpenMP team size of the calling thread (what oneDNN and kiln's loops use there).
void set_thread_team_size(int n);
// The calling thread's current team size.
int thread_team_size();

}  // namespace kiln
