// Layout math shared by the CPU and OpenCL movement kernels. Transpose, Concat, Split, Slice,
// Expand, Tile and the interior of a constant Pad are all "strided copies": a box of `dims`
// elements read at `in_strides` from one input and written at `out_strides` into one output.
// Each op is described once here as a list of such pieces; the backends only execute pieces,
// so the two backends cannot disagree on the index math.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/plan/plan.h"

namespace kiln {

struct CopyPiece {
  int input = 0;   // which node input is read
  int output = 0;  // which node output is written
  std::vector<int64_t> dims;
  std::vector<int64_t> in_strides;   // elements; may be 0 (broadcast) or negative (reversed slice)
  std::vector<int64_t> out_strides;  // elements
  int64_t in_offset = 0;             // elements
  int64_t out_offset = 0;
  int64_t elem_size = 0;             // bytes per element (after widen(), possibly a multiple)

  int64_t numel() const;
  // Drops size-1 dims and merges adjacent dims that are contiguous in both tensors, so a
  // contiguous piece becomes rank 1 with unit strides.
  void simplify();
  // Whether the piece is one contiguous run in both tensors (a plain memcpy).
  bool contiguous() const;
  // Re-expresses the piece in elements of up to `max_bytes` bytes when the innermost dim is
  // contiguous in both tensors and every stride and offset stays aligned (faster device copies).
  void widen(int64_t max_bytes);
};

// The pieces of a movement node (ops Transpose, Concat, Split, Slice, Expand, Tile, and Pad in
// constant mode: its interior) given the shapes of its inputs and outputs.
Status movement_pieces(const PlanNode& node, const std::vector<Shape>& in_shapes,
                       const std::vector<Shape>& out_shapes, int64_t elem_size,
                       std::vector<CopyPiece>* pieces);

// Whether `op` is executed by movement_pieces.
bool is_piecewise_movement_op(const std::string& op);

// Pad's source index for output coordinate `o` on an axis of `n` input elements with `begin`
// elements of padding before it, or -1 for the constant value. mode: 0 constant, 1 reflect,
// 2 edge, 3 wrap (the same encoding as the "mode_id" attribute and kernels/pad.cl).
inline int64_t pad_source_index(int64_t o, int64_t begin, int64_t n, int mode) {
  int64_t i = o - begin;
  if (i >= 0 && i < n) return i;
  if (mode == 0 || n == 0) return -1;
  if (mode == 2) return i < 0 ? 0 : n - 1;
  if (mode == 3) return ((i % n) + n) % n;
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i >= n ? period - i : i;
}

}  // namespace kiln
