#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>

#include "runtime/cli/args.h"
#include "runtime/core/file_io.h"
#include "runtime/cli/plan_session.h"
#include "runtime/cli/verbs.h"
#include "runtime/backends/cpu/fast_cpu.h"
#include "runtime/exec/execution_context.h"
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
    "  --shapes NAME=DIMS       random input of this shape (a plan built with --min-shapes/\n"
    "                           --max-shapes runs any shape in its range; default: the max)\n"
    "  --device D               cpu | opencl | opencl:N | auto (default auto)\n"
    "  --iterations N           profiled runs after one warm-up run (default 10)\n"
    "  --concurrency N          run N contexts of the plan at once (inferences in flight); the\n"
    "                           trace shows each context as its own process\n"
    "  --trace FILE.json        write a Chrome/Perfetto trace (one complete event per node and\n"
    "                           transfer with the kernel that ran it, one track per queue)\n";

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
  int reference_calls = 0;  // calls of a CPU node that ran kiln's reference kernel, not oneDNN's
  double total_ms = 0;
  double flops = 0;  // per call
  uint64_t bytes = 0;
  double host_us = 0;  // total host time issuing the node
};

}  // namespace

// What ran node n, for the trace's "kernel" argument: a CPU node's fast kernel
// ("onednn:convolution(winograd)", ...; "reference" where it has none or fell back this run),
// an OpenCL node's variant (else the compiler's kernel name).
std::string kernel_of(const Plan& plan, const ExecutionContext& ctx, const ProfileEvent& e) {
  const PlanNode& n = plan.nodes[e.node];
  if (e.backend == Backend::kOpenCL) return n.choice.empty() ? n.kernel : n.choice.variant;
  const char* fast = ctx.fast_cpu() && !e.cpu_reference ? ctx.fast_cpu()->kernel_name(e.node) : nullptr;
  return fast ? fast : "reference";
}

// One process per execution context (pid = context + 1), one track per queue in each.
Status write_trace(const std::string& path, const Plan& plan, const std::vector<const Profiler*>& contexts,
                   const std::vector<const ExecutionContext*>& ctxs) {
  std::ofstream f(path);
  if (!f) return io_error("cannot write trace '" + path + "': " + last_os_error());
  int64_t t0 = INT64_MAX;
  for (const Profiler* p : contexts)
    for (const auto& e : p->events()) t0 = std::min(t0, e.start_ns);
  f << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  bool first = true;
  for (size_t c = 0; c < contexts.size(); ++c) {
    const int pid = static_cast<int>(c) + 1;
    const char* tracks[] = {"cpu", "opencl queue", "transfers"};
    for (int tid = 1; tid <= 3; ++tid) {
      f << (first ? "" : ",\n") << "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" << pid << ",\"tid\":" << tid
        << ",\"args\":{\"name\":\"" << tracks[tid - 1] << "\"}}";
      first = false;
    }
    f << ",\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" << pid << ",\"args\":{\"name\":\"context " << c
      << "\"}}";
  }
  char buf[64];
  for (size_t c = 0; c < contexts.size(); ++c)
  for (const auto& e : contexts[c]->events()) {
    std::string name, cat, kernel;
    int tid = 1;
    if (e.kind == ProfileEvent::Kind::kNode) {
      name = plan.nodes[e.node].name;
      cat = plan.nodes[e.node].op;
      tid = e.backend == Backend::kOpenCL ? 2 : 1;
      kernel = kernel_of(plan, *ctxs[c], e);
    } else {
      name = std::string(e.kind == ProfileEvent::Kind::kUpload ? "H2D " : "D2H ") + plan.tensors[e.tensor].name;
      cat = "transfer";
      tid = 3;
    }
    f << ",\n{\"name\":\"" << json_escape(name) << "\",\"cat\":\"" << json_escape(cat) << "\",\"ph\":\"X\",";
    std::snprintf(buf, sizeof buf, "\"ts\":%.3f,\"dur\":%.3f,", (e.start_ns - t0) / 1e3, (e.end_ns - e.start_ns) / 1e3);
    f << buf << "\"pid\":" << c + 1 << ",\"tid\":" << tid << ",\"args\":{\"run\":" << e.run;
    if (!kernel.empty()) f << ",\"kernel\":\"" << json_escape(kernel) << "\"";
    f << "}}";
  }
  f << "\n]}\n";
  if (!f) return io_error("error writing trace '" + path + "': " + last_os_error());
  return Status::ok();
}

