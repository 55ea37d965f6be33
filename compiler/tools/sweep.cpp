#include "compiler/tools/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "compiler/quant/accuracy.h"
#include "compiler/quant/precision.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan_format.h"

namespace kiln {
namespace {

// Median latency (ms) and throughput (inferences/s) of sequential runs on the first sample.
Status time_plan(std::shared_ptr<const Plan> plan, const std::string& device, const CalibrationSample& sample,
                 double seconds, double* median_ms, double* per_s) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  std::vector<HostTensor> outs;
  for (int32_t t : plan->outputs) outs.emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
  for (size_t i = 0; i < outs.size(); ++i)
    KILN_TRY(ctx->bind_output(plan->tensors[plan->outputs[i]].name, outs[i].data(), outs[i].size_bytes()));
  for (const auto& [name, t] : sample) KILN_TRY(ctx->bind_input(name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
  KILN_TRY(ctx->run());  // program builds and caches outside the measurement
  using clock = std::chrono::steady_clock;
  std::vector<double> ms;
  const auto t0 = clock::now();
  while (ms.size() < 3 || std::chrono::duration<double>(clock::now() - t0).count() < seconds) {
    const auto a = clock::now();
    KILN_TRY(ctx->run());
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - a).count());
  }
  const double wall = std::chrono::duration<double>(clock::now() - t0).count();
  std::sort(ms.begin(), ms.end());
  *median_ms = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  *per_s = ms.size() / wall;
  return Status::ok();
}

// Rows of the first output whose argmax is the label, given labels for every row.
Status top1(const Plan& plan, const std::vector<std::vector<HostTensor>>& outs, const HostTensor& labels,
            int64_t* correct, int64_t* rows) {
  *correct = *rows = 0;
  const PlanTensor& out = plan.tensors[plan.outputs[0]];
  const int64_t classes = out.shape.empty() ? 1 : out.shape.back();
  const int64_t per_sample = classes ? shape_numel(out.shape) / classes : 0;
  if (labels.numel() != per_sample * static_cast<int64_t>(outs.size()))
    return invalid_argument("labels: " + std::to_string(labels.numel()) + " labels; the " +
                            std::to_string(outs.size()) + " evaluation samples give " +
                            std::to_string(per_sample * static_cast<int64_t>(outs.size())) + " rows of output '" +
                            out.name + "' " + shape_str(out.shape) + " (one label per row)");
  for (size_t s = 0; s < outs.size(); ++s) {
    const TensorView v = outs[s][0].view();
    for (int64_t r = 0; r < per_sample; ++r, ++*rows) {
      int64_t best = 0;
      for (int64_t c = 1; c < classes; ++c)
        if (tensor_double_at(v, r * classes + c) > tensor_double_at(v, r * classes + best)) best = c;
      const int64_t label = tensor_int_at(labels.view(), *rows);
      if (label < 0 || label >= classes)
        return invalid_argument("labels: label " + std::to_string(label) + " at row " + std::to_string(*rows) +
                                " is not a class index of output '" + out.name + "' (0.." +
                                std::to_string(classes - 1) + ")");
      *correct += best == label;
    }
  }
  return Status::ok();
}

}  // namespace

