#include "compiler/quant/smooth_quant.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace kiln {

double channel_spread(const std::vector<double>& x_amax) {
  if (x_amax.empty()) return 1.0;
  std::vector<double> v = x_amax;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  const double median = v[v.size() / 2];
  const double top = *std::max_element(x_amax.begin(), x_amax.end());
  if (top <= 0) return 1.0;
  return median > 0 ? top / median : INFINITY;
}

std::vector<float> smooth_factors(const std::vector<double>& x_amax, const HostTensor& w, double alpha) {
  const int64_t k_dim = w.shape()[0], n_dim = w.shape()[1];
  const float* src = w.as<float>();
  std::vector<float> s(static_cast<size_t>(k_dim), 1.f);
  for (int64_t k = 0; k < k_dim; ++k) {
    double wmax = 0;
    for (int64_t n = 0; n < n_dim; ++n) wmax = std::max(wmax, static_cast<double>(std::fabs(src[k * n_dim + n])));
    const double xmax = x_amax[static_cast<size_t>(k)];
    if (!(xmax > 0) || !(wmax > 0)) continue;
    const double f = std::pow(xmax, alpha) / std::pow(wmax, 1.0 - alpha);
    if (std::isfinite(f) && f > 0 && std::isfinite(1.0 / f)) s[static_cast<size_t>(k)] = static_cast<float>(f);
  }
  return s;
}

double smoothed_amax(const std::vector<double>& x_amax, const std::vector<float>& s) {
  double m = 0;
  for (size_t k = 0; k < x_amax.size(); ++k) m = std::max(m, x_amax[k] / s[k]);
  return m;
}

std::shared_ptr<HostTensor> scale_weight_rows(const HostTensor& w, const std::vector<float>& s) {
  auto out = std::make_shared<HostTensor>(DType::kFloat32, w.shape());
  const int64_t n_dim = w.shape()[1];
  for (int64_t i = 0; i < w.numel(); ++i) out->as<float>()[i] = w.as<float>()[i] * s[static_cast<size_t>(i / n_dim)];
  return out;
}

}  // namespace kiln
