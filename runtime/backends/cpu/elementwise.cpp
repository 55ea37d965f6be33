// CPU interpreter of Elementwise programs (runtime/ops/elementwise_program.h). The output is
// processed in blocks of kBlock elements; each instruction runs as one tight loop over a block,
// so dispatch costs one switch per instruction per block, not per element. Inputs already in
// their compute type with the output's layout are read in place, everything else is converted
// or gathered into a register block first.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "runtime/backends/cpu/elementwise_job.h"
#include "runtime/ops/elementwise_program.h"
#include "runtime/ops/in_place.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/ops/node_precision.h"

namespace kiln {
namespace {

using ew::Ct;
using ew::Op;

constexpr int kBlock = 256;

// ---- per-op helpers used by the expressions in elementwise_ops.def ----
// Integer add/sub/mul wrap (as ONNX runtimes and numpy do) instead of overflowing, which is
// undefined for signed C++ integers: compute in the unsigned type.
template <typename T> T ew_add(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(std::make_unsigned_t<T>(a) + std::make_unsigned_t<T>(b));
  else return a + b;
}
template <typename T> T ew_sub(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(std::make_unsigned_t<T>(a) - std::make_unsigned_t<T>(b));
  else return a - b;
}
template <typename T> T ew_mul(T a, T b) {
  if constexpr (std::is_integral_v<T>) return static_cast<T>(std::make_unsigned_t<T>(a) * std::make_unsigned_t<T>(b));
  else return a * b;
}
template <typename T> bool ew_lt0(T a) {
  if constexpr (std::is_unsigned_v<T>) return false;
  else return a < T(0);
}
template <typename T> T ew_abs(T a) { return ew_lt0(a) ? ew_sub(T(0), a) : a; }
template <typename T> T ew_sigmoid(T a) {
  if constexpr (std::is_floating_point_v<T>) return T(1) / (T(1) + std::exp(-a));
  else return a;  // never emitted on integers
}
template <typename T> T ew_softplus(T a) {
  if constexpr (std::is_floating_point_v<T>) return a > T(0) ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
  else return a;
}
template <typename T> T ew_clamp01(T v) { return v < T(0) ? T(0) : (v > T(1) ? T(1) : v); }
template <typename T> T ew_clamp(T a, T lo, T hi) {
  const T t = a < lo ? lo : a;
  return t > hi ? hi : t;
}
// CastSat's clamp: finite values to [-m, m]; NaN and +-inf unchanged.
template <typename T> T ew_saturate(T a, T m) {
  if constexpr (std::is_floating_point_v<T>) return std::isinf(a) ? a : ew_clamp(a, T(-m), m);
  else return a;  // validate() allows float operands only
}
template <typename T> T ew_min(T a, T b) { return (a < b || a != a) ? a : b; }
template <typename T> T ew_max(T a, T b) { return (a > b || a != a) ? a : b; }
// Integer division truncates like C; x/0 (undefined in C) gives 0 instead of trapping, and
// INT64_MIN / -1 wraps.
template <typename T> T ew_div(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return a / b;
  } else {
    if (b == T(0)) return T(0);
    if constexpr (std::is_signed_v<T>)
      if (b == T(-1)) return static_cast<T>(0ull - static_cast<uint64_t>(a));
    return a / b;
  }
}
// ONNX Mod: ew_fmod is C's fmod / truncated % (the dividend's sign), ew_mod Python's % (the
// divisor's sign). Integer x % 0 gives 0 and x % -1 gives 0 instead of trapping.
template <typename T> T ew_fmod(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::fmod(a, b);
  } else {
    if (b == T(0)) return T(0);
    if constexpr (std::is_signed_v<T>)
      if (b == T(-1)) return T(0);
    return static_cast<T>(a % b);
  }
}
template <typename T> T ew_mod(T a, T b) {
  const T r = ew_fmod(a, b);
  if constexpr (std::is_unsigned_v<T>) return r;
  else return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? T(r + b) : r;
}
template <typename T> T ew_gelu(T a) {
  if constexpr (std::is_floating_point_v<T>) return T(0.5) * a * (T(1) + std::erf(a * T(0.70710678118654752440)));
  else return a;  // never emitted on integers
}
template <typename T> T ew_gelu_tanh(T a) {
  if constexpr (std::is_floating_point_v<T>)
    return T(0.5) * a * (T(1) + std::tanh(T(0.79788456080286535588) * (a + T(0.044715) * a * a * a)));
  else return a;
}
// Integer powers by squaring (exact; negative exponents give 0 except for bases 1 and -1).
inline int64_t ipow(int64_t a, int64_t b) {
  if (b < 0) return a == 1 ? 1 : a == -1 ? (b & 1 ? -1 : 1) : 0;
  uint64_t r = 1, x = static_cast<uint64_t>(a);
  for (; b; b >>= 1, x *= x)
    if (b & 1) r *= x;
  return static_cast<int64_t>(r);
}
template <typename T> T ew_pow(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) return std::pow(a, b);
  else return static_cast<T>(ipow(static_cast<int64_t>(a), static_cast<int64_t>(b)));
}

