// How fast this host's cpu device is, measured rather than guessed: the partitioner's CPU cost
// model (runtime/plan/partition.cpp) and the fast path's choice of one thread for small nodes
// (runtime/backends/cpu/fast_cpu.cpp) both read it.
//
// Measured once per process on first use (~10 ms): oneDNN's SGEMM (the kernels the cpu device's
// Conv/Gemm/MatMul run on) on one thread and on the default thread count, a memcpy for memory
// bandwidth, and the fixed cost of running one small primitive. Each is the best of a few
// repeats (other load on the host only ever slows a run). KILN_CPU_SPEED="GFLOPS,GBPS,US"
// replaces the measurement (all threads' GFLOP/s, GB/s, microseconds per node), for
// reproducible partitions.
#pragma once

namespace kiln {

struct CpuSpeed {
  double gflops = 1;             // SGEMM, default thread count
  double gflops_one_thread = 1;  // SGEMM, one thread
  double gbps = 1;               // memory bandwidth (copy)
  double launch_us = 1;          // fixed cost of one node on the fast path
  int threads = 1;               // the thread count `gflops` was measured with
};

const CpuSpeed& measured_cpu_speed();

}  // namespace kiln
