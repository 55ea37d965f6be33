// OpenCL backend of Elementwise programs: each program becomes one generated OpenCL C kernel,
// one work-item per output element, registers as private variables. Inputs with the output's
// layout are read at the work-item's index, one-element inputs at 0, broadcast inputs through
// strides over the coalesced output dims (ew::make_layout). ClRuntime::kernel caches programs by
// source, so a program shape is compiled once.
#include <climits>
#include <cmath>
#include <cstdio>

#include "runtime/backends/opencl/cl_launch.h"
#include "runtime/ops/elementwise_program.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

using ew::Ct;

const char* ct_name(Ct c) {
  switch (c) {
    case Ct::F32: return "float";
    case Ct::F64: return "double";
    case Ct::I64: return "long";
    case Ct::U64: return "ulong";
  }
  return "float";
}

// OpenCL C element type of a buffer holding `t`.
const char* storage_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float";
    case DType::kFloat64: return "double";
    case DType::kFloat16: return "half";
    case DType::kBFloat16: return "ushort";
    case DType::kInt8: return "char";
    case DType::kInt16: return "short";
    case DType::kInt32: return "int";
    case DType::kInt64: return "long";
    case DType::kUInt8: case DType::kBool: return "uchar";
    case DType::kUInt16: return "ushort";
    case DType::kUInt32: return "uint";
    case DType::kUInt64: return "ulong";
    default: return "uchar";
  }
}

std::string load_expr(DType t, const std::string& buf, const std::string& idx) {
  const std::string ct = ct_name(ew::compute_type(t));
  switch (t) {
    case DType::kFloat16: return "vload_half(" + idx + ", " + buf + ")";
    case DType::kBFloat16: return "ew_bf16_to_float(" + buf + "[" + idx + "])";
    case DType::kBool: return "(long)(" + buf + "[" + idx + "] != 0)";
    default: return "(" + ct + ")" + buf + "[" + idx + "]";
  }
}

// Statement that wraps/rounds register `r` back to its narrow dtype.
std::string normalize_stmt(DType t, const std::string& r) {
  switch (t) {
    case DType::kFloat16: return r + " = ew_round_half(" + r + ");";
    case DType::kBFloat16: return r + " = ew_round_bf16(" + r + ");";
    case DType::kInt8: case DType::kInt16: case DType::kInt32: case DType::kUInt8: case DType::kUInt16:
    case DType::kUInt32:
      return r + " = (long)(" + std::string(storage_name(t)) + ")" + r + ";";
    default: return "";
  }
}

// A float parameter as an exact OpenCL C literal.
std::string float_literal(float v) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "(-INFINITY)";
  char buf[64];
  // Hex with an f suffix: exact, and a float literal on devices without double support.
  std::snprintf(buf, sizeof buf, "%af", static_cast<double>(v));
  return std::string("(") + buf + ")";
}

bool uses_double(const ew::Program& p) {
  for (int r = 0; r < p.num_regs(); ++r)
    if (p.reg_dtype(r) == DType::kFloat64) return true;
  return false;
}

