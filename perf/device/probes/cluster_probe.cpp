// Does NVIDIA's OpenCL launch thread-block clusters? A hand-written sm_90a PTX kernel declares
// `.reqnctapercluster 2, 1, 1` (what CUDA's __cluster_dims__ compiles to) and, per CTA, records
// its cluster rank, reads its peer's shared memory (mapa + ld.shared::cluster), and receives a
// bulk copy multicast to both CTAs of its cluster (cp.async.bulk ... .multicast::cluster, no
// tensor map), completed on an mbarrier. Prints what each CTA saw and PASS/FAIL per check.
// Build: g++ -O2 -std=c++17 cluster_probe.cpp -lOpenCL -o cluster_probe
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

// The kernel in steps (argv[1], 1-5; each a process of its own, since a fault ends the context):
// 1 ranks only, 2 + a cluster barrier, 3 + the peer's shared memory, 4 + a bulk copy into this
// CTA alone, 5 the bulk copy multicast to both.
static std::string kernel_ptx(int step) {
  std::string s = R"(
.version 8.0
.target sm_90a
.address_size 64

.shared .align 16 .b8 buf[64];
.shared .align 8 .b64 bar;
.shared .align 4 .b32 mine;

.visible .entry cluster_probe(
  .param .u64 .ptr .global .align 4 out_p,
  .param .u64 .ptr .global .align 16 src_p
)
)" + std::string(getenv("PROBE_DIRECTIVES") ? getenv("PROBE_DIRECTIVES") : ".reqnctapercluster 2, 1, 1") + R"(
{
  .reg .b32 tid, rank, ncta, cid, cta, a, v, bar_a, buf_a, mine_a, peer_a, dst_a, off, nbytes;
  .reg .b64 out, src, o, s, s2;
  .reg .b16 mask;
  .reg .pred p, done;

  ld.param.u64 out, [out_p];
  ld.param.u64 src, [src_p];
  mov.u32 tid, %tid.x;
  mov.u32 rank, %cluster_ctarank;
  mov.u32 ncta, %cluster_nctarank;
  mov.u32 cid, %clusterid.x;
  mov.u32 cta, %ctaid.x;
  mov.u32 bar_a, bar;
  mov.u32 buf_a, buf;
  mov.u32 mine_a, mine;
  mul.wide.u32 o, cta, 128;
  add.u64 o, out, o;
  setp.eq.u32 p, tid, 0;
  @!p bra AFTER_INIT;
  st.global.u32 [o], rank;
  st.global.u32 [o+4], ncta;
  st.global.u32 [o+8], cid;
  st.global.u32 [o+12], cta;
  mad.lo.u32 v, cta, 1000, 7;
  st.shared.u32 [mine], v;
  mbarrier.init.shared::cta.b64 [bar_a], 1;
  fence.mbarrier_init.release.cluster;
AFTER_INIT:
)";
  if (step >= 2) s += "  barrier.cluster.arrive.release.aligned;\n  barrier.cluster.wait.acquire.aligned;\n";
  if (step >= 3) s += R"(
  @!p bra AFTER_PEER;
  xor.b32 a, rank, 1;
  mapa.shared::cluster.u32 peer_a, mine_a, a;
  ld.shared::cluster.u32 v, [peer_a];
  st.global.u32 [o+16], v;
AFTER_PEER:
)";
  if (step >= 4) {
    s += R"(
  @!p bra AFTER_COPY;
  mul.lo.u32 off, rank, 32;
  mad.lo.u32 a, cid, 64, off;
  cvt.u64.u32 s, a;
  add.u64 s2, src, s;
)";
    if (step == 4)
      s += R"(
  mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar_a], 32;
  add.u32 dst_a, buf_a, off;
  cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [dst_a], [s2], 32, [bar_a];
)";
    else
      s += R"(
  mbarrier.arrive.expect_tx.shared::cta.b64 _, [bar_a], 64;
  add.u32 dst_a, buf_a, off;
  mov.b16 mask, 3;
  cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [dst_a], [s2], 32, [bar_a], mask;
)";
    s += R"(
AFTER_COPY:
WAIT:
  mbarrier.try_wait.parity.shared::cta.b64 done, [bar_a], 0;
  @!done bra WAIT;
  setp.lt.u32 p, tid, 16;
  @!p bra END;
  mul.lo.u32 a, tid, 4;
  add.u32 a, buf_a, a;
  ld.shared.u32 v, [a];
  mul.wide.u32 s, tid, 4;
  add.u64 s, o, s;
  st.global.u32 [s+32], v;
END:
)";
  }
  if (step >= 2) s += "  barrier.cluster.arrive.release.aligned;\n  barrier.cluster.wait.acquire.aligned;\n";
  s += "  ret;\n}\n";
  return s;
}

