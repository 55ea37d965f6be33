// CPU kernels of the movement family. Every kernel works on element byte sizes, not types:
// the same code moves float32 activations and the int64 shape tensors of constant folding.
// Runtime forms (the compiler canonicalizes every opset into these):
//   Transpose {perm}   Concat {axis}   Split {axis}   Slice {starts, steps} (full rank, resolved)
//   Expand {}   Tile {}   Pad {pads (2*rank), mode_id} (+ optional scalar value input)
//   Gather {axis} (indices int32/int64)   Resize {taps} (+ int32 index and float weight tables)
#include <algorithm>
#include <cstring>
#include <string>

#include "runtime/backends/movement_layout.h"
#include "runtime/backends/movement_resize.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

std::string where(const CpuKernelArgs& a) { return "node '" + a.node.name + "' (" + a.node.op + ")"; }

template <typename T>
void copy_row(const uint8_t* src, int64_t src_stride, uint8_t* dst, int64_t n) {
  const T* s = reinterpret_cast<const T*>(src);
  T* d = reinterpret_cast<T*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = s[i * src_stride];
}

// One row of n elements, destination contiguous, source at `src_stride` elements.
void strided_row(const uint8_t* src, int64_t src_stride, uint8_t* dst, int64_t n, int64_t es) {
  if (src_stride == 1) {
    std::memcpy(dst, src, static_cast<size_t>(n * es));
    return;
  }
  switch (es) {
    case 1: copy_row<uint8_t>(src, src_stride, dst, n); return;
    case 2: copy_row<uint16_t>(src, src_stride, dst, n); return;
    case 4: copy_row<uint32_t>(src, src_stride, dst, n); return;
    case 8: copy_row<uint64_t>(src, src_stride, dst, n); return;
    default:
      for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * es, src + i * src_stride * es, static_cast<size_t>(es));
  }
}

// Copies a [A, B] plane that is contiguous along A in the source and along B in the
// destination (a transpose), in cache-sized tiles so neither side is walked with a large stride
// for long.
template <typename T>
void transpose_plane(const T* in, int64_t in_stride_b, T* out, int64_t out_stride_a, int64_t na, int64_t nb) {
  constexpr int64_t kTile = 32;
  for (int64_t a0 = 0; a0 < na; a0 += kTile)
    for (int64_t b0 = 0; b0 < nb; b0 += kTile) {
      const int64_t a1 = std::min(na, a0 + kTile), b1 = std::min(nb, b0 + kTile);
      for (int64_t a = a0; a < a1; ++a)
        for (int64_t b = b0; b < b1; ++b) out[a * out_stride_a + b] = in[a + b * in_stride_b];
    }
}

// The tiled path for pieces whose innermost output dim is strided in the input while some
// other dim is contiguous there; false when the piece does not have that form.
bool run_transpose_piece(CopyPiece& p, const uint8_t* in, uint8_t* out) {
  const size_t r = p.dims.size();
  const int64_t es = p.elem_size;
  if (r < 2 || p.out_strides[r - 1] != 1 || p.in_strides[r - 1] == 1 || (es != 1 && es != 2 && es != 4 && es != 8))
    return false;
  size_t j = r;
  for (size_t d = 0; d + 1 < r; ++d)
    if (p.in_strides[d] == 1) j = d;
  if (j == r || p.dims[j] * p.dims[r - 1] < 64) return false;
  // Iteration order is free: move the source-contiguous dim next to the innermost one.
  std::swap(p.dims[j], p.dims[r - 2]);
  std::swap(p.in_strides[j], p.in_strides[r - 2]);
  std::swap(p.out_strides[j], p.out_strides[r - 2]);
  const int64_t na = p.dims[r - 2], nb = p.dims[r - 1], isb = p.in_strides[r - 1], osa = p.out_strides[r - 2];
  std::vector<int64_t> idx(r - 2, 0);
  int64_t ioff = 0, ooff = 0;
  for (int64_t done = 0, total = p.numel(); done < total; done += na * nb) {
    const uint8_t* src = in + ioff * es;
    uint8_t* dst = out + ooff * es;
    switch (es) {
      case 1: transpose_plane(reinterpret_cast<const uint8_t*>(src), isb, reinterpret_cast<uint8_t*>(dst), osa, na, nb); break;
      case 2: transpose_plane(reinterpret_cast<const uint16_t*>(src), isb, reinterpret_cast<uint16_t*>(dst), osa, na, nb); break;
      case 4: transpose_plane(reinterpret_cast<const uint32_t*>(src), isb, reinterpret_cast<uint32_t*>(dst), osa, na, nb); break;
      default: transpose_plane(reinterpret_cast<const uint64_t*>(src), isb, reinterpret_cast<uint64_t*>(dst), osa, na, nb); break;
    }
    for (int d = static_cast<int>(r) - 3; d >= 0; --d) {
      ioff += p.in_strides[d];
      ooff += p.out_strides[d];
      if (++idx[d] < p.dims[d]) break;
      ioff -= p.in_strides[d] * p.dims[d];
      ooff -= p.out_strides[d] * p.dims[d];
      idx[d] = 0;
    }
  }
  return true;
}

