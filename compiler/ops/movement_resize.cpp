// Resize (opsets 10..19) and Upsample (its predecessor): computes the output shape and, once per model, the per-axis tap
// tables the runtime interpolates with (runtime/backends/movement_resize.h). Every mode's
// coordinate mapping and coefficients follow the ONNX reference (onnx/reference/ops/
// op_resize.py) in double precision: nearest (4 rounding modes), linear and cubic (N-d,
// separable), antialias, exclude_outside, tf_crop_and_resize with extrapolation_value.
#include <algorithm>
#include <cmath>

#include "compiler/ops/movement_common.h"

namespace kiln {
namespace {

struct AxisParams {
  int64_t in = 0, out = 0;
  double scale = 1;
  double roi_start = 0, roi_end = 1;
};

struct ResizeOptions {
  std::string mode;        // nearest, linear, cubic
  std::string coord;       // coordinate_transformation_mode
  std::string nearest;     // nearest_mode; "simple" for opset 10
  double cubic_a = -0.75;
  bool exclude_outside = false;
  bool antialias = false;
};

// x_original for output coordinate x; false when outside the crop box (tf_crop_and_resize).
bool original_coordinate(const ResizeOptions& o, const AxisParams& p, int64_t x, double* x_ori) {
  const double in = static_cast<double>(p.in), out_w = p.scale * in, xs = static_cast<double>(x);
  if (o.coord == "align_corners") {
    *x_ori = out_w == 1 ? 0.0 : xs * (in - 1) / (out_w - 1);
  } else if (o.coord == "asymmetric") {
    *x_ori = xs / p.scale;
  } else if (o.coord == "tf_crop_and_resize") {
    const double r = p.roi_end - p.roi_start;
    *x_ori = (out_w == 1 ? r * (in - 1) / 2 : xs * r * (in - 1) / (out_w - 1)) + p.roi_start * (in - 1);
    if (*x_ori < 0 || *x_ori > in - 1) return false;
  } else if (o.coord == "pytorch_half_pixel") {
    *x_ori = out_w == 1 ? -0.5 : (xs + 0.5) / p.scale - 0.5;
  } else if (o.coord == "half_pixel_symmetric") {
    const double adjustment = static_cast<double>(p.out) / out_w;
    const double offset = in / 2 * (1 - adjustment);
    *x_ori = offset + (xs + 0.5) / p.scale - 0.5;
  } else if (o.coord == "tf_half_pixel_for_nn") {
    *x_ori = (xs + 0.5) / p.scale;
  } else {  // half_pixel
    *x_ori = (xs + 0.5) / p.scale - 0.5;
  }
  return true;
}

double cubic_kernel(double x, double a) {
  x = std::fabs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// Coefficients for taps base-n/2+1 .. base+n/2, where ratio = x_original - base is in (0, 1].
std::vector<double> coefficients(const ResizeOptions& o, double ratio, double scale) {
  if (o.mode == "nearest") {
    if (ratio == 1) return {0, 1};
    const std::string& m = o.nearest;
    bool take_upper;
    if (m == "round_prefer_ceil") take_upper = ratio >= 0.5;
    else if (m == "floor") take_upper = false;
    else if (m == "ceil") take_upper = true;
    else if (m == "simple") take_upper = scale < 1;  // opset 10: truncate upsampling, ceil downsampling
    else take_upper = ratio > 0.5;  // round_prefer_floor
    return {take_upper ? 0.0 : 1.0, take_upper ? 1.0 : 0.0};
  }
  if (!o.antialias || scale >= 1) {
    if (o.mode == "linear") return {1 - ratio, ratio};
    std::vector<double> c(4);
    for (int i = 0; i < 4; ++i) c[i] = cubic_kernel(static_cast<double>(i - 1) - ratio, o.cubic_a);
    return c;
  }
  // Antialiased downsampling widens the filter by 1/scale (normalized to sum 1).
  const bool linear = o.mode == "linear";
  const int64_t start = static_cast<int64_t>(std::floor((linear ? -1.0 : -2.0) / scale)) + 1;
  const int64_t n = 2 - 2 * start;
  std::vector<double> c(static_cast<size_t>(n));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double arg = (static_cast<double>(start + i) - ratio) * scale;
    c[i] = linear ? std::clamp(1 - std::fabs(arg), 0.0, 1.0) : cubic_kernel(arg, o.cubic_a);
    sum += c[i];
  }
  for (double& v : c) v /= sum;
  return c;
}

struct AxisTable {
  int64_t taps = 1;
  std::vector<int32_t> idx;
  std::vector<float> w;
};

AxisTable axis_table(const ResizeOptions& o, const AxisParams& p) {
  if (p.in == 0) {  // only reachable when the output is empty too (checked by the caller)
    AxisTable t;
    t.idx.assign(static_cast<size_t>(p.out), 0);
    t.w.assign(static_cast<size_t>(p.out), 0.f);
    return t;
  }
  std::vector<std::vector<std::pair<int64_t, double>>> per(static_cast<size_t>(p.out));
  std::vector<bool> outside(static_cast<size_t>(p.out), false);
  for (int64_t x = 0; x < p.out; ++x) {
    double xo;
    if (!original_coordinate(o, p, x, &xo)) {
      outside[x] = true;
      continue;
    }
    // The reference prefers the pixel left of x_original, so an integral x_original counts
    // as ratio 1 from the pixel before it.
    double base = std::floor(xo), ratio = xo - base;
    if (ratio == 0) base -= 1, ratio = 1;
    std::vector<double> c = coefficients(o, ratio, p.scale);
    const int64_t n = static_cast<int64_t>(c.size());
    // Taps are the n nearest positions in the input padded by ceil(n/2) edge values.
    const int64_t pad = (n + 1) / 2;
    int64_t first = static_cast<int64_t>(base) - n / 2 + 1;
    first = std::max(first, -pad);
    first = std::min(first, p.in - 1 + pad - (n - 1));
    if (o.exclude_outside) {
      double sum = 0;
      for (int64_t t = 0; t < n; ++t) {
        const int64_t i = first + t;
        if (i < 0 || i >= p.in) c[t] = 0;
        sum += c[t];
      }
      if (sum != 0)
        for (double& v : c) v /= sum;
    }
    for (int64_t t = 0; t < n; ++t) {
      if (c[t] == 0) continue;
      const int64_t i = std::clamp<int64_t>(first + t, 0, p.in - 1);
      // Taps clamped onto the same edge pixel merge.
      auto it = std::find_if(per[x].begin(), per[x].end(), [i](const auto& e) { return e.first == i; });
      if (it != per[x].end()) it->second += c[t];
      else per[x].push_back({i, c[t]});
    }
    if (per[x].empty()) per[x].push_back({std::clamp<int64_t>(first + n - 1, 0, p.in - 1), 0.0});
  }
  AxisTable t;
  for (const auto& e : per) t.taps = std::max<int64_t>(t.taps, static_cast<int64_t>(e.size()));
  t.idx.assign(static_cast<size_t>(p.out * t.taps), 0);
  t.w.assign(t.idx.size(), 0.f);
  for (int64_t x = 0; x < p.out; ++x) {
    for (int64_t k = 0; k < t.taps; ++k) {
      const size_t at = static_cast<size_t>(x * t.taps + k);
      if (outside[x]) {
        t.idx[at] = -1;
      } else if (k < static_cast<int64_t>(per[x].size())) {
        t.idx[at] = static_cast<int32_t>(per[x][k].first);
        t.w[at] = static_cast<float>(per[x][k].second);
      } else {
        t.idx[at] = static_cast<int32_t>(per[x][0].first);  // unused tap: weight 0
      }
    }
  }
  return t;
}

Status read_string(const InferContext& c, const char* name, const std::string& def,
                   std::initializer_list<const char*> allowed, std::string* out) {
  *out = c.attrs().get_string(name, def);
  for (const char* a : allowed)
    if (*out == a) return Status::ok();
  return c.fail(std::string("attribute ") + name + " has unknown value '" + *out + "'");
}

// Resize as its version `v` defines it (Upsample borrows version 10's rules).
Status infer_resize_as(InferContext& c, int v);

}  // namespace

Status infer_resize(InferContext& c) { return infer_resize_as(c, c.version()); }

// Upsample (deprecated at opset 10) is Resize-10 with the scales as an attribute (version 7;
// version 1: height_scale and width_scale of a 4-D input, mode "bilinear" for linear) or an
// input (version 9): asymmetric coordinates, nearest or linear. It becomes a Resize node.
Status infer_upsample(InferContext& c) {
  const int v = c.version();
  if (v >= 10) return c.fail("Upsample is deprecated from opset 10 (Resize replaces it)");
  KILN_TRY(c.require_inputs(v >= 9 ? 2 : 1, v >= 9 ? 2 : 1));
  std::string mode = c.attrs().get_string("mode", "nearest");
  if (v < 7 && mode == "bilinear") mode = "linear";
  if (mode != "nearest" && mode != "linear") return c.fail("attribute mode has unknown value '" + mode + "'");
  if (v < 9) {
    std::vector<float> scales;
    if (v >= 7) {
      if (!c.attrs().has("scales")) return c.fail("attribute scales is required");
      scales = c.attrs().get_floats("scales");
    } else {
      if (c.input_shape(0).size() != 4) return c.fail("input must be 4-D (N x C x H x W), got " + shape_str(c.input_shape(0)));
      scales = {1.f, 1.f, c.attrs().get_float("height_scale", 0.f), c.attrs().get_float("width_scale", 0.f)};
    }
    if (scales.size() != c.input_shape(0).size())
      return c.fail("scales has " + std::to_string(scales.size()) + " entries for rank " + std::to_string(c.input_shape(0).size()));
    for (float s : scales)
      if (!(s >= 1.f)) return c.fail("scales must be >= 1, got " + std::to_string(s));
    auto t = std::make_shared<HostTensor>(DType::kFloat32, Shape{static_cast<int64_t>(scales.size())});
    std::copy(scales.begin(), scales.end(), t->as<float>());
    c.node().inputs.push_back(add_constant_value(c, "upsample_scales", t));
  }
  Attributes a;
  a.set("mode", mode);
  c.mutable_attrs() = a;
  c.set_runtime_op("Resize");
  return infer_resize_as(c, 10);
}

namespace {

Status infer_resize_as(InferContext& c, int v) {
  ResizeOptions o;
  KILN_TRY(read_string(c, "mode", "nearest", {"nearest", "linear", "cubic"}, &o.mode));
  if (v < 11) {
    KILN_TRY(c.require_inputs(2, 2));
    if (o.mode == "cubic") return c.fail("mode cubic needs opset 11");
    o.coord = "asymmetric";
    o.nearest = "simple";
  } else {
    KILN_TRY(c.require_inputs(1, 4));
    KILN_TRY(read_string(c, "coordinate_transformation_mode", "half_pixel",
                         {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                          "tf_half_pixel_for_nn", "tf_crop_and_resize"},
                         &o.coord));
    if (o.coord == "half_pixel_symmetric" && v < 19) return c.fail("half_pixel_symmetric needs opset 19");
    KILN_TRY(read_string(c, "nearest_mode", "round_prefer_floor", {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"},
                         &o.nearest));
    o.cubic_a = c.attrs().get_float("cubic_coeff_a", -0.75f);
    o.exclude_outside = c.attrs().get_int("exclude_outside", 0) != 0;
    o.antialias = v >= 18 && c.attrs().get_int("antialias", 0) != 0 && o.mode != "nearest";
  }
  // Interpolation is float32; nearest only picks elements, so it moves any dtype (as bytes).
  if (o.mode != "nearest") KILN_TRY(c.require_dtype(0, {DType::kFloat32}));
  const Shape& in = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(in.size());

  std::vector<int64_t> axes;
  if (v >= 18 && c.attrs().has("axes")) {
    for (int64_t a : c.attrs().get_ints("axes")) {
      if (a < -r || a >= r) return c.fail("axis " + std::to_string(a) + " is out of range for rank " + std::to_string(r));
      axes.push_back(a < 0 ? a + r : a);
    }
    for (size_t i = 0; i < axes.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (axes[i] == axes[j]) return c.fail("axes repeat " + std::to_string(axes[i]));
  } else {
    for (int64_t a = 0; a < r; ++a) axes.push_back(a);
  }
  const size_t na = axes.size();

  const size_t scales_at = v < 11 ? 1 : 2, sizes_at = 3;
  std::vector<double> scales;
  std::vector<int64_t> sizes;
  if (c.has_input(scales_at) && shape_numel(c.input_shape(scales_at)) > 0) KILN_TRY(const_doubles(c, scales_at, &scales));
  if (v >= 11 && c.has_input(sizes_at) && shape_numel(c.input_shape(sizes_at)) > 0) KILN_TRY(c.const_ints(sizes_at, &sizes));
  if (scales.empty() == sizes.empty()) return c.fail("exactly one of scales and sizes must be given");
  if (!scales.empty() && scales.size() != na)
    return c.fail("scales has " + std::to_string(scales.size()) + " entries for " + std::to_string(na) + " axes");
  if (!sizes.empty() && sizes.size() != na)
    return c.fail("sizes has " + std::to_string(sizes.size()) + " entries for " + std::to_string(na) + " axes");

  std::vector<AxisParams> p(static_cast<size_t>(r));
  for (int64_t d = 0; d < r; ++d) p[d].in = p[d].out = in[d];
  if (!scales.empty()) {
    for (size_t i = 0; i < na; ++i) {
      if (!(scales[i] > 0)) return c.fail("scales must be positive");
      AxisParams& a = p[axes[i]];
      a.scale = scales[i];
      a.out = static_cast<int64_t>(std::floor(scales[i] * static_cast<double>(a.in)));
    }
  } else {
    const std::string policy = v >= 18 ? c.attrs().get_string("keep_aspect_ratio_policy", "stretch") : "stretch";
    if (policy != "stretch" && policy != "not_larger" && policy != "not_smaller")
      return c.fail("unknown keep_aspect_ratio_policy '" + policy + "'");
    for (size_t i = 0; i < na; ++i) {
      if (sizes[i] < 0) return c.fail("sizes must be non-negative");
      if (in[axes[i]] == 0) return c.fail("cannot resize an empty axis");
    }
    if (policy == "stretch") {
      for (size_t i = 0; i < na; ++i) {
        AxisParams& a = p[axes[i]];
        a.out = sizes[i];
        a.scale = static_cast<double>(sizes[i]) / static_cast<double>(a.in);
      }
    } else {
      double s = policy == "not_larger" ? 1e300 : 0;
      for (size_t i = 0; i < na; ++i) {
        const double si = static_cast<double>(sizes[i]) / static_cast<double>(in[axes[i]]);
        s = policy == "not_larger" ? std::min(s, si) : std::max(s, si);
      }
      for (size_t i = 0; i < na; ++i) {
        AxisParams& a = p[axes[i]];
        a.scale = s;
        a.out = static_cast<int64_t>(s * static_cast<double>(a.in) + 0.5);
      }
    }
  }
  if (o.coord == "tf_crop_and_resize") {
    std::vector<double> roi;
    if (c.has_input(1) && shape_numel(c.input_shape(1)) > 0) KILN_TRY(const_doubles(c, 1, &roi));
    if (roi.size() == 2 * na) {
      for (size_t i = 0; i < na; ++i) p[axes[i]].roi_start = roi[i], p[axes[i]].roi_end = roi[na + i];
    } else if (roi.size() == 2 * static_cast<size_t>(r)) {
      for (int64_t d = 0; d < r; ++d) p[d].roi_start = roi[d], p[d].roi_end = roi[r + d];
    } else {
      return c.fail("tf_crop_and_resize needs roi with 2 entries per axis, got " + std::to_string(roi.size()));
    }
  }

  Shape out(static_cast<size_t>(r));
  for (int64_t d = 0; d < r; ++d) out[d] = p[d].out;
  c.set_output(0, c.input_dtype(0), out);
  if (shape_numel(out) > 0 && shape_numel(in) == 0) return c.fail("cannot resize an empty tensor to a non-empty one");

  std::vector<int64_t> taps(static_cast<size_t>(r));
  std::vector<int32_t> idx;
  std::vector<float> w;
  bool identity = out == in;
  // Nearest by whole factors (an FPN's x2 upsample): every output element copies input o / k.
  // That form needs no tables, so no constant whose size follows the shapes (dynamic plans).
  bool repeat = true;
  std::vector<int64_t> reps(static_cast<size_t>(r), 1);
  for (int64_t d = 0; d < r; ++d) {
    AxisTable t = axis_table(o, p[d]);
    taps[d] = t.taps;
    for (int64_t x = 0; identity && x < p[d].out; ++x) identity = t.taps == 1 && t.idx[x] == x && t.w[x] == 1.f;
    repeat = repeat && t.taps == 1 && in[d] > 0 && p[d].out % in[d] == 0;
    if (repeat) reps[d] = p[d].out / in[d];
    for (int64_t x = 0; repeat && x < p[d].out; ++x) repeat = t.idx[x] == x / reps[d] && t.w[x] == 1.f;
    idx.insert(idx.end(), t.idx.begin(), t.idx.end());
    w.insert(w.end(), t.w.begin(), t.w.end());
  }
  if (identity) {
    c.set_runtime_op("Reshape");
    std::vector<ir::Value*>& inputs = c.node().inputs;
    inputs.erase(inputs.begin() + 1, inputs.end());  // keep_inputs(1) trips a GCC 12 -Warray-bounds false positive here
    c.mutable_attrs() = Attributes();
    return Status::ok();
  }
  if (repeat) {
    std::vector<ir::Value*>& inputs = c.node().inputs;
    inputs.erase(inputs.begin() + 1, inputs.end());
    Attributes a;
    a.set("repeats", reps);
    c.mutable_attrs() = a;
    return Status::ok();
  }
  auto ti = std::make_shared<HostTensor>(DType::kInt32, Shape{static_cast<int64_t>(idx.size())});
  auto tw = std::make_shared<HostTensor>(DType::kFloat32, Shape{static_cast<int64_t>(w.size())});
  std::copy(idx.begin(), idx.end(), ti->as<int32_t>());
  std::copy(w.begin(), w.end(), tw->as<float>());
  std::vector<ir::Value*> inputs;
  inputs.reserve(3);
  inputs.push_back(c.input(0));
  inputs.push_back(add_constant_value(c, "resize_index", ti));
  inputs.push_back(add_constant_value(c, "resize_weight", tw));
  c.node().inputs.swap(inputs);
  Attributes a;
  a.set("taps", taps);
  a.set("extrapolation_value", c.attrs().get_float("extrapolation_value", 0.f));
  c.mutable_attrs() = a;
  return Status::ok();
}

}  // namespace

}  // namespace kiln
