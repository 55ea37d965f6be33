#include "runtime/cli/plan_session.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "runtime/cli/args.h"
#include "runtime/core/npy.h"
#include "runtime/plan/plan_format.h"

namespace kiln::cli {

Status PlanSession::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot open plan file '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto p = std::make_shared<Plan>();
  KILN_TRY_CTX(parse_plan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), p.get()),
               "plan '" + path + "'");
  plan = std::move(p);
  return Status::ok();
}

Status PlanSession::prepare_inputs(const std::vector<std::string>& specs, const std::vector<std::string>& shapes) {
  std::map<std::string, Shape> shape_of;
  for (const std::string& spec : shapes) {
    std::string name, dims;
    KILN_TRY(split_name_value(spec, "--shapes", &name, &dims));
    bool known = false;
    for (int32_t t : plan->inputs) known |= plan->tensors[t].name == name;
    if (!known) return not_found("--shapes " + spec + ": the plan has no input named '" + name + "'");
    KILN_TRY_CTX(parse_dims(dims, &shape_of[name]), "--shapes " + spec);
  }
  for (const std::string& spec : specs) {
    std::string name, path;
    KILN_TRY(split_name_value(spec, "-i", &name, &path));
    bool known = false;
    for (int32_t t : plan->inputs) known |= plan->tensors[t].name == name;
    if (!known) return not_found("the plan has no input named '" + name + "'");
    KILN_TRY_CTX(read_npy(path, &inputs[name]), "input '" + name + "'");
  }
  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  std::uniform_int_distribution<int> ui(0, 3);
  for (int32_t t : plan->inputs) {
    const PlanTensor& pt = plan->tensors[t];
    if (inputs.count(pt.name)) continue;
    auto given = shape_of.find(pt.name);
    HostTensor h(pt.dtype, given == shape_of.end() ? pt.shape : given->second);
    for (int64_t i = 0; i < h.numel(); ++i) {
      switch (pt.dtype) {
        case DType::kFloat32: h.as<float>()[i] = uf(rng); break;
        case DType::kFloat64: h.as<double>()[i] = uf(rng); break;
        case DType::kInt64: h.as<int64_t>()[i] = ui(rng); break;
        case DType::kInt32: h.as<int32_t>()[i] = ui(rng); break;
        case DType::kBool: h.as<uint8_t>()[i] = ui(rng) & 1; break;
        default: std::fill(h.bytes().begin(), h.bytes().end(), uint8_t{0}); break;
      }
    }
    inputs[pt.name] = std::move(h);
  }
  return Status::ok();
}

Status PlanSession::open_context(const std::string& device, std::unique_ptr<ExecutionContext>* ctx,
                                 std::vector<HostTensor>* outputs, std::string* notice, bool pinned) const {
  KILN_TRY(ExecutionContext::create(plan, device, ctx, notice));
  for (const auto& [name, t] : inputs) {
    const void* data = t.data();
    if (pinned) {
      void* buf = nullptr;
      size_t bytes = 0;
      KILN_TRY((*ctx)->host_buffer(name, &buf, &bytes));
      if (bytes < t.size_bytes()) return invalid_argument("input '" + name + "' is larger than the plan allows");
      std::memcpy(buf, t.data(), t.size_bytes());
      data = buf;
    }
    KILN_TRY((*ctx)->bind_input(name, t.dtype(), t.shape(), data, t.size_bytes()));
  }
  outputs->clear();
  if (pinned) {
    for (int32_t t : plan->outputs) {
      const PlanTensor& pt = plan->tensors[t];
      void* buf = nullptr;
      size_t bytes = 0;
      KILN_TRY((*ctx)->host_buffer(pt.name, &buf, &bytes));
      KILN_TRY((*ctx)->bind_output(pt.name, buf, (*ctx)->tensor_bytes(t)));
    }
    return Status::ok();
  }
  outputs->reserve(plan->outputs.size());
  // After the inputs: a dynamic plan's outputs take the shapes the inputs were bound with.
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    outputs->emplace_back(pt.dtype, (*ctx)->tensor_shape(t));
    KILN_TRY((*ctx)->bind_output(pt.name, outputs->back().data(), outputs->back().size_bytes()));
  }
  return Status::ok();
}

}  // namespace kiln::cli
