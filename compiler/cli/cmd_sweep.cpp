// kiln sweep: one model built in every precision, side by side: plan size, latency,
// throughput, error against FP32 and (with labels) top-1 accuracy. A precision this kiln
// cannot build yet shows as "not available" with the reason.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "compiler/compiler.h"
#include "compiler/quant/accuracy.h"
#include "runtime/cli/args.h"
#include "runtime/cli/verbs.h"
#include "runtime/core/npy.h"
#include "runtime/device/devices.h"
#include "runtime/exec/execution_context.h"
#include "runtime/plan/plan_format.h"

namespace kiln::cli {

static const char* kSweepHelp =
    "usage: kiln sweep MODEL.onnx --calib DIR [--eval DIR --labels FILE.npy] [options]\n"
    "\n"
    "Builds MODEL in fp32, fp16, int8 and fp8 for one device and prints one row each: plan size,\n"
    "median latency and throughput (one inference in flight), the worst relative L2 error and the\n"
    "lowest cosine similarity of any output against the FP32 reference (cpu backend) over the\n"
    "evaluation samples, and top-1 accuracy when labels are given. A precision that does not\n"
    "build shows as 'not available' with the reason.\n"
    "  --calib DIR              calibration samples for int8/fp8 (one .npz per sample, as for build)\n"
    "  --eval DIR               evaluation samples in the same format (default: the --calib ones)\n"
    "  --labels FILE.npy        integer class labels, one per row of the first output (its last\n"
    "                           axis holds the classes) over the --eval samples in sorted file order\n"
    "  --device D               cpu | opencl | opencl:N | auto (default auto)\n"
    "  --shapes NAME=DIMS       fix a dynamic input dimension (repeatable)\n"
    "  --calibrator C           entropy (default) | minmax | percentile[=99.99]\n"
    "  --duration-s X           time each plan for X seconds (default 1)\n";

namespace {

const char* const kSweepPrecisions[] = {"fp32", "fp16", "int8", "fp8"};

std::string human_size(size_t b) {
  char buf[32];
  if (b >= (1u << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

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
    return invalid_argument("--labels has " + std::to_string(labels.numel()) + " labels; the " +
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
        return invalid_argument("--labels: label " + std::to_string(label) + " at row " + std::to_string(*rows) +
                                " is not a class index of output '" + out.name + "' (0.." +
                                std::to_string(classes - 1) + ")");
      *correct += best == label;
    }
  }
  return Status::ok();
}

}  // namespace

int cmd_sweep(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--calib", ""}, {"--eval", ""}, {"--labels", ""}, {"--device", ""},
                           {"--shapes", "", true, true}, {"--calibrator", ""}, {"--duration-s", ""},
                           {"--help", "-h", false}},
                          &args);
  if (!st) return fail("sweep", st.message());
  if (args.has("--help")) {
    std::fputs(kSweepHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("sweep", "expected one MODEL.onnx argument (see --help)");
  if (!args.has("--calib")) return fail("sweep", "missing --calib DIR (the calibration samples for int8 and fp8)");
  if (args.has("--labels") && !args.has("--eval")) return fail("sweep", "--labels needs --eval DIR (the labelled samples)");
  double seconds = 1;
  if (args.has("--duration-s")) {
    const std::string x = args.get("--duration-s");
    char* end = nullptr;
    seconds = std::strtod(x.c_str(), &end);
    if (x.empty() || *end || !(seconds > 0) || !std::isfinite(seconds))
      return fail("sweep", "--duration-s needs a positive number of seconds, got '" + x + "'");
  }
  const std::string model = args.positional()[0];
  const std::string device = args.get("--device", "auto");

  BuildOptions base;
  base.device = device;
  base.calib_dir = args.get("--calib");
  base.calibrator = args.get("--calibrator", "entropy");
  for (const std::string& s : args.all("--shapes")) {
    std::string name;
    Shape dims;
    st = parse_shape_arg(s, &name, &dims);
    if (!st) return fail("sweep", st.message());
    base.shapes[name] = dims;
  }
  // One calibration per calibrator, shared by the int8 and fp8 builds.
  ScratchCalibCache cache;
  st = cache.create();
  if (!st) return fail("sweep", st.message());
  base.calib_cache_dir = cache.dir();

  // The FP32 reference on the cpu backend, and the evaluation samples.
  BuildOptions ref_opts = base;
  ref_opts.device = "cpu";
  auto ref_plan = std::make_shared<Plan>();
  st = build_plan_from_file(model, ref_opts, ref_plan.get());
  if (!st) return fail("sweep", "building the FP32 reference: " + st.message());
  std::vector<CalibrationSample> samples;
  const std::string eval_dir = args.get("--eval", base.calib_dir);
  st = load_calibration_set(eval_dir, plan_input_specs(*ref_plan), &samples);
  if (!st) return fail("sweep", (args.has("--eval") ? "--eval: " : "--calib: ") + st.message());
  std::vector<std::vector<HostTensor>> want;
  st = run_on_samples(ref_plan, "cpu", samples, &want);
  if (!st) return fail("sweep", "running the FP32 reference: " + st.message());
  HostTensor labels;
  if (args.has("--labels")) {
    st = read_npy(args.get("--labels"), &labels);
    if (st && labels.dtype() != DType::kInt64 && labels.dtype() != DType::kInt32)
      st = invalid_argument("expected int64 class labels, got " + dtype_name(labels.dtype()));
    if (!st) return fail("sweep", "--labels " + args.get("--labels") + ": " + st.message());
    int64_t correct, rows;
    st = top1(*ref_plan, want, labels, &correct, &rows);  // the count check, before any build
    if (!st) return fail("sweep", st.message());
  }

  ResolvedDevice resolved;
  st = resolve_build_device(device, &resolved);
  if (!st) return fail("sweep", st.message());
  std::printf("sweep %s on %s: %zu evaluation samples from %s\n", model.c_str(), resolved.label.c_str(),
              samples.size(), eval_dir.c_str());
  std::printf("%-9s %11s %12s %12s %12s %10s  %s\n", "precision", "plan size", "latency ms", "inferences/s",
              "max rel L2", "min cosine", labels.numel() ? "top-1" : "");
  for (const char* p : kSweepPrecisions) {
    BuildOptions o = base;
    o.precision = p;
    auto plan = std::make_shared<Plan>();
    st = build_plan_from_file(model, o, plan.get());
    if (st.code() == StatusCode::kUnsupported) {
      std::string why = st.message();
      const std::string ctx = "model '" + model + "': ";
      if (why.compare(0, ctx.size(), ctx) == 0) why = why.substr(ctx.size());
      std::printf("%-9s not available: %s\n", p, why.c_str());
      std::fflush(stdout);
      continue;
    }
    if (!st) return fail("sweep", std::string("building ") + p + ": " + st.message());
    const size_t size = serialize_plan(*plan).size();
    std::vector<std::vector<HostTensor>> got;
    st = run_on_samples(plan, device, samples, &got);
    double median_ms = 0, per_s = 0;
    if (st) st = time_plan(plan, device, samples[0], seconds, &median_ms, &per_s);
    if (!st) return fail("sweep", std::string("running the ") + p + " plan: " + st.message());
    WorstError worst;
    st = worst_output_error(*plan, got, *ref_plan, want, &worst);
    if (!st) return fail("sweep", st.message());
    double min_cos = 1;
    for (size_t s = 0; s < got.size(); ++s)
      for (size_t i = 0; i < got[s].size(); ++i) {
        const int32_t r = ref_plan->find_tensor(plan->tensors[plan->outputs[i]].name);
        for (size_t ri = 0; ri < ref_plan->outputs.size(); ++ri)
          if (ref_plan->outputs[ri] == r) min_cos = std::min(min_cos, compare_tensors(got[s][i].view(), want[s][ri].view()).cosine);
      }
    std::string acc;
    if (labels.numel()) {
      int64_t correct = 0, rows = 0;
      st = top1(*plan, got, labels, &correct, &rows);
      if (!st) return fail("sweep", st.message());
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.4f (%lld/%lld)", rows ? double(correct) / rows : 0.0,
                    static_cast<long long>(correct), static_cast<long long>(rows));
      acc = buf;
    }
    std::printf("%-9s %11s %12.4f %12.2f %12.4g %10.6f  %s\n", p, human_size(size).c_str(), median_ms, per_s,
                worst.rel_l2, min_cos, acc.c_str());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace kiln::cli
