// Elementwise ONNX ops: arithmetic (and Mod), activations (and Gelu), comparisons, Where,
// Cast/CastLike, Not, Clip, Min/Max/Sum/Mean, and Floor/Ceil/Round/Sign/IsNaN/And/Or/Xor. Each lowers to the runtime op "Elementwise" holding a small program
// (runtime/ops/elementwise_program.h): the infer function validates the node, computes the
// broadcast output shape and writes the program into the node's attributes next to the ONNX
// ones (op_type and the ONNX attributes stay, so later passes can still match "Relu" etc.).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>

#include "compiler/ops/op_schema.h"
#include "runtime/ops/elementwise_program.h"

namespace kiln {
namespace {

using ew::Op;

const std::initializer_list<DType> kFloats = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kBFloat16};
const std::initializer_list<DType> kSigned = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kBFloat16,
                                              DType::kInt8,    DType::kInt16,   DType::kInt32,   DType::kInt64};
const std::initializer_list<DType> kNumeric = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kBFloat16,
                                               DType::kInt8,    DType::kInt16,   DType::kInt32,   DType::kInt64,
                                               DType::kUInt8,   DType::kUInt16,  DType::kUInt32,  DType::kUInt64};
const std::initializer_list<DType> kAll = {DType::kFloat32, DType::kFloat16, DType::kFloat64, DType::kBFloat16,
                                           DType::kInt8,    DType::kInt16,   DType::kInt32,   DType::kInt64,
                                           DType::kUInt8,   DType::kUInt16,  DType::kUInt32,  DType::kUInt64,
                                           DType::kBool};

// Drops left-out optional inputs (the program numbers only present ones).
void compact_inputs(InferContext& c) {
  std::vector<ir::Value*>& in = c.node().inputs;
  in.erase(std::remove(in.begin(), in.end(), nullptr), in.end());
}

Status broadcast_all(InferContext& c, Shape* out) {
  Shape s = c.input_shape(0);
  for (size_t i = 1; i < c.num_inputs(); ++i) {
    Shape r;
    if (!broadcast_shapes(s, c.input_shape(i), &r))
      return c.fail("input shapes " + [&] {
        std::string all;
        for (size_t k = 0; k < c.num_inputs(); ++k) all += (k ? ", " : "") + shape_str(c.input_shape(k));
        return all;
      }() + " cannot be broadcast together");
    s = r;
  }
  *out = s;
  return Status::ok();
}

Status require_same_dtype(InferContext& c) {
  for (size_t i = 1; i < c.num_inputs(); ++i)
    if (c.input_dtype(i) != c.input_dtype(0))
      return c.fail("input " + std::to_string(i) + " has dtype " + dtype_name(c.input_dtype(i)) + ", input 0 " +
                    dtype_name(c.input_dtype(0)) + " (they must match)");
  return Status::ok();
}

// Ops before opset 7 broadcast only when told to (broadcast=1), and then B to A, optionally
// aligned at `axis`. kiln accepts the cases numpy broadcasting reproduces.
Status check_legacy_broadcast(InferContext& c) {
  if (c.version() >= 7 || c.num_inputs() < 2) return Status::ok();
  const Shape& a = c.input_shape(0);
  const Shape& b = c.input_shape(1);
  if (c.attrs().get_int("broadcast", 0) == 0) {
    if (a != b) return c.fail("shapes " + shape_str(a) + " and " + shape_str(b) + " differ and broadcast=0");
    return Status::ok();
  }
  if (c.attrs().has("axis")) {
    int64_t axis = c.attrs().get_int("axis", 0);
    if (axis < 0) axis += static_cast<int64_t>(a.size());
    if (axis + static_cast<int64_t>(b.size()) != static_cast<int64_t>(a.size()))
      return c.fail_unsupported("legacy broadcast with axis=" + std::to_string(axis) +
                                " (B not aligned to A's trailing dims) is not supported");
  }
  return Status::ok();
}

