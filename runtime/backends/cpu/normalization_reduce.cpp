// CPU reductions: ReduceSum/Mean/Max/Min/Prod/L1/L2/SumSquare/LogSum/LogSumExp over float32
// and float64,
// and the ones integers allow (Sum, Mean, Max, Min, Prod, L1, SumSquare) over int32 and int64
// (the integer forms serve constant folding of shape arithmetic: ReduceProd of a Shape is a
// numel). Adjacent dims of the same kind are merged first, so the innermost loop is always a
// contiguous run: either one output absorbing a run of reduced elements, or a run of outputs
// each absorbing one element.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

enum class Kind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kSumSquare, kLogSum, kLogSumExp };

// How a kind combines: the element map (|x|, x^2), the combining step and its identity.
template <typename Acc, Kind K>
struct Combine {
  static constexpr bool kMax = K == Kind::kMax, kMin = K == Kind::kMin, kProd = K == Kind::kProd;
  static Acc init() {
    if (kMax)
      return std::numeric_limits<Acc>::has_infinity ? -std::numeric_limits<Acc>::infinity()
                                                    : std::numeric_limits<Acc>::lowest();
    if (kMin)
      return std::numeric_limits<Acc>::has_infinity ? std::numeric_limits<Acc>::infinity()
                                                    : std::numeric_limits<Acc>::max();
    return Acc(kProd ? 1 : 0);
  }
  static Acc map(Acc v) {
    if (K == Kind::kL1) return v < Acc(0) ? Acc(0) - v : v;
    if (K == Kind::kL2 || K == Kind::kSumSquare) return v * v;
    return v;
  }
  // Max/Min propagate NaN (v != v) as numpy's maximum.reduce does. Integer products wrap.
  static Acc apply(Acc acc, Acc v) {
    if (kMax) return (v > acc || v != v) ? v : acc;
    if (kMin) return (v < acc || v != v) ? v : acc;
    if constexpr (std::is_integral<Acc>::value) {
      using U = typename std::make_unsigned<Acc>::type;
      return static_cast<Acc>(kProd ? U(acc) * U(v) : U(acc) + U(v));
    } else {
      return kProd ? acc * v : acc + v;
    }
  }
};

// Calls f(out_offset, run_pointer, run_length, run_is_reduced) over every contiguous run.
template <typename T, typename F>
void for_each_run(const T* x, int64_t total, const normgeo::ReduceGeom& g, F f) {
  if (total <= 0) return;
  if (g.dims.empty()) {
    f(int64_t{0}, x, int64_t{1}, true);
    return;
  }
  const size_t last = g.dims.size() - 1;
  const int64_t run = g.dims[last];
  std::vector<int64_t> idx(last, 0);
  int64_t in_off = 0, out_off = 0;
  for (int64_t t = 0, runs = total / run; t < runs; ++t) {
    f(out_off, x + in_off, run, static_cast<bool>(g.reduced[last]));
    for (size_t d = last; d-- > 0;) {
      in_off += g.in_strides[d];
      out_off += g.out_strides[d];
      if (++idx[d] < g.dims[d]) break;
      in_off -= g.in_strides[d] * g.dims[d];
      out_off -= g.out_strides[d] * g.dims[d];
      idx[d] = 0;
    }
  }
}

template <typename T, typename Acc, Kind K>
void accumulate(const T* x, int64_t total, const normgeo::ReduceGeom& g, std::vector<Acc>* acc_out) {
  using C = Combine<Acc, K>;
  std::vector<Acc>& acc = *acc_out;
  acc.assign(static_cast<size_t>(g.out_numel), C::init());
  for_each_run(x, total, g, [&](int64_t o, const T* xp, int64_t run, bool reduced) {
    if (reduced) {
      Acc a = acc[o];
      for (int64_t i = 0; i < run; ++i) a = C::apply(a, C::map(static_cast<Acc>(xp[i])));
      acc[o] = a;
    } else {
      Acc* ap = acc.data() + o;
      for (int64_t i = 0; i < run; ++i) ap[i] = C::apply(ap[i], C::map(static_cast<Acc>(xp[i])));
    }
  });
}

// log(sum(exp(x))) as m + log(sum(exp(x - m))) with m the maximum, so large inputs do not
// overflow; an all -inf (or empty) row gives -inf, a row holding +inf gives +inf.
template <typename T>
void log_sum_exp(const T* x, int64_t total, const normgeo::ReduceGeom& g, std::vector<double>* out) {
  std::vector<double> m;
  accumulate<T, double, Kind::kMax>(x, total, g, &m);
  std::vector<double>& s = *out;
  s.assign(m.size(), 0.0);
  for_each_run(x, total, g, [&](int64_t o, const T* xp, int64_t run, bool reduced) {
    for (int64_t i = 0; i < run; ++i) {
      const int64_t oo = reduced ? o : o + i;
      if (std::isfinite(m[oo])) s[oo] += std::exp(static_cast<double>(xp[i]) - m[oo]);
    }
  });
  for (size_t o = 0; o < s.size(); ++o) s[o] = std::isfinite(m[o]) ? m[o] + std::log(s[o]) : m[o];
}

