// Resize by whole factors in nearest mode (the compiler's "repeats" form: YOLO's and PP-OCR's
// 2x upsampling) of a rank-4 tensor along H and W, on the cpu fast path: rows built once and
// copied, threaded, in either activation layout, so an upsampling inside a channels-last chain
// needs no reorder. Values move unchanged (any dtype, by bytes): equal to the reference kernel's,
// which walks an index table per element (1.3 GB/s on PP-OCRv4 det, 17 ms of its 80).
#include <cstring>

#include "runtime/backends/cpu/dnnl_packed.h"
#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/backends/cpu/fast_loops.h"

namespace kiln {
namespace {

constexpr int64_t kMinParallelBytes = 1 << 18;  // below, one thread writes the whole output

class RepeatPlan : public FastNodePlan {
 public:
  int64_t rh = 1, rw = 1;
  LayoutUse input_use(size_t) const override { return LayoutUse::kFollow; }
  LayoutUse output_use(size_t) const override { return LayoutUse::kFollow; }
  const char* name() const override { return "fast:resize_repeat"; }
  std::unique_ptr<FastKernel> instance() const override;
};

class RepeatKernel : public FastKernel {
 public:
  explicit RepeatKernel(const RepeatPlan& p) : p_(p) {}
  Status run(const FastRunArgs& a) override {
    const Shape& x = a.inputs[0].shape;
    const Shape& y = a.outputs[0].shape;
    if (x.size() != 4 || y.size() != 4 || y[0] != x[0] || y[1] != x[1] || y[2] != x[2] * p_.rh || y[3] != x[3] * p_.rw)
      return invalid_plan("node '" + a.node.name + "' (Resize): output " + shape_str(y) + " is not the input " +
                          shape_str(x) + " repeated by the node's repeats");
    if (a.in_layout[0] != a.out_layout[0]) return invalid_plan("Resize: input and output in different layouts");
    const bool nhwc = a.out_layout[0] == HostLayout::kChannelsLast;
    const int64_t es = static_cast<int64_t>(dtype_size(a.inputs[0].dtype));
    // An input row: W pixels of `px` bytes (one element; NHWC: C of them), one per plane row.
    const int64_t px = nhwc ? x[1] * es : es, in_row = x[3] * px, out_row = in_row * p_.rw;
    const int64_t rows = nhwc ? x[0] * x[2] : x[0] * x[1] * x[2];
    const uint8_t* in = static_cast<const uint8_t*>(a.inputs[0].data);
    uint8_t* out = static_cast<uint8_t*>(a.outputs[0].data);
    const int64_t bytes = rows * out_row * p_.rh;
    for_each_chunk(bytes < kMinParallelBytes ? 1 : a.ctx.threads, rows, 16, [&](int64_t r0, int64_t n) {
      for (int64_t r = r0; r < r0 + n; ++r) {
        const uint8_t* src = in + r * in_row;
        uint8_t* dst = out + r * out_row * p_.rh;
        for (int64_t w = 0; w < x[3]; ++w)
          for (int64_t k = 0; k < p_.rw; ++k) std::memcpy(dst + (w * p_.rw + k) * px, src + w * px, static_cast<size_t>(px));
        for (int64_t k = 1; k < p_.rh; ++k) std::memcpy(dst + k * out_row, dst, static_cast<size_t>(out_row));
      }
    });
    return Status::ok();
  }

 private:
  const RepeatPlan& p_;
};

std::unique_ptr<FastKernel> RepeatPlan::instance() const { return std::make_unique<RepeatKernel>(*this); }

Status prepare_resize(const Plan& plan, const PlanNode& node, std::shared_ptr<const FastNodePlan>* out) {
  if (!node.attrs.has("repeats") || node.outputs.size() != 1 || node.inputs.empty() || node.inputs[0] < 0) return Status::ok();
  for (size_t i = 1; i < node.inputs.size(); ++i)
    if (node.inputs[i] >= 0) return Status::ok();
  const std::vector<int64_t> rep = node.attrs.get_ints("repeats");
  const PlanTensor& x = plan.tensors[node.inputs[0]];
  if (rep.size() != 4 || x.shape.size() != 4 || rep[0] != 1 || rep[1] != 1 || rep[2] < 1 || rep[3] < 1 ||
      dtype_size(x.dtype) == 0 || plan.tensors[node.outputs[0]].dtype != x.dtype)
    return Status::ok();
  auto p = std::make_shared<RepeatPlan>();
  p->rh = rep[2];
  p->rw = rep[3];
  *out = std::move(p);
  return Status::ok();
}

}  // namespace

void register_fast_resize_fast(FastRegistry& r) { r.add("Resize", prepare_resize); }

}  // namespace kiln