Status finish(InferContext& c, const ew::Program& p, const Shape& out) {
  KILN_TRY_CTX(p.validate(), c.node().describe());
  p.to_attrs(&c.mutable_attrs());
  c.set_output(0, p.out_dtype(), out);
  c.set_runtime_op(ew::kRuntimeOp);
  return Status::ok();
}

ew::Program start(InferContext& c) {
  ew::Program p;
  for (size_t i = 0; i < c.num_inputs(); ++i) p.inputs.push_back(c.input_dtype(i));
  return p;
}

// ---- unary ----
template <Op kOp>
Status infer_unary_float(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, kFloats));
  ew::Program p = start(c);
  const auto& a = c.attrs();
  float p0 = 0, p1 = 0;
  switch (kOp) {
    case Op::LeakyRelu: p0 = a.get_float("alpha", 0.01f); break;
    case Op::Elu: p0 = a.get_float("alpha", 1.0f); break;
    case Op::Selu:
      p0 = a.get_float("alpha", 1.67326319217681884765625f);
      p1 = a.get_float("gamma", 1.05070102214813232421875f);
      break;
    case Op::HardSigmoid:
      p0 = a.get_float("alpha", 0.2f);
      p1 = a.get_float("beta", 0.5f);
      break;
    default: break;
  }
  p.emit(kOp, c.input_dtype(0), 0, -1, -1, p0, p1);
  return finish(c, p, c.input_shape(0));
}

template <Op kOp>
Status infer_unary_signed(InferContext& c) {  // Neg, Abs, Relu: floats and (newer opsets) integers
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, kOp == Op::Abs || kOp == Op::Sign ? kNumeric : kSigned));
  ew::Program p = start(c);
  p.emit(kOp, c.input_dtype(0), 0);
  return finish(c, p, c.input_shape(0));
}

Status infer_isnan(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, kFloats));
  ew::Program p = start(c);
  p.emit(Op::IsNaN, DType::kBool, 0);
  return finish(c, p, c.input_shape(0));
}

Status infer_not(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, {DType::kBool}));
  ew::Program p = start(c);
  p.emit(Op::Not, DType::kBool, 0);
  return finish(c, p, c.input_shape(0));
}

// ---- binary ----
template <Op kOp>
Status infer_arith(InferContext& c) {  // Add, Sub, Mul, Div
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, kNumeric));
  KILN_TRY(require_same_dtype(c));
  KILN_TRY(check_legacy_broadcast(c));
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  p.emit(kOp, c.input_dtype(0), 0, 1);
  return finish(c, p, out);
}

Status infer_pow(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, kNumeric));
  KILN_TRY(c.require_dtype(1, kNumeric));
  KILN_TRY(check_legacy_broadcast(c));
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  const DType t = c.input_dtype(0), t1 = c.input_dtype(1);
  if (t == t1) {
    p.emit(Op::Pow, t, 0, 1);
  } else if (dtype_is_float(t)) {  // float base: the exponent converts to the base's type
    p.emit(Op::Pow, t, 0, p.emit(Op::Cast, t, 1));
  } else {  // integer base: computed in double, as the reference does, then truncated
    const int x = p.emit(Op::Cast, DType::kFloat64, 0);
    const int y = p.emit(Op::Cast, DType::kFloat64, 1);
    p.emit(Op::Cast, t, p.emit(Op::Pow, DType::kFloat64, x, y));
  }
  return finish(c, p, out);
}

