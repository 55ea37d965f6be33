// Data movement and shape ops: Transpose, Concat, Split, Slice, Gather, Expand, Tile, Pad
// (here), Resize (movement_resize.cpp), Constant, ConstantOfShape, Shape, Size, Range
// (movement_constants.cpp). The shape rules canonicalize every opset's form into the runtime
// forms listed in runtime/backends/cpu/movement.cpp; shape-carrying inputs become attributes.
#include <algorithm>
#include <limits>
#include <numeric>

#include "compiler/ops/movement_common.h"

namespace kiln {

Status require_const_input(const InferContext& c, size_t i, const HostTensor** out) {
  *out = c.const_input(i);
  if (*out) return Status::ok();
  ir::Value* v = c.input(i);
  return c.fail_unsupported("input " + std::to_string(i) + (v ? " ('" + v->name + "')" : "") +
                            " must be known at build time (a constant or computable from shapes); "
                            "kiln plans have static shapes");
}

Status const_doubles(const InferContext& c, size_t i, std::vector<double>* out) {
  const HostTensor* t;
  KILN_TRY(require_const_input(c, i, &t));
  out->resize(static_cast<size_t>(t->numel()));
  for (int64_t k = 0; k < t->numel(); ++k) (*out)[k] = tensor_double_at(t->view(), k);
  return Status::ok();
}

void set_constant_output(InferContext& c, size_t i, std::shared_ptr<HostTensor> t) {
  c.set_output(i, t->dtype(), t->shape());
  if (i < c.num_outputs() && c.node().outputs[i]) c.node().outputs[i]->constant = std::move(t);
}

ir::Value* add_constant_value(InferContext& c, const std::string& hint, std::shared_ptr<HostTensor> t) {
  ir::Value* v = c.graph().add_unique_value(c.node().name + "_" + hint);
  v->dtype = t->dtype();
  v->shape = t->shape();
  v->has_shape = true;
  v->constant = std::move(t);
  return v;
}

namespace {

int64_t rank_of(const InferContext& c, size_t i) { return static_cast<int64_t>(c.input_shape(i).size()); }

Status norm_axis(const InferContext& c, int64_t axis, int64_t rank, int64_t* out) {
  if (axis < -rank || axis >= rank)
    return c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  *out = axis < 0 ? axis + rank : axis;
  return Status::ok();
}

Status infer_transpose(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  const Shape& in = c.input_shape(0);
  const int64_t r = rank_of(c, 0);
  std::vector<int64_t> perm = c.attrs().get_ints("perm");
  if (!c.attrs().has("perm")) {
    perm.resize(r);
    for (int64_t i = 0; i < r; ++i) perm[i] = r - 1 - i;
  }
  if (static_cast<int64_t>(perm.size()) != r)
    return c.fail("perm has " + std::to_string(perm.size()) + " entries for an input of rank " + std::to_string(r));
  std::vector<bool> seen(r, false);
  Shape out(r);
  bool identity = true;
  for (int64_t i = 0; i < r; ++i) {
    if (perm[i] < 0 || perm[i] >= r || seen[perm[i]]) return c.fail("perm is not a permutation of 0.." + std::to_string(r - 1));
    seen[perm[i]] = true;
    out[i] = in[perm[i]];
    identity &= perm[i] == i;
  }
  c.set_output(0, c.input_dtype(0), out);
  if (identity) return c.lower_to_copy();
  Attributes a;
  a.set("perm", perm);
  c.mutable_attrs() = a;
  return Status::ok();
}

Status infer_concat(InferContext& c) {
  if (c.num_inputs() < 1) return c.fail("needs at least one input");
  for (size_t i = 0; i < c.num_inputs(); ++i)
    if (!c.has_input(i)) return c.fail("input " + std::to_string(i) + " is missing");
  if (c.version() >= 4 && !c.attrs().has("axis")) return c.fail("attribute axis is required");
  const int64_t r = rank_of(c, 0);
  if (r == 0) return c.fail("cannot concatenate scalars");
  int64_t axis = c.attrs().get_int("axis", 1);
  if (axis < 0 && c.version() < 11) return c.fail("negative axis needs opset 11");
  KILN_TRY(norm_axis(c, axis, r, &axis));
  Shape out = c.input_shape(0);
  out[axis] = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const Shape& s = c.input_shape(i);
    if (c.input_dtype(i) != c.input_dtype(0))
      return c.fail("input " + std::to_string(i) + " has dtype " + dtype_name(c.input_dtype(i)) + ", input 0 " +
                    dtype_name(c.input_dtype(0)));
    bool ok = static_cast<int64_t>(s.size()) == r;
    for (int64_t d = 0; ok && d < r; ++d) ok = d == axis || s[d] == out[d];
    if (!ok)
      return c.fail("input " + std::to_string(i) + " has shape " + shape_str(s) + ", incompatible with " +
                    shape_str(c.input_shape(0)) + " along axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  c.set_output(0, c.input_dtype(0), out);
  if (c.num_inputs() == 1) return c.lower_to_copy();
  Attributes a;
  a.set("axis", axis);
  c.mutable_attrs() = a;
  return Status::ok();
}

Status infer_split(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 2));
  const Shape& in = c.input_shape(0);
  int64_t axis;
  KILN_TRY(norm_axis(c, c.attrs().get_int("axis", 0), rank_of(c, 0), &axis));
  const int64_t n = static_cast<int64_t>(c.num_outputs()), dim = in[axis];
  if (n < 1) return c.fail("needs at least one output");
  std::vector<int64_t> split;
  bool given = false;
  if (c.has_input(1) && (c.version() < 2 || c.version() >= 13)) {
    KILN_TRY(c.const_ints(1, &split));
    given = true;
  } else if (c.version() < 13 && c.attrs().has("split")) {
    split = c.attrs().get_ints("split");
    given = true;
  }
  if (given) {
    if (static_cast<int64_t>(split.size()) != n)
      return c.fail("split has " + std::to_string(split.size()) + " entries for " + std::to_string(n) + " outputs");
    int64_t sum = 0;
    for (int64_t s : split) {
      if (s < 0) return c.fail("split sizes must be non-negative");
      sum += s;
    }
    if (sum != dim)
      return c.fail("split sizes add up to " + std::to_string(sum) + ", but axis " + std::to_string(axis) +
                    " has " + std::to_string(dim));
  } else if (c.version() >= 18) {
    if (!c.attrs().has("num_outputs")) return c.fail("either the split input or num_outputs is required");
    if (c.attrs().get_int("num_outputs", 0) != n)
      return c.fail("num_outputs is " + std::to_string(c.attrs().get_int("num_outputs", 0)) + " but the node has " +
                    std::to_string(n) + " outputs");
    // Chunks of ceil(dim / n); the last one takes the remainder.
    const int64_t chunk = (dim + n - 1) / n;
    if (chunk * (n - 1) > dim)
      return c.fail("cannot split " + std::to_string(dim) + " elements into " + std::to_string(n) + " outputs");
    split.assign(n, chunk);
    split.back() = dim - chunk * (n - 1);
  } else {
    if (dim % n)
      return c.fail("axis of size " + std::to_string(dim) + " does not split equally into " + std::to_string(n) +
                    " outputs");
    split.assign(n, dim / n);
  }
  for (int64_t i = 0; i < n; ++i) {
    Shape s = in;
    s[axis] = split[i];
    c.set_output(i, c.input_dtype(0), s);
  }
  c.keep_inputs(1);
  if (n == 1) return c.lower_to_copy();
  Attributes a;
  a.set("axis", axis);
  a.set("split", split);
  c.mutable_attrs() = a;
  return Status::ok();
}

Status infer_slice(InferContext& c) {
  std::vector<int64_t> starts, ends, axes, steps;
  bool have_axes = false;
  if (c.version() < 10) {
    KILN_TRY(c.require_inputs(1, 1));
    if (!c.attrs().has("starts") || !c.attrs().has("ends")) return c.fail("attributes starts and ends are required");
    starts = c.attrs().get_ints("starts");
    ends = c.attrs().get_ints("ends");
    have_axes = c.attrs().has("axes");
    axes = c.attrs().get_ints("axes");
  } else {
    KILN_TRY(c.require_inputs(3, 5));
    KILN_TRY(c.const_ints(1, &starts));
    KILN_TRY(c.const_ints(2, &ends));
    if (c.has_input(3)) {
      KILN_TRY(c.const_ints(3, &axes));
      have_axes = true;
    }
    if (c.has_input(4)) KILN_TRY(c.const_ints(4, &steps));
  }
  const Shape& in = c.input_shape(0);
  const int64_t r = rank_of(c, 0);
  const size_t k = starts.size();
  if (ends.size() != k) return c.fail("starts and ends differ in length");
  if (!have_axes) {
    axes.resize(k);
    std::iota(axes.begin(), axes.end(), 0);
  }
  if (axes.size() != k) return c.fail("axes and starts differ in length");
  if (steps.empty()) steps.assign(k, 1);
  if (steps.size() != k) return c.fail("steps and starts differ in length");

  std::vector<int64_t> eff_start(r, 0), eff_step(r, 1);
  Shape out = in;
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < k; ++i) {
    int64_t a;
    KILN_TRY(norm_axis(c, axes[i], r, &a));
    if (seen[a]) return c.fail("axis " + std::to_string(axes[i]) + " is repeated");
    seen[a] = true;
    const int64_t dim = in[a], step = steps[i];
    if (step == 0) return c.fail("steps must not be 0");
    // Negative starts/ends count from the end; then clamp (ends of INT64_MAX/MIN mean "to the
    // end"), per the Slice spec: [0, dim] for positive steps, [-1, dim-1] for negative ones.
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s = s < -dim ? -1 : s + dim;
    if (e < 0) e = e < -dim ? -1 : e + dim;
    int64_t n;
    if (dim == 0) {
      n = 0;
    } else if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      // ceil((e - s) / step) without forming e - s + step (a step near INT64_MAX overflows).
      n = e > s ? (e - s - 1) / step + 1 : 0;
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      // -step overflows for INT64_MIN; any magnitude of at least dim takes one element.
      const int64_t mag = step == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -step;
      n = s > e ? (s - e - 1) / mag + 1 : 0;
    }
    out[a] = n;
    eff_start[a] = n ? s : 0;
    // A step is only walked between elements: with at most one it is 1, which keeps every
    // step within its axis (the runtime's rule refuses longer ones).
    eff_step[a] = n > 1 ? step : 1;
  }
  c.set_output(0, c.input_dtype(0), out);
  c.keep_inputs(1);
  if (out == in && std::all_of(eff_step.begin(), eff_step.end(), [](int64_t s) { return s == 1; }))
    return c.lower_to_copy();
  Attributes attrs;
  attrs.set("starts", eff_start);
  attrs.set("steps", eff_step);
  c.mutable_attrs() = attrs;
  return Status::ok();
}