Status run_sweep(const std::string& model, const BuildOptions& base_in, const SweepOptions& opts, SweepResult* out) {
  *out = SweepResult{};
  if (!base_in.has_calibration_data())
    return invalid_argument("sweep needs calibration samples (for int8 and fp8)");
  if (!(opts.seconds > 0) || !std::isfinite(opts.seconds))
    return invalid_argument("sweep: the timing duration must be a positive number of seconds");
  if (opts.labels.numel() && opts.labels.dtype() != DType::kInt64 && opts.labels.dtype() != DType::kInt32)
    return invalid_argument("labels: expected int64 class labels, got " + dtype_name(opts.labels.dtype()));
  for (const std::string& p : opts.precisions) {
    Precision parsed;
    KILN_TRY_CTX(parse_precision(p, &parsed), "sweep precisions");
  }
  BuildOptions base = base_in;
  base.accuracy_budget = 0;
  if (base.calibrator.empty()) base.calibrator = "entropy";
  // One calibration per calibrator, shared by the int8 and fp8 builds.
  ScratchCalibCache cache;
  if (base.calib_cache.empty()) {
    KILN_TRY(cache.create());
    base.calib_cache_dir = cache.dir();
  }

  // The FP32 reference on the cpu backend, and the evaluation samples.
  BuildOptions ref_opts = base;
  ref_opts.device = "cpu";
  ref_opts.precision = "fp32";
  ref_opts.layer_precision.clear();
  ref_opts.io_dtype = DType::kFloat32;  // the samples' dtype and the model's
  ref_opts.report = nullptr;
  auto ref_plan = std::make_shared<Plan>();
  KILN_TRY_CTX(build_plan_from_file(model, ref_opts, ref_plan.get()), "building the FP32 reference");
  std::vector<CalibrationSample> samples;
  const std::vector<CalibrationInput> specs = plan_input_specs(*ref_plan);
  if (opts.eval) KILN_TRY_CTX(calibration_samples("", opts.eval, specs, &samples), "evaluation samples");
  else if (!opts.eval_dir.empty()) KILN_TRY_CTX(load_calibration_set(opts.eval_dir, specs, &samples), "evaluation samples");
  else KILN_TRY(calibration_samples(base.calib_dir, base.calib_samples.get(), specs, &samples));
  std::vector<std::vector<HostTensor>> want;
  KILN_TRY_CTX(run_on_samples(ref_plan, "cpu", samples, &want), "running the FP32 reference");
  if (opts.labels.numel()) {
    int64_t correct, rows;
    KILN_TRY(top1(*ref_plan, want, opts.labels, &correct, &rows));  // the count check, before any build
  }
  ResolvedDevice resolved;
  KILN_TRY(resolve_build_device(base.device, &resolved));
  out->device = resolved.label;
  out->samples = samples.size();

  for (const std::string& p : opts.precisions) {
    SweepRow row;
    row.precision = p;
    BuildOptions o = base;
    o.precision = p;
    auto plan = std::make_shared<Plan>();
    Status st = build_plan_from_file(model, o, plan.get());
    if (st.code() == StatusCode::kUnsupported) {
      std::string why = st.message();
      const std::string ctx = "model '" + model + "': ";
      if (why.compare(0, ctx.size(), ctx) == 0) why = why.substr(ctx.size());
      row.reason = why;
      out->rows.push_back(row);
      if (opts.on_row) opts.on_row(row);
      continue;
    }
    KILN_TRY_CTX(st, "building " + p);
    row.available = true;
    row.plan_bytes = serialize_plan(*plan).size();
    std::vector<std::vector<HostTensor>> got;
    KILN_TRY_CTX(run_on_samples(plan, base.device, samples, &got), "running the " + p + " plan");
    KILN_TRY_CTX(time_plan(plan, base.device, samples[0], opts.seconds, &row.latency_ms, &row.per_second),
                 "running the " + p + " plan");
    WorstError worst;
    KILN_TRY(worst_output_error(*plan, got, *ref_plan, want, &worst));
    row.max_rel_l2 = worst.rel_l2;
    for (size_t s = 0; s < got.size(); ++s)
      for (size_t i = 0; i < got[s].size(); ++i) {
        const int32_t r = ref_plan->find_tensor(plan->tensors[plan->outputs[i]].name);
        for (size_t ri = 0; ri < ref_plan->outputs.size(); ++ri)
          if (ref_plan->outputs[ri] == r)
            row.min_cosine = std::min(row.min_cosine, compare_tensors(got[s][i].view(), want[s][ri].view()).cosine);
      }
    if (opts.labels.numel()) KILN_TRY(top1(*plan, got, opts.labels, &row.top1_correct, &row.top1_rows));
    out->rows.push_back(row);
    if (opts.on_row) opts.on_row(row);
  }
  return Status::ok();
}

}  // namespace kiln
