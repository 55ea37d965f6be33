#include "runtime/backends/opencl/mma_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "runtime/device/cl_runtime.h"
#include "runtime/device/ptx_sm90a.h"
#include "runtime/ops/kernel_api.h"

namespace kiln::mma {
namespace {

// ClRuntime::scratch slots of split-K's partial sums and of its per-tile arrival counters (zeroed
// once; each launch leaves them zero), enough counters for any grid split_count splits.
constexpr int kSplitScratchSlot = 0x31, kSplitCountersSlot = 0x32;
constexpr size_t kSplitCounters = 16384, kSplitMaxBytes = size_t{256} << 20;
constexpr size_t kSplitAccBytes = 4;  // float or int32 accumulators

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

// Hopper (compute capability 9.0; wgmma is not in sm_100's PTX) runs the wgmma tiles.
bool hopper(const DeviceCaps& caps) { return is_nvidia(caps) && caps.compute_capability == 90u; }

int elem_bytes(Elem e) { return e == Elem::kF16 ? 2 : e == Elem::kTf32 ? 4 : 1; }

// The work-group tile shapes the variant offers ({bm, bn, wm, wn}; the pipeline is chosen apart).
// 256x128 and 128x256 (64x64 warp tiles on 8 warps) were 5-20% slower than 128x128 on every
// square GEMM timed on the H200 (perf/results/2026-12-05-h200-pipelines.md), so they are not offered.
constexpr Tile kShapes[] = {{128, 128, 2, 4}, {128, 128, 2, 2}, {128, 64, 4, 2}, {64, 128, 2, 4}, {64, 64, 2, 2}};
// The wgmma tiles: one warpgroup per 64 rows, each warp 16 rows x all columns. 128x192 is the
// widest whose 64-byte rows fit two stages in 44 KB (fewer bytes through L2 per product than
// 128x128, at 128 registers still two work-groups per SM). Tiles of a whole SM (256x192 on 16
// warps, 192x256 on 12; 30% fewer L2 bytes per product) ran 1.45-1.51x slower on the H100 (most likely
// one work-group per SM idling at each stage's barrier; perf/results/2026-12-07-heldout.md).
constexpr Tile kWgShapes[] = {{128, 128, 8, 1, 64, 2, true}, {128, 192, 8, 1, 64, 2, true},
                              {128, 256, 8, 1, 64, 2, true}, {64, 128, 4, 1, 64, 2, true},
                              {64, 256, 4, 1, 64, 2, true}};
// Bytes of K per tile row and stages: {kb, stages}. Deeper pipelines of 32-byte rows (3-5 stages)
// were timed too and never beat 64-byte rows in two or three stages (the same results).
constexpr int kPipelines[][2] = {{64, 2}, {32, 2}, {64, 3}, {32, 4}};
// wgmma: also three stages of 32-byte rows (the 128x256 tile's deepest within 44 KB).
constexpr int kWgPipelines[][2] = {{64, 2}, {32, 2}, {64, 3}, {32, 3}, {32, 4}};

// The full program for one family: the index-math types, the family's prelude (its epilogue),
// the warp operations and the kernel. Built once per prelude.
const std::string& program_source(const std::string* prelude) {
  static std::mutex mu;
  static std::map<const std::string*, std::string> sources;
  std::lock_guard<std::mutex> lock(mu);
  std::string& s = sources[prelude];
  if (s.empty())
    s = std::string(embedded_kernel_source("qgemm_geometry")) + "\n" + *prelude + "\n" +
        embedded_kernel_source("mma_ops") + "\n" + embedded_kernel_source("wgmma_ops") + "\n" +
        embedded_kernel_source("mma_gemm");
  return s;
}

bool aligned16(int64_t elems, int es) { return (elems * es) % 16 == 0; }

// Whether A's rows start 16-byte aligned in every batch item (copied by cp.async).
bool a_vector(const Problem& p) {
  const int es = elem_bytes(p.elem);
  // kConvRows: runs of channels (lda = C), whatever the position.
  bool v = aligned16(p.lda, es);
  for (int64_t s : p.a_bstride) v &= aligned16(s, es);
  return v;
}

// Whether both operands arrive by cp.async, so that more than two stages can be in flight.
bool pipelined(const Problem& p) {
  return a_vector(p) && (p.bmode == BMode::kNK || p.bmode == BMode::kKNVector ||
                         (p.bmode == BMode::kConvPointwise && p.elem == Elem::kF16));
}

// wgmma reads B as [n][k] (K-major): not the [k][n] rows an f16 B arriving by 8-column vectors
// keeps; gathered [n][k] words take BN work-items per K word.
bool wg_runs(const Problem& p, const Tile& t) {
  if (p.elem == Elem::kTf32) return false;
  if (p.elem == Elem::kF16 && (p.bmode == BMode::kKNVector || p.bmode == BMode::kConvPointwise)) return false;
  const bool gathered_nk = p.bmode == BMode::kConv || (p.bmode == BMode::kKNGather && p.elem == Elem::kF16);
  return !gathered_nk || (t.wm * t.wn * 32) % t.bn == 0;
}

// The bytes of the warps' output staging rows (kernels/mma_gemm.cl's epilogue): 16 rows of
// 32 * vec + 8 words per warp, in the stages' place.
int64_t staging_bytes(const Tile& t, int vec = 1) { return int64_t{t.wm} * t.wn * 16 * (32 * vec + 8) * 4; }

// `residual_bytes`: an output stage that also keeps the tile's residual (MMA_RES_TILE) after its
// staging rows; `vec`: its columns per lane (MMA_EPI_VEC).
int64_t local_bytes(const Problem& p, const Tile& t, int residual_bytes = 0, int vec = 1) {
  const int64_t bk = t.kb / elem_bytes(p.elem);
  const int64_t stages = std::max<int64_t>(int64_t{t.stages} * (t.bm + t.bn) * t.kb,
                                           staging_bytes(t, vec) + int64_t{t.bm} * t.bn * residual_bytes);
  // wgmma's tiles start 1024-byte aligned.
  return stages + (p.bmode == BMode::kConv ? 2 * bk * 16 : 0) + (t.wg ? 1024 : 0);
}

bool runs(const Problem& p, const Tile& t) {
  if (t.wg && !wg_runs(p, t)) return false;
  if (t.kb / elem_bytes(p.elem) < (p.elem == Elem::kF16 ? 16 : p.elem == Elem::kTf32 ? 8 : 32)) return false;
  if (t.stages != 2 && !pipelined(p)) return false;
  return local_bytes(p, t) <= kLocalBytes;
}

// The register cap of a wgmma tile (0: none): two work-groups of 256 per SM need <= 128, which
// ptxas meets without spills up to 192 columns (96 accumulators; it takes 148 uncapped).
int wg_max_registers(const Tile& t) { return t.wg && t.wm * t.wn * 32 == 256 && t.bn <= 192 ? 128 : 0; }

// Registers per work-item, roughly as ptxas allots them (scripts/check_mma_ptx.py): the
// accumulators, one k-step's fragments and ~40 for addresses (~80 with FP8's output stage).
int registers(const Problem& p, const Tile& t) {
  const int mi = t.bm / t.wm / 16, ni = t.bn / t.wn / 8;
  // wgmma reads its operands from shared memory: accumulators and ~32 for addresses (ptxas: 96
  // at 128x128 for FP16, INT8 and FP8 alike).
  if (t.wg) {
    const int need = 32 + mi * ni * 4, cap = wg_max_registers(t);
    return cap ? std::min(cap, need) : need;
  }
  return (p.elem == Elem::kFp8 ? 80 : 40) + mi * ni * 4 + mi * 4 + ni * 2;
}

// The work-groups (output tiles, over every batch item) of `p` with tile `t`, unsplit.
int64_t output_tiles(const Problem& p, const Tile& t) {
  return (p.M + t.bm - 1) / t.bm * ((p.N + t.bn - 1) / t.bn) * p.batches;
}

// Estimated time of `p` with tile `t`, in arbitrary units: waves of work-groups, each wave as long
// as the work of the work-groups an SM holds divided by how well they feed the tensor cores.
double estimate(const Problem& p, const Tile& t, const DeviceCaps& caps) {
  const double cus = std::max<uint32_t>(caps.compute_units, 1);
  const int threads = t.wm * t.wn * 32;
  const int regs = std::min(255, registers(p, t));
  const int per_sm = std::max<int64_t>(
      1, std::min<int64_t>({2048 / threads, 228 * 1024 / (local_bytes(p, t) + 1024), 65536 / (regs * threads)}));
  const double groups = static_cast<double>(output_tiles(p, t));
  const double waves = std::ceil(groups / (cus * per_sm));
  // Operand reuse: shared-memory bytes per multiply of a warp tile (wtm x wtn) ~ 1/wtm + 1/wtn.
  // Beyond 64x32 it no longer paid on the H200 (64x64 warp tiles tied or lost up to 8%).
  const double wtm = t.bm / t.wm, wtn = t.bn / t.wn;
  // wgmma reads both operands from shared memory, whose tiles arrive through L2 at a rate that
  // bounds it: products per byte ~ bm * bn / (bm + bn) (on the H100, 128x192 ran 1.13-1.17x
  // 128x128, and 64-row tiles no faster than 128x128 with 2.5x their work-groups per SM); a
  // single work-group per SM (128x256's 160 registers) left it waiting (2x slower).
  const double reuse = t.wg ? (t.bm * t.bn / double(t.bm + t.bn)) / 64 * (per_sm < 2 ? 0.6 : 1.0)
                            : std::min(1.0, (wtm * wtn / (wtm + wtn)) / (64.0 * 32 / 96));
  // Measured on the H200: 32-byte rows cost ~20% (twice the barriers per K), more stages gain
  // at most 3%, and a kernel whose registers spill loses more than its tile gains.
  const double rows = t.kb >= 64 ? 1.0 : 0.83;
  const double stages = 1.0 + 0.01 * (t.stages - 2);
  // ptxas: 64x64 warp tiles spill with FP8's output stage or a gathered operand's staging words.
  const bool spills = registers(p, t) > 232 || (wtm * wtn >= 64 * 64 && !pipelined(p));
  const double spill = spills ? 0.6 : 1.0;
  return waves * t.bm * t.bn * per_sm / (reuse * rows * stages * spill);
}

struct Scored {
  Tile t;
  double cost;
};

// Every shape x pipeline of one family of tiles that runs `p`, cheapest first by the estimate.
template <size_t NS, size_t NP>
std::vector<Scored> scored_tiles(const Problem& p, const DeviceCaps& caps, const Tile (&shapes)[NS],
                                 const int (&pipes)[NP][2]) {
  std::vector<Scored> out;
  for (const Tile& shape : shapes)
    for (const auto& pipe : pipes) {
      Tile t = shape;
      t.kb = pipe[0];
      t.stages = pipe[1];
      if (runs(p, t)) out.push_back({t, estimate(p, t, caps)});
    }
  std::stable_sort(out.begin(), out.end(), [](const Scored& a, const Scored& b) { return a.cost < b.cost; });
  return out;
}

KernelChoice choice_of(const Tile& t) {
  KernelChoice c{kVariant, {{"bm", t.bm}, {"bn", t.bn}, {"wm", t.wm}, {"wn", t.wn}}};
  if (t.wg) c.params.push_back({"wg", 1});
  // Listed only where they differ from the first pipeline (and from one K range), so plans
  // written before they existed still name a choice the device lists.
  if (t.kb != 64 || t.stages != 2) {
    c.params.push_back({"kb", t.kb});
    c.params.push_back({"st", t.stages});
  }
  if (t.splits != 1) c.params.push_back({"ks", t.splits});
  return c;
}

std::vector<KernelChoice> as_choices(const std::vector<Scored>& scored) {
  std::vector<KernelChoice> out;
  for (const Scored& s : scored) out.push_back(choice_of(s.t));
  return out;
}

int64_t k_tiles(const Problem& p, const Tile& t) {
  const int64_t bk = t.kb / elem_bytes(p.elem);
  return (p.K + bk - 1) / bk;
}

// Whether `t` split `splits` ways runs split in launch(): a counter per output tile, partial sums
// within kSplitMaxBytes.
bool split_runs(const Problem& p, const Tile& t, int splits) {
  const size_t tiles = static_cast<size_t>(output_tiles(p, t));
  return tiles <= kSplitCounters && tiles * splits * t.bm * t.bn * kSplitAccBytes <= kSplitMaxBytes;
}

// The first choice split as split_count() says, then the same tile split 2, 4 and 8 ways (each
// range at least 2 K tiles) and, where the first is split, unsplit: candidates for --tune (and for
// the emulated tests, where split_count() never splits).
void split_first(std::vector<KernelChoice>* list, const Problem& p, const DeviceCaps& caps) {
  Tile t;
  if (list->empty() || !tile_of(list->front(), &t)) return;
  const int best = split_count(p, t, caps);
  t.splits = best;
  list->front() = choice_of(t);
  for (int s : {1, 2, 4, 8}) {
    if (s == best || (s > 1 && (k_tiles(p, t) < 2 * s || !split_runs(p, t, s)))) continue;
    t.splits = s;
    list->push_back(choice_of(t));
  }
}

// Matmuls whose smallest tile (64x64) still leaves SMs idle (batch 1's 128-row products) are
// latency-bound: the K loop of a work-group alone on its SM, not throughput, sets their time.
// The model, fitted to BERT-base batch 1 on an H100 (--tune over every tile, pipeline and split:
// perf/results/2026-12-07-qkv.md): a K tile of 64-byte rows takes ~300 ns with three stages and
// ~420 ns with two (32-byte rows: ~200 ns with four), times sqrt(tile elements / 4096) for
// larger tiles; a split adds ~5 us (counting in, the last one's output stage) plus reading its
// partial sums back at ~60 GB/s. It ranks 64x64 unsplit on three stages first for the 128 x 768
// x 768 .. 128 x 3072 x 768 products (12-13 us vs 15-17 us for the throughput-first 128x128
// wgmma tile split 4-8 ways) and splits the long 128 x 768 x 3072 one.
double latency_ns(const Problem& p, const Tile& t, int splits, const DeviceCaps& caps) {
  const double cus = std::max<uint32_t>(caps.compute_units, 1);
  const double per_tile = t.kb >= 64 ? (t.stages >= 3 ? 300 : 420) : (t.stages >= 4 ? 200 : t.stages == 3 ? 230 : 280);
  const double size = std::sqrt(t.bm * t.bn / 4096.0);
  const double waves = std::ceil(static_cast<double>(output_tiles(p, t) * splits) / cus);
  const int64_t tiles = (k_tiles(p, t) + splits - 1) / splits;
  constexpr double kSplitNs = 5000, kPartialBytesPerNs = 60;
  const double split = splits > 1 ? kSplitNs + (splits + 1) * double(kSplitAccBytes) * t.bm * t.bn / kPartialBytesPerNs : 0;
  return waves * tiles * per_tile * size + split;
}

// Every tile, pipeline and split of a latency-bound problem, fastest first by the model (splits
// only where every work-group has an SM); empty for other problems.
std::vector<std::pair<double, Tile>> latency_ranked(const Problem& p, const DeviceCaps& caps) {
  std::vector<std::pair<double, Tile>> out;
  if (!latency_bound(p, caps)) return out;
  const int64_t cus = std::max<uint32_t>(caps.compute_units, 1);
  auto add = [&](const Tile& shape, const int (&pipe)[2]) {
    Tile t = shape;
    t.kb = pipe[0];
    t.stages = pipe[1];
    if (!runs(p, t)) return;
    const int64_t groups = output_tiles(p, t);
    for (int s = 1; s <= kMaxSplits && s <= k_tiles(p, t); ++s) {
      if (s > 1 && (s * groups > cus || !split_runs(p, t, s))) break;
      t.splits = s;
      out.push_back({latency_ns(p, t, s, caps), t});
    }
  };
  for (const Tile& shape : kShapes)
    for (const auto& pipe : kPipelines) add(shape, pipe);
  if (hopper(caps))
    for (const Tile& shape : kWgShapes)
      for (const auto& pipe : kWgPipelines) add(shape, pipe);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

// A latency-bound problem's three fastest by the model go first (the fastest is the choice
// without --tune; the next two are timed by --tune beside the throughput-ranked ones).
void latency_first(std::vector<KernelChoice>* list, const Problem& p, const DeviceCaps& caps) {
  const std::vector<std::pair<double, Tile>> ranked = latency_ranked(p, caps);
  size_t placed = 0;
  for (const auto& [ns, t] : ranked) {
    const KernelChoice c = choice_of(t);
    auto it = std::find(list->begin(), list->end(), c);
    if (it != list->end()) {
      if (static_cast<size_t>(it - list->begin()) < placed) continue;
      list->erase(it);
    }
    list->insert(list->begin() + static_cast<std::ptrdiff_t>(placed), c);
    if (++placed == 3) break;
  }
}

// Whether `t`'s shape and pipeline are among those of its family of tiles.
template <size_t NS, size_t NP>
bool offered(const Tile& t, const Tile (&shapes)[NS], const int (&pipes)[NP][2]) {
  bool shape = false, pipe = false;
  for (const Tile& k : shapes) shape |= k.bm == t.bm && k.bn == t.bn && k.wm == t.wm && k.wn == t.wn;
  for (const auto& k : pipes) pipe |= k[0] == t.kb && k[1] == t.stages;
  return shape && pipe;
}

}  // namespace

bool available(const DeviceCaps& caps, Elem e) {
  if (caps.kind != "opencl") return false;
  return ptx(caps, e) || emulation_requested();
}

std::string fixed_epilogue_options(int act, bool has_bias, int res_mode) {
  return " -D KILN_ACT=" + std::to_string(act) + " -D KILN_EPI_BIAS=" + std::to_string(has_bias ? 1 : 0) +
         " -D KILN_EPI_RES=" + std::to_string(res_mode);
}

// The output rows whose values (and residual loads) a lane computes before storing them
// (kernels/mma_gemm.cl's EPI_GROUP), timed on an H100 at 4, 8 and 16 (FP16) and 2, 4 and 8 (8-bit)
// over ResNet-50's and BERT-base's layers at batch 128 (perf/results/2026-12-06-rowops.md, call
// 3): a short K leaves the output stage most of the work, which wants more loads in flight
// (ResNet's 1x1 K = 64 expansions with a residual: 0.39 -> 0.27 ms at 16), a long K fewer
// registers (3x3 convolutions: 4 is 5% faster than 16). The 8-bit stages gained only where they
// read a residual in a matmul (BERT's attention output 85 -> 60 us at 8); their convolutions
// moved within 2% either way. Once the 8-bit stages lost their branches (kiln_div), they gained
// from more rows (perf/results/2026-12-07-rows.md, every stage forced to one count: ResNet-50
// INT8's convolutions, all channels-last GEMMs, 5.97 ms at 2, 5.84 at 8, 5.81 at 4, those with a
// residual 1-7% faster at 8 than at 4; BERT-base INT8 the same at 4 as at 2). This rule, 4 and 8
// with a residual, timed as a whole: those convolutions 5.61 ms (2026-12-07-io.md, call 1).
// Emulated kernels keep the kernel's default (fewer programs). The 128x192 wgmma tile, capped at
// 128 registers, takes at most 8 (ptxas spills 400 bytes a thread at 16; scripts/check_mma_ptx.py).
// KILN_MMA_OUTPUT_ROWS=N (a divisor of 16) sets it for every problem, to measure it per layer.
static int output_rows_in_flight(const Problem& p, const Tile& t, bool residual) {
  static const int forced = [] {
    const char* e = std::getenv("KILN_MMA_OUTPUT_ROWS");
    const int v = e ? std::atoi(e) : 0;
    return v > 0 && 16 % v == 0 ? v : 0;
  }();
  if (forced) return forced;
  int rows = p.elem == Elem::kF16 || p.elem == Elem::kTf32 ? (p.K <= 128 ? 16 : p.K <= 1024 ? 8 : 4)
                                                            : (residual ? 8 : 4);
  if (wg_max_registers(t) && t.bn > 128) rows = std::min(rows, 8);
  return rows;
}

bool uses_ptx(const DeviceCaps& caps, Elem e) { return ptx(caps, e) && !emulation_requested(); }

// The residual's bytes per element where the output stage copies the tile's residual into __local
// first (kernels/mma_gemm.cl's MMA_RES_TILE), else 0: matmul-shaped outputs (rows at ldc) whose
// rows and batch items start 16-byte aligned, where the tile fits beside the staging rows.
static int residual_tile_bytes(const Problem& p, const Tile& t) {
  const int rb = p.residual_tile_bytes;
  if (!rb || p.bmode == BMode::kConv || p.bmode == BMode::kConvPointwise) return 0;
  if ((p.ldc * rb) % 16 || (p.c_bstride * rb) % 16 || (int64_t{t.bn} * rb) % 16) return 0;
  return local_bytes(p, t, rb) <= kLocalBytes ? rb : 0;
}

// Columns per lane of the output stage (kernels/mma_gemm.cl's MMA_EPI_VEC): 2 where the family
// stores pairs and every pair starts at an even element of a matmul-shaped output.
// KILN_MMA_PAIRED_COLUMNS=0 keeps one (to measure what pairing gains per layer).
static int output_columns_per_lane(const Problem& p, const Tile& t, const Epilogue& epi) {
  static const bool off = [] {
    const char* e = std::getenv("KILN_MMA_PAIRED_COLUMNS");
    return e && std::string(e) == "0";
  }();
  if (off || !epi.paired_writes || p.bmode == BMode::kConv || p.bmode == BMode::kConvPointwise || residual_tile_bytes(p, t))
    return 1;
  // A residual read row by row behind a reduction of 64 (ResNet-50's layer1 1x1s with their
  // residual, 128x128 tiles) ran 0.40 ms paired, 0.29 unpaired; from K = 128 (layer2) pairing
  // gained with a residual too (0.178 -> 0.153 ms): perf/results/2026-12-06-stem.md.
  if (epi.residual && p.K <= 64) return 1;
  if (p.ldc % 2 || p.c_bstride % 2 || p.N % 2 || (t.bn / t.wn) % 64) return 1;
  return local_bytes(p, t, 0, 2) <= kLocalBytes ? 2 : 1;
}

bool pointwise(const ClConvGeo& g) {
  bool yes = true;
  for (int i = 0; i < 3; ++i) yes &= g.v[6 + i] == 1 && g.v[9 + i] == 1 && g.v[15 + i] == 0 && g.v[i] == g.v[3 + i];
  return yes;
}

bool fits(const Problem& p) {
  const int es = elem_bytes(p.elem);
  if (p.M <= 0 || p.N <= 0 || p.K <= 0) return false;
  // A channels-last convolution's rows arrive by cp.async only: 16-byte runs of channels.
  if (p.amode == AMode::kConvRows && (!a_vector(p) || p.bmode != BMode::kNK)) return false;
  if (p.bmode == BMode::kKNVector && p.elem != Elem::kF16) return false;
  // Pointwise convolutions read 8 (f16) or 4 (8-bit) positions of one image at once.
  if (p.bmode == BMode::kConvPointwise &&
      (p.elem == Elem::kTf32 || p.geo.v[21] % (p.elem == Elem::kF16 ? 8 : 4) != 0))
    return false;
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
  if (g.conv && g.channels_last) {
    // Rows: every image's output positions (x through the geometry); columns: output channels
    // (the weights [M][kernel][C], K-contiguous); the output is [position][channel].
    p->a_kind = b_kind;
    p->b_kind = a_kind;
    p->amode = AMode::kConvRows;
    p->M = g.images * g.N;
    p->N = g.M;
    p->lda = g.C;
    p->ldb = g.K;
    p->bmode = BMode::kNK;
    p->geo = cl_conv_geo(g);
    p->ldc = g.M;
    return fits(*p);
  }
  if (g.conv) {
    p->N = g.images * g.N;
    p->batches = g.groups;
    p->geo = cl_conv_geo(g);
    // 1x1: four positions of an image per load where they stay within it.
    p->bmode = BMode::kConvPointwise;
    if (pointwise(p->geo) && fits(*p)) return true;
    p->bmode = BMode::kConv;
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

bool worth_tensor_cores(const Problem& p) {
  if (p.M >= 16) return true;
  const bool conv = p.amode == AMode::kConvRows || p.bmode == BMode::kConv || p.bmode == BMode::kConvPointwise;
  return !conv && p.N >= 64 && p.K >= 256;
}

bool wgmma_first(const DeviceCaps& caps) { return hopper(caps); }

static std::vector<KernelChoice> unsplit_wgmma_choices(const Problem& p, const DeviceCaps& caps) {
  if (!hopper(caps) && !emulation_requested()) return {};
  return as_choices(scored_tiles(p, caps, kWgShapes, kWgPipelines));
}

std::vector<KernelChoice> wgmma_choices(const Problem& p, const DeviceCaps& caps) {
  std::vector<KernelChoice> out = unsplit_wgmma_choices(p, caps);
  split_first(&out, p, caps);
  return out;
}

std::vector<KernelChoice> choices(const Problem& p, const DeviceCaps& caps) {
  std::vector<KernelChoice> out = as_choices(scored_tiles(p, caps, kShapes, kPipelines));
  const std::vector<KernelChoice> wg = unsplit_wgmma_choices(p, caps);
  // The wgmma tiles are 128 or more columns wide: at 64 columns or fewer (ResNet's 64-channel
  // convolutions channels-last, whose columns are the channels) half of each would idle.
  out.insert(wgmma_first(caps) && p.N > 64 ? out.begin() : out.end(), wg.begin(), wg.end());
  // A short reduction's output stage is much of its time, and a residual read a row at a time
  // keeps too little in flight: there the tiles that keep it in __local come first (ResNet-50
  // INT8's 1x1 expansions of layer2 ran 0.35 ms on 128x192 without it, layer1's 0.31 ms on 128x128
  // with twice the bytes: perf/results/2026-12-06-fp16nhwc.md).
  constexpr int64_t kShortReduction = 512;
  if (p.residual_tile_bytes && p.K <= kShortReduction)
    std::stable_partition(out.begin(), out.end(), [&](const KernelChoice& c) {
      Tile t;
      return tile_of(c, &t) && residual_tile_bytes(p, t) > 0;
    });
  split_first(&out, p, caps);
  latency_first(&out, p, caps);
  return out;
}

// KILN_MMA_LATENCY_MODEL=0 turns it off (the throughput ranking alone), for comparisons.
bool latency_bound(const Problem& p, const DeviceCaps& caps) {
  static const bool off = [] {
    const char* e = std::getenv("KILN_MMA_LATENCY_MODEL");
    return e && std::string(e) == "0";
  }();
  if (off) return false;
  const bool conv = p.amode == AMode::kConvRows || p.bmode == BMode::kConv || p.bmode == BMode::kConvPointwise;
  if (conv || !ptx(caps, p.elem)) return false;
  const Tile smallest{64, 64, 2, 2};
  return output_tiles(p, smallest) <= std::max<uint32_t>(caps.compute_units, 1);
}

// A work-group alone on an H100 SM took ~1.1 us per K tile of 64-byte rows whatever its tile
// (ResNet-50's layer-4 3x3 convolutions at batch 1: 4 work-groups, FP16 160 us for 144 K tiles,
// INT8 97 us for 72: the latency of a tile's loads, not the tensor cores); an SM reads back
// partial sums at ~100 GB/s (L2 hits); counting in and the last one's output stage ~2 us.
int split_count(const Problem& p, const Tile& t, const DeviceCaps& caps) {
  if (!ptx(caps, p.elem)) return 1;
  const int64_t cus = std::max<uint32_t>(caps.compute_units, 1);
  const int64_t groups = output_tiles(p, t);
  // Split only grids that leave over half the SMs idle, and at most one work-group per SM.
  if (2 * groups > cus) return 1;
  constexpr double kTileNs = 1100, kBytesPerNs = 100, kFixupNs = 2000;
  const int64_t tiles = k_tiles(p, t);
  const double partial_bytes = static_cast<double>(kSplitAccBytes) * t.bm * t.bn;
  int best = 1;
  double best_ns = tiles * kTileNs;
  for (int s = 2; s <= kMaxSplits && s * groups <= cus && s <= tiles; ++s) {
    const double ns = (tiles + s - 1) / s * kTileNs + (s + 1) * partial_bytes / kBytesPerNs + kFixupNs;
    if (ns < best_ns) {
      best = s;
      best_ns = ns;
    }
  }
  return best;
}

bool tile_of(const KernelChoice& c, Tile* t) {
  if (c.variant != kVariant) return false;
  Tile r{static_cast<int>(c.param("bm", 0)), static_cast<int>(c.param("bn", 0)), static_cast<int>(c.param("wm", 0)),
         static_cast<int>(c.param("wn", 0)),  static_cast<int>(c.param("kb", 64)), static_cast<int>(c.param("st", 2))};
  r.wg = c.param("wg", 0) == 1;
  r.splits = static_cast<int>(c.param("ks", 1));
  if (r.splits < 1 || r.splits > kMaxSplits) return false;
  if (!(r.wg ? offered(r, kWgShapes, kWgPipelines) : offered(r, kShapes, kPipelines))) return false;
  *t = r;
  return true;
}

std::vector<KernelChoice> with_packed_input(const std::vector<KernelChoice>& plain,
                                            const std::vector<KernelChoice>& packed, int input) {
  std::vector<KernelChoice> out;
  for (KernelChoice c : packed) {
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

Status launch(ClRuntime& cl, const Problem& p, const Tile& chosen, const Epilogue& epi, const std::string& what) {
  if (!fits(p)) return internal_error("the mma kernel does not fit " + what);
  // A dynamic plan's choice was made at one shape; at another, an operand may have to be gathered
  // (unaligned rows), which runs two stages only, in 32-byte rows where 64 would not fit.
  Tile t = chosen;
  const bool use_ptx = uses_ptx(cl.info().caps, p.elem);
  // A plan tuned on a Hopper GPU runs its wgmma tiles elsewhere as mma.sync's default tile.
  if (t.wg && ((use_ptx && !hopper(cl.info().caps)) || !wg_runs(p, t))) t = Tile{};
  if (!runs(p, t)) t.stages = 2;
  if (!runs(p, t)) t.kb = 32;
  if (!runs(p, t))
    return internal_error("the mma tile " + std::to_string(t.bm) + "x" + std::to_string(t.bn) + " with " +
                          std::to_string(t.stages) + " stages of " + std::to_string(t.kb) + "-byte rows does not run " +
                          what);
  const int es = elem_bytes(p.elem);
  const bool a_vec = a_vector(p);
  // 8-bit N-contiguous B read 4 columns at a time: N, the rows and the batch items 4-aligned.
  bool b4 = p.bmode == BMode::kKNGather && es == 1 && p.N % 4 == 0 && p.ldb % 4 == 0;
  for (int64_t s : p.b_bstride) b4 &= s % 4 == 0;
  // wgmma with 3 or more stages keeps a tile's products in flight, one stage fewer of copies
  // (kernels/mma_gemm.cl's WG_OVERLAP).
  const int overlap = t.wg && t.stages >= 3 && pipelined(p) ? 1 : 0;
  auto def = [](const char* name, int64_t v) { return std::string(" -D ") + name + "=" + std::to_string(v); };
  std::string options = def("MMA_ELEM", static_cast<int>(p.elem)) + def("MMA_AMODE", static_cast<int>(p.amode)) +
                        def("MMA_A_KIND", p.a_kind) +
                              def("MMA_B_KIND", p.b_kind) + def("MMA_BM", t.bm) + def("MMA_BN", t.bn) +
                              def("MMA_BK", t.kb / es) + def("MMA_STAGES", t.stages) + def("MMA_PENDING", t.stages - 2 - overlap) +
                              def("MMA_WM", t.wm) + def("MMA_WN", t.wn) + def("MMA_BMODE", static_cast<int>(p.bmode)) +
                              def("MMA_AVEC", a_vec) + def("MMA_B4", b4) + def("KILN_PTX", use_ptx) + def("MMA_WGMMA", t.wg) +
                              " " + epi.options + (use_ptx ? epi.fixed : std::string());
  if (use_ptx) options += def("EPI_GROUP", output_rows_in_flight(p, t, epi.residual));
  if (const int rb = epi.residual ? residual_tile_bytes(p, t) : 0) options += def("MMA_RES_TILE", rb);
  if (const int vec = output_columns_per_lane(p, t, epi); vec != 1) options += def("MMA_EPI_VEC", vec);
  if (t.wg && use_ptx) {
    options += std::string(" ") + kPtxSm90aOption;
    if (wg_max_registers(t)) options += std::string(" ") + kPtxMaxnregOption + std::to_string(wg_max_registers(t));
  }
  const size_t threads = static_cast<size_t>(t.wm * t.wn * 32);
  const size_t gx = static_cast<size_t>((p.N + t.bn - 1) / t.bn), gy = static_cast<size_t>((p.M + t.bm - 1) / t.bm);
  const size_t tiles = static_cast<size_t>(output_tiles(p, t));
  // More K ranges than K tiles would leave some empty (correct, but only slower); a dynamic plan
  // whose shape outgrows split_runs() runs unsplit.
  int splits = static_cast<int>(std::min<int64_t>(t.splits, k_tiles(p, t)));
  if (!split_runs(p, t, splits)) splits = 1;
  cl_mem partial = nullptr, counters = nullptr;
  if (splits > 1) {
    options += def("MMA_SPLITK", 1);
    KILN_TRY(cl.scratch(kSplitScratchSlot, tiles * splits * t.bm * t.bn * kSplitAccBytes, &partial,
                        "partial sums of " + what));
    KILN_TRY(cl.zeroed_scratch(kSplitCountersSlot, kSplitCounters * sizeof(cl_int), &counters,
                               "split-K tile counters"));
  }
  cl_kernel k;
  KILN_TRY(cl.kernel(program_source(epi.prelude), options, "mma_gemm", &k));
  ClLaunch l(cl, k, what);
  l.mem(p.A).mem(p.B).arg(cl_int(p.M)).arg(cl_int(p.N)).arg(cl_int(p.K)).arg(cl_int(p.lda)).arg(cl_int(p.ldb));
  l.arg(cl_int(p.batch_dims.size())).arg(cl_dims(p.batch_dims)).arg(cl_dims(p.a_bstride)).arg(cl_dims(p.b_bstride));
  l.arg(p.geo).arg(cl_int(p.c_bstride)).arg(cl_int(p.ldc));
  if (splits > 1) l.mem(partial).mem(counters).arg(cl_int(splits));
  epi.args(l);
  const size_t global[3] = {gx * threads, gy, static_cast<size_t>(p.batches) * splits};
  const size_t local[3] = {threads, 1, 1};
  return l.run(3, global, local);
}

}  // namespace kiln::mma
