// kiln compare: a plan's outputs (and with --per-layer its intermediate tensors) against the
// FP32 reference built from the ONNX model, on the same inputs. The accuracy check for
// reduced-precision plans (and a cross-check of devices).
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include <fstream>
#include <iterator>

#include "kiln/kiln_build.h"
#include "runtime/cli/args.h"
#include "runtime/cli/verbs.h"
#include "runtime/core/npy.h"
#include "runtime/core/tensor.h"

namespace kiln::cli {

static const char* kCompareHelp =
    "usage: kiln compare PLAN --reference MODEL.onnx [-i NAME=FILE.npy ...] [options]\n"
    "\n"
    "Runs PLAN and an FP32 plan built from MODEL.onnx on the cpu device with the same inputs\n"
    "(random unless given) and prints, per output, the max and mean absolute error, the max\n"
    "relative error, the relative L2 error and the cosine similarity.\n"
    "  --reference MODEL.onnx   the model PLAN was built from\n"
    "  -i, --input NAME=FILE    input from a .npy file\n"
    "  --device D               where PLAN runs (default auto)\n"
    "  --per-layer              also every intermediate tensor PLAN computes that has a tensor of\n"
    "                           the same name in the reference (built without fusion), worst\n"
    "                           relative L2 error first; tensors renamed or inserted by fusion or\n"
    "                           quantization are counted, not compared\n"
    "  --dump DIR               with --per-layer: write each compared tensor as\n"
    "                           DIR/plan/NAME.npy and DIR/reference/NAME.npy (characters other\n"
    "                           than letters, digits, '.', '-' and '_' in NAME become '_')\n";

namespace {

void print_row(const kiln_build_error_row& r, bool with_node) {
  if (with_node) std::printf("%-28s %-24s", r.tensor, r.node);
  else std::printf("%-24s", r.tensor);
  std::printf(" %12.4g %12.4g %12.4g %12.4g %10.6f\n", r.max_abs, r.mean_abs, r.max_rel, r.rel_l2, r.cosine);
}

std::string file_safe(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return out;
}

// The compared values of one side as .npy files.
Status dump(const kiln_build_tensors* values, const std::string& dir) {
  for (int32_t i = 0; i < kiln_build_tensors_count(values); ++i) {
    kiln_tensor_info info;
    const void* data = nullptr;
    if (kiln_build_tensors_get(values, i, &info, &data) != KILN_OK) return internal_error(kiln_build_last_error());
    HostTensor t(static_cast<DType>(info.dtype), Shape(info.dims, info.dims + info.rank));
    std::copy_n(static_cast<const uint8_t*>(data), t.size_bytes(), t.data());
    KILN_TRY(write_npy(dir + "/" + file_safe(info.name) + ".npy", t));
  }
  return Status::ok();
}

struct Handles {
  kiln_build_tensors* inputs = nullptr;
  kiln_build_comparison* c = nullptr;
  ~Handles() {
    kiln_build_tensors_release(inputs);
    kiln_build_comparison_release(c);
  }
};

}  // namespace

// A thin caller of kiln_build_compare (include/kiln/kiln_build.h), as Python's kiln.compare.
int cmd_compare(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--reference", ""},
                           {"--input", "-i", true, true},
                           {"--device", ""},
                           {"--per-layer", "", false},
                           {"--dump", ""},
                           {"--threads", ""}, {"--help", "-h", false}},
                          &args);
  if (st) st = apply_threads_option(args);
  if (!st) return fail("compare", st.message());
  if (args.has("--help")) {
    std::fputs(kCompareHelp, stdout);
    std::fputs(kThreadsHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("compare", "expected one PLAN argument (see --help)");
  if (!args.has("--reference")) return fail("compare", "missing --reference MODEL.onnx");
  const bool per_layer = args.has("--per-layer");
  if (args.has("--dump") && !per_layer) return fail("compare", "--dump needs --per-layer");

  const std::string plan_path = args.positional()[0];
  std::ifstream f(plan_path, std::ios::binary);
  if (!f) return fail("compare", "cannot open plan file '" + plan_path + "'");
  const std::string plan((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Handles h;
  kiln_build_tensors_create(&h.inputs);
  for (const std::string& spec : args.all("--input")) {
    std::string name, path;
    HostTensor t;
    st = split_name_value(spec, "-i", &name, &path);
    if (st) st = read_npy(path, &t).with_context("input '" + name + "'");
    if (st && kiln_build_tensors_add(h.inputs, name.c_str(), static_cast<int32_t>(t.dtype()), t.shape().data(),
                                     static_cast<int32_t>(t.shape().size()), t.data(), t.size_bytes()) != KILN_OK)
      st = invalid_argument(kiln_build_last_error());
    if (!st) return fail("compare", st.message());
  }
  const kiln_status cs = kiln_build_compare(plan.data(), plan.size(), args.get("--reference").c_str(), h.inputs,
                                            args.get("--device", "auto").c_str(), per_layer, &h.c);
  if (cs == KILN_ERROR_INVALID_PLAN) return fail("compare", "plan '" + plan_path + "': " + kiln_build_last_error());
  if (cs != KILN_OK) {
    std::string msg = kiln_build_last_error();
    if (msg.compare(0, 10, "per layer:") == 0) msg = "--per-layer:" + msg.substr(10);  // the flag's name here
    return fail("compare", msg);
  }
  std::printf("%s on %s vs FP32 reference %s (cpu)\n", plan_path.c_str(), kiln_build_comparison_device(h.c),
              args.get("--reference").c_str());
  std::printf("%-24s %12s %12s %12s %12s %10s\n", "output", "max abs", "mean abs", "max rel", "rel L2", "cosine");
  const int32_t n = kiln_build_comparison_num_rows(h.c);
  int32_t layer_rows = 0;
  for (int32_t i = 0; i < n; ++i) {
    kiln_build_error_row r;
    kiln_build_comparison_row(h.c, i, &r);
    if (!r.per_layer) print_row(r, false);
    else layer_rows++;
  }
  if (!per_layer) return 0;
  int32_t unmatched = 0, total = 0;
  kiln_build_comparison_unmatched(h.c, &unmatched, &total);
  std::printf("\nper layer: %d tensors matched by name, %d of the plan's %d node outputs not in the reference "
              "(renamed or inserted by fusion or quantization); worst first\n",
              layer_rows, unmatched, total);
  std::printf("%-28s %-24s %12s %12s %12s %12s %10s\n", "tensor", "plan node", "max abs", "mean abs", "max rel",
              "rel L2", "cosine");
  for (int32_t i = 0; i < n; ++i) {
    kiln_build_error_row r;
    kiln_build_comparison_row(h.c, i, &r);
    if (r.per_layer) print_row(r, true);
  }
  const std::string dump_dir = args.get("--dump");
  if (dump_dir.empty()) return 0;
  for (const std::string& d : {dump_dir, dump_dir + "/plan", dump_dir + "/reference"})
    ::mkdir(d.c_str(), 0755);
  st = dump(kiln_build_comparison_values(h.c, 0), dump_dir + "/plan");
  if (st) st = dump(kiln_build_comparison_values(h.c, 1), dump_dir + "/reference");
  if (!st) return fail("compare", "--dump: " + st.message());
  std::printf("wrote %d tensors to %s/plan and %s/reference\n", layer_rows, dump_dir.c_str(), dump_dir.c_str());
  return 0;
}

}  // namespace kiln::cli
