#include "compiler/quant/graph_runner.h"

#include <cmath>

#include "compiler/compiler.h"
#include "compiler/plan/lower.h"
#include "compiler/quant/graph_copy.h"
#include "runtime/device/devices.h"

namespace kiln {

Status GraphRunner::create(const ir::Graph& g, const std::vector<std::string>& names) {
  ir::Graph copy;
  copy_graph(g, &copy);
  copy.outputs.clear();
  for (const std::string& n : names) {
    ir::Value* v = copy.find_value(n);
    if (!v || v->is_constant()) return internal_error("'" + n + "' is not an activation");
    copy.outputs.push_back(v);
  }
  ResolvedDevice cpu;
  KILN_TRY(resolve_device("cpu", &cpu));
  auto plan = std::make_shared<Plan>();
  KILN_TRY(lower_to_plan(copy, cpu, PartitionOptions{}, plan.get()));
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, "cpu", &ctx, &notice));
  outs.clear();
  outs.reserve(plan->outputs.size());
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    outs.emplace_back(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, outs.back().data(), outs.back().size_bytes()));
  }
  return Status::ok();
}

Status GraphRunner::run(const CalibrationSample& s) {
  for (const auto& [name, t] : s) KILN_TRY(ctx->bind_input(name, t.dtype(), t.shape(), t.data(), t.size_bytes()));
  return ctx->run();
}

void RelativeL2::add(const HostTensor& got, const HostTensor& want) {
  if (got.dtype() != DType::kFloat32 || want.dtype() != DType::kFloat32 || got.numel() != want.numel()) return;
  const float* a = got.as<float>();
  const float* b = want.as<float>();
  for (int64_t k = 0; k < got.numel(); ++k) {
    const double d = static_cast<double>(a[k]) - b[k];
    diff2 += d * d;
    want2 += static_cast<double>(b[k]) * b[k];
  }
}

double RelativeL2::value() const {
  const double e = want2 > 0 ? std::sqrt(diff2 / want2) : std::sqrt(diff2);
  return std::isfinite(e) ? e : INFINITY;
}

}  // namespace kiln
