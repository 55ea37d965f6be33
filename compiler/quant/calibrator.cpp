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
    return invalid_argument("--calibrator must be entropy, minmax or percentile[=P], got '" + text + "'");
  }
  return Status::ok();
}

void AbsHistogram::observe_range(const float* x, size_t n) {
  double m = max_abs_;
  for (size_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(x[i])));
  max_abs_ = m;
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

double entropy_amax(const AbsHistogram& h) {
  constexpr int kLevels = 128;
  const auto& bins = h.bins();
  const int n = AbsHistogram::kBins;
  int best_i = n;
  double best_kl = std::numeric_limits<double>::infinity();
  for (int i = kLevels; i <= n; ++i) {
    // Reference: the first i bins, everything beyond folded into the last one (clipping).
    std::vector<double> p(bins.begin(), bins.begin() + i);
    double outliers = 0;
    for (int b = i; b < n; ++b) outliers += static_cast<double>(bins[b]);
    p[i - 1] += outliers;
    // Candidate: the first i bins merged into kLevels levels, each level's mass spread evenly
    // over the bins of it that were non-empty.
    std::vector<double> q(i, 0.0);
    for (int level = 0; level < kLevels; ++level) {
      const int start = static_cast<int>(static_cast<int64_t>(level) * i / kLevels);
      const int stop = static_cast<int>(static_cast<int64_t>(level + 1) * i / kLevels);
      double mass = 0;
      int nonzero = 0;
      for (int b = start; b < stop; ++b) {
        mass += static_cast<double>(bins[b]);
        nonzero += bins[b] != 0;
      }
      for (int b = start; b < stop; ++b)
        if (bins[b] != 0) q[b] = mass / nonzero;
    }
    // The reference's folded outliers live in its last bin; the candidate never sees them.
    const double kl = kl_divergence(p, q);
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return (best_i + 0.5) * h.bin_width();
}

}  // namespace

double calibrate_amax(const AbsHistogram& h, const CalibratorSpec& spec) {
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
      return std::min(h.max_abs(), entropy_amax(h));
  }
  return h.max_abs();
}

}  // namespace kiln
