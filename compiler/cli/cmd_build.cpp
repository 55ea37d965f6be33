#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include "runtime/cli/args.h"
#include "runtime/core/npy.h"
#include "runtime/cli/verbs.h"
#include "compiler/compiler.h"
#include "compiler/quant/precision.h"
#include "runtime/plan/plan_memory.h"

namespace kiln::cli {

static const char* kBuildHelp =
    "usage: kiln build MODEL.onnx -o PLAN [options]\n"
    "\n"
    "Compiles an ONNX model into a plan for one device.\n"
    "  -o, --output PLAN        plan file to write\n"
    "  --device D               target: cpu | opencl | opencl:N | auto (default auto); a list such\n"
    "                           as opencl:0,cpu names the device and the cpu fallback\n"
    "  --partition P            device: every node the device supports runs there (default);\n"
    "                           cost: per node the cheaper backend by the cost model, transfers\n"
    "                           included\n"
    "  --cpu-nodes A,B,...      force these nodes onto the cpu backend\n"
    "  --transfer-gbps X        host<->device bandwidth the cost model assumes (default: 12 for\n"
    "                           GPUs, 8 for CPU OpenCL devices)\n"
    "  --shapes NAME=DIMS       fix a dynamic input shape, e.g. --shapes input=1x3x224x224\n"
    "                           (repeatable; NAME may contain ':'); with a range below, the point\n"
    "                           the plan is tuned for (default: the max)\n"
    "  --min-shapes NAME=DIMS   smallest and largest shape of a dynamic input: the plan runs any\n"
    "  --max-shapes NAME=DIMS   shape in between without rebuilding (memory planned at the max;\n"
    "                           dims named alike by the model's dim_params move together)\n"
    "  --freeze NAME=FILE.npy   fix an input's value at build time (it becomes a constant); for\n"
    "                           inputs that carry shapes, e.g. a Reshape target fed as an input\n"
    "  --precision P            fp32 (default), fp16, int8, fp8 (E4M3FN) or fp8-e5m2. fp16: nodes\n"
    "                           with float16 kernels (Conv, Gemm, MatMul, norms, pools, reductions,\n"
    "                           elementwise...) store activations and weights as half (math in\n"
    "                           float32, graph I/O stay float32). int8/fp8: Conv, MatMul and\n"
    "                           Gemm with constant weights run as INT8 / FP8 kernels (weights per\n"
    "                           output channel, activations per tensor, calibrated on --calib\n"
    "                           samples); best: per layer the fastest precision that builds (by the\n"
    "                           cost model, or measured with --tune) and keeps the outputs within\n"
    "                           --accuracy-budget (default 0.01)\n"
    "  --layer-precision NODE=P[,NODE=P...]\n"
    "                           run these ONNX nodes in another precision (fp32, fp16, int8, fp8,\n"
    "                           fp8-e5m2) than --precision; repeatable\n"
    "  --accuracy-budget X      the largest relative L2 error any output may have against FP32 over\n"
    "                           the --calib samples: the most sensitive layers move to fp32 (with\n"
    "                           best: towards fp32 through slower candidates) until it holds;\n"
    "                           prints which layers moved and why\n"
    "  --tune                   with best: rank precisions by latency measured on the device (the\n"
    "                           fastest of 15 runs per candidate plan)\n"
    "  --calib DIR              calibration samples: one .npz per sample with an array per model\n"
    "                           input (a single-input model also takes .npy files)\n"
    "  --calibrator C           entropy | minmax | percentile[=99.99]; default entropy, or minmax\n"
    "                           when every calibrated layer is FP8\n"
    "  --calib-cache FILE       calibration ranges: reused when present, written otherwise\n"
    "  --smooth-quant[=ALPHA]   int8: SmoothQuant for MatMul/Gemm layers whose input channels\n"
    "                           spread (largest / median calibrated max |x|) over 4: per input\n"
    "                           channel k, s_k = max|x_k|^ALPHA / max|w_k|^(1-ALPHA) moves the\n"
    "                           outliers into the weights (x/s quantized per channel, s*w per\n"
    "                           column); ALPHA in [0, 1], default 0.5\n"
    "  --max-memory SIZE        the most host memory the plan may need (activations at their peak\n"
    "                           plus weights), e.g. 8G (default: the host's physical memory); an\n"
    "                           OpenCL plan must also fit the device's memory\n"
    "  --allow-over-memory      write a plan that exceeds those bounds anyway\n"
    "  --no-fuse                turn graph fusion off (for debugging)\n";

int cmd_build(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--output", "-o"}, {"--device", ""}, {"--shapes", "", true, true}, {"--min-shapes", "", true, true},
                           {"--max-shapes", "", true, true}, {"--freeze", "", true, true},
                           {"--no-fuse", "", false}, {"--partition", ""}, {"--cpu-nodes", "", true, true},
                           {"--transfer-gbps", ""}, {"--precision", ""}, {"--calib", ""}, {"--calibrator", ""},
                           {"--calib-cache", ""}, {"--layer-precision", "", true, true}, {"--accuracy-budget", ""},
                           {"--tune", "", false}, {"--smooth-quant", "", true, false, true},
                           {"--max-memory", ""}, {"--allow-over-memory", "", false}, {"--help", "-h", false}},
                          &args);
  if (!st) return fail("build", st.message());
  if (args.has("--help")) {
    std::fputs(kBuildHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("build", "expected one MODEL.onnx argument (see --help)");
  if (!args.has("--output")) return fail("build", "missing -o PLAN");
  BuildOptions opts;
  opts.device = args.get("--device", "auto");
  opts.fuse = !args.has("--no-fuse");
  opts.precision = args.get("--precision", "fp32");
  Precision parsed;
  if (opts.precision != "best" && !(st = parse_precision(opts.precision, &parsed)))
    return fail("build", "--precision: " + st.message());
  for (const std::string& list : args.all("--layer-precision")) {
    st = parse_layer_precision(list, &opts.layer_precision);
    if (!st) return fail("build", st.message());
  }
  if (args.has("--accuracy-budget")) {
    const std::string x = args.get("--accuracy-budget");
    char* end = nullptr;
    opts.accuracy_budget = std::strtod(x.c_str(), &end);
    if (x.empty() || *end || !(opts.accuracy_budget > 0) || !std::isfinite(opts.accuracy_budget))
      return fail("build", "--accuracy-budget needs a positive number (a relative L2 error such as 0.02), got '" + x + "'");
  }
  opts.tune = args.has("--tune");
  if (opts.tune && opts.precision != "best") return fail("build", "--tune needs --precision best");
  opts.calib_dir = args.get("--calib");
  opts.calibrator = args.get("--calibrator", "");
  opts.calib_cache = args.get("--calib-cache");
  if (args.has("--smooth-quant")) {
    std::string x = args.get("--smooth-quant");
    if (x.empty()) x = "0.5";  // the bare flag
    char* end = nullptr;
    opts.smooth_quant_alpha = std::strtod(x.c_str(), &end);
    if (*end || !(opts.smooth_quant_alpha >= 0 && opts.smooth_quant_alpha <= 1))
      return fail("build", "--smooth-quant needs an alpha in [0, 1] (such as --smooth-quant=0.5), got '" + x + "'");
  }
  if (args.has("--max-memory") && !parse_byte_size(args.get("--max-memory"), &opts.max_memory))
    return fail("build", "--max-memory needs a size such as 4G, 512M or a number of bytes, got '" +
                             args.get("--max-memory") + "'");
  opts.allow_over_memory = args.has("--allow-over-memory");
  opts.report = stdout;
  const std::string policy = args.get("--partition", "device");
  if (policy == "cost") opts.partition.policy = PartitionPolicy::kCostModel;
  else if (policy != "device") return fail("build", "--partition must be 'device' or 'cost', got '" + policy + "'");
  for (const std::string& list : args.all("--cpu-nodes")) {
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      if (comma > pos) opts.partition.cpu_nodes.insert(list.substr(pos, comma - pos));
      pos = comma + 1;
    }
  }
  if (args.has("--transfer-gbps")) {
    try {
      opts.partition.transfer_gbps = std::stod(args.get("--transfer-gbps"));
    } catch (...) {
      opts.partition.transfer_gbps = -1;
    }
    if (!(opts.partition.transfer_gbps > 0)) return fail("build", "--transfer-gbps needs a positive number");
  }
  for (const std::string& s : args.all("--shapes")) {
    std::string name;
    Shape dims;
    st = parse_shape_arg(s, &name, &dims);
    if (!st) return fail("build", st.message());
    opts.shapes[name] = dims;
  }
  for (const char* flag : {"--min-shapes", "--max-shapes"})
    for (const std::string& s : args.all(flag)) {
      std::string name;
      Shape dims;
      st = parse_shape_arg(s, &name, &dims);
      if (!st) return fail("build", std::string(flag) + ": " + st.message());
      (flag[2] == 'm' && flag[3] == 'i' ? opts.min_shapes : opts.max_shapes)[name] = dims;
    }
  for (const std::string& s : args.all("--freeze")) {
    std::string name, path;
    st = split_name_value(s, "--freeze", &name, &path);
    if (st) st = read_npy(path, &opts.frozen_inputs[name]);
    if (!st) return fail("build", "--freeze " + s + ": " + st.message());
  }
  const auto t0 = std::chrono::steady_clock::now();
  Plan plan;
  st = build_plan_from_file(args.positional()[0], opts, &plan);
  if (!st) return fail("build", st.message());
  const std::string out = args.get("--output");
  st = write_plan_file(plan, out);
  if (!st) return fail("build", st.message());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  size_t on_cl = 0;
  for (const PlanNode& n : plan.nodes) on_cl += n.backend == Backend::kOpenCL;
  std::string dynamic;
  for (const DynVar& v : plan.dyn_vars)
    dynamic += (dynamic.empty() ? ", dynamic " : ", ") + v.name + " in [" + std::to_string(v.min) + ", " +
               std::to_string(v.max) + "]";
  std::printf("built %s: %zu nodes (%zu opencl, %zu cpu), %zu weight bytes, target %s '%s'%s, %.0f ms\n",
              out.c_str(), plan.nodes.size(), on_cl, plan.nodes.size() - on_cl, plan.weights.size(),
              plan.target.kind.c_str(), plan.target.name.c_str(), dynamic.c_str(), ms);
  return 0;
}

}  // namespace kiln::cli
