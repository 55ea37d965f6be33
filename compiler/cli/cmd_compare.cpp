// kiln compare: a plan's outputs (and with --per-layer its intermediate tensors) against the
// FP32 reference built from the ONNX model, on the same inputs. The accuracy check for
// reduced-precision plans (and a cross-check of devices).
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "compiler/compiler.h"
#include "compiler/quant/accuracy.h"
#include "runtime/cli/args.h"
#include "runtime/cli/plan_session.h"
#include "runtime/cli/verbs.h"
#include "runtime/core/float8.h"
#include "runtime/core/npy.h"

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

void print_row(const std::string& name, const std::string& node, const TensorErrors& e, bool with_node) {
  if (with_node) std::printf("%-28s %-24s", name.c_str(), node.c_str());
  else std::printf("%-24s", name.c_str());
  std::printf(" %12.4g %12.4g %12.4g %12.4g %10.6f\n", e.max_abs, e.mean_abs, e.max_rel, e.rel_l2, e.cosine);
}

std::string file_safe(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return out;
}

// Every node output of one run, by tensor name.
ExecutionContext::TensorObserver keep_all(const Plan& plan, std::map<std::string, HostTensor>* kept) {
  return [&plan, kept](int32_t t, const TensorView& v) {
    HostTensor copy(v.dtype, v.shape);
    std::copy_n(static_cast<const uint8_t*>(v.data), copy.size_bytes(), copy.data());
    (*kept)[plan.tensors[t].name] = std::move(copy);
    return Status::ok();
  };
}

// Values of any two float types compare (an fp16 tensor against FP32); a quantized integer
// tensor that kept a float tensor's name holds codes, not values, so it does not.
bool comparable(DType a, DType b) {
  auto is_float = [](DType t) {
    return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 || t == DType::kBFloat16 ||
           float8_is_supported(t);
  };
  return a == b || (is_float(a) && is_float(b));
}

struct LayerRow {
  std::string tensor, node;
  TensorErrors e;
};

