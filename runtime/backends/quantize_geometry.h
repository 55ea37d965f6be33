// Geometry of the quantize family's kernels, shared by the CPU and OpenCL backends so both read
// a node's canonical form (compiler/ops/quantize.cpp) the same way.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/quantized_linear.h"

namespace kiln {

// QuantizeLinear / DequantizeLinear: x viewed as [outer, C, inner] around the quantization axis.
// The scale (and zero point) element of x's element (o, c, i) is
//   qmode 0 (per-tensor): 0;  qmode 1 (per-axis): c;
//   qmode 2 (blocked):    (o * cblocks + c / block) * inner + i.
struct QuantLayout {
  int qmode = 0;
  int64_t outer = 1, C = 1, inner = 1, block = 1, cblocks = 1;
  bool saturate = true;
};
QuantLayout quant_layout(const PlanNode& node, const Shape& x);

// Integer (implicit) GEMM behind MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv:
// for each batch item b, C[b][m][n] = sum_k (A[b][m][k] - za(b,m)) * (B[b][k][n] - zb(b,n)).
//   matmul: A is a [.., M, K], B is b [.., K, N], batch items are the output batch dims.
//   conv:   batch item = (image, group); A is the group's weights [Mg, Cg*kernel], B is the
//           im2col view of the group's input [Cg*kernel, out positions] (padding reads as the
//           zero point, so it adds nothing), M = Mg, N = out positions.
// Row parameters (a/w zero point, a/w scale, bias) are indexed by the global row
// g * M + m (conv) or m (matmul); column parameters (b zero point, b scale) by n.
struct QGemm {
  bool conv = false;
  int64_t M = 0, N = 0, K = 0;
  int64_t batches = 1;
  // matmul: output batch dims and the element strides of A and B over them (0 = broadcast).
  std::vector<int64_t> batch_dims, a_bstride, b_bstride;
  // matmul, N-D per-row/per-column parameters ([.., M, 1] / [.., 1, N]): batch strides in units
  // of one row/column vector; empty when the parameter does not vary over the batch.
  std::vector<int64_t> za_bstride, zb_bstride;
  // conv
  int64_t images = 1, groups = 1, C = 0, Cg = 0;
  // x, the output and a residual are [N, spatial..., C] and the weights [M, kernel..., Cg]
  // (runtime/ops/channels_last.h; group 1): im2col row k is (kernel offset k / C, channel k % C),
  // and output (m, n) of image b is at (b * N + n) * M + m.
  bool channels_last = false;
  // Where output (m, n) of the batch item whose output starts at c_off goes.
  int64_t out_index(int64_t c_off, int64_t m, int64_t n) const {
    return channels_last ? c_off + n * M + m : c_off + m * N + n;
  }
  std::vector<int64_t> in_sp, out_sp, ks, strides, dil, pads;  // pads: begin values only
  int64_t in_size = 1;  // product of in_sp
  // Offsets of batch item b (element units).
  void offsets(int64_t b, int64_t* a_off, int64_t* b_off, int64_t* c_off, int64_t* row_base,
               int64_t* za_boff, int64_t* zb_boff) const;
};

// Input positions of each integer GEMM op: {A, za, B, zb, sa, sb, sy, yzp, bias}; -1 = none.
// A is the row side (a, or w for the convolutions), B the column side (b, or x).
struct QGemmInputs {
  int a, za, b, zb, sa, sb, sy, yzp, bias;
};
inline QGemmInputs qgemm_inputs(const std::string& op) {
  if (op == "MatMulInteger") return {0, 2, 1, 3, -1, -1, -1, -1, -1};
  if (op == "QLinearMatMul") return {0, 2, 3, 5, 1, 4, 6, 7, 8};
  if (op == "ConvInteger") return {1, 3, 0, 2, -1, -1, -1, -1, -1};
  return {3, 5, 0, 2, 4, 1, 6, 7, 8};  // QLinearConv
}

// `a_shape`, `b_shape`: the A / B (or x / w) input shapes; `za`, `zb`: zero point shapes of the
// row side and column side (empty vectors for scalars/absent). Fails on malformed nodes.
Status qgemm_geometry(const PlanNode& node, const Shape& a_shape, const Shape& b_shape, const Shape& za_shape,
                      const Shape& zb_shape, const Shape& out_shape, QGemm* g);

// kiln's fused epilogue of QLinearConv / QLinearMatMul (written by compiler/passes/
// fuse_quantized.cpp; absent in ONNX models). With r = (acc + bias) * sa * sb the real value
// of an output element:
//   r += R (residual mode 1); r = act(r); r += R (mode 2)      (linear_epilogue.h attributes)
//   output int8/uint8: q = clamp(rint(r / sy) + yzp);  output float32: r itself (the
//   DequantizeLinear that followed is folded in).
// The inputs past the ONNX ones (bias, residual): runtime/ops/quantized_linear.h.
// Whether node has any of the fused-epilogue features (else the plain ONNX requantization
// q = clamp(rint((acc + bias) * (sa * sb / sy)) + yzp) applies, bit for bit as before).
bool has_qlinear_epilogue(const PlanNode& node, DType out_dtype);

// Whether a parameter tensor of `shape` holds one value per row/column (not per tensor).
inline bool is_vector_param(const Shape& shape) { return shape_numel(shape) != 1; }

// Round half to even (the current rounding mode, which is to-nearest) of a float32.
inline float round_half_even(float v) { return std::nearbyintf(v); }

}  // namespace kiln
