// Concat and Split on the cpu fast path: row copies that work in either activation layout, so a
// chain of convolutions through YOLO-style Split / Concat blocks (C2f, SPPF) stays channels-last
// instead of reordering to plain and back around every one of them. Values move unchanged (any
// dtype, by bytes), so results equal the reference kernels'.
//
// In memory, a channels-last [N, C, H, W] tensor is [N, H, W, C]: the logical axis becomes its
// place in that order, and the copy is the same outer x row loop as in the plain layout. The
// operands' sizes along the axis come from their shapes (Split's sizes are its outputs').
#include <algorithm>
#include <cstring>

#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/backends/cpu/fast_loops.h"

namespace kiln {
namespace {

constexpr int64_t kMinParallelBytes = 1 << 18;  // below, one thread copies the whole node
constexpr int64_t kRowsPerTask = 256;

// Dims in memory order and the axis's place among them, for `layout`.
void memory_order(const Shape& s, int64_t axis, HostLayout layout, Shape* dims, int64_t* mem_axis) {
  if (layout == HostLayout::kChannelsLast && s.size() == 4) {
    *dims = {s[0], s[2], s[3], s[1]};
    constexpr int64_t kPlace[4] = {0, 3, 1, 2};
    *mem_axis = kPlace[axis];
    return;
  }
  *dims = s;
  *mem_axis = axis;
}

// The rows of one joined tensor: `outer` of them per operand, operand i's of row_bytes[i].
struct Rows {
  int64_t outer = 1;
  std::vector<int64_t> row_bytes;
  int64_t total_row_bytes = 0;
};

Status rows_of(const FastRunArgs& a, const std::vector<TensorView>& parts, const std::vector<HostLayout>& layouts,
               const TensorView& whole, HostLayout whole_layout, Rows* r) {
  const int64_t rank = static_cast<int64_t>(whole.shape.size());
  int64_t axis = a.node.attrs.get_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return invalid_plan(a.node.op + ": axis out of range");
  Shape dims;
  int64_t mem_axis = 0;
  memory_order(whole.shape, axis, whole_layout, &dims, &mem_axis);
  int64_t inner = static_cast<int64_t>(dtype_size(whole.dtype));
  for (int64_t d = mem_axis + 1; d < rank; ++d) inner *= dims[d];
  for (int64_t d = 0; d < mem_axis; ++d) r->outer *= dims[d];
  for (size_t i = 0; i < parts.size(); ++i) {
    if (layouts[i] != whole_layout || parts[i].shape.size() != whole.shape.size())
      return invalid_plan(a.node.op + ": operands in different layouts");
    r->row_bytes.push_back(parts[i].shape[axis] * inner);
    r->total_row_bytes += r->row_bytes.back();
  }
  if (r->total_row_bytes != dims[mem_axis] * inner) return invalid_plan(a.node.op + ": sizes along the axis do not add up");
  return Status::ok();
}

// Copies between the joined tensor and its parts: to_whole (Concat) or from it (Split).
void copy_rows(const Rows& r, const std::vector<TensorView>& parts, uint8_t* whole, bool to_whole, int threads) {
  const int64_t bytes = r.outer * r.total_row_bytes;
  for_each_chunk(bytes < kMinParallelBytes ? 1 : threads, r.outer, kRowsPerTask, [&](int64_t o0, int64_t n) {
    for (int64_t o = o0; o < o0 + n; ++o) {
      uint8_t* w = whole + o * r.total_row_bytes;
      for (size_t i = 0; i < parts.size(); ++i) {
        uint8_t* p = static_cast<uint8_t*>(parts[i].data) + o * r.row_bytes[i];
        if (to_whole) std::memcpy(w, p, static_cast<size_t>(r.row_bytes[i]));
        else std::memcpy(p, w, static_cast<size_t>(r.row_bytes[i]));
        w += r.row_bytes[i];
      }
    }
  });
}

class JoinPlan : public FastNodePlan {
 public:
  bool concat = true;
  LayoutUse input_use(size_t) const override { return LayoutUse::kFollow; }
  LayoutUse output_use(size_t) const override { return LayoutUse::kFollow; }
  const char* name() const override { return concat ? "fast:concat" : "fast:split"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class JoinKernel : public FastKernel {
 public:
  explicit JoinKernel(const JoinPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    Rows r;
    if (p_.concat) {
      KILN_TRY(rows_of(a, a.inputs, a.in_layout, a.outputs[0], a.out_layout[0], &r));
      copy_rows(r, a.inputs, static_cast<uint8_t*>(a.outputs[0].data), true, a.ctx.threads);
    } else {
      KILN_TRY(rows_of(a, a.outputs, a.out_layout, a.inputs[0], a.in_layout[0], &r));
      copy_rows(r, a.outputs, static_cast<uint8_t*>(a.inputs[0].data), false, a.ctx.threads);
    }
    return Status::ok();
  }

 private:
  const JoinPlan& p_;
};

std::unique_ptr<FastKernel> JoinPlan::instance() const { return std::make_unique<JoinKernel>(*this); }

// Every operand present, of one dtype and rank, none empty; Split with no second input (its
// sizes already in its outputs' shapes).
Status prepare_join(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  const bool concat = node.op == "Concat";
  const std::vector<int32_t>& parts = concat ? node.inputs : node.outputs;
  const std::vector<int32_t>& whole = concat ? node.outputs : node.inputs;
  if (whole.size() != 1 || whole[0] < 0 || parts.empty()) return Status::ok();
  const PlanTensor& w = plan.tensors[whole[0]];
  for (int32_t t : parts) {
    if (t < 0) return Status::ok();
    const PlanTensor& pt = plan.tensors[t];
    if (pt.dtype != w.dtype || pt.shape.size() != w.shape.size() || shape_numel(pt.shape) == 0) return Status::ok();
  }
  if (w.shape.empty() || dtype_size(w.dtype) == 0) return Status::ok();
  auto p = std::make_shared<JoinPlan>();
  p->concat = concat;
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_fast_concat_split_fast(FastRegistry& r) {
  r.add("Concat", prepare_join);
  r.add("Split", prepare_join);
}

}  // namespace kiln
