// How many threads one CPU kernel may use (intra-op parallelism): per execution context
// (kiln_context_options_set_cpu_threads, Python's cpu_threads=, onnxruntime's
// intra_op_num_threads), else KILN_CPU_THREADS, else the hardware's. The limit travels with the
// thread running an inference, so contexts with different limits run side by side.
#pragma once

namespace kiln {

// 0: no limit set for this thread (the process default applies).
int cpu_threads_override();

// Sets this thread's limit for the scope's lifetime (0 leaves it unset).
class CpuThreadsScope {
 public:
  explicit CpuThreadsScope(int threads);
  ~CpuThreadsScope();
  CpuThreadsScope(const CpuThreadsScope&) = delete;
  CpuThreadsScope& operator=(const CpuThreadsScope&) = delete;

 private:
  int saved_;
};

}  // namespace kiln
