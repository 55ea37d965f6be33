#include "runtime/ops/elementwise_program.h"

#include <cmath>

namespace kiln::ew {

const OpInfo& op_info(Op op) {
  static const OpInfo kInfos[] = {
#define EW_OP(name, arity, kind, cpu, clf, cli) {#name, arity, Kind::kind, clf, cli},
#include "runtime/ops/elementwise_ops.def"
#undef EW_OP
  };
  return kInfos[static_cast<int>(op)];
}

Ct compute_type(DType t) {
  switch (t) {
    case DType::kFloat64: return Ct::F64;
    case DType::kFloat32: case DType::kFloat16: case DType::kBFloat16: return Ct::F32;
    case DType::kUInt64: return Ct::U64;
    default: return Ct::I64;
  }
}

bool needs_normalize(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kFloat64: case DType::kInt64: case DType::kUInt64: return false;
    default: return true;
  }
}

bool dtype_supported(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kFloat64: case DType::kFloat16: case DType::kBFloat16:
    case DType::kInt8: case DType::kInt16: case DType::kInt32: case DType::kInt64:
    case DType::kUInt8: case DType::kUInt16: case DType::kUInt32: case DType::kUInt64:
    case DType::kBool:
      return true;
    default:
      return false;
  }
}

float saturation_bound(DType t) {
  switch (t) {
    case DType::kFloat16: return 65504.f;
    case DType::kBFloat16: return 0x1.fep+127f;  // bits 0x7f7f: bfloat16's largest finite value
    default: return 0.f;
  }
}

int Program::emit(Op op, DType dtype, int a, int b, int c, float p0, float p1) {
  Instr in;
  in.op = op;
  in.dtype = dtype;
  in.a = a;
  in.b = b;
  in.c = c;
  in.p0 = p0;
  in.p1 = p1;
  code.push_back(in);
  return num_regs() - 1;
}

void Program::to_attrs(Attributes* attrs) const {
  std::vector<int64_t> ints;
  std::vector<float> params;
  for (const Instr& in : code) {
    ints.insert(ints.end(), {static_cast<int64_t>(in.op), static_cast<int64_t>(in.dtype), in.a, in.b, in.c});
    params.insert(params.end(), {in.p0, in.p1});
  }
  attrs->set(kCodeAttr, std::move(ints));
  attrs->set(kParamsAttr, std::move(params));
}

Status Program::from_attrs(const Attributes& attrs, std::vector<DType> input_dtypes, Program* out) {
  const std::vector<int64_t> ints = attrs.get_ints(kCodeAttr);
  const std::vector<float> params = attrs.get_floats(kParamsAttr);
  if (ints.empty() || ints.size() % 5 || params.size() * 5 != ints.size() * 2)
    return invalid_plan("Elementwise: malformed program attributes (" + std::to_string(ints.size()) +
                        " code ints, " + std::to_string(params.size()) + " params)");
  Program p;
  p.inputs = std::move(input_dtypes);
  for (size_t i = 0; i < ints.size() / 5; ++i) {
    const int64_t* w = &ints[i * 5];
    if (w[0] < 0 || w[0] >= static_cast<int64_t>(Op::kCount))
      return invalid_plan("Elementwise: unknown instruction " + std::to_string(w[0]));
    for (int k = 2; k < 5; ++k)
      if (w[k] < -1 || w[k] > (1 << 20)) return invalid_plan("Elementwise: bad operand register");
    p.emit(static_cast<Op>(w[0]), static_cast<DType>(w[1]), static_cast<int>(w[2]), static_cast<int>(w[3]),
           static_cast<int>(w[4]), params[i * 2], params[i * 2 + 1]);
  }
  KILN_TRY(p.validate());
  *out = std::move(p);
  return Status::ok();
}

