#include "runtime/backends/movement_layout.h"

#include <algorithm>

namespace kiln {

int64_t CopyPiece::numel() const { return shape_numel(dims); }

void CopyPiece::simplify() {
  std::vector<int64_t> d, is, os;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    if (!d.empty() && is.back() == in_strides[i] * dims[i] && os.back() == out_strides[i] * dims[i]) {
      // Outer dim steps over exactly one inner run in both tensors: merge.
      d.back() *= dims[i];
      is.back() = in_strides[i];
      os.back() = out_strides[i];
      continue;
    }
    d.push_back(dims[i]);
    is.push_back(in_strides[i]);
    os.push_back(out_strides[i]);
  }
  if (numel() == 0) d.assign(1, 0), is.assign(1, 1), os.assign(1, 1);
  dims = std::move(d);
  in_strides = std::move(is);
  out_strides = std::move(os);
}

bool CopyPiece::contiguous() const {
  for (size_t i = 0; i < dims.size(); ++i) {
    // After simplify() a contiguous box is rank <= 1 with unit strides.
    if (dims.size() > 1) return false;
    if (in_strides[i] != 1 || out_strides[i] != 1) return false;
  }
  return true;
}

void CopyPiece::widen(int64_t max_bytes) {
  if (dims.empty() || in_strides.back() != 1 || out_strides.back() != 1) return;
  for (int64_t w = max_bytes; w > elem_size; w /= 2) {
    if (w % elem_size) continue;
    const int64_t f = w / elem_size;
    bool ok = dims.back() % f == 0 && in_offset % f == 0 && out_offset % f == 0;
    for (size_t i = 0; ok && i + 1 < dims.size(); ++i) ok = in_strides[i] % f == 0 && out_strides[i] % f == 0;
    if (!ok) continue;
    dims.back() /= f;
    for (size_t i = 0; i + 1 < dims.size(); ++i) in_strides[i] /= f, out_strides[i] /= f;
    in_offset /= f;
    out_offset /= f;
    elem_size = w;
    return;
  }
}

bool is_piecewise_movement_op(const std::string& op) {
  return op == "Transpose" || op == "Concat" || op == "Split" || op == "Slice" || op == "Expand" ||
         op == "Tile" || op == "Pad";
}

namespace {

CopyPiece dense_piece(const Shape& dims, int64_t elem_size) {
  CopyPiece p;
  p.dims = dims;
  p.in_strides = shape_strides(dims);
  p.out_strides = p.in_strides;
  p.elem_size = elem_size;
  return p;
}

Status check_rank(const PlanNode& n, const Shape& a, size_t rank, const char* what) {
  if (a.size() != rank)
    return invalid_plan("node '" + n.name + "' (" + n.op + "): " + what + " has rank " +
                        std::to_string(a.size()) + ", expected " + std::to_string(rank));
  return Status::ok();
}

}  // namespace