int per_layer_report(const Plan& plan, const std::map<std::string, HostTensor>& got,
                     const std::map<std::string, HostTensor>& want, const std::string& dump_dir) {
  std::map<std::string, std::string> producer;
  for (const PlanNode& n : plan.nodes)
    for (int32_t t : n.outputs) producer[plan.tensors[t].name] = n.name;
  std::vector<std::string> outputs;
  for (int32_t t : plan.outputs) outputs.push_back(plan.tensors[t].name);
  std::vector<LayerRow> rows;
  size_t unmatched = 0, intermediates = 0;
  for (const auto& [name, g] : got) {
    const bool is_output = std::count(outputs.begin(), outputs.end(), name) != 0;
    intermediates += !is_output;
    auto it = want.find(name);
    if (it == want.end() || it->second.shape() != g.shape() || !comparable(g.dtype(), it->second.dtype())) {
      ++unmatched;
      continue;
    }
    rows.push_back({name, producer[name], compare_tensors(g.view(), it->second.view())});
  }
  size_t matched_intermediates = 0;
  for (const LayerRow& r : rows) matched_intermediates += !std::count(outputs.begin(), outputs.end(), r.tensor);
  if (intermediates > 0 && matched_intermediates == 0)
    return fail("compare", "--per-layer: none of the plan's " + std::to_string(intermediates) +
                               " intermediate tensors has a tensor of the same name and shape in the reference "
                               "(was the plan built from this model?)");
  // Worst first; a NaN error sorts before every number.
  auto key = [](const LayerRow& r) { return std::isnan(r.e.rel_l2) ? INFINITY : r.e.rel_l2; };
  std::stable_sort(rows.begin(), rows.end(), [&](const LayerRow& a, const LayerRow& b) { return key(a) > key(b); });
  std::printf("\nper layer: %zu tensors matched by name, %zu of the plan's %zu node outputs not in the reference "
              "(renamed or inserted by fusion or quantization); worst first\n",
              rows.size(), unmatched, got.size());
  std::printf("%-28s %-24s %12s %12s %12s %12s %10s\n", "tensor", "plan node", "max abs", "mean abs", "max rel",
              "rel L2", "cosine");
  for (const LayerRow& r : rows) print_row(r.tensor, r.node, r.e, true);
  if (dump_dir.empty()) return 0;
  for (const std::string& d : {dump_dir, dump_dir + "/plan", dump_dir + "/reference"})
    ::mkdir(d.c_str(), 0755);
  for (const LayerRow& r : rows) {
    Status st = write_npy(dump_dir + "/plan/" + file_safe(r.tensor) + ".npy", got.at(r.tensor));
    if (st) st = write_npy(dump_dir + "/reference/" + file_safe(r.tensor) + ".npy", want.at(r.tensor));
    if (!st) return fail("compare", "--dump: " + st.message());
  }
  std::printf("wrote %zu tensors to %s/plan and %s/reference\n", rows.size(), dump_dir.c_str(), dump_dir.c_str());
  return 0;
}

}  // namespace

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

  PlanSession s;
  st = s.load(args.positional()[0]);
  if (st) st = s.prepare_inputs(args.all("--input"));
  if (!st) return fail("compare", st.message());

  // The reference: FP32, every node on the CPU backend, the plan's input shapes; without
  // fusion for --per-layer, so that every ONNX intermediate tensor exists under its own name.
  BuildOptions ref_opts;
  ref_opts.device = "cpu";
  ref_opts.fuse = !per_layer;
  for (int32_t t : s.plan->inputs) ref_opts.shapes[s.plan->tensors[t].name] = s.plan->tensors[t].shape;
  PlanSession ref;
  auto ref_plan = std::make_shared<Plan>();
  st = build_plan_from_file(args.get("--reference"), ref_opts, ref_plan.get());
  if (!st) return fail("compare", "building the reference: " + st.message());
  ref.plan = ref_plan;
  ref.inputs = s.inputs;

  std::unique_ptr<ExecutionContext> ctx, ref_ctx;
  std::vector<HostTensor> got, want;
  std::map<std::string, HostTensor> got_all, want_all;
  std::string notice;
  st = s.open_context(args.get("--device", "auto"), &ctx, &got, &notice);
  if (st && per_layer) ctx->set_tensor_observer(keep_all(*s.plan, &got_all));
  if (st) st = ctx->run();
  if (!st) return fail("compare", st.message());
  st = ref.open_context("cpu", &ref_ctx, &want, &notice);
  if (st && per_layer) ref_ctx->set_tensor_observer(keep_all(*ref_plan, &want_all));
  if (st) st = ref_ctx->run();
  if (!st) return fail("compare", "running the reference: " + st.message());

  std::printf("%s on %s vs FP32 reference %s (cpu)\n", args.positional()[0].c_str(), ctx->device().label.c_str(),
              args.get("--reference").c_str());
  std::printf("%-24s %12s %12s %12s %12s %10s\n", "output", "max abs", "mean abs", "max rel", "rel L2", "cosine");
  for (size_t i = 0; i < s.plan->outputs.size(); ++i) {
    const PlanTensor& pt = s.plan->tensors[s.plan->outputs[i]];
    int32_t r = ref_plan->find_tensor(pt.name);
    size_t ri = 0;
    for (; ri < ref_plan->outputs.size() && ref_plan->outputs[ri] != r; ++ri) {
    }
    if (r < 0 || ri == ref_plan->outputs.size())
      return fail("compare", "the reference model has no output '" + pt.name + "'");
    if (want[ri].shape() != got[i].shape())
      return fail("compare", "output '" + pt.name + "': plan gives " + shape_str(got[i].shape()) +
                                 ", the reference " + shape_str(want[ri].shape()));
    print_row(pt.name, "", compare_tensors(got[i].view(), want[ri].view()), false);
  }
  if (per_layer) return per_layer_report(*s.plan, got_all, want_all, args.get("--dump"));
  return 0;
}

}  // namespace kiln::cli
