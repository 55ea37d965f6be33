#include "runtime/backends/cpu/fast_cpu.h"

#include <cstdlib>
#include <functional>
#include <numeric>

#include "runtime/backends/cpu/cpu_threads.h"
#include "runtime/backends/cpu/dnnl_common.h"
#include "runtime/backends/cpu/fast_float16.h"
#include "runtime/backends/cpu/fast_nonfinite.h"
#include "runtime/core/fault_injection.h"
#include "runtime/profile/cpu_speed.h"
#include "runtime/profile/node_cost.h"

namespace kiln {

#define KILN_FAST_FAMILY(family) void register_##family##_fast(FastRegistry&);
#include "runtime/backends/cpu/fast_ops.def"
#undef KILN_FAST_FAMILY

const FastRegistry& fast_registry() {
  static const FastRegistry registry = [] {
    FastRegistry r;
#define KILN_FAST_FAMILY(family) register_##family##_fast(r);
#include "runtime/backends/cpu/fast_ops.def"
#undef KILN_FAST_FAMILY
    return r;
  }();
  return registry;
}

bool cpu_reference_forced() {
  const char* e = std::getenv("KILN_CPU_REFERENCE");
  return e && *e && std::string(e) != "0";
}

// ---- FastCpuPlan ----

std::shared_ptr<FastCpuPlan> FastCpuPlan::get(const std::shared_ptr<const Plan>& plan) {
  static std::mutex mu;
  static std::map<const Plan*, std::weak_ptr<FastCpuPlan>> live;
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = live.begin(); it != live.end();) it = it->second.expired() ? live.erase(it) : std::next(it);
  if (auto p = live[plan.get()].lock()) return p;
  auto p = std::make_shared<FastCpuPlan>();
  p->plan_ = plan;
  p->tried_.assign(plan->nodes.size(), 0);
  p->nodes_.resize(plan->nodes.size());
  live[plan.get()] = p;
  return p;
}

Status FastCpuPlan::node(size_t n, std::shared_ptr<const FastNodePlan>* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!tried_[n]) {
    const PlanNode& node = plan_->nodes[n];
    if (FastPrepareFn fn = fast_registry().find(node.op)) {
      // Prepared with the default team size, the one runs most likely use, so the weights'
      // layout is the one their primitives pick.
      const int saved = thread_team_size();
      set_thread_team_size(default_cpu_threads());
      Status st;
      try {
        if (widens_float16(*plan_, node)) {
          // Prepared on the float32 view of the plan: weights widened once, here.
          if (!widened_) widened_ = widened_plan(*plan_);
          std::shared_ptr<const FastNodePlan> inner;
          st = fn(*widened_, widened_->nodes[n], &inner);
          if (st.is_ok() && inner) nodes_[n] = float16_node(std::move(inner));
        } else {
          st = fn(*plan_, node, &nodes_[n]);
        }
      } catch (const dnnl::error& e) {
        st = internal_error(std::string("oneDNN: ") + e.what());
      } catch (const std::bad_alloc&) {
        st = out_of_memory("host allocation failed");
      }
      set_thread_team_size(saved);
      if (!st) return st.with_context("node '" + node.name + "' (" + node.op + ", cpu fast path)");
    }
    tried_[n] = 1;
  }
  *out = nodes_[n];
  return Status::ok();
}

// ---- FastCpu ----

FastCpu::~FastCpu() = default;

