// CPU ReduceSum/ReduceMean/ReduceMax/ReduceMin over float32, int32 and int64 (the integer
// forms serve constant folding of shape arithmetic). Adjacent dims of the same kind are
// merged first, so the innermost loop is always a contiguous run: either one output absorbing
// a run of reduced elements, or a run of outputs each absorbing one element.
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "runtime/backends/normalization_geometry.h"
#include "runtime/ops/kernel_api.h"

namespace kiln {
namespace {

enum class Kind { kSum, kMean, kMax, kMin };

template <typename Acc, Kind K>
struct Combine {
  static Acc init() {
    if (K == Kind::kMax)
      return std::numeric_limits<Acc>::has_infinity ? -std::numeric_limits<Acc>::infinity()
                                                    : std::numeric_limits<Acc>::lowest();
    if (K == Kind::kMin)
      return std::numeric_limits<Acc>::has_infinity ? std::numeric_limits<Acc>::infinity()
                                                    : std::numeric_limits<Acc>::max();
    return Acc(0);
  }
  // Max/Min propagate NaN (v != v) as numpy's maximum.reduce does.
  static Acc apply(Acc acc, Acc v) {
    if (K == Kind::kMax) return (v > acc || v != v) ? v : acc;
    if (K == Kind::kMin) return (v < acc || v != v) ? v : acc;
    return acc + v;
  }
};

template <typename T, typename Acc, Kind K>
void reduce_typed(const TensorView& in, const TensorView& out, const std::vector<int64_t>& axes) {
  using C = Combine<Acc, K>;
  const normgeo::ReduceGeom g = normgeo::reduce_geom(in.shape, axes);
  std::vector<Acc> acc(static_cast<size_t>(g.out_numel), C::init());
  const T* x = in.as<T>();
  const int64_t total = in.numel();
  if (total > 0 && g.dims.empty()) {
    acc[0] = C::apply(acc[0], static_cast<Acc>(x[0]));
  } else if (total > 0) {
    const size_t last = g.dims.size() - 1;
    const int64_t run = g.dims[last];
    const bool run_reduced = g.reduced[last];
    std::vector<int64_t> idx(last, 0);
    int64_t in_off = 0, out_off = 0;
    for (int64_t t = 0, runs = total / run; t < runs; ++t) {
      const T* xp = x + in_off;
      if (run_reduced) {
        Acc a = acc[out_off];
        for (int64_t i = 0; i < run; ++i) a = C::apply(a, static_cast<Acc>(xp[i]));
        acc[out_off] = a;
      } else {
        Acc* ap = acc.data() + out_off;
        for (int64_t i = 0; i < run; ++i) ap[i] = C::apply(ap[i], static_cast<Acc>(xp[i]));
      }
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
  T* y = out.as<T>();
  for (int64_t i = 0; i < g.out_numel; ++i) {
    // Mean over an empty set is 0/0 = NaN, as in numpy.
    if (K != Kind::kMean) y[i] = static_cast<T>(acc[i]);
    else if (g.reduce_numel || std::is_floating_point<Acc>::value) y[i] = static_cast<T>(acc[i] / static_cast<Acc>(g.reduce_numel));
    else y[i] = 0;
  }
}

template <Kind K>
Status reduce_cpu(const CpuKernelArgs& a) {
  const std::vector<int64_t> axes = a.attrs().get_ints("axes");
  const TensorView& in = a.inputs[0];
  const TensorView& out = a.outputs[0];
  constexpr bool kSumLike = K == Kind::kSum || K == Kind::kMean;
  switch (in.dtype) {
    case DType::kFloat32:
      reduce_typed<float, typename std::conditional<kSumLike, double, float>::type, K>(in, out, axes);
      return Status::ok();
    case DType::kInt32:
      reduce_typed<int32_t, int64_t, K>(in, out, axes);
      return Status::ok();
    case DType::kInt64:
      reduce_typed<int64_t, int64_t, K>(in, out, axes);
      return Status::ok();
    default:
      return unsupported("dtype " + dtype_name(in.dtype) + " is not supported");
  }
}

}  // namespace

void register_normalization_reduce_cpu(CpuRegistry& r) {
  r.add("ReduceSum", reduce_cpu<Kind::kSum>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceMean", reduce_cpu<Kind::kMean>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceMax", reduce_cpu<Kind::kMax>, CpuFloat16::kWidened).arity(1, 1);
  r.add("ReduceMin", reduce_cpu<Kind::kMin>, CpuFloat16::kWidened).arity(1, 1);
}

}  // namespace kiln