template <typename T, typename Acc, Kind K>
void reduce_typed(const TensorView& in, const TensorView& out, const std::vector<int64_t>& axes) {
  const normgeo::ReduceGeom g = normgeo::reduce_geom(in.shape, axes);
  T* y = out.as<T>();
  if constexpr (K == Kind::kLogSumExp) {
    std::vector<double> r;
    log_sum_exp(in.as<T>(), in.numel(), g, &r);
    for (int64_t i = 0; i < g.out_numel; ++i) y[i] = static_cast<T>(r[i]);
    return;
  }
  std::vector<Acc> acc;
  accumulate<T, Acc, K>(in.as<T>(), in.numel(), g, &acc);
  for (int64_t i = 0; i < g.out_numel; ++i) {
    const Acc a = acc[i];
    if (K == Kind::kMean) {
      // Mean over an empty set is 0/0 = NaN, as in numpy.
      if (g.reduce_numel || std::is_floating_point<Acc>::value) y[i] = static_cast<T>(a / static_cast<Acc>(g.reduce_numel));
      else y[i] = 0;
    } else if (K == Kind::kL2) {
      y[i] = static_cast<T>(std::sqrt(static_cast<double>(a)));
    } else if (K == Kind::kLogSum) {
      y[i] = static_cast<T>(std::log(static_cast<double>(a)));
    } else {
      y[i] = static_cast<T>(a);
    }
  }
}

// Kinds defined on integers: the others need a float result (sqrt, log).
constexpr bool integer_kind(Kind k) { return k != Kind::kL2 && k != Kind::kLogSum && k != Kind::kLogSumExp; }

template <Kind K>
Status reduce_cpu(const CpuKernelArgs& a) {
  const std::vector<int64_t> axes = a.attrs().get_ints("axes");
  const TensorView& in = a.inputs[0];
  const TensorView& out = a.outputs[0];
  if (out.dtype != in.dtype || out.numel() != normgeo::reduce_geom(in.shape, axes).out_numel)
    return invalid_plan(a.node.op + ": output does not match the reduction of its input");
  for (int64_t ax : axes)
    if (ax < 0 || ax >= static_cast<int64_t>(in.shape.size())) return invalid_plan(a.node.op + ": axis out of range");
  // Sums accumulate float32 in double; max/min stay float.
  constexpr bool kFloatAcc = K == Kind::kMax || K == Kind::kMin;
  using FloatAcc = typename std::conditional<kFloatAcc, float, double>::type;
  switch (in.dtype) {
    case DType::kFloat32:
      reduce_typed<float, FloatAcc, K>(in, out, axes);
      return Status::ok();
    case DType::kFloat64:
      reduce_typed<double, double, K>(in, out, axes);
      return Status::ok();
    case DType::kInt32:
      if (!integer_kind(K)) break;
      reduce_typed<int32_t, int64_t, K>(in, out, axes);
      return Status::ok();
    case DType::kInt64:
      if (!integer_kind(K)) break;
      reduce_typed<int64_t, int64_t, K>(in, out, axes);
      return Status::ok();
    default:
      break;
  }
  return unsupported(a.node.op + ": dtype " + dtype_name(in.dtype) + " is not supported");
}

}  // namespace

void register_normalization_reduce_cpu(CpuRegistry& r) {
  // One operation per input element (the default counts outputs, which a reduction has few of).
  auto per_input = [](const Plan& p, const PlanNode& n) {
    double e = 0;
    if (!n.inputs.empty() && n.inputs[0] >= 0) e = static_cast<double>(shape_numel(p.tensors[n.inputs[0]].shape));
    return e;
  };
  r.add("ReduceSum", reduce_cpu<Kind::kSum>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceMean", reduce_cpu<Kind::kMean>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceMax", reduce_cpu<Kind::kMax>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceMin", reduce_cpu<Kind::kMin>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceProd", reduce_cpu<Kind::kProd>, CpuFloat16::kWidened).arity(1, 1).cost(per_input);
  r.add("ReduceL1", reduce_cpu<Kind::kL1>, CpuFloat16::kWidened).arity(1, 1).cost(per_input);
  r.add("ReduceL2", reduce_cpu<Kind::kL2>, CpuFloat16::kWidened).arity(1, 1).cost(per_input);
  r.add("ReduceSumSquare", reduce_cpu<Kind::kSumSquare>, CpuFloat16::kWidened).arity(1, 1).cost(per_input);
  r.add("ReduceLogSum", reduce_cpu<Kind::kLogSum>, CpuFloat16::kWidened).arity(1, 1).cost(per_input);
  r.add("ReduceLogSumExp", reduce_cpu<Kind::kLogSumExp>, CpuFloat16::kWidened).arity(1, 1).cost(per_input);
}

}  // namespace kiln