Status FastCpu::create(const std::shared_ptr<const Plan>& plan, const std::vector<Backend>& backends,
                       std::unique_ptr<FastCpu>* out) {
  out->reset();
  if (cpu_reference_forced()) return Status::ok();
  std::unique_ptr<FastCpu> f(new FastCpu());
  f->plan_ = plan;
  f->shared_ = FastCpuPlan::get(plan);
  const size_t nn = plan->nodes.size();
  f->plans_.resize(nn);
  f->kernels_.resize(nn);
  bool any = false;
  for (size_t n = 0; n < nn; ++n) {
    if (backends[n] != Backend::kCpu) continue;
    KILN_TRY(f->shared_->node(n, &f->plans_[n]));
    if (!f->plans_[n]) continue;
    f->kernels_[n] = f->plans_[n]->instance();
    any = true;
  }
  if (!any) return Status::ok();
  f->ctx_ = std::make_unique<FastRunContext>();
  f->reference_.assign(nn, 0);
  f->solve_layouts(backends);
  // A node whose single-thread time (by the measured host speed) is below ~20 us runs on one
  // thread: an OpenMP fork/join and oneDNN's split cost more than that, and far more on a
  // loaded host where the team's threads wait to be scheduled.
  constexpr double kParallelMinUs = 20;
  const CpuSpeed& speed = measured_cpu_speed();
  f->one_thread_.assign(nn, 0);
  for (size_t n = 0; n < nn; ++n) {
    if (!f->kernels_[n]) continue;
    const NodeCost c = node_cost(*plan, plan->nodes[n]);
    double us = std::max(c.flops / (speed.gflops_one_thread * 1e3), static_cast<double>(c.bytes) / (speed.gbps * 1e3));
    const PlanNode& node = plan->nodes[n];
    if (!node.outputs.empty() && node.outputs[0] >= 0)
      us = std::max(us, f->plans_[n]->ns_per_output() * static_cast<double>(shape_numel(plan->tensors[node.outputs[0]].shape)) / 1e3);
    f->one_thread_[n] = us < kParallelMinUs;
  }
  *out = std::move(f);
  return Status::ok();
}

void FastCpu::solve_layouts(const std::vector<Backend>& backends) {
  const Plan& p = *plan_;
  const size_t nt = p.tensors.size();
  layouts_.assign(nt, HostLayout::kPlain);
  // Whether each tensor may be channels-last: every node touching it is a fast CPU node that
  // accepts another layout there, and nothing outside the nodes reads it.
  std::vector<uint8_t> ok(nt, 0), benefit(nt, 0), produced(nt, 0);
  for (size_t t = 0; t < nt; ++t) {
    const PlanTensor& pt = p.tensors[t];
    ok[t] = pt.kind == TensorKind::kActivation && pt.shape.size() == 4 &&
            (pt.dtype == DType::kFloat32 || pt.dtype == DType::kInt8 || pt.dtype == DType::kUInt8);
  }
  for (int32_t t : p.outputs) ok[t] = 0;
  std::vector<int32_t> parent(nt);
  std::iota(parent.begin(), parent.end(), 0);
  std::function<int32_t(int32_t)> find = [&](int32_t x) { return parent[x] == x ? x : parent[x] = find(parent[x]); };
  auto touch = [&](int32_t t, bool fast, LayoutUse use) {
    if (t < 0) return;
    if (!fast || use == LayoutUse::kPlain) ok[t] = 0;
    if (fast && use == LayoutUse::kAny) benefit[t] = 1;
  };
  for (size_t n = 0; n < p.nodes.size(); ++n) {
    const PlanNode& node = p.nodes[n];
    const FastNodePlan* fp = backends[n] == Backend::kCpu ? plans_[n].get() : nullptr;
    int32_t follow = -1;  // the first kFollow output: the one every kFollow operand joins
    for (size_t j = 0; j < node.outputs.size(); ++j) {
      const int32_t t = node.outputs[j];
      if (t < 0) continue;
      produced[t] = 1;
      const LayoutUse use = fp ? fp->output_use(j) : LayoutUse::kPlain;
      touch(t, fp != nullptr, use);
      if (use != LayoutUse::kFollow) continue;
      if (follow < 0) follow = t;
      else parent[find(t)] = find(follow);  // Split: every part in the layout of the first
    }
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int32_t t = node.inputs[i];
      if (t < 0) continue;
      const LayoutUse use = fp ? fp->input_use(i) : LayoutUse::kPlain;
      touch(t, fp != nullptr, use);
      if (use == LayoutUse::kFollow) {
        if (follow < 0) ok[t] = 0;
        else parent[find(t)] = find(follow);
      }
    }
  }
  for (size_t t = 0; t < nt; ++t)
    if (!produced[t]) ok[t] = 0;
  // A group joined by elementwise programs is channels-last only as a whole, and only when a
  // convolution or pooling in it gains from that.
  std::vector<uint8_t> group_ok(nt, 1), group_benefit(nt, 0);
  for (size_t t = 0; t < nt; ++t) {
    const int32_t r = find(static_cast<int32_t>(t));
    group_ok[r] &= ok[t];
    group_benefit[r] |= benefit[t];
  }
  for (size_t t = 0; t < nt; ++t) {
    const int32_t r = find(static_cast<int32_t>(t));
    if (group_ok[r] && group_benefit[r]) layouts_[t] = HostLayout::kChannelsLast;
  }
}

