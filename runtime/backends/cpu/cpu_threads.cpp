#include "runtime/backends/cpu/cpu_threads.h"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>

namespace kiln {
namespace {

int read_int(const std::string& path, int fallback) {
  std::ifstream f(path);
  int v = fallback;
  if (!(f >> v)) return fallback;
  return v;
}

int count_physical_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0)
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Hyperthreads of one core share its vector units: a second thread there does not add
  // GEMM throughput, so count (package, core) pairs.
  std::set<std::pair<int, int>> cores;
  int cpus = 0;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    ++cpus;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    const int core = read_int(dir + "core_id", -1);
    if (core < 0) {
      cores.insert({-1, c});  // no topology: count the cpu itself
      continue;
    }
    cores.insert({read_int(dir + "physical_package_id", 0), core});
  }
  return std::max(1, static_cast<int>(cores.empty() ? cpus : cores.size()));
}

std::atomic<int> g_default_threads{0};
thread_local int t_inference_threads = 0;
std::mutex g_share_mu;
int g_running = 0;

}  // namespace

int physical_cores() {
  static const int n = count_physical_cores();
  return n;
}

int default_cpu_threads() {
  const int set = g_default_threads.load();
  if (set > 0) return set;
  if (const char* e = std::getenv("KILN_CPU_THREADS")) {
    const int v = std::atoi(e);
    if (v > 0) return v;
  }
  return physical_cores();
}

void set_default_cpu_threads(int n) { g_default_threads.store(n > 0 ? n : 0); }

CpuThreadShare::CpuThreadShare(int want) : saved_(t_inference_threads) {
  if (want <= 0) want = default_cpu_threads();
  const int budget = std::max(physical_cores(), want);
  {
    std::lock_guard<std::mutex> lock(g_share_mu);
    ++g_running;
    threads_ = std::max(1, std::min(want, budget / g_running));
  }
  t_inference_threads = threads_;
}

CpuThreadShare::~CpuThreadShare() {
  t_inference_threads = saved_;
  std::lock_guard<std::mutex> lock(g_share_mu);
  --g_running;
}

int inference_cpu_threads() { return t_inference_threads; }

void set_thread_team_size(int n) {
  // Fixed team sizes: oneDNN sizes its work split when a primitive is created and kiln caches
  // primitives per team size, so OpenMP must not shrink teams behind its back.
  omp_set_dynamic(0);
  omp_set_num_threads(std::max(1, n));
}

int thread_team_size() { return omp_get_max_threads(); }

}  // namespace kiln