// Mod: fmod=0 (the default) is Python's % (the divisor's sign) and is defined on integers only;
// fmod=1 is C's fmod (the dividend's sign).
Status infer_mod(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, kNumeric));
  KILN_TRY(require_same_dtype(c));
  const int64_t fmod = c.attrs().get_int("fmod", 0);
  if (fmod != 0 && fmod != 1) return c.fail("fmod must be 0 or 1, got " + std::to_string(fmod));
  if (fmod == 0 && dtype_is_float(c.input_dtype(0)))
    return c.fail("fmod=0 is defined for integer inputs only; " + dtype_name(c.input_dtype(0)) +
                  " inputs need fmod=1");
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  p.emit(fmod ? Op::Fmod : Op::Mod, c.input_dtype(0), 0, 1);
  return finish(c, p, out);
}

Status infer_gelu(InferContext& c) {
  KILN_TRY(c.require_inputs(1, 1));
  KILN_TRY(c.require_dtype(0, kFloats));
  const std::string approx = c.attrs().get_string("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return c.fail("approximate must be \"none\" or \"tanh\", got \"" + approx + "\"");
  ew::Program p = start(c);
  p.emit(approx == "tanh" ? Op::GeluTanh : Op::Gelu, c.input_dtype(0), 0);
  return finish(c, p, c.input_shape(0));
}

Status infer_prelu(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, kSigned));
  KILN_TRY(require_same_dtype(c));
  const Shape& x = c.input_shape(0);
  Shape b;
  if (!broadcast_shapes(x, c.input_shape(1), &b) || b != x)
    return c.fail("slope of shape " + shape_str(c.input_shape(1)) + " does not broadcast to X of shape " +
                  shape_str(x) + " (unidirectional)");
  ew::Program p = start(c);
  p.emit(Op::PRelu, c.input_dtype(0), 0, 1);
  return finish(c, p, x);
}

template <Op kOp>
Status infer_compare(InferContext& c) {
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, kAll));
  KILN_TRY(require_same_dtype(c));
  KILN_TRY(check_legacy_broadcast(c));
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  p.emit(kOp, DType::kBool, 0, 1);
  return finish(c, p, out);
}

template <Op kOp>
Status infer_logical(InferContext& c) {  // And, Or, Xor
  KILN_TRY(c.require_inputs(2, 2));
  KILN_TRY(c.require_dtype(0, {DType::kBool}));
  KILN_TRY(require_same_dtype(c));
  KILN_TRY(check_legacy_broadcast(c));
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  p.emit(kOp, DType::kBool, 0, 1);
  return finish(c, p, out);
}

// ---- variadic: Sum, Mean, Min, Max ----
template <Op kOp, bool mean = false>
Status infer_variadic(InferContext& c) {
  compact_inputs(c);
  if (c.num_inputs() < 1) return c.fail("expected at least 1 input");
  KILN_TRY(c.require_dtype(0, kOp == Op::Add ? kFloats : kNumeric));
  KILN_TRY(require_same_dtype(c));
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  const DType t = c.input_dtype(0);
  int acc = 0;
  if (c.num_inputs() == 1) acc = p.emit(Op::Identity, t, 0);
  for (size_t i = 1; i < c.num_inputs(); ++i) acc = p.emit(kOp, t, acc, static_cast<int>(i));
  if (mean && c.num_inputs() > 1) p.emit(Op::DivConst, t, acc, -1, -1, static_cast<float>(c.num_inputs()));
  return finish(c, p, out);
}

Status infer_where(InferContext& c) {
  KILN_TRY(c.require_inputs(3, 3));
  KILN_TRY(c.require_dtype(0, {DType::kBool}));
  KILN_TRY(c.require_dtype(1, kAll));
  if (c.input_dtype(2) != c.input_dtype(1))
    return c.fail("X has dtype " + dtype_name(c.input_dtype(1)) + ", Y " + dtype_name(c.input_dtype(2)) +
                  " (they must match)");
  Shape out;
  KILN_TRY(broadcast_all(c, &out));
  ew::Program p = start(c);
  p.emit(Op::Where, c.input_dtype(1), 0, 1, 2);
  return finish(c, p, out);
}