#define CHECK(x)                                                          \
  do {                                                                    \
    cl_int e_ = (x);                                                      \
    if (e_ != CL_SUCCESS) {                                               \
      std::printf("FAIL %s: OpenCL error %d (line %d)\n", #x, e_, __LINE__); \
      return 1;                                                           \
    }                                                                     \
  } while (0)

int main(int argc, char** argv) {
  const int step = argc > 1 ? std::atoi(argv[1]) : 5;
  const std::string ptx = kernel_ptx(step);
  if (argc > 2 && std::string(argv[2]) == "ptx") {
    std::printf("%s", ptx.c_str());
    return 0;
  }
  cl_platform_id plats[8];
  cl_uint np = 0;
  CHECK(clGetPlatformIDs(8, plats, &np));
  cl_device_id dev = nullptr;
  for (cl_uint i = 0; i < np && !dev; ++i) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(plats[i], CL_DEVICE_TYPE_GPU, 1, &dev, &nd) != CL_SUCCESS) dev = nullptr;
  }
  if (!dev) { std::printf("FAIL no GPU\n"); return 1; }
  cl_int err = 0;
  cl_context ctx = clCreateContext(nullptr, 1, &dev, nullptr, nullptr, &err);
  CHECK(err);
  cl_command_queue q = clCreateCommandQueue(ctx, dev, 0, &err);
  CHECK(err);
  const size_t len = ptx.size() + 1;
  const unsigned char* bin = reinterpret_cast<const unsigned char*>(ptx.c_str());
  cl_int bst = 0;
  cl_program prog = clCreateProgramWithBinary(ctx, 1, &dev, &len, &bin, &bst, &err);
  CHECK(err);
  err = clBuildProgram(prog, 1, &dev, "", nullptr, nullptr);
  if (err != CL_SUCCESS) {
    size_t n = 0;
    clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
    std::string log(n, 0);
    clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, &log[0], nullptr);
    std::printf("FAIL build %d: %s\n", err, log.c_str());
    return 1;
  }
  cl_kernel k = clCreateKernel(prog, "cluster_probe", &err);
  CHECK(err);
  const int ncta = 4;
  std::vector<unsigned> src(ncta / 2 * 16);
  for (size_t i = 0; i < src.size(); ++i) src[i] = 0xabc00000u + static_cast<unsigned>(i);
  std::vector<unsigned> out(ncta * 32, 0xffffffffu);
  cl_mem dsrc = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, src.size() * 4, src.data(), &err);
  CHECK(err);
  cl_mem dout = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, out.size() * 4, out.data(), &err);
  CHECK(err);
  CHECK(clSetKernelArg(k, 0, sizeof(cl_mem), &dout));
  CHECK(clSetKernelArg(k, 1, sizeof(cl_mem), &dsrc));
  const size_t local = 128, global = local * ncta;
  CHECK(clEnqueueNDRangeKernel(q, k, 1, nullptr, &global, &local, 0, nullptr, nullptr));
  CHECK(clFinish(q));
  CHECK(clEnqueueReadBuffer(q, dout, CL_TRUE, 0, out.size() * 4, out.data(), 0, nullptr, nullptr));
  bool ok = true;
  for (int c = 0; c < ncta; ++c) {
    const unsigned* w = &out[c * 32];
    std::printf("cta %d: rank %u ncta %u cluster %u ctaid %u peer-smem %u buf:", c, w[0], w[1], w[2], w[3], w[4]);
    for (int i = 0; i < 16; ++i) std::printf(" %x", w[8 + i]);
    std::printf("\n");
    ok &= w[0] == unsigned(c % 2) && w[1] == 2 && w[2] == unsigned(c / 2) && w[3] == unsigned(c);
    if (step >= 3) ok &= w[4] == unsigned((c ^ 1) * 1000 + 7);
    // Step 4: this CTA's own 32 bytes only; step 5: both halves.
    if (step >= 4)
      for (int i = 0; i < 16; ++i)
        if (step == 5 || i / 8 == c % 2) ok &= w[8 + i] == src[(c / 2) * 16 + i];
  }
  std::printf("%s step %d: clusters of 2 through OpenCL\n", ok ? "PASS" : "FAIL", step);
  if (step < 5) return ok ? 0 : 1;
  // A grid that is not a whole number of clusters: what does the launch say?
  const size_t odd = local * 3;
  err = clEnqueueNDRangeKernel(q, k, 1, nullptr, &odd, &local, 0, nullptr, nullptr);
  cl_int fin = clFinish(q);
  std::printf("odd grid (3 CTAs): enqueue %d finish %d\n", err, fin);
  return ok ? 0 : 1;
}
