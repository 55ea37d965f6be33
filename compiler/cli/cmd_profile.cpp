#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>

#include "compiler/cli/args.h"
#include "compiler/cli/plan_session.h"
#include "compiler/cli/verbs.h"
#include "runtime/profile/node_cost.h"
#include "runtime/profile/profiler.h"

namespace kiln::cli {

static const char* kProfileHelp =
    "usage: kiln profile PLAN [-i NAME=FILE.npy ...] [options]\n"
    "\n"
    "Runs the plan and reports where the time goes: one row per node (OpenCL nodes timed with\n"
    "queue markers, so multi-kernel library calls count whole; CPU nodes with the host clock) and\n"
    "per host<->device transfer, with achieved GB/s and GFLOP/s and whether the node is memory-\n"
    "or compute-bound (arithmetic intensity above 10 FLOP/byte counts as compute-bound).\n"
    "  -i, --input NAME=FILE    input from a .npy file (random values for inputs not given)\n"
    "  --device D               cpu | opencl | opencl:N | auto (default auto)\n"
    "  --iterations N           profiled runs after one warm-up run (default 10)\n"
    "  --trace FILE.json        write a Chrome/Perfetto trace (one complete event per node and\n"
    "                           transfer, one track per queue)\n";

namespace {

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
      continue;
    }
    o += c;
  }
  return o;
}

struct Row {
  std::string name, op, backend;
  int calls = 0;
  double total_ms = 0;
  double flops = 0;  // per call
  uint64_t bytes = 0;
};

}  // namespace

Status write_trace(const std::string& path, const Plan& plan, const std::vector<ProfileEvent>& events) {
  std::ofstream f(path);
  if (!f) return io_error("cannot write trace '" + path + "'");
  int64_t t0 = events.empty() ? 0 : events.front().start_ns;
  for (const auto& e : events) t0 = std::min(t0, e.start_ns);
  f << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  f << "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":1,\"args\":{\"name\":\"cpu\"}},\n";
  f << "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":2,\"args\":{\"name\":\"opencl queue\"}},\n";
  f << "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":3,\"args\":{\"name\":\"transfers\"}}";
  char buf[64];
  for (const auto& e : events) {
    std::string name, cat;
    int tid = 1;
    if (e.kind == ProfileEvent::Kind::kNode) {
      name = plan.nodes[e.node].name;
      cat = plan.nodes[e.node].op;
      tid = e.backend == Backend::kOpenCL ? 2 : 1;
    } else {
      name = std::string(e.kind == ProfileEvent::Kind::kUpload ? "H2D " : "D2H ") + plan.tensors[e.tensor].name;
      cat = "transfer";
      tid = 3;
    }
    f << ",\n{\"name\":\"" << json_escape(name) << "\",\"cat\":\"" << json_escape(cat) << "\",\"ph\":\"X\",";
    std::snprintf(buf, sizeof buf, "\"ts\":%.3f,\"dur\":%.3f,", (e.start_ns - t0) / 1e3, (e.end_ns - e.start_ns) / 1e3);
    f << buf << "\"pid\":1,\"tid\":" << tid << ",\"args\":{\"run\":" << e.run << "}}";
  }
  f << "\n]}\n";
  if (!f) return io_error("error writing trace '" + path + "'");
  return Status::ok();
}

