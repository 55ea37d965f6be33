// How many threads the cpu device's kernels use, and how concurrent inferences share the cores
// instead of oversubscribing them. One setting, from the most specific:
//   1. the context's (kiln_context_set_threads, kiln_context_options_set_cpu_threads, Python's
//      cpu_threads= / onnxruntime's intra_op_num_threads): ExecutionContext::set_cpu_threads;
//   2. the process default: set_default_cpu_threads (the CLI's --threads), else the environment
//      variable KILN_CPU_THREADS, else physical_cores().
// Each inference takes a fair share of that (CpuThreadShare) on the thread it runs on; every
// CPU kernel it runs reads it there: the fast path's oneDNN primitives and OpenMP loops (GNU
// OpenMP's team size is a per-thread setting, so contexts on different worker-pool threads
// never change each other's) and the reference kernels' threaded GEMM (linear_sgemm.cpp).
// Every inference in flight takes its share when it starts: one context alone gets all it asks
// for, two contexts on a 2-core host get one thread each.
#pragma once

namespace kiln {

// Physical cores this process may run on (its affinity mask, one per core not per hyperthread).
int physical_cores();

// Threads an inference asks for when its context sets none: set_default_cpu_threads (the CLI's
// --threads), else KILN_CPU_THREADS, else physical_cores().
int default_cpu_threads();
// n >= 1 sets the process-wide default; n <= 0 restores the environment/hardware default.
void set_default_cpu_threads(int n);

// One inference's share of the cores, held while it runs; while it lives it is the calling
// thread's inference_cpu_threads().
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
  int saved_ = 0;  // the calling thread's previous inference_cpu_threads()
};

// The threads of the inference running on the calling thread (its CpuThreadShare); 0 outside
// an inference (constant folding, tools), where kernels use default_cpu_threads().
int inference_cpu_threads();

// Sets the OpenMP team size of the calling thread (what oneDNN and kiln's loops use there).
void set_thread_team_size(int n);
// The calling thread's current team size.
int thread_team_size();

}  // namespace kiln