void run_piece(CopyPiece p, const uint8_t* in, uint8_t* out) {
  p.simplify();
  const int64_t es = p.elem_size;
  const int64_t total = p.numel();
  if (total == 0) return;
  in += p.in_offset * es;
  out += p.out_offset * es;
  if (p.contiguous()) {
    std::memcpy(out, in, static_cast<size_t>(total * es));
    return;
  }
  if (run_transpose_piece(p, in, out)) return;
  const size_t r = p.dims.size();
  const int64_t inner = p.dims[r - 1], is = p.in_strides[r - 1], os = p.out_strides[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t ioff = 0, ooff = 0;
  for (int64_t done = 0; done < total; done += inner) {
    if (os == 1) {
      strided_row(in + ioff * es, is, out + ooff * es, inner, es);
    } else {
      for (int64_t i = 0; i < inner; ++i)
        std::memcpy(out + (ooff + i * os) * es, in + (ioff + i * is) * es, static_cast<size_t>(es));
    }
    // Odometer over the outer dims, keeping both offsets incrementally.
    for (int d = static_cast<int>(r) - 2; d >= 0; --d) {
      ioff += p.in_strides[d];
      ooff += p.out_strides[d];
      if (++idx[d] < p.dims[d]) break;
      ioff -= p.in_strides[d] * p.dims[d];
      ooff -= p.out_strides[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

void fill_bytes(uint8_t* dst, int64_t n, const uint8_t* value, int64_t es) {
  bool zero = true;
  for (int64_t b = 0; b < es; ++b) zero &= value[b] == 0;
  if (zero) {
    std::memset(dst, 0, static_cast<size_t>(n * es));
    return;
  }
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * es, value, static_cast<size_t>(es));
}

Status pieces_of(const CpuKernelArgs& a, std::vector<CopyPiece>* pieces) {
  std::vector<Shape> ins, outs;
  for (const TensorView& t : a.inputs) ins.push_back(t.shape);
  for (const TensorView& t : a.outputs) outs.push_back(t.shape);
  return movement_pieces(a.node, ins, outs, static_cast<int64_t>(dtype_size(a.outputs[0].dtype)), pieces);
}

Status piecewise_cpu(const CpuKernelArgs& a) {
  std::vector<CopyPiece> pieces;
  KILN_TRY(pieces_of(a, &pieces));
  for (const CopyPiece& p : pieces)
    run_piece(p, static_cast<const uint8_t*>(a.inputs[p.input].data), static_cast<uint8_t*>(a.outputs[p.output].data));
  return Status::ok();
}

Status pad_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  const TensorView& y = a.outputs[0];
  const int64_t es = static_cast<int64_t>(dtype_size(y.dtype));
  const int mode = static_cast<int>(a.attrs().get_int("mode_id", 0));
  uint8_t* out = static_cast<uint8_t*>(y.data);
  const uint8_t* in = static_cast<const uint8_t*>(x.data);
  if (y.numel() == 0) return Status::ok();
  if (mode == 0 || x.numel() == 0) {
    std::vector<uint8_t> zero(static_cast<size_t>(es), 0);
    const uint8_t* value = a.has_input(1) ? static_cast<const uint8_t*>(a.inputs[1].data) : zero.data();
    if (a.has_input(1) && a.inputs[1].numel() < 1) return invalid_argument(where(a) + ": constant_value is empty");
    if (mode != 0 && x.numel() == 0)
      return invalid_argument(where(a) + ": cannot reflect/edge/wrap-pad an empty axis");
    fill_bytes(out, y.numel(), value, es);
    return piecewise_cpu(a);
  }
  // Reflect/edge/wrap: per-axis source index tables, then rows gathered along the last axis.
  const std::vector<int64_t> pads = a.attrs().get_ints("pads");
  const size_t r = y.shape.size();
  if (pads.size() != 2 * r || x.shape.size() != r) return invalid_plan(where(a) + ": pads do not match the rank");
  for (size_t d = 0; d < r; ++d)
    if (y.shape[d] != x.shape[d] + pads[d] + pads[r + d] || (x.shape[d] == 0 && y.shape[d] > 0))
      return invalid_plan(where(a) + ": pads do not match the shapes");
  std::vector<std::vector<int64_t>> src(r);
  for (size_t d = 0; d < r; ++d) {
    src[d].resize(static_cast<size_t>(y.shape[d]));
    for (int64_t o = 0; o < y.shape[d]; ++o) src[d][o] = pad_source_index(o, pads[d], x.shape[d], mode);
  }
  if (r == 0) {
    std::memcpy(out, in, static_cast<size_t>(es));
    return Status::ok();
  }
  const std::vector<int64_t> xs = shape_strides(x.shape);
  const int64_t inner = y.shape[r - 1];
  std::vector<int64_t> idx(r, 0);
  for (int64_t row = 0, total = y.numel() / inner; row < total; ++row) {
    int64_t base = 0;
    for (size_t d = 0; d + 1 < r; ++d) base += src[d][idx[d]] * xs[d];
    uint8_t* dst = out + row * inner * es;
    const std::vector<int64_t>& last = src[r - 1];
    for (int64_t i = 0; i < inner; ++i)
      std::memcpy(dst + i * es, in + (base + last[i]) * es, static_cast<size_t>(es));
    advance_index(idx, y.shape, static_cast<size_t>(r) - 1);
  }
  return Status::ok();
}

Status gather_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  const TensorView& ind = a.inputs[1];
  const TensorView& y = a.outputs[0];
  const int64_t axis = a.attrs().get_int("axis", 0);
  if (axis < 0 || axis >= static_cast<int64_t>(x.shape.size())) return invalid_plan(where(a) + ": axis out of range");
  if (ind.dtype != DType::kInt32 && ind.dtype != DType::kInt64)
    return invalid_plan(where(a) + ": indices must be int32 or int64");
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (size_t d = axis + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
  const int64_t n = x.shape[axis], k = ind.numel();
  if (y.numel() != outer * k * inner || y.dtype != x.dtype) return invalid_plan(where(a) + ": output does not match");
  // Validate and normalize every index first, so the copy loop below writes the output in order.
  std::vector<int64_t> rows(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) {
    int64_t i = ind.dtype == DType::kInt64 ? ind.as<int64_t>()[j] : ind.as<int32_t>()[j];
    if (i < -n || i >= n)
      return invalid_argument(where(a) + ": index " + std::to_string(i) + " (at position " + std::to_string(j) +
                              ") is out of range for axis " + std::to_string(axis) + " of size " + std::to_string(n));
    rows[j] = i < 0 ? i + n : i;
  }
  const size_t row = static_cast<size_t>(inner * es);
  const uint8_t* in = static_cast<const uint8_t*>(x.data);
  uint8_t* out = static_cast<uint8_t*>(y.data);
  for (int64_t o = 0; o < outer; ++o) {
    const uint8_t* src = in + o * n * static_cast<int64_t>(row);
    if (row == 4) {  // single 4-byte elements: a constant-size copy compiles to a plain move
      uint32_t* dst = reinterpret_cast<uint32_t*>(out);
      for (int64_t j = 0; j < k; ++j) std::memcpy(dst + j, src + rows[j] * 4, 4);
    } else {
      for (int64_t j = 0; j < k; ++j) std::memcpy(out + j * row, src + rows[j] * row, row);
    }
    out += k * row;
  }
  return Status::ok();
}

// Nearest-mode Resize of any dtype: one tap per axis, so each output element copies one
// input element (bytes); coordinates outside the crop box get extrapolation_value.
Status resize_nearest_bytes(const CpuKernelArgs& a, const ResizeTables& t) {
  const TensorView& x = a.inputs[0];
  const TensorView& y = a.outputs[0];
  const size_t r = y.shape.size();
  for (size_t d = 0; d < r; ++d)
    if (t.taps[d] != 1) return unsupported(where(a) + ": interpolating " + dtype_name(x.dtype) + " data is not supported");
  const int64_t es = static_cast<int64_t>(dtype_size(x.dtype));
  HostTensor fill(x.dtype, {});
  const double extrapolation = a.attrs().get_float("extrapolation_value", 0.f);
  switch (x.dtype) {
    case DType::kFloat64: fill.as<double>()[0] = extrapolation; break;
    case DType::kInt64: fill.as<int64_t>()[0] = static_cast<int64_t>(extrapolation); break;
    case DType::kInt32: fill.as<int32_t>()[0] = static_cast<int32_t>(extrapolation); break;
    case DType::kInt16: fill.as<int16_t>()[0] = static_cast<int16_t>(extrapolation); break;
    case DType::kInt8: fill.as<int8_t>()[0] = static_cast<int8_t>(extrapolation); break;
    case DType::kUInt8: fill.as<uint8_t>()[0] = static_cast<uint8_t>(extrapolation); break;
    case DType::kBool: fill.as<uint8_t>()[0] = extrapolation != 0; break;
    default: std::memset(fill.data(), 0, fill.size_bytes()); break;
  }
  const uint8_t* in = static_cast<const uint8_t*>(x.data);
  uint8_t* out = static_cast<uint8_t*>(y.data);
  if (r == 0) {
    std::memcpy(out, in, static_cast<size_t>(es));
    return Status::ok();
  }
  const std::vector<int64_t> xs = shape_strides(x.shape);
  const int64_t width = y.shape[r - 1];
  std::vector<int64_t> idx(r, 0);
  for (int64_t row = 0, rows = y.numel() / width; row < rows; ++row, out += width * es) {
    int64_t base = 0;
    bool outside = false;
    for (size_t d = 0; d + 1 < r; ++d) {
      const int64_t i = t.index(d, idx[d], 0);
      outside |= i < 0;
      base += i * xs[d];
    }
    for (int64_t o = 0; o < width; ++o) {
      const int64_t i = t.index(r - 1, o, 0);
      const uint8_t* src = outside || i < 0 ? fill.data() : in + (base + i) * es;
      std::memcpy(out + o * es, src, static_cast<size_t>(es));
    }
    advance_index(idx, y.shape, static_cast<size_t>(r) - 1);
  }
  return Status::ok();
}

Status resize_cpu(const CpuKernelArgs& a) {
  const TensorView& x = a.inputs[0];
  const TensorView& y = a.outputs[0];
  if (y.numel() == 0) return Status::ok();
  ResizeTables t;
  std::vector<int32_t> rep_idx;
  std::vector<float> rep_w;
  if (a.node.attrs.has("repeats")) {
    KILN_TRY(resize_repeat_tables(a.node, x.shape, y.shape, &rep_idx, &rep_w, &t));
  } else {
    if (a.inputs.size() < 3) return invalid_plan(where(a) + ": interpolation tables missing");
    KILN_TRY(resize_tables_from_inputs(a.node, x.shape, y.shape, a.inputs[1], a.inputs[2], &t));
  }
  if (x.dtype != y.dtype) return invalid_plan(where(a) + ": input and output dtypes differ");
  if (x.dtype != DType::kFloat32) return resize_nearest_bytes(a, t);
  const float* in = x.as<float>();
  float* out = y.as<float>();
  const size_t r = y.shape.size();
  const float extrapolation = a.attrs().get_float("extrapolation_value", 0.f);
  if (r == 0) {  // a scalar has no axes to interpolate (the compiler lowers this to a copy)
    out[0] = in[0];
    return Status::ok();
  }
  const std::vector<int64_t> xs = shape_strides(x.shape);
  const int64_t width = y.shape[r - 1], wt = t.taps[r - 1];
  // Per output row, the outer axes' taps combine into (offset, weight) pairs once; the inner
  // loop then only walks the last axis' taps.
  std::vector<std::pair<int64_t, float>> combos, next;
  std::vector<int64_t> idx(r, 0);
  for (int64_t row = 0, rows = y.numel() / width; row < rows; ++row, out += width) {
    combos.assign(1, {0, 1.f});
    bool outside = false;
    for (size_t d = 0; d + 1 < r && !outside; ++d) {
      outside = t.index(d, idx[d], 0) < 0;
      next.clear();
      for (const auto& c : combos)
        for (int64_t k = 0; k < t.taps[d]; ++k)
          next.push_back({c.first + t.index(d, idx[d], k) * xs[d], c.second * t.weight(d, idx[d], k)});
      combos.swap(next);
    }
    for (int64_t o = 0; o < width; ++o) {
      if (outside || t.index(r - 1, o, 0) < 0) {
        out[o] = extrapolation;
        continue;
      }
      float acc = 0.f;
      for (const auto& c : combos) {
        const float* src = in + c.first;
        float part = 0.f;
        for (int64_t k = 0; k < wt; ++k) part += t.weight(r - 1, o, k) * src[t.index(r - 1, o, k)];
        acc += c.second * part;
      }
      out[o] = acc;
    }
    advance_index(idx, y.shape, static_cast<size_t>(r) - 1);
  }
  return Status::ok();
}

}  // namespace

void register_movement_cpu(CpuRegistry& r) {
  for (const char* op : {"Transpose", "Concat", "Split", "Slice", "Expand", "Tile"}) r.add(op, piecewise_cpu).arity(1, 1);
  r.add("Pad", pad_cpu).arity(1, 1);
  r.add("Gather", gather_cpu).arity(2, 1);
  r.add("Resize", resize_cpu, CpuFloat16::kWidened).arity(1, 1);
}

}  // namespace kiln