// Clip: bounds are attributes before opset 11, optional inputs since. Scalar build-time
// bounds of float tensors become instruction parameters; others stay inputs (Max then Min).
bool float_scalar(const HostTensor* t, float* v) {
  if (!t || t->numel() != 1) return false;
  switch (t->dtype()) {
    case DType::kFloat32: *v = t->as<float>()[0]; return true;
    case DType::kFloat16: *v = ew::half_to_float(t->as<uint16_t>()[0]); return true;
    case DType::kBFloat16: *v = ew::bf16_to_float(t->as<uint16_t>()[0]); return true;
    default: return false;
  }
}

Status infer_clip(InferContext& c) {
  KILN_TRY(c.require_inputs(1, c.version() < 11 ? 1 : 3));
  const DType t = c.input_dtype(0);
  KILN_TRY(c.require_dtype(0, c.version() < 12 ? kFloats : kNumeric));
  const Shape out = c.input_shape(0);
  if (c.version() < 11) {
    ew::Program p = start(c);
    p.emit(Op::Clamp, t, 0, -1, -1, c.attrs().get_float("min", -FLT_MAX), c.attrs().get_float("max", FLT_MAX));
    return finish(c, p, out);
  }
  for (size_t i = 1; i < c.num_inputs(); ++i) {
    if (!c.has_input(i)) continue;
    if (c.input_dtype(i) != t)
      return c.fail("bound input " + std::to_string(i) + " has dtype " + dtype_name(c.input_dtype(i)) + ", input " +
                    dtype_name(t));
    if (shape_numel(c.input_shape(i)) != 1)
      return c.fail("bound input " + std::to_string(i) + " must be a scalar, got shape " + shape_str(c.input_shape(i)));
  }
  float lo = -INFINITY, hi = INFINITY;
  const bool const_lo = !c.has_input(1) || float_scalar(c.const_input(1), &lo);
  const bool const_hi = c.num_inputs() < 3 || !c.has_input(2) || float_scalar(c.const_input(2), &hi);
  if (const_lo && const_hi && dtype_is_float(t)) {
    // Canonical form for later passes (e.g. activation fusion into Conv): the bounds as the
    // Clip-6 attributes, as they are on older opsets.
    // (erase, not keep_inputs: GCC 12 reports a false -Warray-bounds on the inlined resize)
    c.node().inputs.erase(c.node().inputs.begin() + 1, c.node().inputs.end());
    c.mutable_attrs().set("min", lo);
    c.mutable_attrs().set("max", hi);
    ew::Program p = start(c);
    p.emit(Op::Clamp, t, 0, -1, -1, lo, hi);
    return finish(c, p, out);
  }
  const bool has_lo = c.has_input(1), has_hi = c.num_inputs() > 2 && c.has_input(2);
  compact_inputs(c);
  ew::Program p = start(c);
  int r = 0, next = 1;
  if (has_lo) r = p.emit(Op::Max, t, r, next++);
  if (has_hi) r = p.emit(Op::Min, t, r, next++);
  if (r == 0) p.emit(Op::Identity, t, 0);
  return finish(c, p, out);
}

Status cast_target(InferContext& c, DType* to) {
  if (c.version() < 6 && c.attrs().has("to")) {
    // Cast-1 names the type as a string ("FLOAT", "INT64", ...).
    static const std::map<std::string, DType> kNames = {
        {"FLOAT", DType::kFloat32}, {"FLOAT16", DType::kFloat16}, {"DOUBLE", DType::kFloat64},
        {"INT8", DType::kInt8},     {"INT16", DType::kInt16},     {"INT32", DType::kInt32},
        {"INT64", DType::kInt64},   {"UINT8", DType::kUInt8},     {"UINT16", DType::kUInt16},
        {"UINT32", DType::kUInt32}, {"UINT64", DType::kUInt64},   {"BOOL", DType::kBool},
        {"STRING", DType::kString}};
    const std::string s = c.attrs().get_string("to", "");
    auto it = kNames.find(s);
    if (it != kNames.end()) {
      *to = it->second;
      return Status::ok();
    }
  }
  if (!c.attrs().has("to")) return c.fail("attribute 'to' is required");
  *to = static_cast<DType>(c.attrs().get_int("to", 0));
  return Status::ok();
}

