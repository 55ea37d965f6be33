#include "runtime/profile/cpu_speed.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/backends/cpu/cpu_threads.h"

namespace kiln {
namespace {

double now_us() {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best time in microseconds of `reps` runs of f (after one warm-up run).
template <typename F>
double best_us(int reps, F&& f) {
  f();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_us();
    f();
    best = std::min(best, now_us() - t0);
  }
  return std::max(best, 1e-3);
}

double sgemm_gflops(int threads) {
  constexpr int64_t n = 256;
  std::vector<float> a(n * n, 0.5f), b(n * n, 0.25f), c(n * n);
  const int saved = thread_team_size();
  set_thread_team_size(threads);
  const double us = best_us(3, [&] { dnnl_sgemm('N', 'N', n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n); });
  set_thread_team_size(saved);
  return 2.0 * n * n * n / us / 1e3;
}

CpuSpeed measure() {
  CpuSpeed s;
  if (const char* e = std::getenv("KILN_CPU_SPEED")) {
    double g = 0, b = 0, l = 0;
    if (std::sscanf(e, "%lf,%lf,%lf", &g, &b, &l) == 3 && g > 0 && b > 0 && l >= 0) {
      s.threads = default_cpu_threads();
      s.gflops = g;
      s.gflops_one_thread = g / s.threads;
      s.gbps = b;
      s.launch_us = l;
      return s;
    }
  }
  s.threads = default_cpu_threads();
  s.gflops_one_thread = sgemm_gflops(1);
  s.gflops = s.threads > 1 ? std::max(s.gflops_one_thread, sgemm_gflops(s.threads)) : s.gflops_one_thread;
  {
    constexpr size_t bytes = 16u << 20;
    std::vector<char> from(bytes, 1), to(bytes);
    const double us = best_us(3, [&] { std::memcpy(to.data(), from.data(), bytes); });
    s.gbps = 2.0 * bytes / us / 1e3;  // read + write
  }
  try {
    // One small primitive through the way the fast path runs a node: memory objects, execute.
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream st(eng);
    dnnl::memory::desc md({64}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::a);
    dnnl::eltwise_forward relu(
        dnnl::eltwise_forward::primitive_desc({dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_relu, md, 0.f, 0.f}, eng));
    std::vector<float> x(64, 1.f);
    const int saved = thread_team_size();
    set_thread_team_size(1);
    s.launch_us = best_us(20, [&] {
      dnnl::memory m(md, eng, x.data());
      relu.execute(st, {{DNNL_ARG_SRC, m}, {DNNL_ARG_DST, m}});
      st.wait();
    });
    set_thread_team_size(saved);
  } catch (const dnnl::error&) {
    s.launch_us = 2;
  }
  return s;
}

}  // namespace

const CpuSpeed& measured_cpu_speed() {
  static const CpuSpeed s = measure();
  return s;
}

}  // namespace kiln
