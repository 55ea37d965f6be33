#include "compiler/quant/calibrator.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kiln {

Status parse_calibrator(const std::string& text, CalibratorSpec* out) {
  if (text == "entropy") {
    out->kind = CalibratorSpec::Kind::kEntropy;
  } else if (text == "minmax") {
    out->kind = CalibratorSpec::Kind::kMinMax;
  } else if (text == "mse") {
    out->kind = CalibratorSpec::Kind::kMse;
  } else if (text == "percentile" || text.rfind("percentile=", 0) == 0) {
    out->kind = CalibratorSpec::Kind::kPercentile;
    if (text.size() > 11) {
      char* end = nullptr;
      const double p = std::strtod(text.c_str() + 11, &end);
      if (!end || *end || !(p > 0 && p <= 100))
        return invalid_argument("--calibrator " + text + ": the percentile must be in (0, 100]");
      out->percentile = p;
    }
  } else {
    return invalid_argument("--calibrator must be entropy, minmax, mse or percentile[=P], got '" + text + "'");
  }
  return Status::ok();
}

void AbsHistogram::observe_range(const float* x, size_t n) {
  double m = max_abs_;
  double lo = seen_ ? min_value_ : std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) {
    m = std::max(m, static_cast<double>(std::fabs(x[i])));
    lo = std::min(lo, static_cast<double>(x[i]));
  }
  max_abs_ = m;
  if (n) {
    min_value_ = lo;
    seen_ = true;
  }
}

void AbsHistogram::add(const float* x, size_t n) {
  if (max_abs_ <= 0) {
    bins_[0] += n;
    total_ += n;
    return;
  }
  const double scale = kBins / max_abs_;
  for (size_t i = 0; i < n; ++i) {
    const int b = static_cast<int>(std::fabs(x[i]) * scale);
    ++bins_[std::min(b, kBins - 1)];
  }
  total_ += n;
}

double AbsHistogram::clipped_share(double amax) const {
  if (total_ == 0 || max_abs_ <= 0 || amax >= max_abs_) return 0;
  const int first = static_cast<int>(std::ceil(amax / bin_width()));
  uint64_t clipped = 0;
  for (int b = std::max(first, 0); b < kBins; ++b) clipped += bins_[b];
  return static_cast<double>(clipped) / total_;
}

namespace {

// KL(P || Q) for unnormalized histograms of equal length, skipping empty reference bins.
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  double sp = 0, sq = 0;
  for (double v : p) sp += v;
  for (double v : q) sq += v;
  if (sp <= 0 || sq <= 0) return std::numeric_limits<double>::infinity();
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] <= 0) continue;
    if (q[i] <= 0) return std::numeric_limits<double>::infinity();
    const double pi = p[i] / sp, qi = q[i] / sq;
    kl += pi * std::log(pi / qi);
  }
  return kl;
}