Status infer_cast(InferContext& c) {
  const bool like = c.node().op_type == "CastLike";
  KILN_TRY(c.require_inputs(like ? 2 : 1, like ? 2 : 1));
  DType to = DType::kUndefined;
  if (like) {
    to = c.input_dtype(1);  // only target_type's dtype matters
    c.keep_inputs(1);
  } else {
    KILN_TRY(cast_target(c, &to));
  }
  if (to == DType::kString) return c.fail_unsupported("Cast to string is not supported");
  if (!ew::dtype_supported(to))
    return c.fail_unsupported("Cast to " + dtype_name(to) + " is not supported");
  if (!ew::dtype_supported(c.input_dtype(0)))
    return c.fail_unsupported("Cast from " + dtype_name(c.input_dtype(0)) + " is not supported");
  ew::Program p = start(c);
  // kCastSaturateAttr: set by convert_fp16 on the Casts it inserts (not ONNX's `saturate`, which
  // concerns float8 targets only: a model's own Cast to float16 overflows to inf).
  const DType from = c.input_dtype(0);
  const bool saturate = c.attrs().get_int(kCastSaturateAttr, 0) != 0 && from != to &&
                        ew::saturation_bound(to) > 0.f && (from == DType::kFloat32 || from == DType::kFloat64);
  if (from == to && !saturate) {  // a Cast to the input's own type moves nothing
    c.set_output(0, to, c.input_shape(0));
    return c.lower_to_copy();
  }
  if (saturate)
    p.emit(Op::CastSat, to, 0, -1, -1, ew::saturation_bound(to));
  else
    p.emit(Op::Cast, to, 0);
  return finish(c, p, c.input_shape(0));
}

}  // namespace