template <Ct C> struct CtType;
template <> struct CtType<Ct::F32> { using T = float; };
template <> struct CtType<Ct::F64> { using T = double; };
template <> struct CtType<Ct::I64> { using T = int64_t; };
template <> struct CtType<Ct::U64> { using T = uint64_t; };

template <typename F> void with_ct(Ct c, F&& f) {
  switch (c) {
    case Ct::F32: f(float{}); break;
    case Ct::F64: f(double{}); break;
    case Ct::I64: f(int64_t{}); break;
    case Ct::U64: f(uint64_t{}); break;
  }
}

struct Half { uint16_t v; };
struct BF16 { uint16_t v; };
struct Bool { uint8_t v; };

template <typename F> void with_storage(DType t, F&& f) {
  switch (t) {
    case DType::kFloat32: f(float{}); break;
    case DType::kFloat64: f(double{}); break;
    case DType::kFloat16: f(Half{}); break;
    case DType::kBFloat16: f(BF16{}); break;
    case DType::kInt8: f(int8_t{}); break;
    case DType::kInt16: f(int16_t{}); break;
    case DType::kInt32: f(int32_t{}); break;
    case DType::kInt64: f(int64_t{}); break;
    case DType::kUInt8: f(uint8_t{}); break;
    case DType::kUInt16: f(uint16_t{}); break;
    case DType::kUInt32: f(uint32_t{}); break;
    case DType::kUInt64: f(uint64_t{}); break;
    case DType::kBool: f(Bool{}); break;
    default: break;  // Program::validate rejected it
  }
}

// Storage value -> compute value and back (the latter also wraps/rounds narrow dtypes).
template <typename T, typename S> inline T load_as(S s) {
  if constexpr (std::is_same_v<S, Half>) return static_cast<T>(ew::half_to_float(s.v));
  else if constexpr (std::is_same_v<S, BF16>) return static_cast<T>(ew::bf16_to_float(s.v));
  else if constexpr (std::is_same_v<S, Bool>) return static_cast<T>(s.v != 0);
  else return static_cast<T>(s);
}
template <typename S, typename T> inline S store_as(T v) {
  if constexpr (std::is_same_v<S, Half>) return Half{ew::float_to_half(static_cast<float>(v))};
  else if constexpr (std::is_same_v<S, BF16>) return BF16{ew::float_to_bf16(static_cast<float>(v))};
  else if constexpr (std::is_same_v<S, Bool>) return Bool{static_cast<uint8_t>(v != T(0))};
  else if constexpr (std::is_floating_point_v<T> && std::is_integral_v<S>) return static_cast<S>(static_cast<int64_t>(v));
  else return static_cast<S>(v);
}

// ---- instruction execution over one block ----
template <typename T>
void exec_same(Op op, T* r, const T* A, const T* B, const T* C, int n, float p0, float p1) {
  switch (op) {
#define EW_OP(name, arity, kind, cpu, clf, cli)                                   \
  case Op::name:                                                                  \
    if constexpr (ew::Kind::kind == ew::Kind::Same) {                             \
      for (int i = 0; i < n; ++i) {                                               \
        const T a = A[i];                                                         \
        const T b = arity > 1 ? B[i] : T(0);                                      \
        const T c = arity > 2 ? C[i] : T(0);                                      \
        (void)b; (void)c; (void)p0; (void)p1;                                     \
        r[i] = static_cast<T>(cpu);                                               \
      }                                                                           \
    }                                                                             \
    break;
#include "runtime/ops/elementwise_ops.def"
#undef EW_OP
    default: break;
  }
}