Status Program::validate() const {
  if (code.empty()) return invalid_plan("Elementwise: empty program");
  for (DType t : inputs)
    if (!dtype_supported(t)) return unsupported("Elementwise: input dtype " + dtype_name(t) + " is not supported");
  for (size_t i = 0; i < code.size(); ++i) {
    const Instr& in = code[i];
    const int self = static_cast<int>(inputs.size() + i);
    const OpInfo& info = op_info(in.op);
    const std::string where = "Elementwise instruction " + std::to_string(i) + " (" + info.name + ")";
    if (!dtype_supported(in.dtype)) return unsupported(where + ": dtype " + dtype_name(in.dtype) + " is not supported");
    const int ops[3] = {in.a, in.b, in.c};
    for (int k = 0; k < 3; ++k) {
      const bool used = k < info.arity;
      if (used && (ops[k] < 0 || ops[k] >= self)) return invalid_plan(where + ": operand register out of range");
      if (!used && ops[k] != -1) return invalid_plan(where + ": unexpected operand");
    }
    const Ct r = compute_type(in.dtype);
    auto ct = [&](int k) { return compute_type(reg_dtype(ops[k])); };
    bool ok = true;
    switch (info.kind) {
      case Kind::Same:
        for (int k = 0; k < info.arity; ++k) ok &= ct(k) == r;
        if (*info.cl_int == 0 && (r == Ct::I64 || r == Ct::U64)) ok = false;
        break;
      case Kind::Cmp:
        ok = in.dtype == DType::kBool && (info.arity < 2 || ct(0) == ct(1));
        break;
      case Kind::Sel:
        ok = ct(0) == Ct::I64 && ct(1) == r && ct(2) == r;
        break;
      case Kind::Conv:
        // CastSat: float operands to float16/bfloat16, clamped to exactly that dtype's bound.
        if (in.op == Op::CastSat)
          ok = (ct(0) == Ct::F32 || ct(0) == Ct::F64) && saturation_bound(in.dtype) > 0.f &&
               in.p0 == saturation_bound(in.dtype);
        break;
    }
    if (!ok) return invalid_plan(where + ": operand dtypes do not fit result dtype " + dtype_name(in.dtype));
  }
  return Status::ok();
}

std::string Program::to_string() const {
  std::string s;
  for (size_t i = 0; i < code.size(); ++i) {
    const Instr& in = code[i];
    const OpInfo& info = op_info(in.op);
    if (i) s += "; ";
    s += "r" + std::to_string(inputs.size() + i) + " = " + info.name + "(";
    const int ops[3] = {in.a, in.b, in.c};
    for (int k = 0; k < info.arity; ++k) s += (k ? ", r" : "r") + std::to_string(ops[k]);
    s += ") " + dtype_name(in.dtype);
  }
  return s;
}

Layout make_layout(const std::vector<Shape>& input_shapes, const Shape& out_shape) {
  const int64_t n = shape_numel(out_shape);
  Layout l;
  const size_t ni = input_shapes.size();
  std::vector<std::vector<int64_t>> full(ni);
  for (size_t i = 0; i < ni; ++i) full[i] = broadcast_strides(input_shapes[i], out_shape);
  // Merge dim d into the previous kept dim when every input walks both as one run.
  std::vector<int64_t> dims;
  std::vector<std::vector<int64_t>> st(ni);
  for (size_t d = 0; d < out_shape.size(); ++d) {
    if (out_shape[d] == 1) continue;
    bool merge = !dims.empty();
    for (size_t i = 0; i < ni && merge; ++i) merge = st[i].back() == full[i][d] * out_shape[d];
    if (merge) {
      dims.back() *= out_shape[d];
      for (size_t i = 0; i < ni; ++i) st[i].back() = full[i][d];
    } else {
      dims.push_back(out_shape[d]);
      for (size_t i = 0; i < ni; ++i) st[i].push_back(full[i][d]);
    }
  }
  l.dims = dims;
  l.strides = st;
  for (size_t i = 0; i < ni; ++i) {
    const int64_t m = shape_numel(input_shapes[i]);
    if (m == n) {
      l.access.push_back(Access::kSame);  // same element count as the output: no broadcast
    } else if (m == 1) {
      l.access.push_back(Access::kScalar);
    } else {
      l.access.push_back(Access::kStrided);
    }
  }
  return l;
}

}  // namespace kiln::ew
