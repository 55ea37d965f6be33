#include "runtime/exec/cpu_threads.h"

namespace kiln {
namespace {
thread_local int t_threads = 0;
}

int cpu_threads_override() { return t_threads; }

CpuThreadsScope::CpuThreadsScope(int threads) : saved_(t_threads) {
  if (threads > 0) t_threads = threads;
}
CpuThreadsScope::~CpuThreadsScope() { t_threads = saved_; }

}  // namespace kiln