Status movement_pieces(const PlanNode& n, const std::vector<Shape>& in, const std::vector<Shape>& out,
                       int64_t elem_size, std::vector<CopyPiece>* pieces) {
  pieces->clear();
  const std::string& op = n.op;
  auto bad = [&](const std::string& m) { return invalid_plan("node '" + n.name + "' (" + op + "): " + m); };
  if (in.empty() || out.empty()) return bad("missing input or output");
  const Shape& x = in[0];
  const size_t rank = x.size();
  const std::vector<int64_t> xs = shape_strides(x);

  if (op == "Transpose") {
    const std::vector<int64_t> perm = n.attrs.get_ints("perm");
    if (perm.size() != rank) return bad("perm does not match the input rank");
    KILN_TRY(check_rank(n, out[0], rank, "output"));
    CopyPiece p = dense_piece(out[0], elem_size);
    for (size_t i = 0; i < rank; ++i) {
      if (perm[i] < 0 || perm[i] >= static_cast<int64_t>(rank) || out[0][i] != x[perm[i]])
        return bad("perm does not map the input shape onto the output shape");
      p.in_strides[i] = xs[perm[i]];
    }
    pieces->push_back(std::move(p));
    return Status::ok();
  }

  if (op == "Concat" || op == "Split") {
    const bool concat = op == "Concat";
    const Shape& whole = concat ? out[0] : x;
    int64_t axis = n.attrs.get_int("axis", 0);
    if (axis < 0 || axis >= static_cast<int64_t>(whole.size())) return bad("axis out of range");
    const std::vector<int64_t> ws = shape_strides(whole);
    const size_t parts = concat ? in.size() : out.size();
    int64_t at = 0;
    for (size_t k = 0; k < parts; ++k) {
      const Shape& part = concat ? in[k] : out[k];
      KILN_TRY(check_rank(n, part, whole.size(), concat ? "an input" : "an output"));
      for (size_t d = 0; d < whole.size(); ++d)
        if (static_cast<int64_t>(d) != axis && part[d] != whole[d]) return bad("parts differ off the axis");
      CopyPiece p = dense_piece(part, elem_size);
      p.input = concat ? static_cast<int>(k) : 0;
      p.output = concat ? 0 : static_cast<int>(k);
      (concat ? p.out_strides : p.in_strides) = ws;
      (concat ? p.out_offset : p.in_offset) = at * ws[axis];
      at += part[axis];
      pieces->push_back(std::move(p));
    }
    if (at != whole[axis]) return bad("parts do not add up to the whole along the axis");
    return Status::ok();
  }

  if (op == "Slice") {
    const std::vector<int64_t> starts = n.attrs.get_ints("starts"), steps = n.attrs.get_ints("steps");
    if (starts.size() != rank || steps.size() != rank) return bad("starts/steps do not match the rank");
    KILN_TRY(check_rank(n, out[0], rank, "output"));
    CopyPiece p = dense_piece(out[0], elem_size);
    for (size_t i = 0; i < rank; ++i) {
      if (out[0][i] == 0) continue;
      const int64_t last = starts[i] + (out[0][i] - 1) * steps[i];
      if (starts[i] < 0 || starts[i] >= x[i] || last < 0 || last >= x[i]) return bad("slice outside the input");
      p.in_strides[i] = xs[i] * steps[i];
      p.in_offset += starts[i] * xs[i];
    }
    pieces->push_back(std::move(p));
    return Status::ok();
  }

  if (op == "Expand") {
    const Shape& y = out[0];
    if (y.size() < rank) return bad("output rank below input rank");
    for (size_t i = 0; i < rank; ++i)
      if (x[i] != 1 && x[i] != y[y.size() - rank + i]) return bad("input does not broadcast to the output");
    CopyPiece p = dense_piece(y, elem_size);
    p.in_strides = broadcast_strides(x, y);
    pieces->push_back(std::move(p));
    return Status::ok();
  }

  if (op == "Tile") {
    // out[r_i * d_i] viewed as [r_0, d_0, r_1, d_1, ...]: the input broadcast along each r_i.
    const Shape& y = out[0];
    KILN_TRY(check_rank(n, y, rank, "output"));
    CopyPiece p;
    p.elem_size = elem_size;
    std::vector<int64_t> ys = shape_strides(y);
    for (size_t i = 0; i < rank; ++i) {
      if (x[i] == 0 ? y[i] != 0 : y[i] % x[i] != 0) return bad("output is not a multiple of the input");
      const int64_t r = x[i] ? y[i] / x[i] : 0;
      p.dims.push_back(r);
      p.in_strides.push_back(0);
      p.out_strides.push_back(ys[i] * x[i]);
      p.dims.push_back(x[i]);
      p.in_strides.push_back(xs[i]);
      p.out_strides.push_back(ys[i]);
    }
    pieces->push_back(std::move(p));
    return Status::ok();
  }

  if (op == "Pad") {
    // The interior (input minus cropped borders) lands at the begin pads; the constant border
    // is filled separately.
    const std::vector<int64_t> pads = n.attrs.get_ints("pads");
    if (pads.size() != 2 * rank) return bad("pads do not match the rank");
    KILN_TRY(check_rank(n, out[0], rank, "output"));
    const std::vector<int64_t> ys = shape_strides(out[0]);
    for (size_t i = 0; i < rank; ++i)
      if (out[0][i] != x[i] + pads[i] + pads[rank + i]) return bad("pads do not match the shapes");
    CopyPiece p;
    p.elem_size = elem_size;
    for (size_t i = 0; i < rank; ++i) {
      const int64_t b = pads[i], e = pads[rank + i];
      const int64_t d = x[i] + std::min<int64_t>(b, 0) + std::min<int64_t>(e, 0);
      if (d <= 0) return Status::ok();  // nothing of the input survives: all border
      p.dims.push_back(d);
      p.in_strides.push_back(xs[i]);
      p.out_strides.push_back(ys[i]);
      p.in_offset += std::max<int64_t>(-b, 0) * xs[i];
      p.out_offset += std::max<int64_t>(b, 0) * ys[i];
    }
    pieces->push_back(std::move(p));
    return Status::ok();
  }
  return bad("not a piecewise movement op");
}

}  // namespace kiln
