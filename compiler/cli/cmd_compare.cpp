// kiln compare: a plan's outputs against the FP32 reference built from the ONNX model, on the
// same inputs. The accuracy check for reduced-precision plans (and a cross-check of devices).
#include <cmath>
#include <cstdio>

#include "compiler/compiler.h"
#include "runtime/cli/args.h"
#include "runtime/cli/plan_session.h"
#include "runtime/cli/verbs.h"

namespace kiln::cli {

static const char* kCompareHelp =
    "usage: kiln compare PLAN --reference MODEL.onnx [-i NAME=FILE.npy ...] [options]\n"
    "\n"
    "Runs PLAN and an FP32 plan built from MODEL.onnx on the cpu device with the same inputs\n"
    "(random unless given) and prints, per output, the max and mean absolute error, the max\n"
    "relative error, the relative L2 error and the cosine similarity.\n"
    "  --reference MODEL.onnx   the model PLAN was built from\n"
    "  -i, --input NAME=FILE    input from a .npy file\n"
    "  --device D               where PLAN runs (default auto)\n";

namespace {
struct Errors {
  double max_abs = 0, mean_abs = 0, max_rel = 0, rel_l2 = 0, cosine = 1;
};

Errors compare_tensors(const HostTensor& got, const HostTensor& want) {
  Errors e;
  double sum_abs = 0, diff2 = 0, want2 = 0, got2 = 0, dot = 0;
  const int64_t n = want.numel();
  for (int64_t i = 0; i < n; ++i) {
    const double g = tensor_double_at(got.view(), i), w = tensor_double_at(want.view(), i);
    const double d = std::fabs(g - w);
    e.max_abs = std::max(e.max_abs, d);
    sum_abs += d;
    if (w != 0) e.max_rel = std::max(e.max_rel, d / std::fabs(w));
    diff2 += d * d;
    want2 += w * w;
    got2 += g * g;
    dot += g * w;
  }
  e.mean_abs = n ? sum_abs / n : 0;
  e.rel_l2 = want2 > 0 ? std::sqrt(diff2 / want2) : std::sqrt(diff2);
  e.cosine = (want2 > 0 && got2 > 0) ? dot / std::sqrt(want2 * got2) : (diff2 == 0 ? 1.0 : 0.0);
  return e;
}
}  // namespace

int cmd_compare(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--reference", ""}, {"--input", "-i", true, true}, {"--device", ""}, {"--help", "-h", false}},
                          &args);
  if (!st) return fail("compare", st.message());
  if (args.has("--help")) {
    std::fputs(kCompareHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("compare", "expected one PLAN argument (see --help)");
  if (!args.has("--reference")) return fail("compare", "missing --reference MODEL.onnx");

  PlanSession s;
  st = s.load(args.positional()[0]);
  if (st) st = s.prepare_inputs(args.all("--input"));
  if (!st) return fail("compare", st.message());

  // The reference: FP32, every node on the CPU backend, the plan's input shapes.
  BuildOptions ref_opts;
  ref_opts.device = "cpu";
  for (int32_t t : s.plan->inputs) ref_opts.shapes[s.plan->tensors[t].name] = s.plan->tensors[t].shape;
  PlanSession ref;
  auto ref_plan = std::make_shared<Plan>();
  st = build_plan_from_file(args.get("--reference"), ref_opts, ref_plan.get());
  if (!st) return fail("compare", "building the reference: " + st.message());
  ref.plan = ref_plan;
  ref.inputs = s.inputs;

  std::unique_ptr<ExecutionContext> ctx, ref_ctx;
  std::vector<HostTensor> got, want;
  std::string notice;
  st = s.open_context(args.get("--device", "auto"), &ctx, &got, &notice);
  if (st) st = ctx->run();
  if (!st) return fail("compare", st.message());
  st = ref.open_context("cpu", &ref_ctx, &want, &notice);
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
    const Errors e = compare_tensors(got[i], want[ri]);
    std::printf("%-24s %12.4g %12.4g %12.4g %12.4g %10.6f\n", pt.name.c_str(), e.max_abs, e.mean_abs, e.max_rel,
                e.rel_l2, e.cosine);
  }
  return 0;
}

}  // namespace kiln::cli
