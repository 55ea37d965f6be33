#include "runtime/backends/movement_resize.h"

#include <climits>

namespace kiln {

Status resize_table_layout(const PlanNode& n, const Shape& out, std::vector<int64_t>* taps,
                           std::vector<int64_t>* offsets, int64_t* total) {
  *taps = n.attrs.get_ints("taps");
  if (taps->size() != out.size())
    return invalid_plan("node '" + n.name + "' (Resize): taps do not match the output rank");
  offsets->assign(out.size(), 0);
  *total = 0;
  for (size_t d = 0; d < out.size(); ++d) {
    if ((*taps)[d] < 1) return invalid_plan("node '" + n.name + "' (Resize): taps must be positive");
    (*offsets)[d] = *total;
    *total += out[d] * (*taps)[d];
  }
  return Status::ok();
}

Status resize_tables_from_inputs(const PlanNode& n, const Shape& in, const Shape& out,
                                 const TensorView& idx, const TensorView& w, ResizeTables* t) {
  int64_t total = 0;
  KILN_TRY(resize_table_layout(n, out, &t->taps, &t->offsets, &total));
  if (in.size() != out.size() || idx.dtype != DType::kInt32 || w.dtype != DType::kFloat32 ||
      idx.numel() != total || w.numel() != total)
    return invalid_plan("node '" + n.name + "' (Resize): interpolation tables do not match the shapes");
  t->idx = idx.as<int32_t>();
  t->w = w.as<float>();
  // The tables come from the plan file: check every index so a corrupted plan cannot read
  // outside the input.
  for (size_t d = 0; d < out.size(); ++d)
    for (int64_t o = 0; o < out[d]; ++o) {
      // -1 in the first tap marks the whole coordinate as outside; its other taps are unread.
      if (t->index(d, o, 0) == -1) continue;
      for (int64_t k = 0; k < t->taps[d]; ++k) {
        const int64_t i = t->index(d, o, k);
        if (i < 0 || i >= in[d])
          return invalid_plan("node '" + n.name + "' (Resize): interpolation table index out of range");
      }
    }
  return Status::ok();
}

Status resize_repeat_tables(const PlanNode& n, const Shape& in, const Shape& out, std::vector<int32_t>* idx,
                            std::vector<float>* w, ResizeTables* t) {
  const std::vector<int64_t> rep = n.attrs.get_ints("repeats");
  if (rep.size() != out.size() || in.size() != out.size())
    return invalid_plan("node '" + n.name + "' (Resize): repeats do not match the rank");
  t->taps.assign(out.size(), 1);
  t->offsets.assign(out.size(), 0);
  idx->clear();
  for (size_t d = 0; d < out.size(); ++d) {
    int64_t want;
    if (rep[d] < 1 || in[d] > INT32_MAX || __builtin_mul_overflow(in[d], rep[d], &want) || want != out[d])
      return invalid_plan("node '" + n.name + "' (Resize): output " + shape_str(out) + " is not the input " +
                          shape_str(in) + " repeated by the node's repeats");
    t->offsets[d] = static_cast<int64_t>(idx->size());
    for (int64_t o = 0; o < out[d]; ++o) idx->push_back(static_cast<int32_t>(o / rep[d]));
  }
  w->assign(idx->size(), 1.f);
  t->idx = idx->data();
  t->w = w->data();
  return Status::ok();
}

}  // namespace kiln
