// The "Elementwise" runtime op: every elementwise ONNX op (and every fused chain of them) is a
// small straight-line program over the node's inputs, stored in the node's attributes:
//   ew_code   ints,   5 per instruction: op, result dtype, operand registers a, b, c (-1: unused)
//   ew_params floats, 2 per instruction: p0, p1 (alpha, beta, clip bounds...)
// Registers 0..n_inputs-1 hold the inputs (broadcast to the output's shape), register
// n_inputs+k the result of instruction k; the last instruction's result is the output.
// Every register has a storage dtype (the ONNX dtype of the value it stands for) and computes
// in a wider compute type (ew::Ct); results of narrow dtypes (float16, int8, bool...) are
// rounded or wrapped back to their dtype after each instruction, so a fused program gives
// exactly what the separate nodes would.
#pragma once
#include "runtime/core/half.h"
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/core/attrs.h"
#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"
#include "runtime/core/status.h"

namespace kiln::ew {

inline constexpr const char* kRuntimeOp = "Elementwise";
inline constexpr const char* kCodeAttr = "ew_code";
inline constexpr const char* kParamsAttr = "ew_params";

enum class Op : int32_t {
#define EW_OP(name, arity, kind, cpu, clf, cli) name,
#include "runtime/ops/elementwise_ops.def"
#undef EW_OP
  kCount
};

enum class Kind : uint8_t { Same, Cmp, Sel, Conv };

struct OpInfo {
  const char* name;
  int arity;
  Kind kind;
  const char* cl_float;  // OpenCL C expression for float/double compute types
  const char* cl_int;    // ... for long/ulong; "" when the op has no integer form
};
const OpInfo& op_info(Op op);

// Compute type of a storage dtype: float16/bfloat16/float32 compute in float, float64 in
// double, uint64 in uint64, every other integer and bool in int64.
enum class Ct : uint8_t { F32, F64, I64, U64 };
Ct compute_type(DType t);
// Whether values of `t` must be rounded/wrapped after computing in compute_type(t).
bool needs_normalize(DType t);
// dtypes an Elementwise program can load, compute and store.
bool dtype_supported(DType t);
// The largest finite value of float16 (65504) or bfloat16, what CastSat to `t` saturates to;
// 0 for other dtypes (CastSat converts to these two only).
float saturation_bound(DType t);

struct Instr {
  Op op = Op::Identity;
  DType dtype = DType::kFloat32;  // result dtype
  int32_t a = -1, b = -1, c = -1;
  float p0 = 0.f, p1 = 0.f;
};

struct Program {
  std::vector<DType> inputs;  // input dtypes (from the node's input tensors, not stored in attrs)
  std::vector<Instr> code;

  int num_regs() const { return static_cast<int>(inputs.size() + code.size()); }
  DType reg_dtype(int r) const {
    return r < static_cast<int>(inputs.size()) ? inputs[r] : code[r - inputs.size()].dtype;
  }
  DType out_dtype() const { return code.back().dtype; }
  int out_reg() const { return num_regs() - 1; }
  // Appends an instruction; returns its result register.
  int emit(Op op, DType dtype, int a, int b = -1, int c = -1, float p0 = 0.f, float p1 = 0.f);

  void to_attrs(Attributes* attrs) const;
  // Reads and validates a program (register ranges, operand compute types), so that kernels
  // never index out of bounds whatever a plan file holds.
  static Status from_attrs(const Attributes& attrs, std::vector<DType> input_dtypes, Program* out);
  Status validate() const;
  // "r2 = Mul(r0, r1) f32; r3 = Relu(r2) f32" for debugging and test messages.
  std::string to_string() const;
};

// How each input is read at a flat output index: kSame (the input has the output's element
// count and layout: index i), kScalar (one element: index 0), kStrided (broadcast: strides
// over `dims`).
enum class Access : uint8_t { kSame, kScalar, kStrided };

// The output's iteration space after merging dims every input walks contiguously (and dropping
// size-1 dims), with each input's element strides over it (0 where it broadcasts).
struct Layout {
  Shape dims;
  std::vector<Access> access;
  std::vector<std::vector<int64_t>> strides;  // per input, dims.size() entries
};
Layout make_layout(const std::vector<Shape>& input_shapes, const Shape& out_shape);

using kiln::bf16_to_float;
using kiln::float_to_bf16;
using kiln::float_to_half;
using kiln::half_to_float;

}  // namespace kiln::ew