// `in_place`: an input is the output buffer (the memory planner's in-place rule), so no pointer
// may be declared restrict.
std::string generate(const ew::Program& p, const ew::Layout& l, bool in_place) {
  std::string s = "__kernel void ew(";
  // (The helper prelude is prepended at the end, once the body shows which helpers it needs.)
  const size_t nin = p.inputs.size();
  const std::string restrict_kw = in_place ? "" : " restrict";
  for (size_t i = 0; i < nin; ++i)
    s += "__global const " + std::string(storage_name(p.inputs[i])) + "*" + restrict_kw + " in" + std::to_string(i) + ", ";
  s += "__global " + std::string(storage_name(p.out_dtype())) + "*" + restrict_kw + " out, const int n";
  bool strided = false;
  for (size_t i = 0; i < nin; ++i) strided |= l.access[i] == ew::Access::kStrided;
  if (strided) {
    s += ", const ew_dims dims";
    for (size_t i = 0; i < nin; ++i)
      if (l.access[i] == ew::Access::kStrided) s += ", const ew_dims st" + std::to_string(i);
  }
  s += ") {\n  const int gid = get_global_id(0);\n  if (gid >= n) return;\n";
  if (strided) {
    s += "  int rem = gid;\n";
    for (size_t i = 0; i < nin; ++i)
      if (l.access[i] == ew::Access::kStrided) s += "  int o" + std::to_string(i) + " = 0;\n";
    for (int d = static_cast<int>(l.dims.size()) - 1; d >= 0; --d) {
      const std::string ds = std::to_string(d);
      s += d == 0 ? "  { const int i = rem;"  // the outermost index is what remains
                  : "  { const int i = rem % dims.v[" + ds + "]; rem /= dims.v[" + ds + "];";
      for (size_t i = 0; i < nin; ++i)
        if (l.access[i] == ew::Access::kStrided) s += " o" + std::to_string(i) + " += i * st" + std::to_string(i) + ".v[" + ds + "];";
      s += " }\n";
    }
  }
  for (size_t i = 0; i < nin; ++i) {
    const std::string is = std::to_string(i);
    const std::string idx = l.access[i] == ew::Access::kSame ? "gid" : l.access[i] == ew::Access::kScalar ? "0" : "o" + is;
    s += "  const " + std::string(ct_name(ew::compute_type(p.inputs[i]))) + " r" + is + " = " +
         load_expr(p.inputs[i], "in" + is, idx) + ";\n";
  }
  for (size_t k = 0; k < p.code.size(); ++k) {
    const ew::Instr& in = p.code[k];
    const ew::OpInfo& info = ew::op_info(in.op);
    const std::string r = "r" + std::to_string(nin + k);
    const Ct rct = ew::compute_type(in.dtype);
    const std::string T = ct_name(rct);
    const int ops[3] = {in.a, in.b, in.c};
    // Operand type: the result's, except for comparisons (their operands') and Cast (its source).
    const Ct oct = info.kind == ew::Kind::Same ? rct : ew::compute_type(p.reg_dtype(in.a));
    std::string expr;
    switch (info.kind) {
      case ew::Kind::Same:
        expr = (rct == Ct::I64 || rct == Ct::U64) ? info.cl_int : info.cl_float;
        break;
      case ew::Kind::Cmp:
        expr = std::string("(long)(") + ((oct == Ct::I64 || oct == Ct::U64) ? info.cl_int : info.cl_float) + ")";
        break;
      case ew::Kind::Sel:
        expr = info.cl_float;
        break;
      case ew::Kind::Conv:
        // The source-typed expression (Cast: "a"; CastSat: its clamp), converted.
        expr = in.dtype == DType::kBool ? "(long)(a != 0)" : "(" + T + ")(" + info.cl_float + ")";
        break;
    }
    // One line per instruction: "float r3; { typedef float T; const float a = r0; ... r3 = a * b; }"
    s += "  " + T + " " + r + "; { typedef " +
         ct_name(info.kind == ew::Kind::Same || info.kind == ew::Kind::Sel ? rct : oct) + " T;";
    const char* names[3] = {"a", "b", "c"};
    for (int j = 0; j < info.arity; ++j) {
      const Ct jct = info.kind == ew::Kind::Sel && j == 0 ? Ct::I64 : ew::compute_type(p.reg_dtype(ops[j]));
      s += " const " + std::string(ct_name(jct)) + " " + names[j] + " = r" + std::to_string(ops[j]) + ";";
    }
    if (expr.find("p0") != std::string::npos) s += " const T p0 = (T)" + float_literal(in.p0) + ";";
    if (expr.find("p1") != std::string::npos) s += " const T p1 = (T)" + float_literal(in.p1) + ";";
    s += " " + r + " = " + expr + ";";
    if (info.kind != ew::Kind::Cmp && in.dtype != DType::kBool) {
      const std::string norm = normalize_stmt(in.dtype, r);
      if (!norm.empty()) s += " " + norm;
    }
    s += " }\n";
  }
  const std::string last = "r" + std::to_string(p.out_reg());
  switch (p.out_dtype()) {
    case DType::kFloat16: s += "  vstore_half_rte(" + last + ", gid, out);\n"; break;
    case DType::kBFloat16: s += "  out[gid] = ew_float_to_bf16(" + last + ");\n"; break;
    case DType::kBool: s += "  out[gid] = (uchar)(" + last + " != 0);\n"; break;
    default: s += "  out[gid] = (" + std::string(storage_name(p.out_dtype())) + ")" + last + ";\n"; break;
  }
  s += "}\n";
  // ClRuntime::kernel hashes the whole source on every launch: prepend the helpers only when the
  // kernel uses one (most float programs do not), which keeps the per-launch cost small.
  // No mul+add contraction into fma: a fused program must round exactly like the separate
  // kernels it replaces (NVIDIA's compiler contracts by default, PoCL does not).
  std::string head = "#pragma OPENCL FP_CONTRACT OFF\n";
  if (uses_double(p)) head += "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n";
  if (strided) head += "typedef struct { int v[" + std::to_string(kClMaxDims) + "]; } ew_dims;\n";
  if (s.find("ew_ipow") != std::string::npos || s.find("ew_round") != std::string::npos ||
      s.find("bf16") != std::string::npos || s.find("EW_") != std::string::npos) {
    const char* helpers = embedded_kernel_source("elementwise");
    head += helpers ? helpers : "";
  }
  return head + s;
}

