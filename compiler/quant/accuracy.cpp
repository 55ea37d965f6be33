#include "compiler/quant/accuracy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "runtime/exec/execution_context.h"

namespace kiln {

TensorErrors compare_tensors(const TensorView& got, const TensorView& want) {
  TensorErrors e;
  double sum_abs = 0, diff2 = 0, want2 = 0, got2 = 0, dot = 0;
  const int64_t n = shape_numel(want.shape);
  for (int64_t i = 0; i < n; ++i) {
    const double g = tensor_double_at(got, i), w = tensor_double_at(want, i);
    const double d = std::fabs(g - w);
    e.max_abs = std::max(e.max_abs, d);
    sum_abs += d;
    if (w != 0) e.max_rel = std::max(e.max_rel, d / std::fabs(w));
    diff2 += d * d;
    want2 += w * w;
    got2 += g * g;
    dot += g * w;
  }
  e.mean_abs = n ? sum_abs / n : 0;
  e.rel_l2 = want2 > 0 ? std::sqrt(diff2 / want2) : std::sqrt(diff2);
  e.cosine = (want2 > 0 && got2 > 0) ? dot / std::sqrt(want2 * got2) : (diff2 == 0 ? 1.0 : 0.0);
  return e;
}

std::vector<CalibrationInput> plan_input_specs(const Plan& plan) {
  std::vector<CalibrationInput> out;
  for (int32_t t : plan.inputs) out.push_back({plan.tensors[t].name, plan.tensors[t].dtype, plan.tensors[t].shape});
  return out;
}

Status run_on_samples(std::shared_ptr<const Plan> plan, const std::string& device,
                      const std::vector<CalibrationSample>& samples, std::vector<std::vector<HostTensor>>* outputs) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  outputs->assign(samples.size(), {});
  for (size_t s = 0; s < samples.size(); ++s) {
    std::vector<HostTensor>& outs = (*outputs)[s];
    for (int32_t t : plan->outputs) {
      const PlanTensor& pt = plan->tensors[t];
      outs.emplace_back(pt.dtype, pt.shape);
    }
    for (size_t i = 0; i < outs.size(); ++i)
      KILN_TRY(ctx->bind_output(plan->tensors[plan->outputs[i]].name, outs[i].data(), outs[i].size_bytes()));
    for (const auto& [name, t] : samples[s])
      KILN_TRY(ctx->bind_input(name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
    KILN_TRY_CTX(ctx->run(), "sample " + std::to_string(s + 1));
  }
  return Status::ok();
}

Status worst_output_error(const Plan& plan, const std::vector<std::vector<HostTensor>>& got, const Plan& reference,
                          const std::vector<std::vector<HostTensor>>& want, WorstError* out) {
  *out = WorstError{};
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    const std::string& name = plan.tensors[plan.outputs[i]].name;
    size_t r = 0;
    while (r < reference.outputs.size() && reference.tensors[reference.outputs[r]].name != name) ++r;
    if (r == reference.outputs.size()) return not_found("the FP32 reference has no output '" + name + "'");
    for (size_t s = 0; s < got.size() && s < want.size(); ++s) {
      if (got[s][i].shape() != want[s][r].shape())
        return invalid_argument("output '" + name + "': " + shape_str(got[s][i].shape()) + " vs the reference's " +
                                shape_str(want[s][r].shape()));
      double e = compare_tensors(got[s][i].view(), want[s][r].view()).rel_l2;
      if (std::isnan(e)) e = INFINITY;  // a NaN output is as wrong as it gets
      if (e > out->rel_l2 || out->output.empty()) *out = WorstError{e, name, s};
    }
  }
  return Status::ok();
}

ScratchCalibCache::~ScratchCalibCache() {
  if (dir_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status ScratchCalibCache::create() {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/kiln-calib-XXXXXX";
  if (!::mkdtemp(templ.data())) return io_error("cannot create a temporary folder in '" + templ + "' for the calibration cache");
  dir_ = templ;
  return Status::ok();
}

}  // namespace kiln
