#include "runtime/core/shape.h"

namespace kiln {

std::string shape_str(const Shape& s) {
  if (s.empty()) return "scalar";
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += "x";
    r += std::to_string(s[i]);
  }
  return r;
}

Status broadcast_shapes(const Shape& a, const Shape& b, Shape* out) {
  size_t rank = std::max(a.size(), b.size());
  Shape r(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da == db || db == 1) {
      r[i] = da;
    } else if (da == 1) {
      r[i] = db;
    } else {
      return invalid_argument("shapes " + shape_str(a) + " and " + shape_str(b) +
                              " cannot be broadcast together");
    }
  }
  *out = r;
  return Status::ok();
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> in_st = shape_strides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[off + i] = in[i] == 1 ? 0 : in_st[i];
  return st;
}

Status normalize_axis(int64_t axis, int64_t rank, int64_t* out) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    return invalid_argument("axis " + std::to_string(axis) + " is out of range for rank " +
                            std::to_string(rank));
  *out = a;
  return Status::ok();
}

Status parse_dims(const std::string& text, Shape* out) {
  out->clear();
  if (text.empty() || text == "scalar") return Status::ok();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of("x,", pos);
    if (end == std::string::npos) end = text.size();
    const std::string d = text.substr(pos, end - pos);
    if (d.empty() || d.size() > 12 || d.find_first_not_of("0123456789") != std::string::npos)
      return invalid_argument("bad dims '" + text + "': expected numbers separated by 'x', e.g. 1x3x224x224");
    out->push_back(std::stoll(d));
    pos = end + 1;
  }
  return Status::ok();
}

}  // namespace kiln
