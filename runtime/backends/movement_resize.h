// Resize's runtime form: separable interpolation driven by per-axis tap tables that the
// compiler computes once (coordinate transformation, nearest rounding, linear/cubic/antialias
// coefficients, exclude_outside and edge clamping all live in the tables). For output
// coordinate o on axis d, taps t < taps[d] read input index idx[off_d + o*taps[d] + t] with
// weight w[...]; an index of -1 marks a coordinate outside the crop box (tf_crop_and_resize),
// where the output is extrapolation_value. off_d = sum over axes e < d of out[e] * taps[e].
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct ResizeTables {
  std::vector<int64_t> taps;
  std::vector<int64_t> offsets;  // per axis, into idx/w
  const int32_t* idx = nullptr;
  const float* w = nullptr;
  int64_t index(size_t d, int64_t o, int64_t t) const { return idx[offsets[d] + o * taps[d] + t]; }
  float weight(size_t d, int64_t o, int64_t t) const { return w[offsets[d] + o * taps[d] + t]; }
};

// Offsets of each axis' table and the total table length, from the output shape and the "taps"
// attribute; fails naming the node when they do not fit.
Status resize_table_layout(const PlanNode& node, const Shape& out, std::vector<int64_t>* taps,
                           std::vector<int64_t>* offsets, int64_t* total);

// Validates the table inputs of a Resize node against its shapes and points `t` at them.
Status resize_tables_from_inputs(const PlanNode& node, const Shape& in, const Shape& out,
                                 const TensorView& idx, const TensorView& w, ResizeTables* t);

// Resize by whole factors in nearest mode (the compiler's table-free form, attribute "repeats":
// output coordinate o of axis d reads input o / repeats[d]): checks the shapes (out = in *
// repeats) and fills `idx`/`w` with the equivalent one-tap tables, `t` pointing at them. The
// form needs no constant whose size depends on the shapes, so it runs in dynamic plans.
Status resize_repeat_tables(const PlanNode& node, const Shape& in, const Shape& out, std::vector<int32_t>* idx,
                            std::vector<float>* w, ResizeTables* t);

}  // namespace kiln
