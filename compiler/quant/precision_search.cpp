#include "compiler/quant/precision_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "compiler/quant/accuracy.h"
#include "compiler/quant/precision.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/partition.h"

namespace kiln {

namespace {

bool calibrated(const std::string& precision) {
  Precision p;
  return parse_precision(precision, &p).is_ok() && calibrated_precision(p);
}

// The accuracy check applies: a build with calibration data in which some layer is INT8/FP8.
bool default_check(const BuildOptions& opts) {
  if (!opts.accuracy_check || !opts.has_calibration_data()) return false;
  if (calibrated(opts.precision)) return true;
  for (const auto& [node, p] : opts.layer_precision)
    if (calibrated(p)) return true;
  return false;
}

}  // namespace

bool needs_precision_search(const BuildOptions& opts) {
  return opts.precision == "best" || opts.accuracy_budget > 0 || default_check(opts);
}

namespace {

// The reduced precisions `best` tries, in this order of preference when costs tie.
const char* const kReducedPrecisions[] = {"int8", "fp8", "fp16", "fp8-e5m2"};

bool reduced_dtype(DType t) {
  switch (t) {
    case DType::kInt8: case DType::kUInt8: case DType::kFloat16: case DType::kBFloat16:
    case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2: case DType::kFloat8E5M2FNUZ:
      return true;
    default:
      return false;
  }
}

// A layer: the ONNX node names one plan node carries (a fused group), assigned together.
struct Layer {
  std::string name;
  std::set<std::string> keys;
  std::vector<std::string> candidates;                // reduced precisions that convert it
  std::map<std::string, double> solo_error, solo_cost;  // by precision, this layer alone
  std::vector<std::string> ladder;                    // fastest first, ending in (fp16,) fp32
};

struct Measured {
  WorstError error;
  double cost_us = 0;
};

class Search {
 public:
  Search(const PlanBuildFn& build, const BuildOptions& opts, BuildOptions* chosen)
      : build_(build), opts_(opts), out_(opts.report), chosen_(chosen) {}
  Status run(Plan* out);

 private:
  Status init();
  Status measure(const BuildOptions& o, Measured* m, std::shared_ptr<Plan>* plan = nullptr);
  Status measure_plan(const std::shared_ptr<Plan>& plan, Measured* m);
  Status time_plan(std::shared_ptr<const Plan> plan, double* us);
  Status find_layers(const std::string& precision, const Plan& plan);
  BuildOptions with_layers(const std::string& default_precision, const std::map<size_t, std::string>& assignment) const;
  void say(const char* fmt, ...) const;
  // Costs are measured latencies (--tune, on the target device itself), else estimates.
  bool timed() const { return opts_.tune && measured_for_.empty(); }
  // *chosen_ (when given): options that build the plan the search settled on without searching.
  void choose(const std::string& default_precision, const std::map<size_t, std::string>& assignment);