template <typename T>
void exec_cmp(Op op, int64_t* r, const T* A, const T* B, int n) {
  switch (op) {
#define EW_OP(name, arity, kind, cpu, clf, cli)                                   \
  case Op::name:                                                                  \
    if constexpr (ew::Kind::kind == ew::Kind::Cmp) {                              \
      for (int i = 0; i < n; ++i) {                                               \
        const T a = A[i];                                                         \
        const T b = arity > 1 ? B[i] : T(0);                                      \
        const T c = T(0);                                                         \
        const float p0 = 0.f, p1 = 0.f;                                           \
        (void)b; (void)c; (void)p0; (void)p1;                                     \
        r[i] = (cpu) ? 1 : 0;                                                     \
      }                                                                           \
    }                                                                             \
    break;
#include "runtime/ops/elementwise_ops.def"
#undef EW_OP
    default: break;
  }
}

// In-place wrap/round of a block to the register's dtype.
template <typename T> void normalize(DType t, T* r, int n) {
  with_storage(t, [&](auto s) {
    using S = decltype(s);
    for (int i = 0; i < n; ++i) r[i] = load_as<T>(store_as<S>(r[i]));
  });
}

struct Reg {
  Ct ct;
  DType dtype;
  void* p;  // kBlock compute values
};

struct Exec {
  const ew::Program& prog;
  const ew::Layout& layout;
  std::vector<const void*> in_data;
  void* out_data;
  std::vector<Reg> regs;
  std::vector<uint64_t> scratch;  // kBlock 8-byte slots per register
  std::vector<int64_t> index;     // multi-index scratch, one per coalesced dim