Status load(const PlanNode& node, const std::vector<DType>& in_dtypes, ew::Program* p) {
  return ew::Program::from_attrs(node.attrs, in_dtypes, p);
}

bool elementwise_supports(const PlanNode& node, const Plan& plan, const DeviceCaps& caps) {
  std::vector<DType> dt;
  std::vector<Shape> shapes;
  for (int32_t t : node.inputs) {
    if (t < 0) return false;
    dt.push_back(plan.tensors[t].dtype);
    shapes.push_back(plan.tensors[t].shape);
  }
  if (node.outputs.size() != 1) return false;
  const PlanTensor& out = plan.tensors[node.outputs[0]];
  ew::Program p;
  if (!load(node, dt, &p) || p.out_dtype() != out.dtype) return false;
  if (shape_numel(out.shape) > INT_MAX) return false;
  for (const Shape& s : shapes)
    if (shape_numel(s) > INT_MAX) return false;
  if (ew::make_layout(shapes, out.shape).dims.size() > static_cast<size_t>(kClMaxDims)) return false;
  if (uses_double(p)) {
    bool fp64 = false;
    for (const std::string& e : caps.extensions) fp64 |= e == "cl_khr_fp64";
    if (!fp64) return false;
  }
  return true;
}

Status elementwise_cl(ClKernelArgs& a) {
  std::vector<DType> dt;
  std::vector<Shape> shapes;
  for (const ClTensor& t : a.inputs) {
    // Empty tensors may have no buffer at all.
    if (!t.mem && t.numel() != 0) return internal_error("Elementwise: missing input");
    dt.push_back(t.dtype);
    shapes.push_back(t.shape);
  }
  if (a.outputs[0].numel() == 0) return Status::ok();
  ew::Program p;
  KILN_TRY(load(a.node, dt, &p));
  const ClTensor& out = a.outputs[0];
  const ew::Layout l = ew::make_layout(shapes, out.shape);
  bool in_place = false;
  for (const ClTensor& t : a.inputs) in_place |= t.mem == out.mem;
  const std::string src = generate(p, l, in_place);
  cl_kernel k;
  KILN_TRY(a.cl.kernel(src, "", "ew", &k).with_context("Elementwise '" + a.node.name + "'"));
  ClLaunch launch(a.cl, k, "Elementwise '" + a.node.name + "'");
  for (const ClTensor& t : a.inputs) launch.mem(t.mem);
  const cl_int n = static_cast<cl_int>(out.numel());
  launch.mem(out.mem).arg(n);
  bool strided = false;
  for (ew::Access acc : l.access) strided |= acc == ew::Access::kStrided;
  if (strided) {
    launch.arg(cl_dims(l.dims));
    for (size_t i = 0; i < l.access.size(); ++i)
      if (l.access[i] == ew::Access::kStrided) launch.arg(cl_dims(l.strides[i]));
  }
  return launch.run1d(static_cast<size_t>(n), 256);
}

}  // namespace

void register_elementwise_opencl(ClRegistry& r) { r.add(ew::kRuntimeOp, elementwise_cl, elementwise_supports); }

}  // namespace kiln