Status infer_gather(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(1, {DType::kInt32, DType::kInt64}));
  const Shape& in = c.input_shape(0);
  const int64_t r = rank_of(c, 0);
  if (r == 0) return c.fail("data must have rank >= 1");
  int64_t axis;
  KILN_TRY(norm_axis(c, c.attrs().get_int("axis", 0), r, &axis));
  if (const HostTensor* ind = c.const_input(1)) {
    const int64_t n = in[axis];
    for (int64_t j = 0; j < ind->numel(); ++j) {
      const int64_t i = tensor_int_at(ind->view(), j);
      if (i < -n || i >= n)
        return c.fail("index " + std::to_string(i) + " is out of range for axis " + std::to_string(axis) +
                      " of size " + std::to_string(n));
    }
  }
  Shape out(in.begin(), in.begin() + axis);
  const Shape& is = c.input_shape(1);
  out.insert(out.end(), is.begin(), is.end());
  out.insert(out.end(), in.begin() + axis + 1, in.end());
  c.set_output(0, c.input_dtype(0), out);
  // Indices 0, 1, .., n - 1 in order over the whole axis (torch's advanced indexing exports
  // BERT's padding mask so: a Gather of the flattened mask at batch * seq + position) take
  // every element where it is: a copy.
  if (const HostTensor* ind = c.const_input(1); ind && ind->numel() == in[axis]) {
    bool in_order = true;
    for (int64_t j = 0; in_order && j < ind->numel(); ++j) in_order = tensor_int_at(ind->view(), j) == j;
    if (in_order) return c.lower_to_copy();
  }
  Attributes a;
  a.set("axis", axis);
  c.mutable_attrs() = a;
  return Status::ok();
}

