// Ops whose outputs are build-time constants: Constant, ConstantOfShape, Shape, Size, Range.
// Their shape rules compute the contents directly (plans are statically shaped, so Shape and
// Size always fold), leaving no runtime node behind.
#include <cmath>
#include <cstring>

#include "compiler/ops/movement_common.h"

namespace kiln {

Status infer_constant(InferContext& c) {
  KILN_TRY(c.require_inputs(0, 0));
  const Attributes& a = c.attrs();
  for (const char* s : {"sparse_value", "value_string", "value_strings"})
    if (a.has(s)) return c.fail_unsupported(std::string("attribute ") + s + " is not supported (kiln has no sparse or string tensors)");
  std::shared_ptr<HostTensor> t;
  int given = 0;
  if (a.has("value")) {
    ++given;
    auto v = a.get_tensor("value");
    if (!v) return c.fail("attribute value is not a tensor");
    if (!dtype_is_storable(v->dtype()))
      return c.fail_unsupported("value has dtype " + dtype_name(v->dtype()) + ", which kiln does not support");
    t = std::make_shared<HostTensor>(*v);
  }
  if (a.has("value_float")) {
    ++given;
    t = std::make_shared<HostTensor>(DType::kFloat32, Shape{});
    t->as<float>()[0] = a.get_float("value_float", 0.f);
  }
  if (a.has("value_floats")) {
    ++given;
    const std::vector<float> v = a.get_floats("value_floats");
    t = std::make_shared<HostTensor>(DType::kFloat32, Shape{static_cast<int64_t>(v.size())});
    if (!v.empty()) std::memcpy(t->data(), v.data(), v.size() * sizeof(float));
  }
  if (a.has("value_int")) {
    ++given;
    t = std::make_shared<HostTensor>(DType::kInt64, Shape{});
    t->as<int64_t>()[0] = a.get_int("value_int", 0);
  }
  if (a.has("value_ints")) {
    ++given;
    const std::vector<int64_t> v = a.get_ints("value_ints");
    t = std::make_shared<HostTensor>(DType::kInt64, Shape{static_cast<int64_t>(v.size())});
    if (!v.empty()) std::memcpy(t->data(), v.data(), v.size() * sizeof(int64_t));
  }
  if (given != 1) return c.fail("exactly one value attribute is required, got " + std::to_string(given));
  set_constant_output(c, 0, t);
  return Status::ok();
}

Status infer_constant_of_shape(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  std::vector<int64_t> shape;
  KILN_TRY(c.const_ints(0, &shape));
  for (int64_t d : shape)
    if (d < 0) return c.fail("shape has negative dim " + std::to_string(d));
  DType dt = DType::kFloat32;
  std::vector<uint8_t> value(sizeof(float), 0);
  if (c.attrs().has("value")) {
    auto v = c.attrs().get_tensor("value");
    if (!v || v->numel() != 1) return c.fail("attribute value must be a one-element tensor");
    if (!dtype_is_storable(v->dtype()))
      return c.fail_unsupported("value has dtype " + dtype_name(v->dtype()) + ", which kiln does not support");
    dt = v->dtype();
    value.assign(v->data(), v->data() + v->size_bytes());
  }
  if (!computed_constant_fits(dt, shape))
    return c.fail_unsupported("the constant of shape " + shape_str(shape) + " would take more than 1 GiB");
  auto t = std::make_shared<HostTensor>(dt, shape);
  const size_t es = value.size();
  bool zero = true;
  for (uint8_t b : value) zero &= b == 0;
  if (!zero)
    for (int64_t i = 0; i < t->numel(); ++i) std::memcpy(t->data() + i * es, value.data(), es);
  set_constant_output(c, 0, t);
  return Status::ok();
}

Status infer_shape(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  const Shape& in = c.input_shape(0);
  const int64_t r = static_cast<int64_t>(in.size());
  // start/end (opset 15) clamp into [0, rank] after counting negatives from the end.
  auto clampi = [r](int64_t v) {
    if (v < 0) v += r;
    return v < 0 ? 0 : v > r ? r : v;
  };
  const int64_t start = clampi(c.attrs().get_int("start", 0));
  const int64_t end = clampi(c.attrs().get_int("end", r));
  const int64_t n = end > start ? end - start : 0;
  auto t = std::make_shared<HostTensor>(DType::kInt64, Shape{n});
  for (int64_t i = 0; i < n; ++i) t->as<int64_t>()[i] = in[start + i];
  set_constant_output(c, 0, t);
  return Status::ok();
}

Status infer_size(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  auto t = std::make_shared<HostTensor>(DType::kInt64, Shape{});
  t->as<int64_t>()[0] = shape_numel(c.input_shape(0));
  set_constant_output(c, 0, t);
  return Status::ok();
}

Status infer_range(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  const DType dt = c.input_dtype(0);
  KILN_TRY(c.require_dtype(0, {DType::kFloat32, DType::kFloat64, DType::kInt16, DType::kInt32, DType::kInt64}));
  for (size_t i = 1; i < 3; ++i) {
    if (c.input_dtype(i) != dt)
      return c.fail("input " + std::to_string(i) + " has dtype " + dtype_name(c.input_dtype(i)) + ", start " + dtype_name(dt));
  }
  for (size_t i = 0; i < 3; ++i)
    if (shape_numel(c.input_shape(i)) != 1) return c.fail("start, limit and delta must be scalars");
  // The output length depends on the values: they must be known at build time.
  std::vector<double> v[3];
  for (size_t i = 0; i < 3; ++i) KILN_TRY(const_doubles(c, i, &v[i]));
  const double start = v[0][0], limit = v[1][0], delta = v[2][0];
  if (delta == 0) return c.fail("delta must not be 0");
  const double count = std::ceil((limit - start) / delta);
  if (!(count < 1e9)) return c.fail("output would have " + std::to_string(count) + " elements");
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  if (!computed_constant_fits(dt, Shape{n})) return c.fail_unsupported("a Range of " + std::to_string(n) + " elements would take more than 1 GiB");
  auto t = std::make_shared<HostTensor>(dt, Shape{n});
  if (dt == DType::kInt64) {
    // Integers exactly, without a round trip through double.
    const int64_t s = tensor_int_at(c.const_input(0)->view(), 0), d = tensor_int_at(c.const_input(2)->view(), 0);
    for (int64_t i = 0; i < n; ++i) t->as<int64_t>()[i] = s + i * d;
  } else if (dt == DType::kFloat32) {
    // As the reference does: accumulate in the input type.
    const float s = static_cast<float>(start), d = static_cast<float>(delta);
    for (int64_t i = 0; i < n; ++i) t->as<float>()[i] = s + static_cast<float>(i) * d;
  } else {
    for (int64_t i = 0; i < n; ++i) tensor_store_double(*t, i, start + static_cast<double>(i) * delta);
  }
  set_constant_output(c, 0, t);
  return Status::ok();
}

}  // namespace kiln