int cmd_profile(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--input", "-i", true, true}, {"--shapes", "", true, true}, {"--device", ""}, {"--iterations", ""}, {"--trace", ""}, {"--concurrency", ""},
                           {"--threads", ""}, {"--help", "-h", false}},
                          &args);
  if (st) st = apply_threads_option(args);
  if (!st) return fail("profile", st.message());
  if (args.has("--help")) {
    std::fputs(kProfileHelp, stdout);
    std::fputs(kThreadsHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("profile", "expected one PLAN argument (see --help)");
  int iterations = 0, concurrency = 0;
  if (!parse_positive(args.get("--iterations", "10"), &iterations))
    return fail("profile", "--iterations needs a positive number");
  if (!parse_positive(args.get("--concurrency", "1"), &concurrency) || concurrency > 64)
    return fail("profile", "--concurrency needs a number from 1 to 64");

  PlanSession s;
  st = s.load(args.positional()[0]);
  if (st) st = s.prepare_inputs(args.all("--input"), args.all("--shapes"));
  std::vector<std::unique_ptr<ExecutionContext>> ctxs(concurrency);
  std::vector<std::vector<HostTensor>> outputs(concurrency);
  std::vector<Profiler> profs(concurrency);
  for (int c = 0; c < concurrency && st; ++c) {
    std::string notice;
    st = s.open_context(args.get("--device", "auto"), &ctxs[c], &outputs[c], &notice, /*pinned=*/true);
    if (st && c == 0 && !notice.empty()) std::fprintf(stderr, "kiln: note: %s\n", notice.c_str());
    // Warm-up: program builds and first-touch allocations stay out of the numbers. Enqueued
    // like the profiled runs, so it runs on the same thread: CPU kernels started from a second
    // thread leave OpenMP a second team of workers, more threads than cores, and every node
    // after it waking them through the kernel (1.8x slower on a 2-core host).
    if (st) {
      std::string msg;
      if (ctxs[c]->enqueue()->wait(&msg) != 0) st = Status(StatusCode::kDevice, msg);
    }
    if (st) ctxs[c]->set_profiler(&profs[c]);
  }
  if (!st) return fail("profile", st.message());
  // Every context keeps one inference in flight; with one context this is a plain loop.
  std::vector<std::shared_ptr<InferenceEvent>> pending;
  for (int i = 0; i < iterations; ++i)
    for (auto& c : ctxs) pending.push_back(c->enqueue());
  for (auto& e : pending) {
    std::string msg;
    if (e->wait(&msg) != 0 && st) st = Status(StatusCode::kDevice, msg);
  }
  for (auto& c : ctxs) c->set_profiler(nullptr);
  if (!st) return fail("profile", st.message());
  std::vector<const Profiler*> prof_list;
  std::vector<ProfileEvent> all_events;
  for (const Profiler& p : profs) {
    prof_list.push_back(&p);
    all_events.insert(all_events.end(), p.events().begin(), p.events().end());
  }
  const ExecutionContext* ctx = ctxs[0].get();
  iterations *= concurrency;

  // FLOPs and bytes at the shapes that ran (a dynamic plan stores its max shapes).
  Plan plan;
  plan.tensors = s.plan->tensors;
  plan.nodes = s.plan->nodes;
  for (size_t t = 0; t < plan.tensors.size(); ++t) plan.tensors[t].shape = ctx->tensor_shape(static_cast<int32_t>(t));
  std::map<std::string, Row> rows;
  std::vector<std::string> order;
  double total_ms = 0;
  for (const ProfileEvent& e : all_events) {
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
    it->second.reference_calls += e.cpu_reference;
    it->second.total_ms += ms;
    it->second.host_us += e.host_ns / 1e3;
    total_ms += ms;
  }
  std::vector<const Row*> sorted;
  for (const auto& k : order) sorted.push_back(&rows[k]);
  std::stable_sort(sorted.begin(), sorted.end(), [](const Row* a, const Row* b) { return a->total_ms > b->total_ms; });

  std::printf("profile of %s on %s: %d runs\n", args.positional()[0].c_str(), ctx->device().label.c_str(), iterations);
  std::printf("%-32s %-14s %-7s %6s %10s %9s %6s %9s %10s %8s  %s\n", "node", "op", "backend", "calls", "total ms",
              "mean ms", "share", "GB/s", "GFLOP/s", "host us", "bound");
  double host_cl_us = 0;
  int host_cl_calls = 0;
  int fell_back = 0;
  for (const Row* r : sorted) {
    fell_back += r->reference_calls > 0;
    const double mean = r->total_ms / r->calls;
    const double gbs = mean > 0 ? r->bytes / (mean * 1e6) : 0;
    const double gfs = mean > 0 ? r->flops / (mean * 1e6) : 0;
    const char* bound = r->op == "transfer" ? "transfer"
                        : (r->bytes && r->flops / r->bytes >= kComputeBoundIntensity) ? "compute"
                                                                                       : "memory";
    std::string name = r->name.size() > 32 ? r->name.substr(0, 29) + "..." : r->name;
    std::printf("%-32s %-14s %-7s %6d %10.3f %9.4f %5.1f%% %9.2f %10.2f %8.1f  %s\n", name.c_str(), r->op.c_str(),
                r->reference_calls ? "cpu-ref" : r->backend.c_str(), r->calls, r->total_ms, mean, total_ms > 0 ? 100.0 * r->total_ms / total_ms : 0.0,
                gbs, r->op == "transfer" ? 0.0 : gfs, r->host_us / r->calls, bound);
    if (r->backend == std::string("opencl") && r->op != "transfer") {
      host_cl_us += r->host_us;
      host_cl_calls += r->calls;
    }
  }
  std::printf("total %.3f ms over %d runs (%.3f ms per run)\n", total_ms, iterations, total_ms / iterations);
  // "host us" of an OpenCL node: the time the host spends issuing its launches (the device runs
  // them asynchronously); the per-inference overhead that no kernel speed-up removes.
  if (fell_back)
    std::printf("cpu-ref: %d node(s) with a oneDNN kernel ran kiln's reference kernel instead (a non-finite\n"
                "input, or no oneDNN primitive at that shape on this CPU): slower, same results\n",
                fell_back);
  if (host_cl_calls)
    std::printf("host time issuing OpenCL nodes: %.1f us per node on average\n", host_cl_us / host_cl_calls);
  if (args.has("--trace")) {
    std::vector<const ExecutionContext*> ctx_list;
    for (const auto& c : ctxs) ctx_list.push_back(c.get());
    st = write_trace(args.get("--trace"), plan, prof_list, ctx_list);
    if (!st) return fail("profile", st.message());
    std::printf("trace written to %s (open in chrome://tracing or ui.perfetto.dev)\n", args.get("--trace").c_str());
  }
  return 0;
}

}  // namespace kiln::cli
