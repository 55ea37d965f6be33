#include "runtime/backends/opencl/mma_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "runtime/device/cl_runtime.h"
#include "runtime/ops/kernel_api.h"

namespace kiln::mma {
namespace {

bool emulation_requested() {
  static const bool on = [] {
    const char* e = std::getenv("KILN_MMA_EMULATE");
    return e && *e && std::string(e) != "0";
  }();
  return on;
}

bool is_nvidia(const DeviceCaps& caps) {
  return caps.vendor.find("NVIDIA") != std::string::npos || caps.vendor.find("nvidia") != std::string::npos;
}

bool ptx(const DeviceCaps& caps, Elem e) {
  return is_nvidia(caps) && caps.compute_capability >= (e == Elem::kFp8 ? 89u : 80u);
}

int elem_bytes(Elem e) { return e == Elem::kF16 ? 2 : e == Elem::kTf32 ? 4 : 1; }

// The work-group tile shapes the variant offers.
constexpr Tile kTiles[] = {{128, 128, 2, 4}, {128, 64, 4, 2}, {64, 128, 2, 4}, {64, 64, 2, 2}};

// The full program for one family: the index-math types, the family's prelude (its epilogue),
// the warp operations and the kernel. Built once per prelude.
const std::string& program_source(const std::string* prelude) {
  static std::mutex mu;
  static std::map<const std::string*, std::string> sources;
  std::lock_guard<std::mutex> lock(mu);
  std::string& s = sources[prelude];
  if (s.empty())
    s = std::string(embedded_kernel_source("qgemm_geometry")) + "\n" + *prelude + "\n" +
        embedded_kernel_source("mma_ops") + "\n" + embedded_kernel_source("mma_gemm");
  return s;
}

bool aligned16(int64_t elems, int es) { return (elems * es) % 16 == 0; }

}  // namespace

bool available(const DeviceCaps& caps, Elem e) {
  if (caps.kind != "opencl") return false;
  return ptx(caps, e) || emulation_requested();
}

bool fits(const Problem& p) {
  const int es = elem_bytes(p.elem);
  if (p.M <= 0 || p.N <= 0 || p.K <= 0) return false;
  if (p.bmode == BMode::kKNVector && p.elem != Elem::kF16) return false;
  // B rows copied as 16-byte vectors must start 16-byte aligned in every batch item.
  if (p.bmode == BMode::kNK || p.bmode == BMode::kKNVector) {
    if (!aligned16(p.ldb, es)) return false;
    for (int64_t s : p.b_bstride)
      if (!aligned16(s, es)) return false;
  }
  return p.batches >= 1 && p.batches < 65536;
}

bool quantized_problem(const QGemm& g, Elem elem, int a_kind, int b_kind, bool b_packed, Problem* p) {
  p->elem = elem;
  p->a_kind = a_kind;
  p->b_kind = b_kind;
  p->M = g.M;
  p->K = g.K;
  p->lda = g.K;
  if (g.conv) {
    p->N = g.images * g.N;
    p->bmode = BMode::kConv;
    p->batches = g.groups;
    p->geo = cl_conv_geo(g);
  } else {
    p->N = g.N;
    p->ldb = b_packed ? packed_row_elems(g.K, 1) : g.N;
    p->bmode = b_packed ? BMode::kNK : BMode::kKNGather;
    p->batches = g.batches;
    p->batch_dims = g.batch_dims;
    p->a_bstride = g.a_bstride;
    p->b_bstride = g.b_bstride;
    p->c_bstride = g.M * g.N;
    p->ldc = g.N;
  }
  return fits(*p);
}

std::vector<KernelChoice> choices(int64_t M, int64_t N, int64_t batches, const DeviceCaps& caps) {
  // Estimated time ~ waves of work-groups x the work of one, where a work-group's throughput
  // grows with its tile (operand reuse): 256-item groups run 2 per compute unit, 128-item ones 4.
  struct Scored {
    Tile t;
    double cost;
  };
  std::vector<Scored> scored;
  const double cus = std::max<uint32_t>(caps.compute_units, 1);
  for (const Tile& t : kTiles) {
    const double groups = static_cast<double>((M + t.bm - 1) / t.bm) * ((N + t.bn - 1) / t.bn) * batches;
    const int threads = t.wm * t.wn * 32;
    const double per_cu = threads >= 256 ? 2 : 4;
    const double waves = std::ceil(groups / (cus * per_cu));
    const double rate = t.bm * t.bn >= 128 * 128 ? 1.0 : t.bm * t.bn >= 128 * 64 ? 0.8 : 0.6;
    scored.push_back({t, waves * (t.bm * t.bn) / (rate * per_cu)});
  }
  std::stable_sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) { return a.cost < b.cost; });
  std::vector<KernelChoice> out;
  for (const Scored& s : scored)
    out.push_back({kVariant, {{"bm", s.t.bm}, {"bn", s.t.bn}, {"wm", s.t.wm}, {"wn", s.t.wn}}});
  return out;
}