Status infer_expand(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  std::vector<int64_t> shape;
  KILN_TRY(c.const_ints(1, &shape));
  for (int64_t d : shape)
    if (d < 0) return c.fail("shape has negative dim " + std::to_string(d));
  Shape out;
  KILN_TRY_CTX(broadcast_shapes(c.input_shape(0), shape, &out), c.node().describe());
  c.set_output(0, c.input_dtype(0), out);
  c.keep_inputs(1);
  if (out == c.input_shape(0)) return c.lower_to_copy();
  c.mutable_attrs() = Attributes();
  return Status::ok();
}

Status infer_tile(InferContext& c) {
  if (!c.has_input(0)) return c.fail("input 0 (the data) is missing");
  const Shape& in = c.input_shape(0);
  const int64_t r = rank_of(c, 0);
  std::vector<int64_t> reps;
  if (c.version() < 6) {
    // Tile-1: a scalar tile count along a scalar axis.
    KILN_TRY(c.require_inputs(3, 3));
    std::vector<int64_t> tiles, axis;
    KILN_TRY(c.const_ints(1, &tiles));
    KILN_TRY(c.const_ints(2, &axis));
    if (tiles.size() != 1 || axis.size() != 1) return c.fail("tiles and axis must be scalars");
    int64_t a;
    KILN_TRY(norm_axis(c, axis[0], r, &a));
    reps.assign(r, 1);
    reps[a] = tiles[0];
  } else {
    KILN_TRY(c.require_inputs(2, 2));
    KILN_TRY(c.const_ints(1, &reps));
  }
  if (static_cast<int64_t>(reps.size()) != r)
    return c.fail("repeats has " + std::to_string(reps.size()) + " entries for an input of rank " + std::to_string(r));
  Shape out = in;
  for (int64_t d = 0; d < r; ++d) {
    if (reps[d] < 0) return c.fail("repeats must be non-negative");
    if (__builtin_mul_overflow(out[d], reps[d], &out[d])) return c.fail("repeats " + std::to_string(reps[d]) + " overflow dim " + std::to_string(d));
  }
  c.set_output(0, c.input_dtype(0), out);
  c.keep_inputs(1);
  if (out == in) return c.lower_to_copy();
  c.mutable_attrs() = Attributes();
  return Status::ok();
}