double entropy_amax(const AbsHistogram& h, int levels) {
  std::vector<double> bins(h.bins().begin(), h.bins().end());
  // A ReLU's (or padding's) zeros all land in bin 0. Left there, that spike decides the
  // divergence: merging it with its neighbours into one quantization level costs more than
  // clipping most of the distribution, so the narrowest ranges win (EfficientNet's ReLU6
  // outputs got 0.7 instead of 6). pytorch-quantization / ModelOpt replace its count by bin
  // 1's; so does kiln.
  bins[0] = bins[1];
  const int n = AbsHistogram::kBins;
  std::vector<double> suffix(n + 1, 0.0);  // suffix[i] = mass of bins i..n-1 (the clipped outliers)
  for (int b = n - 1; b >= 0; --b) suffix[b] = suffix[b + 1] + bins[b];
  int best_i = n;
  double best_kl = std::numeric_limits<double>::infinity();
  std::vector<double> p, q;
  for (int i = levels; i <= n; ++i) {
    // Reference: the first i bins, everything beyond folded into the last one (clipping).
    p.assign(bins.begin(), bins.begin() + i);
    p[i - 1] += suffix[i];
    // Candidate: the first i bins merged into levels levels, each level's mass spread evenly
    // over the bins of it that were non-empty (the outliers are not in it: they are what the
    // range loses).
    q.assign(i, 0.0);
    for (int level = 0; level < levels; ++level) {
      const int start = static_cast<int>(static_cast<int64_t>(level) * i / levels);
      const int stop = static_cast<int>(static_cast<int64_t>(level + 1) * i / levels);
      double mass = 0;
      int nonzero = 0;
      for (int b = start; b < stop; ++b) {
        mass += bins[b];
        nonzero += bins[b] != 0;
      }
      for (int b = start; b < stop; ++b)
        if (bins[b] != 0) q[b] = mass / nonzero;
    }
    // Both are normalized to probability distributions inside kl_divergence. `<=`: of equally
    // good ranges the widest (ModelOpt's last argmin), which clips least.
    const double kl = kl_divergence(p, q);
    if (kl <= best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return best_i * h.bin_width();
}

double grid_qmax(QuantGrid grid) {
  switch (grid) {
    case QuantGrid::kInt8: return 127.0;
    case QuantGrid::kUnsignedInt8: return 255.0;
    case QuantGrid::kFp8E4M3: return 448.0;
    case QuantGrid::kFp8E5M2: return 57344.0;
  }
  return 127.0;
}

// |v| (in units of the scale) rounded to the nearest value of the grid, saturating at qmax.
// FP8: mantissa of 3 (E4M3) or 2 (E5M2) bits, subnormals below 2^-6 (2^-14).
double grid_round(double v, QuantGrid grid, double qmax) {
  if (v >= qmax) return qmax;
  if (grid == QuantGrid::kInt8 || grid == QuantGrid::kUnsignedInt8) return std::nearbyint(v);
  if (v <= 0) return 0;
  const int mantissa = grid == QuantGrid::kFp8E4M3 ? 3 : 2;
  const int min_exp = grid == QuantGrid::kFp8E4M3 ? -6 : -14;
  int e;
  std::frexp(v, &e);  // v = m 2^e, m in [0.5, 1)
  const double step = std::ldexp(1.0, std::max(e - 1, min_exp) - mantissa);
  return std::min(qmax, std::nearbyint(v / step) * step);
}

// The non-empty bins as (centre, count): the error sums below visit only these.
std::vector<std::pair<double, double>> occupied_bins(const AbsHistogram& h) {
  std::vector<std::pair<double, double>> out;
  for (int b = 0; b < AbsHistogram::kBins; ++b)
    if (h.bins()[b]) out.push_back({(b + 0.5) * h.bin_width(), static_cast<double>(h.bins()[b])});
  return out;
}

double squared_error(const std::vector<std::pair<double, double>>& bins, double amax, QuantGrid grid) {
  const double qmax = grid_qmax(grid);
  const double s = amax / qmax;
  double err = 0;
  for (const auto& [x, count] : bins) {
    const double d = x - grid_round(x / s, grid, qmax) * s;
    err += count * d * d;
  }
  return err;
}

// ModelOpt's mse calibrator: of the ranges ending at bin centres from bin 128 on, the one with
// the least squared error.
double mse_amax(const AbsHistogram& h, QuantGrid grid) {
  const auto bins = occupied_bins(h);
  double best = h.max_abs(), best_err = std::numeric_limits<double>::infinity();
  for (int i = 128; i <= AbsHistogram::kBins; ++i) {
    const double amax = (i - 0.5) * h.bin_width();
    const double err = squared_error(bins, amax, grid);
    if (err < best_err) {
      best_err = err;
      best = amax;
    }
  }
  return std::min(best, h.max_abs());
}

}  // namespace

double quantization_error(const AbsHistogram& h, double amax, QuantGrid grid) {
  if (h.total() == 0 || h.max_abs() <= 0) return 0;
  const auto bins = occupied_bins(h);
  double ms = 0;
  for (const auto& [x, count] : bins) ms += count * x * x;
  if (ms <= 0) return 0;
  if (!(amax > 0)) return 1;
  return squared_error(bins, amax, grid) / ms;
}

double calibrate_amax(const AbsHistogram& h, const CalibratorSpec& spec, QuantGrid grid) {
  if (h.max_abs() <= 0 || h.total() == 0) return 0;
  switch (spec.kind) {
    case CalibratorSpec::Kind::kMinMax:
      return h.max_abs();
    case CalibratorSpec::Kind::kPercentile: {
      const double target = spec.percentile / 100.0 * static_cast<double>(h.total());
      double seen = 0;
      for (int b = 0; b < AbsHistogram::kBins; ++b) {
        seen += static_cast<double>(h.bins()[b]);
        if (seen >= target) return std::min(h.max_abs(), (b + 1) * h.bin_width());
      }
      return h.max_abs();
    }
    case CalibratorSpec::Kind::kEntropy:
      // KL over 2048 bins needs many values: with a sparse histogram the divergence is lowest
      // at the narrowest range and would clip nearly everything (a classifier's logits see a
      // few hundred values). Such tensors keep their full range.
      if (h.total() < kEntropyMinValues) return h.max_abs();
      return std::min(h.max_abs(), entropy_amax(h, grid == QuantGrid::kUnsignedInt8 ? 256 : 128));
    case CalibratorSpec::Kind::kMse:
      return mse_amax(h, grid);
  }
  return h.max_abs();
}

}  // namespace kiln