int cmd_profile(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--input", "-i", true, true}, {"--device", ""}, {"--iterations", ""}, {"--trace", ""},
                           {"--help", "-h", false}},
                          &args);
  if (!st) return fail("profile", st.message());
  if (args.has("--help")) {
    std::fputs(kProfileHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("profile", "expected one PLAN argument (see --help)");
  int iterations = 0;
  if (!parse_positive(args.get("--iterations", "10"), &iterations))
    return fail("profile", "--iterations needs a positive number");

  PlanSession s;
  st = s.load(args.positional()[0]);
  if (st) st = s.prepare_inputs(args.all("--input"));
  std::unique_ptr<ExecutionContext> ctx;
  std::vector<HostTensor> outputs;
  std::string notice;
  if (st) st = s.open_context(args.get("--device", "auto"), &ctx, &outputs, &notice);
  if (!st) return fail("profile", st.message());
  if (!notice.empty()) std::fprintf(stderr, "kiln: note: %s\n", notice.c_str());
  st = ctx->run();  // warm-up: program builds and first-touch allocations stay out of the numbers
  Profiler prof;
  ctx->set_profiler(&prof);
  for (int i = 0; i < iterations && st; ++i) st = ctx->run();
  ctx->set_profiler(nullptr);
  if (!st) return fail("profile", st.message());

  const Plan& plan = *s.plan;
  std::map<std::string, Row> rows;
  std::vector<std::string> order;
  double total_ms = 0;
  for (const ProfileEvent& e : prof.events()) {
    std::string key;
    Row proto;
    if (e.kind == ProfileEvent::Kind::kNode) {
      const PlanNode& n = plan.nodes[e.node];
      key = "n:" + n.name;
      proto.name = n.name;
      proto.op = n.op;
      NodeCost c = node_cost(plan, n);
      proto.flops = c.flops;
      proto.bytes = c.bytes;
    } else {
      const PlanTensor& t = plan.tensors[e.tensor];
      const bool up = e.kind == ProfileEvent::Kind::kUpload;
      key = std::string(up ? "u:" : "d:") + t.name;
      proto.name = std::string(up ? "H2D " : "D2H ") + t.name;
      proto.op = "transfer";
      proto.bytes = t.bytes();
    }
    proto.backend = backend_name(e.backend);
    auto it = rows.find(key);
    if (it == rows.end()) {
      it = rows.emplace(key, proto).first;
      order.push_back(key);
    }
    const double ms = (e.end_ns - e.start_ns) / 1e6;
    it->second.calls++;
    it->second.total_ms += ms;
    total_ms += ms;
  }
  std::vector<const Row*> sorted;
  for (const auto& k : order) sorted.push_back(&rows[k]);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Row* a, const Row* b) { return a->total_ms > b->total_ms; });

  std::printf("profile of %s on %s: %d runs\n", args.positional()[0].c_str(), ctx->device().label.c_str(), iterations);
  std::printf("%-32s %-14s %-7s %6s %10s %9s %6s %9s %10s  %s\n", "node", "op", "backend", "calls", "total ms",
              "mean ms", "share", "GB/s", "GFLOP/s", "bound");
  for (const Row* r : sorted) {
    const double mean = r->total_ms / r->calls;
    const double gbs = mean > 0 ? r->bytes / (mean * 1e6) : 0;
    const double gfs = mean > 0 ? r->flops / (mean * 1e6) : 0;
    const char* bound = r->op == "transfer" ? "transfer"
                        : (r->bytes && r->flops / r->bytes >= kComputeBoundIntensity) ? "compute"
                                                                                       : "memory";
    std::string name = r->name.size() > 32 ? r->name.substr(0, 29) + "..." : r->name;
    std::printf("%-32s %-14s %-7s %6d %10.3f %9.4f %5.1f%% %9.2f %10.2f  %s\n", name.c_str(), r->op.c_str(),
                r->backend.c_str(), r->calls, r->total_ms, mean, total_ms > 0 ? 100.0 * r->total_ms / total_ms : 0.0,
                gbs, r->op == "transfer" ? 0.0 : gfs, bound);
  }
  std::printf("total %.3f ms over %d runs (%.3f ms per run)\n", total_ms, iterations, total_ms / iterations);
  if (args.has("--trace")) {
    st = write_trace(args.get("--trace"), plan, prof.events());
    if (!st) return fail("profile", st.message());
    std::printf("trace written to %s (open in chrome://tracing or ui.perfetto.dev)\n", args.get("--trace").c_str());
  }
  return 0;
}

}  // namespace kiln::cli