bool tile_of(const KernelChoice& c, Tile* t) {
  if (c.variant != kVariant) return false;
  Tile r{static_cast<int>(c.param("bm", 0)), static_cast<int>(c.param("bn", 0)), static_cast<int>(c.param("wm", 0)),
         static_cast<int>(c.param("wn", 0))};
  for (const Tile& k : kTiles)
    if (k.bm == r.bm && k.bn == r.bn && k.wm == r.wm && k.wn == r.wn) {
      *t = r;
      return true;
    }
  return false;
}

std::vector<KernelChoice> with_packed_input(const std::vector<KernelChoice>& plain, int input) {
  std::vector<KernelChoice> out;
  for (KernelChoice c : plain) {
    c.params.push_back({kPackedInputParam, input});
    out.push_back(std::move(c));
  }
  out.insert(out.end(), plain.begin(), plain.end());
  return out;
}

bool packable(const PlanNode& n, const Plan& plan, int i) {
  if (i < 0 || i >= static_cast<int>(n.inputs.size()) || n.inputs[i] < 0) return false;
  const PlanTensor& t = plan.tensors[n.inputs[i]];
  return t.kind == TensorKind::kConstant && t.shape.size() == 2;
}

Status launch(ClRuntime& cl, const Problem& p, const Tile& t, const Epilogue& epi, const std::string& what) {
  if (!fits(p)) return internal_error("the mma kernel does not fit " + what);
  const int es = elem_bytes(p.elem);
  bool a_vec = aligned16(p.lda, es);
  for (int64_t s : p.a_bstride) a_vec &= aligned16(s, es);
  const bool use_ptx = ptx(cl.info().caps, p.elem) && !emulation_requested();
  std::string options = "-D MMA_ELEM=" + std::to_string(static_cast<int>(p.elem)) +
                        " -D MMA_A_KIND=" + std::to_string(p.a_kind) + " -D MMA_B_KIND=" + std::to_string(p.b_kind) +
                        " -D MMA_BM=" + std::to_string(t.bm) + " -D MMA_BN=" + std::to_string(t.bn) +
                        " -D MMA_BK=" + std::to_string(64 / es) + " -D MMA_WM=" + std::to_string(t.wm) +
                        " -D MMA_WN=" + std::to_string(t.wn) +
                        " -D MMA_BMODE=" + std::to_string(static_cast<int>(p.bmode)) +
                        " -D MMA_AVEC=" + (a_vec ? "1" : "0") + " -D KILN_PTX=" + (use_ptx ? "1 " : "0 ") + epi.options;
  cl_kernel k;
  KILN_TRY(cl.kernel(program_source(epi.prelude), options, "mma_gemm", &k));
  ClLaunch l(cl, k, what);
  l.mem(p.A).mem(p.B).arg(cl_int(p.M)).arg(cl_int(p.N)).arg(cl_int(p.K)).arg(cl_int(p.lda)).arg(cl_int(p.ldb));
  l.arg(cl_int(p.batch_dims.size())).arg(cl_dims(p.batch_dims)).arg(cl_dims(p.a_bstride)).arg(cl_dims(p.b_bstride));
  l.arg(p.geo).arg(cl_int(p.c_bstride)).arg(cl_int(p.ldc));
  epi.args(l);
  const size_t threads = static_cast<size_t>(t.wm * t.wn * 32);
  const size_t global[3] = {static_cast<size_t>((p.N + t.bn - 1) / t.bn) * threads,
                            static_cast<size_t>((p.M + t.bm - 1) / t.bm), static_cast<size_t>(p.batches)};
  const size_t local[3] = {threads, 1, 1};
  return l.run(3, global, local);
}

}  // namespace kiln::mma
