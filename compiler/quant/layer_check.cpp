#include "compiler/quant/layer_check.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>

#include "compiler/compiler.h"
#include "compiler/plan/lower.h"
#include "compiler/quant/graph_copy.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"

namespace kiln {
namespace {

// A CPU execution context of a copy of `g` whose outputs are `names`, with host buffers bound.
struct Runner {
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<HostTensor> outs;

  Status create(const ir::Graph& g, const std::vector<std::string>& names) {
    ir::Graph copy;
    copy_graph(g, &copy);
    copy.outputs.clear();
    for (const std::string& n : names) {
      ir::Value* v = copy.find_value(n);
      if (!v || v->is_constant()) return internal_error("layer check: '" + n + "' is not an activation");
      copy.outputs.push_back(v);
    }
    ResolvedDevice cpu;
    KILN_TRY(resolve_device("cpu", &cpu));
    auto plan = std::make_shared<Plan>();
    KILN_TRY(lower_to_plan(copy, cpu, PartitionOptions{}, plan.get()));
    std::string notice;
    KILN_TRY(ExecutionContext::create(plan, "cpu", &ctx, &notice));
    outs.reserve(plan->outputs.size());
    for (int32_t t : plan->outputs) {
      const PlanTensor& pt = plan->tensors[t];
      outs.emplace_back(pt.dtype, pt.shape);
      KILN_TRY(ctx->bind_output(pt.name, outs.back().data(), outs.back().size_bytes()));
    }
    return Status::ok();
  }

  Status run(const CalibrationSample& s) {
    for (const auto& [name, t] : s) KILN_TRY(ctx->bind_input(name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
    return ctx->run();
  }
};

}  // namespace

Status measure_layer_errors(const ir::Graph& fp32, const ir::Graph& quantized,
                            const std::vector<std::pair<std::string, std::string>>& layers,
                            const std::vector<CalibrationSample>& samples, std::vector<LayerError>* out) {
  std::vector<std::string> names;
  std::map<std::string, size_t> index;
  for (const auto& [x, y] : layers)
    for (const std::string& n : {x, y})
      if (index.emplace(n, names.size()).second) names.push_back(n);
  Runner ref, q;
  KILN_TRY(ref.create(fp32, names).with_context("layer check: the FP32 graph"));
  KILN_TRY(q.create(quantized, names).with_context("layer check: the quantized graph"));
  std::vector<double> diff2(names.size(), 0.0), want2(names.size(), 0.0);
  const size_t n_samples = std::min(samples.size(), kLayerCheckSamples);
  for (size_t s = 0; s < n_samples; ++s) {
    KILN_TRY(ref.run(samples[s]).with_context("layer check: calibration sample " + std::to_string(s + 1)));
    KILN_TRY(q.run(samples[s]).with_context("layer check: calibration sample " + std::to_string(s + 1)));
    for (size_t i = 0; i < names.size(); ++i) {
      const HostTensor& a = q.outs[i];
      const HostTensor& b = ref.outs[i];
      if (a.dtype() != DType::kFloat32 || b.dtype() != DType::kFloat32 || a.numel() != b.numel()) continue;
      const float* pa = a.as<float>();
      const float* pb = b.as<float>();
      for (int64_t k = 0; k < a.numel(); ++k) {
        const double d = static_cast<double>(pa[k]) - pb[k];
        diff2[i] += d * d;
        want2[i] += static_cast<double>(pb[k]) * pb[k];
      }
    }
  }
  auto rel = [&](const std::string& n) {
    const size_t i = index.at(n);
    const double e = want2[i] > 0 ? std::sqrt(diff2[i] / want2[i]) : std::sqrt(diff2[i]);
    return std::isfinite(e) ? e : INFINITY;  // a NaN is as wrong as it gets
  };
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
