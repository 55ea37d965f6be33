// kiln sweep: one model built in every precision, side by side: plan size, latency,
// throughput, error against FP32 and (with labels) top-1 accuracy. A precision this kiln
// cannot build yet shows as "not available" with the reason.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <sys/stat.h>

#include <vector>

#include "compiler/cli/build_flags.h"
#include "compiler/compiler.h"
#include "compiler/quant/precision.h"
#include "kiln/kiln_build.h"
#include "runtime/cli/args.h"
#include "runtime/cli/verbs.h"
#include "runtime/core/npy.h"

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
    "  --calibrator C           entropy (default) | minmax | mse | percentile[=99.99]\n"
    "  --fallback-precision P   what the int8/fp8 plans run their unquantized nodes in: fp32\n"
    "                           (default) or fp16 (as for build)\n"
    "  --duration-s X           time each plan for X seconds (default 1)\n";

namespace {

std::string human_size(uint64_t b) {
  char buf[32];
  if (b >= (1u << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  return buf;
}

struct Handles {
  kiln_build_options* o = nullptr;
  kiln_build_sweep* s = nullptr;
  ~Handles() {
    kiln_build_options_release(o);
    kiln_build_sweep_release(s);
  }
};

}  // namespace

// A thin caller of kiln_build_sweep_run_dir (include/kiln/kiln_build.h), as Python's kiln.sweep.
int cmd_sweep(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--calib", ""}, {"--eval", ""}, {"--labels", ""}, {"--device", ""},
                           {"--shapes", "", true, true}, {"--calibrator", ""}, {"--duration-s", ""}, {"--fallback-precision", ""},
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
  struct stat sb;
  if (args.has("--eval") && (::stat(args.get("--eval").c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)))
    return fail("sweep", "--eval: folder '" + args.get("--eval") + "' does not exist");
  const std::string model = args.positional()[0];
  Handles h;
  auto api = [](kiln_status s) { return cli::build_api_status(s); };
  st = api(kiln_build_options_create(&h.o));
  if (st) st = api(kiln_build_options_set_device(h.o, args.get("--device", "auto").c_str()));
  if (st) st = api(kiln_build_options_set_calib_dir(h.o, args.get("--calib").c_str()));
  if (!st) return fail("sweep", st.message());
  st = cli::set_calibrator_flag(h.o, args.get("--calibrator", "entropy"));
  if (!st) return fail("sweep", st.message());
  if (args.has("--fallback-precision")) {
    st = cli::set_fallback_precision_flag(h.o, args.get("--fallback-precision"));
    if (!st) return fail("sweep", st.message());
  }
  for (const std::string& s : args.all("--shapes")) {
    std::string name;
    Shape dims;
    st = parse_shape_arg(s, &name, &dims);
    if (st) st = api(kiln_build_options_set_shape(h.o, name.c_str(), dims.data(), static_cast<int32_t>(dims.size())));
    if (!st) return fail("sweep", st.message());
  }
  std::vector<int64_t> labels;
  if (args.has("--labels")) {
    HostTensor t;
    st = read_npy(args.get("--labels"), &t);
    if (st && t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32)
      st = invalid_argument("expected int64 class labels, got " + dtype_name(t.dtype()));
    if (!st) return fail("sweep", "--labels " + args.get("--labels") + ": " + st.message());
    for (int64_t i = 0; i < t.numel(); ++i) labels.push_back(tensor_int_at(t.view(), i));
    if (labels.empty()) return fail("sweep", "--labels " + args.get("--labels") + ": no labels");
  }
  const std::string eval_dir = args.get("--eval", args.get("--calib"));
  st = api(kiln_build_sweep_run_dir(model.c_str(), h.o, nullptr, 0, args.has("--eval") ? eval_dir.c_str() : nullptr,
                                    labels.data(), labels.size(), seconds, &h.s));
  if (!st) return fail("sweep", st.message());
  std::printf("sweep %s on %s: %d evaluation samples from %s\n", model.c_str(), kiln_build_sweep_device(h.s),
              kiln_build_sweep_num_samples(h.s), eval_dir.c_str());
  std::printf("%-9s %11s %12s %12s %12s %10s  %s\n", "precision", "plan size", "latency ms", "inferences/s",
              "max rel L2", "min cosine", labels.empty() ? "" : "top-1");
  for (int32_t i = 0; i < kiln_build_sweep_num_rows(h.s); ++i) {
    kiln_build_sweep_row r;
    kiln_build_sweep_row_get(h.s, i, &r);
    const char* p = kiln_build_precision_name(static_cast<kiln_precision>(r.precision));
    if (!r.available) {
      std::printf("%-9s not available: %s\n", p, r.reason);
      continue;
    }
    std::string acc;
    if (!labels.empty()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.4f (%lld/%lld)", r.top1_rows ? double(r.top1_correct) / r.top1_rows : 0.0,
                    static_cast<long long>(r.top1_correct), static_cast<long long>(r.top1_rows));
      acc = buf;
    }
    std::printf("%-9s %11s %12.4f %12.2f %12.4g %10.6f  %s\n", p, human_size(r.plan_bytes).c_str(), r.latency_ms,
                r.per_second, r.max_rel_l2, r.min_cosine, acc.c_str());
  }
  return 0;
}

}  // namespace kiln::cli
