#include "compiler/tools/compare.h"

#include <algorithm>
#include <cmath>

#include "compiler/compiler.h"
#include "compiler/quant/accuracy.h"
#include "runtime/cli/plan_session.h"
#include "runtime/core/float8.h"
#include "runtime/exec/execution_context.h"

namespace kiln {
namespace {

// Every node output of one run, by tensor name.
ExecutionContext::TensorObserver keep_all(const Plan& plan, std::map<std::string, HostTensor>* kept) {
  return [&plan, kept](int32_t t, const TensorView& v) {
    HostTensor copy(v.dtype, v.shape);
    std::copy_n(static_cast<const uint8_t*>(v.data), copy.size_bytes(), copy.data());
    (*kept)[plan.tensors[t].name] = std::move(copy);
    return Status::ok();
  };
}

// Values of any two float types compare (an fp16 tensor against FP32); a quantized integer
// tensor that kept a float tensor's name holds codes, not values, so it does not.
bool comparable(DType a, DType b) {
  auto is_float = [](DType t) {
    return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16 ||
           float8_is_supported(t);
  };
  return a == b || (is_float(a) && is_float(b));
}

Status per_layer_rows(const Plan& plan, Comparison* c) {
  std::map<std::string, std::string> producer;
  for (const PlanNode& n : plan.nodes)
    for (int32_t t : n.outputs) producer[plan.tensors[t].name] = n.name;
  std::vector<std::string> outputs;
  for (int32_t t : plan.outputs) outputs.push_back(plan.tensors[t].name);
  std::vector<ErrorRow> rows;
  size_t intermediates = 0, matched_intermediates = 0;
  for (const auto& [name, g] : c->plan_values) {
    const bool is_output = std::count(outputs.begin(), outputs.end(), name) != 0;
    intermediates += !is_output;
    auto it = c->reference_values.find(name);
    if (it == c->reference_values.end() || it->second.shape() != g.shape() || !comparable(g.dtype(), it->second.dtype())) {
      ++c->unmatched;
      continue;
    }
    matched_intermediates += !is_output;
    rows.push_back({name, producer[name], is_output, true, compare_tensors(g.view(), it->second.view())});
  }
  c->node_outputs = c->plan_values.size();
  if (intermediates > 0 && matched_intermediates == 0)
    return invalid_argument("per layer: none of the plan's " + std::to_string(intermediates) +
                            " intermediate tensors has a tensor of the same name and shape in the reference "
                            "(was the plan built from this model?)");
  // Worst first; a NaN error sorts before every number.
  auto key = [](const ErrorRow& r) { return std::isnan(r.e.rel_l2) ? INFINITY : r.e.rel_l2; };
  std::stable_sort(rows.begin(), rows.end(), [&](const ErrorRow& a, const ErrorRow& b) { return key(a) > key(b); });
  // Only the compared tensors are kept for the caller.
  std::map<std::string, HostTensor> got, want;
  for (const ErrorRow& r : rows) {
    got[r.tensor] = std::move(c->plan_values[r.tensor]);
    want[r.tensor] = std::move(c->reference_values[r.tensor]);
  }
  c->plan_values = std::move(got);
  c->reference_values = std::move(want);
  c->rows.insert(c->rows.end(), std::make_move_iterator(rows.begin()), std::make_move_iterator(rows.end()));
  return Status::ok();
}

}  // namespace

Status compare_plan(std::shared_ptr<const Plan> plan, const std::string& reference_model,
                    const std::map<std::string, HostTensor>& inputs, const std::string& device, bool per_layer,
                    Comparison* out) {
  *out = Comparison{};
  cli::PlanSession s;
  s.plan = plan;
  for (const auto& [name, t] : inputs) {
    if (plan->find_tensor(name) < 0 ||
        std::find(plan->inputs.begin(), plan->inputs.end(), plan->find_tensor(name)) == plan->inputs.end())
      return not_found("the plan has no input named '" + name + "'");
    std::deque<HostTensor> converted;  // float16 for a plan built with --io-precision fp16
    s.inputs[name] = as_plan_input(*plan, name, t, &converted);
  }
  KILN_TRY(s.prepare_inputs({}));

  // The reference: FP32, every node on the CPU backend, the inputs' shapes; without fusion per
  // layer, so that every ONNX intermediate tensor exists under its own name.
  BuildOptions ref_opts;
  ref_opts.device = "cpu";
  ref_opts.fuse = !per_layer;
  for (const auto& [name, t] : s.inputs) ref_opts.shapes[name] = t.shape();
  cli::PlanSession ref;
  auto ref_plan = std::make_shared<Plan>();
  KILN_TRY_CTX(build_plan_from_file(reference_model, ref_opts, ref_plan.get()), "building the reference");
  ref.plan = ref_plan;
  // The given inputs as they are (the plan's may have been rounded to float16), and those drawn
  // for the plan where the caller left one out.
  for (const auto& [name, t] : s.inputs) {
    auto given = inputs.find(name);
    std::deque<HostTensor> converted;
    ref.inputs[name] = as_plan_input(*ref_plan, name, given != inputs.end() ? given->second : t, &converted);
  }

  std::unique_ptr<ExecutionContext> ctx, ref_ctx;
  std::vector<HostTensor> got, want;
  std::string notice;
  KILN_TRY(s.open_context(device, &ctx, &got, &notice));
  if (per_layer) ctx->set_tensor_observer(keep_all(*plan, &out->plan_values));
  KILN_TRY(ctx->run());
  out->device = ctx->device().label;
  KILN_TRY_CTX(ref.open_context("cpu", &ref_ctx, &want, &notice), "running the reference");
  if (per_layer) ref_ctx->set_tensor_observer(keep_all(*ref_plan, &out->reference_values));
  KILN_TRY_CTX(ref_ctx->run(), "running the reference");

  for (size_t i = 0; i < plan->outputs.size(); ++i) {
    const PlanTensor& pt = plan->tensors[plan->outputs[i]];
    const int32_t r = ref_plan->find_tensor(pt.name);
    size_t ri = 0;
    while (ri < ref_plan->outputs.size() && ref_plan->outputs[ri] != r) ++ri;
    if (r < 0 || ri == ref_plan->outputs.size())
      return invalid_argument("the reference model has no output '" + pt.name + "'");
    if (want[ri].shape() != got[i].shape())
      return invalid_argument("output '" + pt.name + "': plan gives " + shape_str(got[i].shape()) + ", the reference " +
                              shape_str(want[ri].shape()));
    out->rows.push_back({pt.name, "", true, false, compare_tensors(got[i].view(), want[ri].view())});
  }
  if (per_layer) KILN_TRY(per_layer_rows(*plan, out));
  return Status::ok();
}

}  // namespace kiln
