#include "compiler/plan/select_kernels.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "runtime/core/half.h"
#include "runtime/exec/execution_context.h"
#include "runtime/ops/kernel_api.h"
#include "runtime/plan/plan_format.h"
#include "runtime/profile/profiler.h"

namespace kiln {
namespace {

constexpr const char* kCacheHeader = "kiln tuning cache 1";

// What makes two nodes the same layer for timing: op, operand kinds, dtypes, shapes, attributes.
std::string layer_key(const Plan& p, const PlanNode& n) {
  std::ostringstream s;
  s << n.op;
  for (int32_t t : n.inputs) {
    if (t < 0) {
      s << " -";
      continue;
    }
    const PlanTensor& pt = p.tensors[t];
    s << ' ' << (pt.kind == TensorKind::kConstant ? 'c' : 'a') << dtype_name(pt.dtype) << shape_str(pt.shape);
  }
  for (int32_t t : n.outputs) s << " ->" << dtype_name(p.tensors[t].dtype) << shape_str(p.tensors[t].shape);
  s << ' ' << n.attrs.to_string();
  return s.str();
}

// Timings by "device \t driver \t layer \t choice".
class TuningCache {
 public:
  Status load(const std::string& path) {
    path_ = path;
    if (path.empty()) return Status::ok();
    std::ifstream f(path);
    if (!f) return Status::ok();  // written after this build
    std::string line;
    if (!std::getline(f, line) || line != kCacheHeader)
      return invalid_argument("--tuning-cache '" + path + "' is not a kiln tuning cache (first line '" + kCacheHeader + "')");
    int lineno = 1;
    while (std::getline(f, line)) {
      ++lineno;
      const size_t tab = line.find('\t');
      char* end = nullptr;
      const double us = tab == std::string::npos ? 0 : std::strtod(line.c_str(), &end);
      if (tab == std::string::npos || end != line.c_str() + tab || !(us > 0))
        return invalid_argument("--tuning-cache '" + path + "' line " + std::to_string(lineno) +
                                ": expected MICROSECONDS<tab>KEY");
      times_[line.substr(tab + 1)] = us;
    }
    return Status::ok();
  }
  bool find(const std::string& key, double* us) const {
    auto it = times_.find(key);
    if (it == times_.end()) return false;
    *us = it->second;
    return true;
  }
  void put(const std::string& key, double us) {
    times_[key] = us;
    dirty_ = true;
  }
  Status save() {
    if (path_.empty() || !dirty_) return Status::ok();
    dirty_ = false;
    const std::string tmp = path_ + ".tmp" + std::to_string(::getpid());
    {
      std::ofstream f(tmp);
      f << kCacheHeader << '\n';
      for (const auto& [k, us] : times_) f << us << '\t' << k << '\n';
      if (!f) return io_error("cannot write --tuning-cache '" + path_ + "'");
    }
    if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
      std::remove(tmp.c_str());
      return io_error("cannot move --tuning-cache '" + path_ + "' into place");
    }
    return Status::ok();
  }