Status infer_pad(InferContext& c) {
  if (!c.has_input(0)) return c.fail("input 0 (the data) is missing");
  const Shape& in = c.input_shape(0);
  const int64_t r = rank_of(c, 0);
  const DType dt = c.input_dtype(0);
  const std::string mode = c.attrs().get_string("mode", "constant");
  int mode_id;
  if (mode == "constant") mode_id = 0;
  else if (mode == "reflect") mode_id = 1;
  else if (mode == "edge") mode_id = 2;
  else if (mode == "wrap" && c.version() >= 19) mode_id = 3;
  else return c.fail("unknown mode '" + mode + "'");

  std::vector<int64_t> pads;
  ir::Value* value = nullptr;
  if (c.version() < 11) {
    KILN_TRY(c.require_inputs(1, 1));
    const char* name = c.version() < 2 ? "paddings" : "pads";
    if (!c.attrs().has(name)) return c.fail(std::string("attribute ") + name + " is required");
    pads = c.attrs().get_ints(name);
    const float v = c.attrs().get_float("value", 0.f);
    if (mode_id == 0 && v != 0.f) {
      auto t = std::make_shared<HostTensor>(dt, Shape{});
      tensor_store_double(*t, 0, v);
      value = add_constant_value(c, "pad_value", t);
    }
  } else {
    KILN_TRY(c.require_inputs(2, c.version() >= 18 ? 4 : 3));
    KILN_TRY(c.const_ints(1, &pads));
    if (c.has_input(2) && shape_numel(c.input_shape(2)) > 0) {
      if (c.input_dtype(2) != dt)
        return c.fail("constant_value has dtype " + dtype_name(c.input_dtype(2)) + ", data " + dtype_name(dt));
      if (shape_numel(c.input_shape(2)) != 1) return c.fail("constant_value must hold one element");
      // A runtime value is fine: the kernels read it from the tensor.
      if (mode_id == 0) value = c.input(2);
    }
    if (c.has_input(3)) {
      std::vector<int64_t> axes;
      KILN_TRY(c.const_ints(3, &axes));
      if (pads.size() != 2 * axes.size())
        return c.fail("pads has " + std::to_string(pads.size()) + " entries for " + std::to_string(axes.size()) + " axes");
      std::vector<int64_t> full(2 * r, 0);
      std::vector<bool> seen(r, false);
      for (size_t i = 0; i < axes.size(); ++i) {
        int64_t a;
        KILN_TRY(norm_axis(c, axes[i], r, &a));
        if (seen[a]) return c.fail("axis " + std::to_string(axes[i]) + " is repeated");
        seen[a] = true;
        full[a] = pads[i];
        full[r + a] = pads[axes.size() + i];
      }
      pads = full;
    }
  }
  if (static_cast<int64_t>(pads.size()) != 2 * r)
    return c.fail("pads has " + std::to_string(pads.size()) + " entries for an input of rank " + std::to_string(r));
  Shape out = in;
  bool nothing = true;
  for (int64_t d = 0; d < r; ++d) {
    if (__builtin_add_overflow(in[d], pads[d], &out[d]) || __builtin_add_overflow(out[d], pads[r + d], &out[d]))
      return c.fail("pads overflow axis " + std::to_string(d));
    nothing &= pads[d] == 0 && pads[r + d] == 0;
    if (out[d] < 0) return c.fail("pads remove more than axis " + std::to_string(d) + " holds");
    if (mode_id != 0 && in[d] == 0 && out[d] > 0)
      return c.fail("mode '" + mode + "' cannot pad axis " + std::to_string(d) + ", which is empty");
  }
  c.set_output(0, dt, out);
  if (nothing) return c.lower_to_copy();
  std::vector<ir::Value*> inputs;
  inputs.reserve(2);
  inputs.push_back(c.input(0));
  if (value) inputs.push_back(value);
  c.node().inputs.swap(inputs);
  Attributes a;
  a.set("pads", pads);
  a.set("mode_id", static_cast<int64_t>(mode_id));
  c.mutable_attrs() = a;
  return Status::ok();
}

}  // namespace

