#include "tests/ops/op_harness.h"

#include <cmath>
#include <cstdlib>
#include <memory>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "runtime/core/float8.h"
#include "runtime/device/devices.h"
#include "runtime/cli/crash_report.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/channels_last.h"
#include "runtime/ops/kernel_api.h"

namespace kiln::test {

// Test binaries report crashes with a backtrace too (see runtime/cli/crash_report.h).
static const bool g_crash_report = [] {
  kiln::cli::install_crash_report("kiln_tests");
  return true;
}();

Status build_op_plan(const OpSpec& spec, const std::string& device, Plan* out) {
  ir::Graph g;
  g.name = spec.op_type + "_test";
  g.opsets[""] = spec.opset;
  ir::Node* n = g.add_node(spec.op_type, spec.op_type + "_node");
  for (size_t i = 0; i < spec.inputs.size(); ++i) {
    const HostTensor& t = spec.inputs[i];
    if (t.dtype() == DType::kUndefined) {
      n->inputs.push_back(nullptr);
      continue;
    }
    ir::Value* v = g.add_value("in" + std::to_string(i));
    v->dtype = t.dtype();
    v->shape = t.shape();
    v->has_shape = true;
    if (i < spec.constant.size() && spec.constant[i]) {
      v->constant = std::make_shared<HostTensor>(t);
    } else {
      v->is_graph_input = true;
      g.inputs.push_back(v);
    }
    n->inputs.push_back(v);
  }
  n->attrs = spec.attrs;
  for (int i = 0; i < spec.num_outputs; ++i) {
    ir::Value* v = g.add_value("out" + std::to_string(i));
    v->producer = n;
    n->outputs.push_back(v);
    g.outputs.push_back(v);
  }
  BuildOptions opts;
  opts.device = device;
  opts.precision = spec.precision;
  opts.allow_tf32 = spec.allow_tf32;
  opts.layout = spec.layout;
  return build_plan_from_graph(g, opts, out);
}

namespace {

// Runs a plan of `spec` (inputs in0.. bound from spec.inputs) on `device`.
Status run_plan(std::shared_ptr<const Plan> plan, const OpSpec& spec, const std::string& device,
                std::vector<HostTensor>* outputs) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device, &ctx, &notice));
  KILN_TRY(bind_op_inputs(*ctx, *plan, spec));
  outputs->clear();
  outputs->reserve(plan->outputs.size());
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    outputs->emplace_back(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, outputs->back().data(), outputs->back().size_bytes()));
  }
  return ctx->run();
}

}  // namespace

Status bind_op_inputs(ExecutionContext& ctx, const Plan& plan, const OpSpec& spec) {
  for (int32_t t : plan.inputs) {
    const PlanTensor& pt = plan.tensors[t];
    const HostTensor& src = spec.inputs[std::stoi(pt.name.substr(2))];
    KILN_TRY(ctx.bind_input(pt.name, src.dtype(), src.shape(), src.data(), src.size_bytes()));
  }
  return Status::ok();
}

Status run_op(const OpSpec& spec, const std::string& device, std::vector<HostTensor>* outputs, Plan* plan_out) {
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_op_plan(spec, device, plan.get()));
  KILN_TRY(run_plan(plan, spec, device, outputs));
  if (plan_out) *plan_out = *plan;
  return Status::ok();
}