FastCpu::Run::Run(FastCpu* f, bool plain_only) : f_(f) {
  if (!f_) return;
  f_->plain_only_ = plain_only;
  saved_team_ = thread_team_size();
  const int share = inference_cpu_threads();
  f_->run_threads_ = share > 0 ? share : default_cpu_threads();
  f_->team_ = saved_team_;
  f_->finite_.assign(f_->plan_->tensors.size(), 0);
}

FastCpu::Run::~Run() {
  if (!f_) return;
  set_thread_team_size(saved_team_);
}

Status FastCpu::run(size_t n, const PlanNode& node, const std::vector<TensorView>& inputs,
                    const std::vector<TensorView>& outputs, bool* on_reference) {
  if (on_reference) *on_reference = false;
  const int team = one_thread_[n] ? 1 : run_threads_;
  if (team != team_) {
    set_thread_team_size(team);
    team_ = team;
  }
  ctx_->threads = team;
  in_l_.assign(inputs.size(), HostLayout::kPlain);
  out_l_.assign(outputs.size(), HostLayout::kPlain);
  if (!plain_only_) {
    for (size_t i = 0; i < node.inputs.size() && i < inputs.size(); ++i)
      if (node.inputs[i] >= 0) in_l_[i] = layouts_[node.inputs[i]];
    for (size_t i = 0; i < node.outputs.size() && i < outputs.size(); ++i) out_l_[i] = layouts_[node.outputs[i]];
  }
  auto reference = [&](const char* why) {
    if (on_reference) *on_reference = true;
    return run_reference_in_layouts(node, inputs, outputs, in_l_, out_l_)
        .with_context("node '" + node.name + "' (" + node.op + ", cpu reference: " + why + ")");
  };
  Status st;
  if (activation_drops_nan(node) && has_non_finite_operand(*plan_, node, inputs, &finite_, team))
    return reference("non-finite input");
  if (reference_[n]) return reference("no oneDNN kernel");
  try {
    if (fault_now(FaultSite::kKernelScratch)) throw std::bad_alloc();
    st = kernels_[n]->run(FastRunArgs{node, inputs, outputs, in_l_, out_l_, *ctx_});
    if (st && dnnl_util::guard_scratch()) st = ctx_->check_guards();
  } catch (const dnnl::error& e) {
    st = e.status == dnnl_out_of_memory ? out_of_memory("oneDNN could not allocate the kernel's scratch buffers")
                                        : internal_error(std::string("oneDNN: ") + e.what());
  } catch (const std::bad_alloc&) {
    // Primitives and their scratch buffers are made on a context's first run at each shape.
    st = out_of_memory("no host memory for the CPU kernel's scratch buffers");
  }
  if (st.code() == StatusCode::kUnsupported) {
    // The kernel found no oneDNN primitive it could create here (before writing anything): this
    // node runs on the reference kernel from now on.
    reference_[n] = 1;
    return reference("no oneDNN kernel");
  }
  if (!st) return st.with_context("node '" + node.name + "' (" + node.op + ", cpu " + plans_[n]->name() + ")");
  return st;
}

}  // namespace kiln
