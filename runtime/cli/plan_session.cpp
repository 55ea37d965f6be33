#include "runtime/cli/plan_session.h"

#include <cstring>
#include <fstream>
#include <iterator>

#include "runtime/cli/args.h"
#include "runtime/core/half.h"
#include "runtime/core/npy.h"
#include "runtime/plan/plan_file.h"
#include "runtime/plan/plan_format.h"

namespace kiln::cli {

Status PlanSession::load(const std::string& path, const std::string& expect_sha256) {
  auto p = std::make_shared<Plan>();
  KILN_TRY(load_plan_file(path, expect_sha256, p.get()));
  plan = std::move(p);
  return Status::ok();
}

namespace {

// An input of `dt` and `shape` the plan could take: its dtype (or float32 for a float16 input
// of a plan built with --io-precision fp16: converted after reading, as numpy's astype would),
// its rank, no dim beyond the (max) shape it was built for. Checked before anything of that size
// is allocated or read.
Status fits_plan_input(const PlanTensor& pt, DType dt, const Shape& shape) {
  const bool dtype_fits = dt == pt.dtype || (dt == DType::kFloat32 && pt.dtype == DType::kFloat16);
  bool fits = dtype_fits && shape.size() == pt.shape.size();
  for (size_t d = 0; fits && d < shape.size(); ++d) fits = shape[d] >= 0 && shape[d] <= pt.shape[d];
  if (fits) return Status::ok();
  return invalid_argument("expected " + dtype_name(pt.dtype) + " " + shape_str(pt.shape) + ", got " + dtype_name(dt) +
                          " " + shape_str(shape));
}

const PlanTensor* input_named(const Plan& p, const std::string& name) {
  for (int32_t t : p.inputs)
    if (p.tensors[t].name == name) return &p.tensors[t];
  return nullptr;
}

}  // namespace

Status PlanSession::prepare_inputs(const std::vector<std::string>& specs, const std::vector<std::string>& shapes) {
  std::map<std::string, Shape> shape_of;
  for (const std::string& spec : shapes) {
    std::string name, dims;
    KILN_TRY(split_name_value(spec, "--shapes", &name, &dims));
    const PlanTensor* pt = input_named(*plan, name);
    if (!pt) return not_found("--shapes " + spec + ": the plan has no input named '" + name + "'");
    KILN_TRY_CTX(parse_dims(dims, &shape_of[name]), "--shapes " + spec);
    KILN_TRY_CTX(fits_plan_input(*pt, pt->dtype, shape_of[name]), "--shapes " + spec);
  }
  for (const std::string& spec : specs) {
    std::string name, path;
    KILN_TRY(split_name_value(spec, "-i", &name, &path));
    const PlanTensor* pt = input_named(*plan, name);
    if (!pt) return not_found("the plan has no input named '" + name + "'");
    if (inputs.count(name)) return invalid_argument("input '" + name + "' is given twice (-i " + spec + ")");
    KILN_TRY_CTX(read_npy(path, &inputs[name], [&](DType dt, const Shape& shape) { return fits_plan_input(*pt, dt, shape); }),
                 "input '" + name + "'");
    inputs[name] = to_float_dtype(std::move(inputs[name]), pt->dtype);
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
        case DType::kFloat16: h.as<uint16_t>()[i] = float_to_half(uf(rng)); break;
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