  PlanBuildFn build_;
  BuildOptions opts_, base_;
  std::FILE* out_;
  BuildOptions* chosen_;
  bool best_ = false;
  bool check_ = false;  // the default accuracy check of a calibrated build
  double budget_ = 0;
  std::string device_;        // where plans are measured
  std::string measured_for_;  // the target device, when device_ stands in for it
  ScratchCalibCache scratch_cache_;
  std::shared_ptr<Plan> ref_plan_;
  std::vector<CalibrationSample> samples_;
  std::vector<std::vector<HostTensor>> ref_out_;
  std::set<std::string> onnx_names_;
  std::vector<Layer> layers_;
  std::map<std::string, size_t> layer_of_key_;
};

void Search::say(const char* fmt, ...) const {
  if (!out_) return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(out_, fmt, ap);
  va_end(ap);
}

void Search::choose(const std::string& default_precision, const std::map<size_t, std::string>& assignment) {
  if (!chosen_) return;
  *chosen_ = opts_;
  chosen_->precision = default_precision;
  chosen_->accuracy_budget = 0;
  for (const auto& [li, p] : assignment)
    if (p != default_precision)
      for (const std::string& key : layers_[li].keys) chosen_->layer_precision[key] = p;
}

Status Search::init() {
  best_ = opts_.precision == "best";
  check_ = !best_ && !(opts_.accuracy_budget > 0);
  budget_ = opts_.accuracy_budget > 0 ? opts_.accuracy_budget : check_ ? kCheckAccuracyBudget : kDefaultAccuracyBudget;
  const std::string what = best_ ? "--precision best" : "--accuracy-budget";
  if (!opts_.has_calibration_data())
    return invalid_argument(what + " needs --calib DIR: the samples on which the outputs are measured against FP32");
  ResolvedDevice target;
  KILN_TRY(resolve_build_device(opts_.device, &target));
  device_ = target.backend == Backend::kCpu ? "cpu" : "opencl:" + std::to_string(target.opencl_index);
  // The check on an OpenCL CPU device (PoCL) measures on kiln's cpu backend, which runs the
  // same plans with the same integer results at oneDNN's speed: PoCL takes seconds per run of a
  // real CNN, and the check's sensitivity pass runs every sample once per layer.
  if (check_ && target.backend == Backend::kOpenCL && (opencl_devices()[target.opencl_index].type & CL_DEVICE_TYPE_CPU)) {
    measured_for_ = device_;
    device_ = "cpu";
  }

  base_ = opts_;
  base_.accuracy_budget = 0;
  base_.tune = false;
  base_.report = nullptr;
  if (base_.calib_cache.empty()) {
    // One calibration for all the builds below.
    KILN_TRY(scratch_cache_.create());
    base_.calib_cache_dir = scratch_cache_.dir();
  }

  BuildOptions ref = base_;
  ref.precision = "fp32";
  ref.layer_precision.clear();
  ref.device = "cpu";
  ref.partition = PartitionOptions{};
  ref.io_dtype = DType::kFloat32;  // the samples' dtype and the model's
  ref_plan_ = std::make_shared<Plan>();
  KILN_TRY_CTX(build_(ref, ref_plan_.get()), "building the FP32 reference");
  for (const PlanNode& n : ref_plan_->nodes) {
    onnx_names_.insert(n.name);
    onnx_names_.insert(n.fused.begin(), n.fused.end());
  }
  KILN_TRY(calibration_samples(opts_.calib_dir, opts_.calib_samples.get(), plan_input_specs(*ref_plan_), &samples_));
  KILN_TRY_CTX(run_on_samples(ref_plan_, "cpu", samples_, &ref_out_), "running the FP32 reference");
  if (check_)
    say("accuracy check: relative L2 error <= %g on every output over %zu calibration samples (measured on %s%s; "
        "--accuracy-budget X sets another budget, --no-accuracy-check skips the check)\n",
        budget_, samples_.size(), device_.c_str(),
        measured_for_.empty() ? "" : (" for " + measured_for_ + ", a CPU device").c_str());
  else
    say("accuracy budget: relative L2 error <= %g on every output over %zu calibration samples%s (measured on %s)\n",
        budget_, samples_.size(), opts_.accuracy_budget > 0 ? "" : " (the default)", device_.c_str());
  return Status::ok();
}

Status Search::time_plan(std::shared_ptr<const Plan> plan, double* us) {
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  KILN_TRY(ExecutionContext::create(plan, device_, &ctx, &notice));
  std::vector<HostTensor> outs;
  for (int32_t t : plan->outputs) outs.emplace_back(plan->tensors[t].dtype, plan->tensors[t].shape);
  for (size_t i = 0; i < outs.size(); ++i)
    KILN_TRY(ctx->bind_output(plan->tensors[plan->outputs[i]].name, outs[i].data(), outs[i].size_bytes()));
  std::deque<HostTensor> converted;  // inputs the plan takes as float16 (--io-precision fp16)
  for (const auto& [name, t] : samples_[0]) {
    const HostTensor& in = as_plan_input(*plan, name, t, &converted);
    KILN_TRY(ctx->bind_input(name, in.dtype(), in.shape(), in.data(), in.size_bytes()));
  }
  for (int i = 0; i < 3; ++i) KILN_TRY(ctx->run());
  std::vector<double> v;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    KILN_TRY(ctx->run());
    v.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  // The fastest run: other load on the machine only ever adds time.
  *us = *std::min_element(v.begin(), v.end());
  return Status::ok();
}

Status Search::measure(const BuildOptions& o, Measured* m, std::shared_ptr<Plan>* keep) {
  auto plan = std::make_shared<Plan>();
  KILN_TRY(build_(o, plan.get()));
  if (keep) *keep = plan;
  return measure_plan(plan, m);
}

Status Search::measure_plan(const std::shared_ptr<Plan>& plan, Measured* m) {
  std::vector<std::vector<HostTensor>> got;
  KILN_TRY(run_on_samples(plan, device_, samples_, &got));
  KILN_TRY(worst_output_error(*plan, got, *ref_plan_, ref_out_, &m->error, budget_));
  if (timed()) KILN_TRY(time_plan(plan, &m->cost_us));
  else m->cost_us = estimated_plan_us(*plan);
  return Status::ok();
}

// Every plan node computing in a reduced dtype is a layer of `precision`, named by the ONNX
// nodes it carries (inserted Quantize/Dequantize nodes carry none and are skipped). Layers of
// different precisions that share an ONNX node are one layer.
Status Search::find_layers(const std::string& precision, const Plan& plan) {
  for (const PlanNode& n : plan.nodes) {
    bool reduced = false;
    for (int32_t t : n.inputs) reduced |= t >= 0 && reduced_dtype(plan.tensors[t].dtype);
    for (int32_t t : n.outputs) reduced |= reduced_dtype(plan.tensors[t].dtype);
    if (!reduced) continue;
    std::set<std::string> keys;
    if (onnx_names_.count(n.name)) keys.insert(n.name);
    for (const std::string& f : n.fused)
      if (onnx_names_.count(f)) keys.insert(f);
    bool user_fixed = false;
    for (const std::string& k : keys) user_fixed |= opts_.layer_precision.count(k) != 0;
    if (keys.empty() || user_fixed) continue;
    size_t li = layers_.size();
    for (const std::string& k : keys)
      if (layer_of_key_.count(k)) li = layer_of_key_[k];
    if (li == layers_.size()) layers_.push_back(Layer{onnx_names_.count(n.name) ? n.name : *keys.begin(), {}, {}, {}, {}, {}});
    Layer& l = layers_[li];
    for (const std::string& k : keys) {
      l.keys.insert(k);
      layer_of_key_[k] = li;
    }
    if (std::find(l.candidates.begin(), l.candidates.end(), precision) == l.candidates.end())
      l.candidates.push_back(precision);
  }
  return Status::ok();
}

BuildOptions Search::with_layers(const std::string& default_precision,
                                 const std::map<size_t, std::string>& assignment) const {
  BuildOptions o = base_;
  o.precision = default_precision;
  for (const auto& [li, p] : assignment)
    for (const std::string& k : layers_[li].keys) o.layer_precision[k] = p;
  return o;
}

std::string fmt_error(const WorstError& e) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%.4g (output '%s'%s%s, sample %zu)", e.rel_l2, e.output.c_str(),
                e.part.empty() ? "" : " ", e.part.c_str(), e.sample + 1);
  return buf;
}