void register_movement_schemas(SchemaRegistry& r) {
  r.add({"Transpose", {1, 13, 21, 23, 24}, infer_transpose}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Concat", {1, 4, 11, 13}, infer_concat}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Split", {1, 2, 11, 13, 18}, infer_split}).fp16(Fp16::kMove);
  r.add({"Slice", {1, 10, 11, 13}, infer_slice}).fp16(Fp16::kMove).commutes_with_quantize();
  r.add({"Gather", {1, 11, 13}, infer_gather}).fp16(Fp16::kMove);
  r.add({"Expand", {8, 13}, infer_expand}).fp16(Fp16::kMove);
  r.add({"Tile", {1, 6, 13}, infer_tile}).fp16(Fp16::kMove);
  r.add({"Pad", {1, 2, 11, 13, 18, 19, 21, 23, 24}, infer_pad}).fp16(Fp16::kMove);
  r.add({"Resize", {10, 11, 13, 18, 19}, infer_resize}).fp16(Fp16::kCompute, 1);
  r.add({"Upsample", {1, 7, 9, 10}, infer_upsample}).fp16(Fp16::kCompute, 1);
  r.add({"Constant", {1, 9, 11, 12, 13, 19, 21, 23, 24}, infer_constant});
  r.add({"ConstantOfShape", {9, 20, 21, 23, 24}, infer_constant_of_shape});
  r.add({"Shape", {1, 13, 15, 19, 21, 23, 24}, infer_shape});
  r.add({"Size", {1, 13, 19, 21, 23, 24}, infer_size});
  r.add({"Range", {11}, infer_range});
}

}  // namespace kiln
