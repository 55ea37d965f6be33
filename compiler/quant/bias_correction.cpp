#include "compiler/quant/bias_correction.h"

#include <cstdint>

namespace kiln {
namespace {

// For each kernel tap along one spatial axis: the share of the `out` output positions whose
// input coordinate o * stride + k * dilation - pad_begin lies inside [0, in).
std::vector<double> tap_shares(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t dilation,
                               int64_t pad_begin) {
  std::vector<double> share(static_cast<size_t>(kernel), 0.0);
  if (out <= 0) return share;
  for (int64_t k = 0; k < kernel; ++k) {
    int64_t inside = 0;
    for (int64_t o = 0; o < out; ++o) {
      const int64_t i = o * stride + k * dilation - pad_begin;
      inside += i >= 0 && i < in;
    }
    share[static_cast<size_t>(k)] = static_cast<double>(inside) / static_cast<double>(out);
  }
  return share;
}

bool conv_shift(const ir::Node& n, const HostTensor& w, const std::vector<float>& rounded,
                const std::vector<double>& mean, std::vector<double>* shift) {
  const Shape& x = n.input(0)->shape;
  const Shape& y = n.outputs[0]->shape;
  const Shape& ws = w.shape();
  if (ws.size() < 3 || x.size() != ws.size() || y.size() != ws.size()) return false;
  const size_t sp = ws.size() - 2;
  const int64_t m = ws[0], cg = ws[1];
  const int64_t group = n.attrs.get_int("group", 1);
  if (group <= 0 || m % group != 0 || cg * group != x[1] || static_cast<int64_t>(mean.size()) != x[1]) return false;
  const auto strides = n.attrs.get_ints("strides", std::vector<int64_t>(sp, 1));
  const auto dilations = n.attrs.get_ints("dilations", std::vector<int64_t>(sp, 1));
  const auto pads = n.attrs.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
  if (strides.size() != sp || dilations.size() != sp || pads.size() != 2 * sp) return false;
  // The share of positions at which each tap (all spatial axes) reads the input.
  std::vector<double> taps = {1.0};
  for (size_t d = 0; d < sp; ++d) {
    const std::vector<double> s = tap_shares(x[2 + d], y[2 + d], ws[2 + d], strides[d], dilations[d], pads[d]);
    std::vector<double> next;
    next.reserve(taps.size() * s.size());
    for (double a : taps)
      for (double b : s) next.push_back(a * b);
    taps.swap(next);
  }
  const int64_t k = static_cast<int64_t>(taps.size());
  const float* wf = w.as<float>();
  shift->assign(static_cast<size_t>(m), 0.0);
  for (int64_t oc = 0; oc < m; ++oc) {
    const int64_t first_in = (oc / (m / group)) * cg;
    double s = 0;
    for (int64_t ci = 0; ci < cg; ++ci) {
      const double mu = mean[static_cast<size_t>(first_in + ci)];
      const int64_t base = (oc * cg + ci) * k;
      for (int64_t t = 0; t < k; ++t)
        s += (static_cast<double>(wf[base + t]) - rounded[static_cast<size_t>(base + t)]) * mu * taps[static_cast<size_t>(t)];
    }
    (*shift)[static_cast<size_t>(oc)] = s;
  }
  return true;
}

bool matmul_shift(const ir::Node& n, const HostTensor& w, const std::vector<float>& rounded,
                  const std::vector<double>& mean, std::vector<double>* shift) {
  const Shape& x = n.input(0)->shape;
  if (x.size() != 2 || w.shape().size() != 2 || w.shape()[0] != x[1] || static_cast<int64_t>(mean.size()) != x[1])
    return false;
  const int64_t kk = w.shape()[0], cols = w.shape()[1];
  const float* wf = w.as<float>();
  shift->assign(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < kk; ++r)
    for (int64_t c = 0; c < cols; ++c)
      (*shift)[static_cast<size_t>(c)] +=
          (static_cast<double>(wf[r * cols + c]) - rounded[static_cast<size_t>(r * cols + c)]) * mean[static_cast<size_t>(r)];
  return true;
}

}  // namespace

bool output_mean_shift(const ir::Node& layer, const HostTensor& w, const std::vector<float>& rounded,
                       const std::vector<double>& input_mean, std::vector<double>* shift) {
  shift->clear();
  if (input_mean.empty() || static_cast<int64_t>(rounded.size()) != w.numel() || w.dtype() != DType::kFloat32 ||
      !layer.input(0) || layer.outputs.empty() || !layer.outputs[0])
    return false;
  bool ok = false;
  if (layer.op_type == "Conv") ok = conv_shift(layer, w, rounded, input_mean, shift);
  else if (layer.op_type == "MatMul" || layer.op_type == "Gemm") ok = matmul_shift(layer, w, rounded, input_mean, shift);
  if (!ok) shift->clear();
  return ok;
}

}  // namespace kiln