Status Search::run(Plan* out) {
  KILN_TRY(init());
  // 1. The candidate precisions, each built for the whole model.
  std::vector<std::string> candidates;
  if (best_) candidates.assign(std::begin(kReducedPrecisions), std::end(kReducedPrecisions));
  else candidates.push_back(opts_.precision);
  bool calibration_shown = false;
  std::shared_ptr<Plan> whole;  // the plan in --precision (not for best): the search's start
  for (const std::string& p : candidates) {
    if (p == "fp32") continue;
    BuildOptions o = base_;
    o.precision = p;
    o.report = calibration_shown ? nullptr : opts_.report;  // the calibration table, once
    auto built = std::make_shared<Plan>();
    Plan& plan = *built;
    Status st = build_(o, &plan);
    if (st.code() == StatusCode::kUnsupported && best_) {
      say("%s: not available: %s\n", p.c_str(), st.message().c_str());
      continue;
    }
    KILN_TRY_CTX(st, "building the model in " + p);
    calibration_shown = true;
    if (!best_) whole = built;
    KILN_TRY(find_layers(p, plan));
    size_t n = 0;
    for (const Layer& l : layers_) n += std::count(l.candidates.begin(), l.candidates.end(), p);
    say("%s: %zu layers run in it\n", p.c_str(), n);
  }

  // A budget build that already holds in --precision needs no sensitivity measurements.
  if (!best_) {
    Measured m;
    // (--precision fp32 with reduced --layer-precision overrides builds no candidate above.)
    if (whole) KILN_TRY(measure_plan(whole, &m).with_context("measuring the plan in " + opts_.precision));
    else KILN_TRY(measure(with_layers(opts_.precision, {}), &m, &whole).with_context("measuring the plan in " + opts_.precision));
    if (m.error.rel_l2 <= budget_) {
      say("every layer in %s%s: worst output error %s <= %g: no layer moved\n", opts_.precision.c_str(),
          opts_.layer_precision.empty() ? "" : " (but the --layer-precision ones)", fmt_error(m.error).c_str(), budget_);
      *out = std::move(*whole);
      choose(opts_.precision, {});
      return Status::ok();
    }
  }

  // 2. Each layer alone in each of its candidate precisions.
  BuildOptions all32 = base_;
  all32.precision = "fp32";
  Measured m32;
  KILN_TRY_CTX(measure(all32, &m32), "measuring the FP32 plan");
  if (!layers_.empty())
    say("sensitivity (each layer alone in reduced precision, the rest fp32; cost by %s, fp32 plan %.1f us):\n",
        timed() ? "measured latency" : "the cost model", m32.cost_us);
  for (size_t li = 0; li < layers_.size(); ++li) {
    Layer& l = layers_[li];
    for (const std::string& p : l.candidates) {
      Measured m;
      Status st = measure(with_layers("fp32", {{li, p}}), &m);
      if (st.code() == StatusCode::kUnsupported) {
        say("  %-28s %-9s not available: %s\n", l.name.c_str(), p.c_str(), st.message().c_str());
        continue;
      }
      KILN_TRY_CTX(st, "measuring layer '" + l.name + "' in " + p);
      l.solo_error[p] = m.error.rel_l2;
      l.solo_cost[p] = m.cost_us;
      say("  %-28s %-9s output rel L2 %-10.4g %+10.1f us vs fp32\n", l.name.c_str(), p.c_str(), m.error.rel_l2,
          m.cost_us - m32.cost_us);
    }
  }

  // 3. Each layer's ladder from its starting precision to fp32, and the order of the moves.
  const std::string start_default = best_ ? "fp32" : opts_.precision;
  for (Layer& l : layers_) {
    for (const auto& [p, cost] : l.solo_cost)
      if (!best_ || cost < m32.cost_us) l.ladder.push_back(p);
    std::sort(l.ladder.begin(), l.ladder.end(),
              [&](const std::string& a, const std::string& b) { return l.solo_cost[a] < l.solo_cost[b]; });
    // --fallback-precision fp16 (TensorRT's --int8 --fp16): a layer the budget moves out of
    // INT8/FP8 tries FP16 before FP32, whose error is taken as nil in the order of the moves
    // (every move to fp16 comes before any to fp32).
    if (!best_ && opts_.fallback_precision == FallbackPrecision::kFp16 && !l.ladder.empty() &&
        std::find(l.ladder.begin(), l.ladder.end(), "fp16") == l.ladder.end())
      l.ladder.push_back("fp16");
    l.ladder.push_back("fp32");
  }
  std::vector<std::pair<size_t, size_t>> moves;  // (layer, ladder position it moves to)
  {
    std::vector<size_t> pos(layers_.size(), 0);
    for (;;) {
      size_t pick = layers_.size();
      double worst = -1;
      for (size_t li = 0; li < layers_.size(); ++li) {
        const Layer& l = layers_[li];
        if (pos[li] + 1 >= l.ladder.size()) continue;
        const auto solo = l.solo_error.find(l.ladder[pos[li]]);
        const double e = solo == l.solo_error.end() ? 0.0 : solo->second;
        if (e > worst || std::isnan(e)) worst = std::isnan(e) ? INFINITY : e, pick = li;
      }
      if (pick == layers_.size()) break;
      moves.emplace_back(pick, ++pos[pick]);
    }
  }
  auto assignment_after = [&](size_t k) {
    std::map<size_t, std::string> a;
    for (size_t li = 0; li < layers_.size(); ++li) a[li] = layers_[li].ladder[0];
    for (size_t i = 0; i < k; ++i) a[moves[i].first] = layers_[moves[i].first].ladder[moves[i].second];
    return a;
  };
  auto evaluate = [&](size_t k, Measured* m, std::shared_ptr<Plan>* plan) {
    return measure(with_layers(start_default, assignment_after(k)), m, plan).with_context(
        "measuring the plan after " + std::to_string(k) + " of " + std::to_string(moves.size()) + " moves");
  };

  // 4. The shortest prefix of moves within the budget.
  Measured m;
  std::shared_ptr<Plan> plan;
  KILN_TRY(evaluate(0, &m, &plan));
  const char* start_what = best_ ? "every layer in its fastest precision" : nullptr;
  std::string start_desc = start_what ? start_what : "every layer in " + opts_.precision;
  size_t k = 0;
  if (m.error.rel_l2 <= budget_) {
    say("%s: worst output error %s <= %g: no layer moved\n", start_desc.c_str(), fmt_error(m.error).c_str(), budget_);
  } else {
    say("%s: worst output error %s > %g\n", start_desc.c_str(), fmt_error(m.error).c_str(), budget_);
    Measured hi_m;
    std::shared_ptr<Plan> hi_plan;
    KILN_TRY(evaluate(moves.size(), &hi_m, &hi_plan));
    if (!(hi_m.error.rel_l2 <= budget_) && check_) {
      // What the search cannot move (layers fixed by --layer-precision, the device's own FP32
      // error) is beyond the check's budget: keep the most accurate plan it found, and say so.
      say("accuracy check: with every searched layer in fp32 the worst output error is still %s > %g; keeping that "
          "plan\n", fmt_error(hi_m.error).c_str(), budget_);
      *out = std::move(*hi_plan);
      choose(start_default, assignment_after(moves.size()));
      return Status::ok();
    }
    if (!(hi_m.error.rel_l2 <= budget_)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%g", budget_);
      return invalid_argument(std::string("the accuracy budget ") + buf + " cannot be met: with every searched layer in " +
                              "fp32 the worst output error is still " + fmt_error(hi_m.error));
    }
    size_t lo = 0, hi = moves.size();
    while (hi - lo > 1) {
      const size_t mid = (lo + hi) / 2;
      Measured mm;
      std::shared_ptr<Plan> mp;
      KILN_TRY(evaluate(mid, &mm, &mp));
      if (mm.error.rel_l2 <= budget_) hi = mid, hi_m = mm, hi_plan = mp;
      else lo = mid;
    }
    k = hi;
    m = hi_m;
    plan = hi_plan;
    say("moved %zu layer%s (the most sensitive first, by their error alone):\n", k, k == 1 ? "" : "s");
    std::vector<size_t> at(layers_.size(), 0);
    for (size_t i = 0; i < k; ++i) {
      const Layer& l = layers_[moves[i].first];
      const std::string& from = l.ladder[at[moves[i].first]];
      at[moves[i].first] = moves[i].second;
      if (!l.solo_error.count(from)) {  // the fp16 rung of --fallback-precision fp16 (not measured alone)
        say("  %-28s %s -> %s: the budget still needed more after every move to %s\n", l.name.c_str(), from.c_str(),
            l.ladder[moves[i].second].c_str(), from.c_str());
        continue;
      }
      size_t rank = 1, of = 0;
      for (const Layer& o : layers_)
        if (o.solo_error.count(from)) ++of, rank += o.solo_error.at(from) > l.solo_error.at(from);
      say("  %-28s %s -> %s: alone in %s it gives output rel L2 %.4g (%zu of %zu layers by sensitivity)\n",
          l.name.c_str(), from.c_str(), l.ladder[moves[i].second].c_str(), from.c_str(), l.solo_error.at(from), rank, of);
    }
  }

  const std::map<size_t, std::string> final_assignment = assignment_after(k);
  std::map<std::string, size_t> count;
  std::string overrides;
  for (const auto& [li, p] : final_assignment) {
    ++count[p];
    if (p == start_default) continue;
    for (const std::string& key : layers_[li].keys) overrides += (overrides.empty() ? "" : ",") + key + "=" + p;
  }
  std::string mix;
  for (const auto& [p, c] : count) mix += (mix.empty() ? "" : ", ") + std::to_string(c) + " " + p;
  say("result: %s%s; worst output error %s <= %g; %s %.1f us (fp32 %.1f us)\n", layers_.size() ? "layers " : "no layers",
      mix.c_str(), fmt_error(m.error).c_str(), budget_, timed() ? "measured" : "estimated", m.cost_us, m32.cost_us);
  say("same plan: --precision %s%s%s\n", start_default.c_str(), overrides.empty() ? "" : " --layer-precision ",
      overrides.c_str());
  *out = std::move(*plan);
  choose(start_default, final_assignment);
  return Status::ok();
}

}  // namespace

Status build_with_precision_search(const PlanBuildFn& build, const BuildOptions& opts, Plan* out,
                                   BuildOptions* chosen) {
  Search s(build, opts, chosen);
  return s.run(out);
}

}  // namespace kiln
