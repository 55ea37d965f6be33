#include "compiler/quant/layer_check.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "compiler/quant/graph_runner.h"

namespace kiln {

Status measure_layer_errors(const ir::Graph& fp32, const ir::Graph& quantized,
                            const std::vector<std::pair<std::string, std::string>>& layers,
                            const std::vector<CalibrationSample>& samples, std::vector<LayerError>* out) {
  std::vector<std::string> names;
  std::map<std::string, size_t> index;
  for (const auto& [x, y] : layers)
    for (const std::string& n : {x, y})
      if (index.emplace(n, names.size()).second) names.push_back(n);
  GraphRunner ref, q;
  KILN_TRY(ref.create(fp32, names).with_context("layer check: the FP32 graph"));
  KILN_TRY(q.create(quantized, names).with_context("layer check: the quantized graph"));
  std::vector<RelativeL2> err(names.size());
  const size_t n_samples = std::min(samples.size(), kLayerCheckSamples);
  for (size_t s = 0; s < n_samples; ++s) {
    KILN_TRY(ref.run(samples[s]).with_context("layer check: calibration sample " + std::to_string(s + 1)));
    KILN_TRY(q.run(samples[s]).with_context("layer check: calibration sample " + std::to_string(s + 1)));
    for (size_t i = 0; i < names.size(); ++i) err[i].add(q.outs[i], ref.outs[i]);
  }
  auto rel = [&](const std::string& n) { return err[index.at(n)].value(); };
  out->clear();
  for (const auto& [x, y] : layers) out->push_back({rel(x), rel(y)});
  return Status::ok();
}

std::vector<size_t> outlier_layers(const std::vector<LayerError>& errors) {
  std::vector<size_t> out;
  if (errors.empty()) return out;
  std::vector<double> own;
  for (const LayerError& e : errors) own.push_back(std::max(0.0, e.own()));
  std::vector<double> sorted = own;
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
  const double median = sorted[sorted.size() / 2];
  for (size_t i = 0; i < own.size(); ++i)
    if ((own[i] > kLayerErrorFloor && own[i] > kLayerOutlierFactor * median) || own[i] > kLayerErrorCeiling)
      out.push_back(i);
  return out;
}

}  // namespace kiln
