#include "compiler/quant/accuracy.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "runtime/exec/execution_context.h"

namespace kiln {

namespace {

// The statistics over n elements, element i of the comparison at index(i) of both tensors.
template <class Index>
TensorErrors errors_over(const TensorView& got, const TensorView& want, int64_t n, Index index) {
  TensorErrors e;
  double sum_abs = 0, diff2 = 0, want2 = 0, got2 = 0, dot = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t at = index(i);
    const double g = tensor_double_at(got, at), w = tensor_double_at(want, at);
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
  e.diff_l2 = std::sqrt(diff2);
  e.want_l2 = std::sqrt(want2);
  return e;
}

}  // namespace

TensorErrors compare_tensors(const TensorView& got, const TensorView& want) {
  return errors_over(got, want, shape_numel(want.shape), [](int64_t i) { return i; });
}

OutputParts output_parts(const Plan& reference, int32_t tensor) {
  OutputParts parts;
  const Shape& shape = reference.tensors[tensor].shape;
  const PlanNode* concat = nullptr;
  for (const PlanNode& n : reference.nodes)
    if (n.op == "Concat" && n.outputs.size() == 1 && n.outputs[0] == tensor) concat = &n;
  if (!concat || concat->inputs.size() < 2 || shape.empty()) return parts;
  int64_t axis = concat->attrs.get_int("axis", 0);
  if (axis < 0) axis += static_cast<int64_t>(shape.size());
  if (axis < 0 || axis >= static_cast<int64_t>(shape.size())) return parts;
  int64_t begin = 0;
  for (int32_t in : concat->inputs) {
    if (in < 0) return OutputParts{};
    const Shape& s = reference.tensors[in].shape;
    if (s.size() != shape.size() || s[axis] < 0) return OutputParts{};
    parts.ranges.push_back({begin, begin + s[axis]});
    begin += s[axis];
  }
  if (begin != shape[axis]) return OutputParts{};
  parts.axis = static_cast<int>(axis);
  return parts;
}

TensorErrors compare_part(const TensorView& got, const TensorView& want, int axis, int64_t begin, int64_t end) {
  const Shape& s = want.shape;
  int64_t inner = 1;
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) inner *= s[d];
  const int64_t outer = s[axis] ? shape_numel(s) / (s[axis] * inner) : 0;
  const int64_t block = (end - begin) * inner, stride = s[axis] * inner;
  return errors_over(got, want, outer * block,
                     [&](int64_t i) { return (i / block) * stride + begin * inner + i % block; });
}

std::vector<CalibrationInput> plan_input_specs(const Plan& plan) {
  std::vector<CalibrationInput> out;
  for (int32_t t : plan.inputs) out.push_back({plan.tensors[t].name, plan.tensors[t].dtype, plan.tensors[t].shape});
  return out;
}

const HostTensor& as_plan_input(const Plan& plan, const std::string& name, const HostTensor& t,
                                std::deque<HostTensor>* converted) {
  for (int32_t i : plan.inputs)
    if (plan.tensors[i].name == name && plan.tensors[i].dtype != t.dtype())
      return converted->emplace_back(to_float_dtype(t, plan.tensors[i].dtype));
  return t;
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
    // A plan with float16 inputs and outputs (--io-precision fp16) is fed and judged in float32.
    std::deque<HostTensor> converted;
    for (const auto& [name, t] : samples[s]) {
      const HostTensor& in = as_plan_input(*plan, name, t, &converted);
      KILN_TRY(ctx->bind_input(name, in.dtype(), in.shape(), in.data(), in.size_bytes()));
    }
    KILN_TRY_CTX(ctx->run(), "sample " + std::to_string(s + 1));
    for (HostTensor& o : outs) o = to_float_dtype(std::move(o), DType::kFloat32);
  }
  return Status::ok();
}

