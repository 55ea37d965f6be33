#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <map>

#include "runtime/cli/args.h"
#include "runtime/core/npy.h"
#include "runtime/cli/verbs.h"
#include "compiler/cli/build_flags.h"
#include "compiler/compiler.h"
#include "compiler/quant/precision.h"
#include "kiln/kiln_build.h"
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
    "  --fallback-precision P   int8/fp8: what the nodes quantization leaves in float (attention,\n"
    "                           LayerNorm, Softmax, GELU, residual Adds) run in: fp32 (default) or\n"
    "                           fp16 (as TensorRT's --int8 --fp16); a --layer-precision NODE=fp32\n"
    "                           stays fp32; a layer the accuracy budget or check moves out of\n"
    "                           int8/fp8 tries fp16 before fp32\n"
    "  --io-precision P         the dtype of the plan's float inputs and outputs: fp32 (default,\n"
    "                           as the model declares them) or fp16 (half the bytes to and from\n"
    "                           the host, as trtexec's --inputIOFormats/--outputIOFormats=fp16)\n"
    "  --accuracy-budget X      the largest relative L2 error any output may have against FP32 over\n"
    "                           the --calib samples: the most sensitive layers move to fp32 (with\n"
    "                           best: towards fp32 through slower candidates) until it holds;\n"
    "                           prints which layers moved and why. int8/fp8 builds check a\n"
    "                           budget of 0.1 by default (a dynamic plan: at its --shapes point)\n"
    "  --no-accuracy-check      int8/fp8: skip the default checks (the layer check and the 0.1\n"
    "                           output budget); the plan quantizes every layer it can\n"
    "  --tune                   time the kernel variants of every distinct layer on the device\n"
    "                           (tensor-core tiles, portable kernels) and keep the fastest (one\n"
    "                           the device cannot build or launch is skipped, said in the\n"
    "                           report); with best, also rank precisions by measured latency\n"
    "                           (the fastest of 15 runs per candidate plan). Without it a cost\n"
    "                           estimate picks\n"
    "  --tuning-cache FILE      with --tune: timings reused from FILE when present and written\n"
    "                           back (keyed by device, driver, layer and variant)\n"
    "  --calib DIR              calibration samples: one .npz per sample with an array per model\n"
    "                           input (a single-input model also takes .npy files)\n"
    "  --calibrator C           entropy | minmax | mse | percentile[=99.99]; default entropy, or\n"
    "                           minmax when every calibrated layer is FP8. A clipping range whose\n"
    "                           quantization error is 4x mse's is replaced by mse's, and a layer\n"
    "                           check measures every quantized layer against FP32 on the --calib\n"
    "                           samples: one far out of line gets mse's ranges or stays fp32 (one\n"
    "                           line each)\n"
    "  --calib-cache FILE       calibration ranges: reused when present, written otherwise\n"
    "  --smooth-quant[=ALPHA]   int8: SmoothQuant for MatMul/Gemm layers whose input channels\n"
    "                           spread (largest / median calibrated max |x|) over 4: per input\n"
    "                           channel k, s_k = max|x_k|^ALPHA / max|w_k|^(1-ALPHA) moves the\n"
    "                           outliers into the weights (x/s quantized per channel, s*w per\n"
    "                           column); ALPHA in [0, 1], default 0.5\n"
    "  --no-bias-correction     int8/fp8: keep each layer's bias as it is (by default a Conv's\n"
    "                           bias and a Gemm's C absorb the mean output shift that rounding\n"
    "                           the weights causes, measured on the --calib samples)\n"
    "  --allow-tf32             FP32 Conv/Gemm/MatMul may run on TF32 tensor cores where the\n"
    "                           device has them (NVIDIA, compute capability 8.0+): operands rounded\n"
    "                           to a 10-bit mantissa, sums in float32 (kiln compare shows the cost)\n"
    "  --layout auto|nchw|nhwc  where convolutions keep activations channels-last: auto\n"
    "                           (default) where the device's kernels want it (tensor cores:\n"
    "                           INT8, FP8, FP16, TF32), nchw never, nhwc wherever they can\n"
    "                           (Transposes at the borders of each channels-last region)\n"
    "  --max-memory SIZE        the most host memory the plan may need (activations at their peak\n"
    "                           plus weights), e.g. 8G (default: the host's physical memory); an\n"
    "                           OpenCL plan must also fit the device's memory\n"
    "  --allow-over-memory      write a plan that exceeds those bounds anyway\n"
    "  --no-fuse                turn graph fusion off (for debugging)\n";