::testing::AssertionResult every_variant_matches_cpu(const OpSpec& spec, double rtol, double atol, int* variants_run,
                                                     const std::function<bool(const KernelChoice&)>& only) {
  std::vector<HostTensor> want;
  Status st = run_op(spec, "cpu", &want);
  if (!st) return ::testing::AssertionFailure() << "cpu: " << st.message();
  Plan built;
  st = build_op_plan(spec, "opencl", &built);
  if (!st) return ::testing::AssertionFailure() << "opencl build: " << st.message();
  ResolvedDevice dev;
  st = resolve_device("opencl", &dev);
  if (!st) return ::testing::AssertionFailure() << st.message();
  int run = 0;
  for (size_t n = 0; n < built.nodes.size(); ++n) {
    if (built.nodes[n].backend != Backend::kOpenCL) continue;
    std::vector<KernelChoice> all = opencl_variants(built.nodes[n], built, dev.caps);
    all.push_back(KernelChoice{});  // the portable kernel
    for (const KernelChoice& c : all) {
      if (only && !c.empty() && !only(c)) continue;
      auto plan = std::make_shared<Plan>(built);
      plan->nodes[n].choice = c;
      std::vector<HostTensor> got;
      st = run_plan(plan, spec, "opencl", &got);
      if (!st) return ::testing::AssertionFailure() << c.str() << ": " << st.message();
      for (size_t i = 0; i < got.size(); ++i) {
        auto r = tensors_close(got[i], want[i], rtol, atol);
        if (!r) return r << " (" << built.nodes[n].op << " with " << c.str() << ", output " << i << ")";
      }
      ++run;
    }
  }
  if (variants_run) *variants_run = run;
  return ::testing::AssertionSuccess();
}

HostTensor quantize_reference(const HostTensor& y, DType t, float scale, int zero_point) {
  HostTensor q(t, y.shape());
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float v = y.as<float>()[i] / scale;
    if (float8_is_supported(t)) {
      q.as<uint8_t>()[i] = float_to_float8(t, v, true);
      continue;
    }
    const double lo = t == DType::kInt8 ? -128 : 0, hi = t == DType::kInt8 ? 127 : 255;
    const double r = std::fmin(std::fmax(std::nearbyint(static_cast<double>(v)) + zero_point, lo), hi);
    if (t == DType::kInt8) {
      q.as<int8_t>()[i] = static_cast<int8_t>(r);
    } else {
      q.as<uint8_t>()[i] = static_cast<uint8_t>(r);
    }
  }
  return q;
}

::testing::AssertionResult tensors_close(const HostTensor& got, const HostTensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return ::testing::AssertionFailure() << "dtype " << dtype_name(got.dtype()) << " vs " << dtype_name(want.dtype());
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  int64_t bad = 0, first_bad = -1;
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = tensor_double_at(got.view(), i), w = tensor_double_at(want.view(), i);
    if (std::isnan(g) || std::isnan(w)) {
      if (std::isnan(g) != std::isnan(w)) {
        if (first_bad < 0) first_bad = i;
        ++bad;
      }
      continue;
    }
    if (std::isinf(g) || std::isinf(w)) {
      if (g != w) {
        if (first_bad < 0) first_bad = i;
        ++bad;
      }
      continue;
    }
    const double err = std::fabs(g - w);
    if (err > atol + rtol * std::fabs(w)) {
      if (first_bad < 0) first_bad = i;
      ++bad;
      worst = std::max(worst, err);
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << got.numel() << " elements differ (first at " << first_bad
                                       << ": got " << tensor_double_at(got.view(), first_bad) << ", want "
                                       << tensor_double_at(want.view(), first_bad) << "; worst abs error " << worst
                                       << ")";
}

int channels_last_on_mma(const Plan& plan) {
  int k = 0;
  for (const PlanNode& n : plan.nodes) k += is_channels_last(n.attrs) && n.choice.variant == mma::kVariant;
  return k;
}

::testing::AssertionResult outputs_close(const std::vector<HostTensor>& got, const std::vector<HostTensor>& want,
                                         double rtol, double atol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << got.size() << " outputs, want " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    auto r = tensors_close(got[i], want[i], rtol, atol);
    if (!r) return r << " (output " << i << ")";
  }
  return ::testing::AssertionSuccess();
}

ScopedEnv::ScopedEnv(const char* name, const char* value) : name_(name) {
  const char* old = std::getenv(name);
  had_ = old != nullptr;
  if (had_) old_ = old;
  if (value) setenv(name, value, 1);
  else unsetenv(name);
}