  // Gathers output elements [start, start + n) of a broadcast input, one run of the innermost
  // coalesced dim at a time (a fill when the input broadcasts along it, a copy otherwise).
  template <typename T, typename S>
  void load_strided(const std::vector<int64_t>& st, const S* src, T* dst, int64_t start, int n) {
    const std::vector<int64_t>& dims = layout.dims;
    const int rank = static_cast<int>(dims.size());
    int64_t* idx = index.data();
    int64_t rem = start;
    for (int d = rank - 1; d >= 0; --d) {
      idx[d] = rem % dims[d];
      rem /= dims[d];
    }
    const int64_t inner = dims[rank - 1], inner_st = st[rank - 1];
    for (int k = 0; k < n;) {
      const int run = static_cast<int>(std::min<int64_t>(n - k, inner - idx[rank - 1]));
      int64_t o = 0;
      for (int d = 0; d < rank; ++d) o += idx[d] * st[d];
      if (inner_st == 0) {
        std::fill(dst + k, dst + k + run, load_as<T>(src[o]));
      } else {
        for (int j = 0; j < run; ++j) dst[k + j] = load_as<T>(src[o + j * inner_st]);
      }
      k += run;
      idx[rank - 1] += run;
      for (int d = rank - 1; d > 0 && idx[d] == dims[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  }

  void load_input(size_t i, int64_t start, int n) {
    Reg& reg = regs[i];
    const DType dt = prog.inputs[i];
    const ew::Access acc = layout.access[i];
    // Inputs stored in their compute type (float32, float64, int64, uint64) are read in place.
    if (acc == ew::Access::kSame && !ew::needs_normalize(dt)) {
      reg.p = const_cast<uint8_t*>(static_cast<const uint8_t*>(in_data[i]) + start * dtype_size(dt));
      return;
    }
    reg.p = &scratch[i * kBlock];
    with_ct(reg.ct, [&](auto tz) {
      using T = decltype(tz);
      T* dst = static_cast<T*>(reg.p);
      with_storage(dt, [&](auto sz) {
        using S = decltype(sz);
        const S* src = static_cast<const S*>(in_data[i]);
        if (acc == ew::Access::kSame) {
          for (int k = 0; k < n; ++k) dst[k] = load_as<T>(src[start + k]);
        } else if (acc == ew::Access::kScalar) {
          std::fill(dst, dst + n, load_as<T>(src[0]));
        } else {
          load_strided(layout.strides[i], src, dst, start, n);
        }
      });
    });
  }

  void run_instr(size_t k, int n) {
    const ew::Instr& in = prog.code[k];
    Reg& r = regs[prog.inputs.size() + k];
    const ew::OpInfo& info = ew::op_info(in.op);
    auto ptr = [&](int reg) -> const void* { return reg >= 0 ? regs[reg].p : nullptr; };
    switch (info.kind) {
      case ew::Kind::Same:
        with_ct(r.ct, [&](auto tz) {
          using T = decltype(tz);
          exec_same<T>(in.op, static_cast<T*>(r.p), static_cast<const T*>(ptr(in.a)), static_cast<const T*>(ptr(in.b)),
                       static_cast<const T*>(ptr(in.c)), n, in.p0, in.p1);
        });
        break;
      case ew::Kind::Cmp:
        with_ct(regs[in.a].ct, [&](auto tz) {
          using T = decltype(tz);
          exec_cmp<T>(in.op, static_cast<int64_t*>(r.p), static_cast<const T*>(ptr(in.a)),
                      static_cast<const T*>(ptr(in.b)), n);
        });
        return;  // 0/1 already
      case ew::Kind::Sel:
        with_ct(r.ct, [&](auto tz) {
          using T = decltype(tz);
          const int64_t* c = static_cast<const int64_t*>(ptr(in.a));
          const T* x = static_cast<const T*>(ptr(in.b));
          const T* y = static_cast<const T*>(ptr(in.c));
          T* out = static_cast<T*>(r.p);
          for (int i = 0; i < n; ++i) out[i] = c[i] ? x[i] : y[i];
        });
        break;
      case ew::Kind::Conv:
        with_ct(regs[in.a].ct, [&](auto sz) {
          using S = decltype(sz);
          const S* src = static_cast<const S*>(ptr(in.a));
          with_ct(r.ct, [&](auto tz) {
            using T = decltype(tz);
            T* out = static_cast<T*>(r.p);
            if (in.dtype == DType::kBool) {
              for (int i = 0; i < n; ++i) out[i] = src[i] != S(0) ? T(1) : T(0);
            } else if (in.op == Op::CastSat) {
              // Clamped in the source type (a float64 1e300 must not become inf on the way).
              const S m = static_cast<S>(in.p0);
              for (int i = 0; i < n; ++i) out[i] = static_cast<T>(ew_saturate(src[i], m));
            } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<T>) {
              // Through int64 so float -> narrow int truncates then wraps, as numpy does on x86.
              for (int i = 0; i < n; ++i) out[i] = static_cast<T>(static_cast<int64_t>(src[i]));
            } else {
              for (int i = 0; i < n; ++i) out[i] = static_cast<T>(src[i]);
            }
          });
        });
        break;
    }
    if (ew::needs_normalize(in.dtype) && in.dtype != DType::kBool) {
      with_ct(r.ct, [&](auto tz) {
        using T = decltype(tz);
        normalize<T>(in.dtype, static_cast<T*>(r.p), n);
      });
    }
  }

  void store(int64_t start, int n) {
    const Reg& r = regs.back();
    with_ct(r.ct, [&](auto tz) {
      using T = decltype(tz);
      const T* src = static_cast<const T*>(r.p);
      with_storage(prog.out_dtype(), [&](auto sz) {
        using S = decltype(sz);
        S* dst = static_cast<S*>(out_data) + start;
        if (static_cast<const void*>(src) == static_cast<const void*>(dst)) return;
        for (int k = 0; k < n; ++k) dst[k] = store_as<S>(src[k]);
      });
    });
  }

  // Output elements [begin, end): separate Execs may run disjoint ranges on separate threads.
  void run(int64_t begin, int64_t total) {
    const size_t nin = prog.inputs.size();
    const size_t nreg = static_cast<size_t>(prog.num_regs());
    regs.resize(nreg);
    scratch.assign(nreg * kBlock, 0);
    index.assign(layout.dims.size(), 0);
    for (size_t r = 0; r < nreg; ++r) {
      regs[r].dtype = prog.reg_dtype(static_cast<int>(r));
      regs[r].ct = ew::compute_type(regs[r].dtype);
      regs[r].p = &scratch[r * kBlock];
    }
    // A result stored in its compute type is computed straight into the output.
    const bool direct_out = !ew::needs_normalize(prog.out_dtype());
    const size_t out_size = dtype_size(prog.out_dtype());
    for (int64_t start = begin; start < total; start += kBlock) {
      const int n = static_cast<int>(std::min<int64_t>(kBlock, total - start));
      for (size_t i = 0; i < nin; ++i) load_input(i, start, n);
      if (direct_out) regs.back().p = static_cast<uint8_t*>(out_data) + start * out_size;
      for (size_t k = 0; k < prog.code.size(); ++k) run_instr(k, n);
      store(start, n);
    }
  }
};

}  // namespace

Status ElementwiseJob::prepare(const CpuKernelArgs& a) {
  std::vector<DType> dtypes;
  std::vector<Shape> shapes;
  std::vector<const void*> data;
  for (const TensorView& t : a.inputs) {
    // Empty tensors may have no memory at all.
    if (!t.data && t.numel() != 0) return internal_error("Elementwise: missing input");
    dtypes.push_back(t.dtype);
    shapes.push_back(t.shape);
    data.push_back(t.data);
  }
  KILN_TRY(ew::Program::from_attrs(a.attrs(), dtypes, &prog));
  const TensorView& out = a.outputs[0];
  if (out.dtype != prog.out_dtype())
    return invalid_plan("Elementwise: output dtype " + dtype_name(out.dtype) + " but program yields " +
                        dtype_name(prog.out_dtype()));
  for (const Shape& s : shapes) {
    Shape b;
    KILN_TRY(broadcast_shapes(s, out.shape, &b));
    if (b != out.shape) return invalid_plan("Elementwise: input " + shape_str(s) + " does not broadcast to output " + shape_str(out.shape));
  }
  layout = ew::make_layout(shapes, out.shape);
  in_data = std::move(data);
  out_data = out.data;
  total = out.numel();
  return Status::ok();
}

void ElementwiseJob::run(int64_t begin, int64_t end) const {
  Exec e{prog, layout, in_data, out_data, {}, {}, {}};
  e.run(begin, end);
}

namespace {

Status elementwise_cpu(const CpuKernelArgs& a) {
  ElementwiseJob job;
  KILN_TRY(job.prepare(a));
  job.run(0, job.total);
  return Status::ok();
}

// In place over an input read at the output's own shape (not broadcast), in a dynamic plan at
// every shape in the range (an input equal to the output at the max shapes may broadcast at a
// smaller one).
bool elementwise_in_place(const Plan& plan, const PlanNode& node, size_t input) {
  return dtype_size(plan.tensors[node.inputs[input]].dtype) == dtype_size(plan.tensors[node.outputs[0]].dtype) &&
         same_shape_everywhere(plan, node.inputs[input], node.outputs[0]);
}

// A Cast between float32 and float16 (joining fp32 and fp16 regions) reads as the conversion.
std::string elementwise_precision(const Plan& p, const PlanNode& n) {
  auto is_float = [&](int32_t t) {
    return t >= 0 && (p.tensors[t].dtype == DType::kFloat32 || p.tensors[t].dtype == DType::kFloat16);
  };
  if (n.inputs.size() == 1 && n.outputs.size() == 1 && is_float(n.inputs[0]) && is_float(n.outputs[0]) &&
      p.tensors[n.inputs[0]].dtype != p.tensors[n.outputs[0]].dtype)
    return conversion_precision(p, n);
  return n.outputs.empty() ? "?" : precision_name(p.tensors[n.outputs[0]].dtype);
}

}  // namespace

void register_elementwise_cpu(CpuRegistry& r) {
  r.add(ew::kRuntimeOp, elementwise_cpu).arity(1, 1).in_place(elementwise_in_place).precision(elementwise_precision);
}

}  // namespace kiln