namespace {

// The compiler's report (calibration tables, progress, moved layers) on stdout: a progress
// update redrawn in place on a terminal; in a log only the line that completes it.
void print_log(int32_t level, const char* line, void*) {
  static const bool tty = ::isatty(::fileno(stdout));
  static bool redrawing = false;
  if (level == KILN_LOG_PROGRESS) {
    if (!tty) return;
    std::printf("\r%s", line);
    redrawing = true;
  } else {
    std::printf("%s%s\n", redrawing ? "\r" : "", line);
    redrawing = false;
  }
  std::fflush(stdout);
}

// The C API's options, released on every path.
struct OptionsHandle {
  kiln_build_options* o = nullptr;
  ~OptionsHandle() { kiln_build_options_release(o); }
};

}  // namespace

// Everything goes through the compiler C API (include/kiln/kiln_build.h), the functions the
// Python package calls; the flags are parsed and checked here, turned into typed options there.
int cmd_build(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--output", "-o"}, {"--device", ""}, {"--shapes", "", true, true}, {"--min-shapes", "", true, true},
                           {"--max-shapes", "", true, true}, {"--freeze", "", true, true},
                           {"--no-fuse", "", false}, {"--partition", ""}, {"--cpu-nodes", "", true, true},
                           {"--transfer-gbps", ""}, {"--precision", ""}, {"--calib", ""}, {"--calibrator", ""},
                           {"--calib-cache", ""}, {"--layer-precision", "", true, true}, {"--fallback-precision", ""}, {"--accuracy-budget", ""},
                           {"--io-precision", ""},
                           {"--tune", "", false}, {"--tuning-cache", ""}, {"--allow-tf32", "", false}, {"--layout", ""}, {"--smooth-quant", "", true, false, true},
                           {"--no-bias-correction", "", false}, {"--no-accuracy-check", "", false},
                           {"--max-memory", ""}, {"--allow-over-memory", "", false}, {"--help", "-h", false}},
                          &args);
  if (!st) return fail("build", st.message());
  if (args.has("--help")) {
    std::fputs(kBuildHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("build", "expected one MODEL.onnx argument (see --help)");
  if (!args.has("--output")) return fail("build", "missing -o PLAN");
  OptionsHandle h;
  if (kiln_build_options_create(&h.o) != KILN_OK) return fail("build", kiln_build_last_error());
  kiln_build_options* o = h.o;
  auto api = [](kiln_status s, const std::string& what = "") { return cli::build_api_status(s, what); };
  st = api(kiln_build_options_set_device(o, args.get("--device", "auto").c_str()));
  if (!st) return fail("build", st.message());
  if (args.has("--no-fuse")) kiln_build_options_set_fusion(o, 0);
  kiln_precision precision;
  st = api(kiln_build_parse_precision(args.get("--precision", "fp32").c_str(), &precision), "--precision");
  if (st) st = api(kiln_build_options_set_precision(o, precision));
  if (!st) return fail("build", st.message());
  for (const std::string& list : args.all("--layer-precision")) {
    std::map<std::string, std::string> layers;
    st = parse_layer_precision(list, &layers);
    if (!st) return fail("build", st.message());
    for (const auto& [node, p] : layers) {
      kiln_precision lp;
      st = api(kiln_build_parse_precision(p.c_str(), &lp), "--layer-precision " + node);
      if (st) st = api(kiln_build_options_set_layer_precision(o, node.c_str(), lp), "--layer-precision");
      if (!st) return fail("build", st.message());
    }
  }
  if (args.has("--fallback-precision")) {
    st = cli::set_fallback_precision_flag(o, args.get("--fallback-precision"));
    if (!st) return fail("build", st.message());
  }
  if (args.has("--io-precision")) {
    st = cli::set_io_precision_flag(o, args.get("--io-precision"));
    if (!st) return fail("build", st.message());
  }
  if (args.has("--accuracy-budget")) {
    const std::string x = args.get("--accuracy-budget");
    char* end = nullptr;
    const double budget = std::strtod(x.c_str(), &end);
    if (x.empty() || *end || !(budget > 0) || !std::isfinite(budget))
      return fail("build", "--accuracy-budget needs a positive number (a relative L2 error such as 0.02), got '" + x + "'");
    kiln_build_options_set_accuracy_budget(o, budget);
  }
  if (args.has("--tuning-cache") && !args.has("--tune")) return fail("build", "--tuning-cache needs --tune");
  if (args.has("--tune")) kiln_build_options_set_tune(o, 1, args.get("--tuning-cache").c_str());
  if (args.has("--allow-tf32")) kiln_build_options_set_allow_tf32(o, 1);
  if (args.has("--layout") && !(st = api(kiln_build_options_set_layout(o, args.get("--layout").c_str()), "--layout")))
    return fail("build", st.message());
  if (args.has("--calib")) kiln_build_options_set_calib_dir(o, args.get("--calib").c_str());
  if (args.has("--calib-cache")) kiln_build_options_set_calib_cache(o, args.get("--calib-cache").c_str());
  if (args.has("--calibrator")) {
    st = cli::set_calibrator_flag(o, args.get("--calibrator"));
    if (!st) return fail("build", st.message());
  }
  if (args.has("--smooth-quant")) {
    std::string x = args.get("--smooth-quant");
    if (x.empty()) x = "0.5";  // the bare flag
    char* end = nullptr;
    const double alpha = std::strtod(x.c_str(), &end);
    if (*end || !(alpha >= 0 && alpha <= 1))
      return fail("build", "--smooth-quant needs an alpha in [0, 1] (such as --smooth-quant=0.5), got '" + x + "'");
    kiln_build_options_set_smooth_quant(o, alpha);
  }
  if (args.has("--no-bias-correction")) kiln_build_options_set_bias_correction(o, 0);
  if (args.has("--no-accuracy-check")) kiln_build_options_set_accuracy_check(o, 0);
  if (args.has("--max-memory")) {
    uint64_t bytes = 0;
    if (!parse_byte_size(args.get("--max-memory"), &bytes) || bytes == 0)
      return fail("build", "--max-memory needs a size such as 4G, 512M or a number of bytes, got '" +
                               args.get("--max-memory") + "'");
    kiln_build_options_set_max_memory(o, bytes);
  }
  if (args.has("--allow-over-memory")) kiln_build_options_set_allow_over_memory(o, 1);
  kiln_build_options_set_log(o, print_log, nullptr);
  const std::string policy = args.get("--partition", "device");
  if (policy == "cost") kiln_build_options_set_partition(o, KILN_PARTITION_COST);
  else if (policy != "device") return fail("build", "--partition must be 'device' or 'cost', got '" + policy + "'");
  for (const std::string& list : args.all("--cpu-nodes")) {
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      if (comma > pos) kiln_build_options_add_cpu_node(o, list.substr(pos, comma - pos).c_str());
      pos = comma + 1;
    }
  }
  if (args.has("--transfer-gbps")) {
    char* end = nullptr;
    const std::string x = args.get("--transfer-gbps");
    const double gbps = std::strtod(x.c_str(), &end);
    if (x.empty() || *end || kiln_build_options_set_transfer_gbps(o, gbps) != KILN_OK)
      return fail("build", "--transfer-gbps needs a positive number");
  }
  for (const std::string& s : args.all("--shapes")) {
    std::string name;
    Shape dims;
    st = parse_shape_arg(s, &name, &dims);
    if (st) st = api(kiln_build_options_set_shape(o, name.c_str(), dims.data(), static_cast<int32_t>(dims.size())), "--shapes " + s);
    if (!st) return fail("build", st.message());
  }
  std::map<std::string, Shape> range[2];
  for (int which = 0; which < 2; ++which) {
    const char* flag = which ? "--max-shapes" : "--min-shapes";
    for (const std::string& s : args.all(flag)) {
      std::string name;
      Shape dims;
      st = parse_shape_arg(s, &name, &dims);
      if (!st) return fail("build", std::string(flag) + ": " + st.message());
      range[which][name] = dims;
    }
  }
  for (const auto& [name, lo] : range[0]) {
    auto hi = range[1].find(name);
    if (hi == range[1].end()) return fail("build", "--min-shapes names '" + name + "' but --max-shapes does not");
    if (hi->second.size() != lo.size())
      return fail("build", "input '" + name + "': --min-shapes " + shape_str(lo) + " and --max-shapes " +
                               shape_str(hi->second) + " must have the same rank");
    st = api(kiln_build_options_set_shape_range(o, name.c_str(), lo.data(), hi->second.data(), static_cast<int32_t>(lo.size())));
    if (!st) return fail("build", st.message());
  }
  for (const auto& [name, hi] : range[1])
    if (!range[0].count(name)) return fail("build", "--max-shapes names '" + name + "' but --min-shapes does not");
  for (const std::string& s : args.all("--freeze")) {
    std::string name, path;
    HostTensor t;
    st = split_name_value(s, "--freeze", &name, &path);
    if (st) st = read_npy(path, &t);
    if (st)
      st = api(kiln_build_options_freeze_input(o, name.c_str(), static_cast<int32_t>(t.dtype()), t.shape().data(),
                                               static_cast<int32_t>(t.shape().size()), t.data(), t.size_bytes()));
    if (!st) return fail("build", "--freeze " + s + ": " + st.message());
  }
  const auto t0 = std::chrono::steady_clock::now();
  kiln_build_result* result = nullptr;
  st = api(kiln_build_from_file(args.positional()[0].c_str(), o, &result));
  if (!st) return fail("build", st.message());
  const std::string out = args.get("--output");
  st = api(kiln_build_result_write(result, out.c_str()));
  const std::string summary = kiln_build_result_summary(result);
  kiln_build_result_release(result);
  if (!st) return fail("build", st.message());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("built %s: %s, %.0f ms\n", out.c_str(), summary.c_str(), ms);
  return 0;
}

}  // namespace kiln::cli
