#include <algorithm>
#include <climits>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

#include "runtime/cli/args.h"
#include "runtime/core/file_io.h"
#include "runtime/core/npy.h"
#include "runtime/cli/verbs.h"
#include "kiln/kiln.hpp"

namespace kiln::cli {

static const char* kRunHelp =
    "usage: kiln run PLAN -i NAME=FILE.npy [-i ...] -o OUTDIR [options]\n"
    "\n"
    "Runs a plan and writes OUTDIR/<output name>.npy for every output ('/' in a name becomes '_').\n"
    "A plan built with --min-shapes/--max-shapes takes inputs of any shape in its range.\n"
    "  -i, --input NAME=FILE    input tensor from a .npy file (repeat for each input)\n"
    "  -o, --output OUTDIR      folder for the outputs (created if missing)\n"
    "  --device D               cpu | opencl | opencl:N | auto (default: auto)\n"
    "  --repeat N               run N times and report the median latency (default 1)\n"
    "  --plan-sha256 HEX        refuse a plan file whose SHA-256 differs (pin a deployed plan)\n";

namespace {
std::string file_name_for(const std::string& tensor) {
  std::string s = tensor;
  std::replace(s.begin(), s.end(), '/', '_');
  return s.empty() ? "_" : s;
}

std::string preview(const HostTensor& t) {
  std::string s = "[";
  const int64_t n = std::min<int64_t>(t.numel(), 6);
  char buf[32];
  for (int64_t i = 0; i < n; ++i) {
    double v = tensor_double_at(t.view(), i);
    std::snprintf(buf, sizeof buf, "%s%.6g", i ? ", " : "", v);
    s += buf;
  }
  return s + (t.numel() > n ? ", ...]" : "]");
}
}  // namespace

int cmd_run(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--input", "-i", true, true}, {"--output", "-o"}, {"--device", ""},
                           {"--repeat", ""}, {"--plan-sha256", ""}, {"--threads", ""}, {"--help", "-h", false}},
                          &args);
  if (st) st = apply_threads_option(args);
  if (!st) return fail("run", st.message());
  if (args.has("--help")) {
    std::fputs(kRunHelp, stdout);
    std::fputs(kThreadsHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("run", "expected one PLAN argument (see --help)");
  if (!args.has("--output")) return fail("run", "missing -o OUTDIR");
  const std::string rep_text = args.get("--repeat", "1");
  if (rep_text.empty() || rep_text.find_first_not_of("0123456789") != std::string::npos || rep_text.size() > 7 ||
      std::stoi(rep_text) < 1)
    return fail("run", "--repeat needs a positive number, got '" + rep_text + "'");
  const int repeat = std::stoi(rep_text);

  try {
    PlanHandle plan = PlanHandle::load_file(args.positional()[0], args.get("--plan-sha256", ""));
    // The output folder first: a bad -o is reported before any work.
    const std::string outdir = args.get("--output");
    st = make_directories(outdir);
    if (!st) return fail("run", st.message());
    std::map<std::string, HostTensor> inputs;
    for (const std::string& spec : args.all("--input")) {
      std::string name, path;
      st = split_name_value(spec, "-i", &name, &path);
      if (!st) return fail("run", st.message());
      const kiln_tensor_info* info = nullptr;
      std::vector<kiln_tensor_info> infos = plan.inputs();
      int32_t index = -1;
      for (size_t i = 0; i < infos.size(); ++i)
        if (name == infos[i].name) info = &infos[i], index = static_cast<int32_t>(i);
      if (!info) return fail("run", "the plan has no input named '" + name + "'");
      if (inputs.count(name)) return fail("run", "input '" + name + "' is given twice (-i " + spec + ")");
      int64_t lo[KILN_MAX_RANK], hi[KILN_MAX_RANK];
      check(kiln_plan_input_range(plan.get(), index, lo, hi));
      // The header alone decides whether the data is worth reading: more bytes than the input
      // can ever take (at its largest shape) is refused before they are read; anything smaller
      // goes to binding, which names the dim that is wrong.
      // A float16 input (a plan built with --io-precision fp16) takes the float32 file a user
      // has, converted as numpy's astype would.
      const DType want = static_cast<DType>(info->dtype);
      auto converts = [&](DType dt) { return dt == DType::kFloat32 && want == DType::kFloat16; };
      HostTensor t;
      st = read_npy(path, &t, [&](DType dt, const Shape& shape) {
        int64_t n = 1;
        for (int64_t d : shape) n = d && n > INT64_MAX / d ? INT64_MAX : n * d;
        const size_t element = dtype_size(converts(dt) ? want : dt);
        if (n <= static_cast<int64_t>(info->size_bytes / std::max<size_t>(1, element))) return Status::ok();
        const Shape want_lo(lo, lo + info->rank), want_hi(hi, hi + info->rank);
        return invalid_argument("expected " + dtype_name(static_cast<DType>(info->dtype)) + " " + shape_str(want_hi) +
                                (want_lo == want_hi ? "" : " (or dims down to " + shape_str(want_lo) + ")") + ", got " +
                                dtype_name(dt) + " " + shape_str(shape) + " in '" + path + "'");
      });
      if (!st) return fail("run", "input '" + name + "': " + st.message());
      inputs[name] = converts(t.dtype()) ? to_float_dtype(std::move(t), want) : std::move(t);
    }
    ContextHandle ctx(plan, args.get("--device", "auto"));
    for (const kiln_tensor_info& info : plan.inputs()) {
      auto it = inputs.find(info.name);
      if (it == inputs.end()) return fail("run", std::string("missing input '") + info.name + "' (pass -i " + info.name + "=FILE.npy)");
      const HostTensor& t = it->second;
      check(kiln_context_bind_input(ctx.get(), info.name, static_cast<int32_t>(t.dtype()), t.shape().data(),
                                    static_cast<int32_t>(t.shape().size()), t.data(), t.size_bytes()));
    }
    // After the inputs: a dynamic plan's outputs take the shapes the inputs were bound with.
    std::vector<kiln_tensor_info> outs = ctx.outputs();
    std::vector<HostTensor> results;
    for (const kiln_tensor_info& info : outs) {
      results.emplace_back(static_cast<DType>(info.dtype), Shape(info.dims, info.dims + info.rank));
      ctx.bind_output(info, results.back().data());
    }
    std::vector<double> ms;
    for (int r = 0; r < repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ctx.run();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    for (size_t i = 0; i < outs.size(); ++i) {
      const std::string path = outdir + "/" + file_name_for(outs[i].name) + ".npy";
      st = write_npy(path, results[i]);
      if (!st) return fail("run", st.message());
      std::printf("%s: %s %s %s -> %s\n", outs[i].name, dtype_name(results[i].dtype()).c_str(),
                  shape_str(results[i].shape()).c_str(), preview(results[i]).c_str(), path.c_str());
    }
    std::vector<double> sorted = ms;
    std::sort(sorted.begin(), sorted.end());
    std::printf("device %s: first run %.3f ms", kiln_context_device(ctx.get()), ms[0]);
    if (repeat > 1) std::printf(", median of %d runs %.3f ms (min %.3f ms)", repeat, sorted[sorted.size() / 2], sorted[0]);
    std::printf("\n");
  } catch (const Error& e) {
    return fail("run", kiln_last_error()[0] ? kiln_last_error() : e.what());
  }
  return 0;
}

}  // namespace kiln::cli