ScopedEnv::~ScopedEnv() {
  if (had_) setenv(name_.c_str(), old_.c_str(), 1);
  else unsetenv(name_.c_str());
}

Status run_plan(const std::shared_ptr<const Plan>& plan, const std::vector<HostTensor>& inputs,
                std::vector<HostTensor>* outputs, size_t* fast_nodes) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, "cpu", &ctx, &notice));
  for (size_t i = 0; i < plan->inputs.size(); ++i) {
    const PlanTensor& pt = plan->tensors[plan->inputs[i]];
    KILN_TRY(ctx->bind_input(pt.name, inputs[i].dtype(), inputs[i].shape(), inputs[i].data(), inputs[i].size_bytes()));
  }
  outputs->clear();
  outputs->reserve(plan->outputs.size());
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    outputs->emplace_back(pt.dtype, pt.shape);
    KILN_TRY(ctx->bind_output(pt.name, outputs->back().data(), outputs->back().size_bytes()));
  }
  KILN_TRY(ctx->run());
  if (fast_nodes) {
    *fast_nodes = 0;
    for (size_t n = 0; n < plan->nodes.size(); ++n) *fast_nodes += ctx->fast_cpu() && ctx->fast_cpu()->handles(n);
  }
  return Status::ok();
}

::testing::AssertionResult cpu_fast_matches_reference(const std::shared_ptr<const Plan>& plan,
                                                      const std::vector<HostTensor>& inputs, double rtol, double atol,
                                                      size_t min_fast_nodes) {
  std::vector<HostTensor> want, got;
  {
    ScopedEnv ref("KILN_CPU_REFERENCE", "1");
    size_t fast = 0;
    Status st = run_plan(plan, inputs, &want, &fast);
    if (!st) return ::testing::AssertionFailure() << "reference: " << st.message();
    if (fast) return ::testing::AssertionFailure() << "KILN_CPU_REFERENCE=1 still ran " << fast << " fast node(s)";
  }
  size_t fast = 0;
  Status st = run_plan(plan, inputs, &got, &fast);
  if (!st) return ::testing::AssertionFailure() << "fast path: " << st.message();
  // A node the fast path declines runs its reference kernel: that must not pass as a test of it.
  if (fast < min_fast_nodes)
    return ::testing::AssertionFailure() << "only " << fast << " of " << plan->nodes.size()
                                         << " node(s) ran on the fast path, expected " << min_fast_nodes;
  for (size_t i = 0; i < got.size(); ++i) {
    auto r = tensors_close(got[i], want[i], rtol, atol);
    if (!r) return ::testing::AssertionFailure() << "output " << i << ": " << r.message();
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult cpu_fast_matches_reference(const OpSpec& spec, double rtol, double atol) {
  auto plan = std::make_shared<Plan>();
  Status st = build_op_plan(spec, "cpu", plan.get());
  if (!st) return ::testing::AssertionFailure() << "build: " << st.message();
  std::vector<HostTensor> inputs;
  for (int32_t t : plan->inputs) inputs.push_back(spec.inputs[std::stoi(plan->tensors[t].name.substr(2))]);
  return cpu_fast_matches_reference(plan, inputs, rtol, atol, plan->nodes.size());
}

::testing::AssertionResult channels_last_matches_nchw(OpSpec spec, double rtol, double atol) {
  std::vector<HostTensor> want, got;
  spec.layout = ActivationLayout::kChannelsFirst;
  Status st = run_op(spec, "cpu", &want);
  if (!st) return ::testing::AssertionFailure() << "cpu, NCHW: " << st.message();
  spec.layout = ActivationLayout::kChannelsLast;
  for (const char* device : {"cpu", "opencl"}) {
    if (std::string(device) == "opencl" && !have_opencl()) continue;
    Plan p;
    st = run_op(spec, device, &got, &p);
    if (!st) return ::testing::AssertionFailure() << device << ": " << st.message();
    int nhwc = 0, transposes = 0;
    for (const PlanNode& n : p.nodes) {
      nhwc += n.op == spec.op_type && is_channels_last(n.attrs);
      transposes += n.op == "Transpose";
    }
    if (nhwc != 1 || transposes != 2)
      return ::testing::AssertionFailure() << device << ": " << nhwc << " channels-last " << spec.op_type << ", "
                                           << transposes << " Transposes (want 1 and 2)";
    auto r = tensors_close(got[0], want[0], rtol, atol);
    if (!r) return r << " (" << device << ")";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult opencl_matches_cpu(const OpSpec& spec, double rtol, double atol) {
  std::vector<HostTensor> want, got;
  Status st;
  {
    // The CPU reference kernels are the oracle, not the cpu device's fast path.
    ScopedEnv ref("KILN_CPU_REFERENCE", "1");
    st = run_op(spec, "cpu", &want);
  }
  if (!st) return ::testing::AssertionFailure() << "cpu: " << st.message();
  Plan plan;
  st = run_op(spec, "opencl", &got, &plan);
  if (!st) return ::testing::AssertionFailure() << "opencl: " << st.message();
  bool any_cl = false;
  for (const PlanNode& n : plan.nodes) any_cl |= n.backend == Backend::kOpenCL;
  if (!any_cl && !plan.nodes.empty())
    return ::testing::AssertionFailure() << spec.op_type << ": no node was assigned to OpenCL";
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "output count differs";
  for (size_t i = 0; i < got.size(); ++i) {
    auto r = tensors_close(got[i], want[i], rtol, atol);
    if (!r) return ::testing::AssertionFailure() << spec.op_type << " output " << i << ": " << r.message();
  }
  return ::testing::AssertionSuccess();
}

HostTensor scalar_f32(float v) {
  HostTensor t(DType::kFloat32, {});
  t.as<float>()[0] = v;
  return t;
}

HostTensor tensor_of(DType dtype, const Shape& shape, const std::vector<double>& v) {
  HostTensor t(dtype, shape);
  for (int64_t i = 0; i < t.numel(); ++i) tensor_store_double(t, i, v[static_cast<size_t>(i) % v.size()]);
  return t;
}

HostTensor scalar_of(DType dtype, double v) { return tensor_of(dtype, {}, {v}); }

HostTensor random_tensor(DType dtype, const Shape& shape, std::mt19937& rng, double lo, double hi) {
  HostTensor t(dtype, shape);
  std::uniform_real_distribution<double> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = u(rng);
    switch (dtype) {
      case DType::kFloat32: t.as<float>()[i] = static_cast<float>(v); break;
      case DType::kFloat64: t.as<double>()[i] = v; break;
      case DType::kInt64: t.as<int64_t>()[i] = static_cast<int64_t>(std::lround(v)); break;
      case DType::kInt32: t.as<int32_t>()[i] = static_cast<int32_t>(std::lround(v)); break;
      case DType::kInt8: t.as<int8_t>()[i] = static_cast<int8_t>(std::lround(v)); break;
      case DType::kUInt8: t.as<uint8_t>()[i] = static_cast<uint8_t>(std::lround(std::fabs(v))); break;
      case DType::kBool: t.as<uint8_t>()[i] = v > (lo + hi) / 2 ? 1 : 0; break;
      default: break;
    }
  }
  return t;
}

Shape random_shape(int rank, std::mt19937& rng, int max_dim) {
  std::uniform_int_distribution<int> d(1, max_dim);
  Shape s(rank);
  for (auto& x : s) x = d(rng);
  return s;
}

bool have_opencl() { return !opencl_devices().empty(); }

bool opencl_offers_mma(mma::Elem e) {
  if (!have_opencl()) return false;
  ResolvedDevice d;
  return resolve_device("opencl", &d).is_ok() && mma::available(d.caps, e);
}

}  // namespace kiln::test