bool is_class_scores(const Plan& reference, int32_t tensor) {
  const Shape& shape = reference.tensors[tensor].shape;
  if (shape.empty() || shape.back() < 2) return false;
  for (const PlanNode& n : reference.nodes) {
    if (n.outputs.empty() || n.outputs[0] != tensor) continue;
    return n.op == "Softmax" || n.op == "LogSoftmax";
  }
  return false;
}

double top1_margin_ratio(const TensorView& got, const TensorView& want) {
  const int64_t classes = want.shape.empty() ? 0 : want.shape.back();
  if (classes < 2) return 0;
  const int64_t rows = shape_numel(want.shape) / classes;
  double worst = 0;
  std::vector<double> g(static_cast<size_t>(classes)), w(static_cast<size_t>(classes));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t top = 0;
    double mean = 0;
    for (int64_t c = 0; c < classes; ++c) {
      g[c] = tensor_double_at(got, r * classes + c);
      w[c] = tensor_double_at(want, r * classes + c);
      mean += w[c];
      if (w[c] > w[top]) top = c;
    }
    mean /= static_cast<double>(classes);
    const double floor = 0.1 * (w[top] - mean);
    for (int64_t c = 0; c < classes; ++c) {
      if (c == top) continue;
      // Class c overtakes the top one where its gap closed by the whole gap: ratio >= 1.
      const double closing = (g[c] - g[top]) - (w[c] - w[top]), gap = std::max(w[top] - w[c], floor);
      if (std::isnan(closing)) return INFINITY;
      if (closing > 0) worst = std::max(worst, gap > 0 ? closing / gap : INFINITY);
    }
  }
  return worst;
}

Status worst_output_error(const Plan& plan, const std::vector<std::vector<HostTensor>>& got, const Plan& reference,
                          const std::vector<std::vector<HostTensor>>& want, WorstError* out, double budget) {
  *out = WorstError{};
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    const std::string& name = plan.tensors[plan.outputs[i]].name;
    size_t r = 0;
    while (r < reference.outputs.size() && reference.tensors[reference.outputs[r]].name != name) ++r;
    if (r == reference.outputs.size()) return not_found("the FP32 reference has no output '" + name + "'");
    const size_t samples = std::min(got.size(), want.size());
    for (size_t s = 0; s < samples; ++s)
      if (got[s][i].shape() != want[s][r].shape())
        return invalid_argument("output '" + name + "': " + shape_str(got[s][i].shape()) + " vs the reference's " +
                                shape_str(want[s][r].shape()));
    auto note = [&](double e, size_t s, std::string part) {
      if (std::isnan(e)) e = INFINITY;  // a NaN output is as wrong as it gets
      if (e > out->rel_l2 || out->output.empty()) *out = WorstError{e, name, s, std::move(part)};
    };
    if (budget > 0 && is_class_scores(reference, reference.outputs[r]))
      for (size_t s = 0; s < samples; ++s)
        note(budget * top1_margin_ratio(got[s][i].view(), want[s][r].view()), s, "top-1 margin");
    const OutputParts parts = output_parts(reference, reference.outputs[r]);
    if (parts.ranges.empty())
      for (size_t s = 0; s < samples; ++s) note(compare_tensors(got[s][i].view(), want[s][r].view()).rel_l2, s, "");
    for (const auto& [begin, end] : parts.ranges) {
      std::vector<TensorErrors> e;
      double want2 = 0;
      for (size_t s = 0; s < samples; ++s) {
        e.push_back(compare_part(got[s][i].view(), want[s][r].view(), parts.axis, begin, end));
        want2 += e.back().want_l2 * e.back().want_l2;
      }
      const double usual = samples ? std::sqrt(want2 / static_cast<double>(samples)) : 0;
      const std::string label =
          "[" + std::to_string(begin) + ":" + std::to_string(end) + " along axis " + std::to_string(parts.axis) + "]";
      for (size_t s = 0; s < samples; ++s) {
        const double scale = std::max(e[s].want_l2, usual);
        note(scale > 0 ? e[s].diff_l2 / scale : e[s].diff_l2, s, label);
      }
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