// fp16(kReinfer): the float16 program computes the same float math rounded to half. Pow goes
// through float64, comparisons and Cast change meaning with the input's precision: they stay
// float32.
void register_elementwise_schemas(SchemaRegistry& r) {
  r.add({"Add", {1, 6, 7, 13, 14}, infer_arith<Op::Add>}).fp16(Fp16::kReinfer);
  r.add({"Sub", {1, 6, 7, 13, 14}, infer_arith<Op::Sub>}).fp16(Fp16::kReinfer);
  r.add({"Mul", {1, 6, 7, 13, 14}, infer_arith<Op::Mul>}).fp16(Fp16::kReinfer);
  r.add({"Div", {1, 6, 7, 13, 14}, infer_arith<Op::Div>}).fp16(Fp16::kReinfer);
  r.add({"Pow", {1, 7, 12, 13, 15}, infer_pow});
  r.add({"Mod", {10, 13}, infer_mod}).fp16(Fp16::kReinfer);
  r.add({"Gelu", {20}, infer_gelu}).fp16(Fp16::kReinfer);
  r.add({"Sqrt", {1, 6, 13}, infer_unary_float<Op::Sqrt>}).fp16(Fp16::kReinfer);
  r.add({"Exp", {1, 6, 13}, infer_unary_float<Op::Exp>}).fp16(Fp16::kReinfer);
  r.add({"Log", {1, 6, 13}, infer_unary_float<Op::Log>}).fp16(Fp16::kReinfer);
  r.add({"Neg", {1, 6, 13}, infer_unary_signed<Op::Neg>}).fp16(Fp16::kReinfer);
  r.add({"Abs", {1, 6, 13}, infer_unary_signed<Op::Abs>}).fp16(Fp16::kReinfer);
  r.add({"Reciprocal", {1, 6, 13}, infer_unary_float<Op::Reciprocal>}).fp16(Fp16::kReinfer);
  r.add({"Erf", {9, 13}, infer_unary_float<Op::Erf>}).fp16(Fp16::kReinfer);
  r.add({"Relu", {1, 6, 13, 14}, infer_unary_signed<Op::Relu>}).fp16(Fp16::kReinfer);
  r.add({"LeakyRelu", {1, 6, 16}, infer_unary_float<Op::LeakyRelu>}).fp16(Fp16::kReinfer);
  r.add({"PRelu", {1, 6, 7, 9, 16}, infer_prelu}).fp16(Fp16::kReinfer);
  r.add({"Elu", {1, 6, 22}, infer_unary_float<Op::Elu>}).fp16(Fp16::kReinfer);
  r.add({"Selu", {1, 6, 22}, infer_unary_float<Op::Selu>}).fp16(Fp16::kReinfer);
  r.add({"Sigmoid", {1, 6, 13}, infer_unary_float<Op::Sigmoid>}).fp16(Fp16::kReinfer);
  r.add({"HardSigmoid", {1, 6, 22}, infer_unary_float<Op::HardSigmoid>}).fp16(Fp16::kReinfer);
  r.add({"HardSwish", {14, 22}, infer_unary_float<Op::HardSwish>}).fp16(Fp16::kReinfer);
  r.add({"Tanh", {1, 6, 13}, infer_unary_float<Op::Tanh>}).fp16(Fp16::kReinfer);
  r.add({"Softplus", {1, 22}, infer_unary_float<Op::Softplus>}).fp16(Fp16::kReinfer);
  r.add({"Clip", {1, 6, 11, 12, 13}, infer_clip}).fp16(Fp16::kReinfer);
  r.add({"Min", {1, 6, 8, 12, 13}, infer_variadic<Op::Min>}).fp16(Fp16::kReinfer);
  r.add({"Max", {1, 6, 8, 12, 13}, infer_variadic<Op::Max>}).fp16(Fp16::kReinfer);
  r.add({"Sum", {1, 6, 8, 13}, infer_variadic<Op::Add>}).fp16(Fp16::kReinfer);
  r.add({"Where", {9, 16}, infer_where}).fp16(Fp16::kReinfer);
  r.add({"Equal", {1, 7, 11, 13, 19}, infer_compare<Op::Equal>});
  r.add({"Less", {1, 7, 9, 13}, infer_compare<Op::Less>});
  r.add({"Greater", {1, 7, 9, 13}, infer_compare<Op::Greater>});
  r.add({"LessOrEqual", {12, 16}, infer_compare<Op::LessOrEqual>});
  r.add({"GreaterOrEqual", {12, 16}, infer_compare<Op::GreaterOrEqual>});
  r.add({"Not", {1}, infer_not});
  r.add({"Cast", {1, 6, 9, 13, 19, 21, 23, 24}, infer_cast});
  r.add({"CastLike", {15, 19, 21, 23, 24}, infer_cast});
  // Beyond the required set: each is one line in elementwise_ops.def plus its line here.
  r.add({"Floor", {1, 6, 13}, infer_unary_float<Op::Floor>});
  r.add({"Ceil", {1, 6, 13}, infer_unary_float<Op::Ceil>});
  r.add({"Round", {11, 22}, infer_unary_float<Op::Round>});
  r.add({"Sign", {9, 13}, infer_unary_signed<Op::Sign>});
  r.add({"IsNaN", {9, 13, 20}, infer_isnan});
  r.add({"Mean", {1, 6, 8, 13}, infer_variadic<Op::Add, true>}).fp16(Fp16::kReinfer);
  r.add({"And", {1, 7}, infer_logical<Op::And>});
  r.add({"Or", {1, 7}, infer_logical<Op::Or>});
  r.add({"Xor", {1, 7}, infer_logical<Op::Xor>});
}

}  // namespace kiln