 private:
  std::string path_;
  std::map<std::string, double> times_;
  bool dirty_ = false;
};

void fill_random(HostTensor* t, std::mt19937* rng) {
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  const int64_t n = t->numel();
  switch (t->dtype()) {
    case DType::kFloat32:
      for (int64_t i = 0; i < n; ++i) t->as<float>()[i] = uf(*rng);
      break;
    case DType::kFloat16:
      for (int64_t i = 0; i < n; ++i) t->as<uint16_t>()[i] = float_to_half(uf(*rng));
      break;
    default:
      // Integer and FP8 codes; the FP8 mask keeps clear of the NaN codes.
      for (uint8_t& b : t->bytes()) b = static_cast<uint8_t>((*rng)() & 0x77);
      break;
  }
}

// The node alone in a plan: its constants kept, its other inputs made plan inputs.
std::shared_ptr<Plan> single_node_plan(const Plan& p, const PlanNode& n) {
  auto q = std::make_shared<Plan>();
  q->format_version = kPlanFormatVersion;
  q->writer_version = p.writer_version;
  q->model_name = "tune";
  q->target = p.target;
  q->required_caps = {"opencl"};
  std::map<int32_t, int32_t> index;
  auto add = [&](int32_t t, TensorKind kind) {
    PlanTensor pt = p.tensors[t];
    pt.kind = kind;
    if (kind == TensorKind::kConstant) {
      while (q->weights.size() % kWeightAlignment) q->weights.push_back(0);
      pt.weight_offset = q->weights.size();
      const uint8_t* d = p.weight_data(p.tensors[t]);
      q->weights.insert(q->weights.end(), d, d + pt.weight_bytes);
    } else {
      pt.weight_offset = pt.weight_bytes = 0;
    }
    q->tensors.push_back(pt);
    return index[t] = static_cast<int32_t>(q->tensors.size() - 1);
  };
  PlanNode node = n;
  node.inputs.clear();
  node.outputs.clear();
  for (int32_t t : n.inputs) {
    if (t < 0) {
      node.inputs.push_back(-1);
      continue;
    }
    auto it = index.find(t);
    if (it != index.end()) {
      node.inputs.push_back(it->second);
      continue;
    }
    const bool constant = p.tensors[t].kind == TensorKind::kConstant;
    node.inputs.push_back(add(t, constant ? TensorKind::kConstant : TensorKind::kInput));
    if (!constant) q->inputs.push_back(node.inputs.back());
  }
  for (int32_t t : n.outputs) {
    node.outputs.push_back(add(t, TensorKind::kActivation));
    q->outputs.push_back(node.outputs.back());
  }
  q->nodes.push_back(std::move(node));
  q->segments = compute_segments(*q);
  return q;
}

// Median device time of the node's kernel(s) over several runs, in microseconds.
Status time_choice(const Plan& p, const PlanNode& n, const KernelChoice& c, const std::string& device, double* us) {
  std::shared_ptr<Plan> q = single_node_plan(p, n);
  q->nodes[0].choice = c;
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(q, device, &ctx, &notice));
  std::mt19937 rng(7);
  std::vector<HostTensor> ins, outs;
  for (int32_t t : q->inputs) {
    ins.emplace_back(q->tensors[t].dtype, q->tensors[t].shape);
    fill_random(&ins.back(), &rng);
    KILN_TRY(ctx->bind_input(q->tensors[t].name, ins.back().dtype(), ins.back().shape(), ins.back().data(),
                             ins.back().size_bytes()));
  }
  for (int32_t t : q->outputs) {
    outs.emplace_back(q->tensors[t].dtype, q->tensors[t].shape);
    KILN_TRY(ctx->bind_output(q->tensors[t].name, outs.back().data(), outs.back().size_bytes()));
  }
  // Compiles the kernels: a variant that fails here does not build or launch on this device.
  if (const Status first = ctx->run(); !first) return unsupported(first.message());
  Profiler prof;
  ctx->set_profiler(&prof);
  std::vector<double> v;
  for (int i = 0; i < 7; ++i) {
    prof.clear();
    prof.begin_run();
    KILN_TRY(ctx->run());
    for (const ProfileEvent& e : prof.events())
      if (e.kind == ProfileEvent::Kind::kNode) v.push_back((e.end_ns - e.start_ns) / 1e3);
  }
  ctx->set_profiler(nullptr);
  if (v.empty()) return internal_error("no timing for node '" + n.name + "'");
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  *us = std::max(v[v.size() / 2], 1e-3);
  return Status::ok();
}

}  // namespace

Status check_tuning_cache(const std::string& path) {
  TuningCache cache;
  return cache.load(path);
}

Status select_kernels(Plan* plan, const ResolvedDevice& target, const KernelSelectOptions& opts) {
  if (target.backend != Backend::kOpenCL) return Status::ok();
  TuningCache cache;
  if (opts.tune) KILN_TRY(cache.load(opts.cache_path));
  const std::string device = "opencl:" + std::to_string(target.opencl_index);
  const DeviceCaps& caps = target.caps;
  std::map<std::string, KernelChoice> tuned;  // by layer key
  for (PlanNode& n : plan->nodes) {
    n.choice = {};
    if (n.backend != Backend::kOpenCL) continue;
    const std::vector<KernelChoice> cands = opencl_variants(n, *plan, caps);
    if (cands.empty()) continue;
    if (!opts.tune) {
      n.choice = cands.front();
      continue;
    }
    const std::string layer = layer_key(*plan, n);
    auto done = tuned.find(layer);
    if (done != tuned.end()) {
      n.choice = done->second;
      continue;
    }
    std::vector<KernelChoice> all = cands;
    all.push_back(KernelChoice{});  // the portable kernel competes too
    KernelChoice best;
    double best_us = 0, portable_us = 0;
    for (const KernelChoice& c : all) {
      const std::string key = caps.name + '\t' + caps.driver_version + '\t' + layer + '\t' + c.str();
      double us;
      if (!cache.find(key, &us)) {
        const Status st = time_choice(*plan, n, c, device, &us);
        if (st.code() == StatusCode::kUnsupported && !c.empty()) {
          // A variant this device cannot build or launch (a driver's limit, say) is one
          // candidate fewer, not a failed build: the portable kernel always competes. (A
          // failure while it is timed still ends the build, keeping what was timed.)
          if (opts.report) {
            const std::string why = st.message().substr(0, st.message().find('\n'));
            std::fprintf(opts.report, "tune: %-32s %-40s skipped: %s\n", n.name.c_str(), c.str().c_str(), why.c_str());
          }
          continue;
        }
        if (!st) {
          (void)cache.save();  // what was timed before stays timed
          return st.with_context("tuning node '" + n.name + "' (" + c.str() + ")");
        }
        cache.put(key, us);
      }
      if (c.empty()) portable_us = us;
      if (best_us == 0 || us < best_us) {
        best_us = us;
        best = c;
      }
    }
    tuned[layer] = best;
    n.choice = best;
    // Written after every layer: a tuning run cut off (a time limit, Ctrl-C) keeps its timings.
    KILN_TRY(cache.save());
    if (opts.report)
      std::fprintf(opts.report, "tune: %-32s %-40s %9.1f us (portable %9.1f us)\n", n.name.c_str(), best.str().c_str(),
                   best_us, portable_us);
  }
  return cache.save();
}

}  // namespace kiln
