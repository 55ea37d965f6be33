#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <thread>

#include "runtime/cli/args.h"
#include "runtime/core/file_io.h"
#include "runtime/device/cl_check.h"
#include "runtime/cli/plan_session.h"
#include "runtime/cli/verbs.h"
#include "runtime/profile/profiler.h"

namespace kiln::cli {

static const char* kBenchHelp =
    "usage: kiln bench PLAN [-i NAME=FILE.npy ...] [options]\n"
    "\n"
    "Measures latency and throughput like trtexec: inputs are random unless given; each of the\n"
    "--concurrency execution contexts (sharing the plan's weights) keeps one inference in flight.\n"
    "One context runs synchronously on the calling thread (kiln_context_run); several run\n"
    "asynchronously (kiln_enqueue), each on its context's thread.\n"
    "Inputs and outputs live in each context's page-locked host buffers (kiln_context_host_buffer),\n"
    "as a deployment feeding a GPU would keep them, so transfers run at DMA speed.\n"
    "  --no-data-transfers      (trtexec's --noDataTransfers) inputs uploaded once into device\n"
    "                           buffers and outputs left on the device: the runs time the device\n"
    "                           work alone, as a pipeline that keeps tensors there (OpenCL only)\n"
    "  -i, --input NAME=FILE    input from a .npy file\n"
    "  --shapes NAME=DIMS       random input of this shape (a plan built with --min-shapes/\n"
    "                           --max-shapes runs any shape in its range; default: the max)\n"
    "  --device D               cpu | opencl | opencl:N | auto (default auto)\n"
    "  --warmup-ms N            warm-up time before measuring (default 200)\n"
    "  --duration-s N           measure for N seconds (default 3)\n"
    "  --iterations N           measure exactly N inferences instead of a duration\n"
    "  --concurrency N          inferences in flight (default 1)\n"
    "  --json FILE              write the report as JSON (throughput_per_s, latency_ms.{min,mean,\n"
    "                           median,p90,p95,p99,max}, enqueue_ms, h2d_ms, compute_ms, d2h_ms,\n"
    "                           issue_us_per_launch (host time issuing each OpenCL kernel), warnings)\n";

namespace {

struct Stats {
  double min = 0, mean = 0, median = 0, p90 = 0, p95 = 0, p99 = 0, max = 0, stddev = 0;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    // Nearest-rank percentile, as trtexec reports.
    size_t i = static_cast<size_t>(std::ceil(p / 100.0 * v.size()));
    return v[std::min(v.size() - 1, i ? i - 1 : 0)];
  };
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / v.size();
  double var = 0;
  for (double x : v) var += (x - s.mean) * (x - s.mean);
  s.stddev = std::sqrt(var / v.size());
  s.median = v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  s.p90 = pct(90);
  s.p95 = pct(95);
  s.p99 = pct(99);
  return s;
}

std::string stats_json(const Stats& s) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "{\"min\": %.6f, \"mean\": %.6f, \"median\": %.6f, \"p90\": %.6f, \"p95\": %.6f, \"p99\": %.6f, "
                "\"max\": %.6f}",
                s.min, s.mean, s.median, s.p90, s.p95, s.p99, s.max);
  return buf;
}

// --no-data-transfers: every output stays on the device and every input is read from a device
// buffer filled once (made in the context's OpenCL context, which an output's buffer names).
Status keep_on_device(ExecutionContext& ctx, const PlanSession& s) {
  if (ctx.device().backend != Backend::kOpenCL)
    return unsupported("it needs an OpenCL device; this context runs on " + ctx.device().label);
  cl_context cl = nullptr;
  for (int32_t t : s.plan->outputs) {
    cl_mem mem = nullptr;
    KILN_TRY(ctx.output_device(s.plan->tensors[t].name, &mem));
    KILN_CL(clGetMemObjectInfo(mem, CL_MEM_CONTEXT, sizeof cl, &cl, nullptr), "clGetMemObjectInfo(CL_MEM_CONTEXT)");
  }
  if (!cl) return unsupported("the plan has no outputs on an OpenCL device");
  for (const auto& [name, t] : s.inputs) {
    cl_int err = CL_SUCCESS;
    void* data = const_cast<uint8_t*>(t.data());  // CL_MEM_COPY_HOST_PTR only reads it
    cl_mem mem = clCreateBuffer(cl, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, std::max<size_t>(t.size_bytes(), 1),
                                t.size_bytes() ? data : nullptr, &err);
    KILN_CL(err, "clCreateBuffer for input '" + name + "'");
    const Status st = ctx.bind_input_device(name, mem);
    clReleaseMemObject(mem);  // the context holds its own reference
    KILN_TRY(st);
  }
  return Status::ok();
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1,
                          {{"--input", "-i", true, true}, {"--shapes", "", true, true}, {"--device", ""}, {"--warmup-ms", ""}, {"--duration-s", ""},
                           {"--iterations", ""}, {"--concurrency", ""}, {"--json", ""}, {"--threads", ""},
                           {"--no-data-transfers", "", false}, {"--help", "-h", false}},
                          &args);
  if (st) st = apply_threads_option(args);
  if (!st) return fail("bench", st.message());
  if (args.has("--help")) {
    std::fputs(kBenchHelp, stdout);
    std::fputs(kThreadsHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) return fail("bench", "expected one PLAN argument (see --help)");
  if (args.has("--duration-s") && args.has("--iterations"))
    return fail("bench", "give --duration-s or --iterations, not both");
  int warmup_ms = 0, duration_s = 0, iterations = 0, concurrency = 0;
  if (!parse_positive(args.get("--warmup-ms", "200"), &warmup_ms) && args.get("--warmup-ms", "200") != "0")
    return fail("bench", "--warmup-ms needs a number");
  if (!parse_positive(args.get("--duration-s", "3"), &duration_s)) return fail("bench", "--duration-s needs a positive number");
  if (args.has("--iterations") && !parse_positive(args.get("--iterations"), &iterations))
    return fail("bench", "--iterations needs a positive number");
  if (!parse_positive(args.get("--concurrency", "1"), &concurrency) || concurrency > 256)
    return fail("bench", "--concurrency needs a number from 1 to 256");

  PlanSession s;
  st = s.load(args.positional()[0]);
  if (st) st = s.prepare_inputs(args.all("--input"), args.all("--shapes"));
  if (!st) return fail("bench", st.message());
  const std::string device = args.get("--device", "auto");
  std::vector<std::unique_ptr<ExecutionContext>> ctxs(concurrency);
  std::vector<std::vector<HostTensor>> outs(concurrency);
  for (int c = 0; c < concurrency; ++c) {
    std::string notice;
    st = s.open_context(device, &ctxs[c], &outs[c], &notice, /*pinned=*/true);
    if (!st) return fail("bench", st.message());
    if (args.has("--no-data-transfers")) {
      st = keep_on_device(*ctxs[c], s);
      if (!st) return fail("bench", "--no-data-transfers: " + st.message());
    }
    if (c == 0 && !notice.empty()) std::fprintf(stderr, "kiln: note: %s\n", notice.c_str());
  }

  using clock = std::chrono::steady_clock;
  auto ms_since = [](clock::time_point t) { return std::chrono::duration<double, std::milli>(clock::now() - t).count(); };
  // One context runs synchronously on this thread, as an application with one inference in
  // flight would (and as onnxruntime's and trtexec's loops do): no hand-off to the context's
  // thread and back. Several contexts run asynchronously, each on its own thread.
  const bool sync = concurrency == 1;
  auto infer = [&](int c, std::string* msg) {
    if (sync) {
      const Status r = ctxs[c]->run();
      if (!r) *msg = r.message();
      return r.is_ok();
    }
    return ctxs[c]->enqueue()->wait(msg) == 0;
  };
  // Warm-up: program builds, caches and clocks settle outside the measurement.
  const auto warm0 = clock::now();
  do {
    if (sync) {
      std::string msg;
      if (!infer(0, &msg)) return fail("bench", msg);
      continue;
    }
    for (auto& c : ctxs) c->enqueue();
    for (auto& c : ctxs) c->wait_idle();
  } while (ms_since(warm0) < warmup_ms);
  {
    std::string msg;
    if (!infer(0, &msg)) return fail("bench", msg);
  }

  std::vector<ExecutionContext::IssueTime> issue0;
  for (auto& c : ctxs) issue0.push_back(c->opencl_issue_time());
  std::atomic<long> started{0};
  std::vector<std::vector<double>> lat(concurrency), enq(concurrency);
  std::vector<std::string> errors(concurrency);
  const auto t0 = clock::now();
  const auto deadline = t0 + std::chrono::seconds(duration_s);
  std::vector<std::thread> threads;
  auto measure = [&](int c) {
    for (;;) {
      if (iterations ? started.fetch_add(1) >= iterations : clock::now() >= deadline) break;
      const auto a = clock::now();
      std::string msg;
      double e = 0;
      bool ok;
      if (sync) {
        ok = infer(c, &msg);
      } else {
        auto ev = ctxs[c]->enqueue();
        e = ms_since(a);
        ok = ev->wait(&msg) == 0;
      }
      if (!ok) {
        errors[c] = msg;
        break;
      }
      lat[c].push_back(ms_since(a));
      if (!sync) enq[c].push_back(e);
    }
  };
  if (sync) measure(0);
  for (int c = 0; !sync && c < concurrency; ++c) threads.emplace_back(measure, c);
  for (auto& t : threads) t.join();
  const double wall_s = ms_since(t0) / 1e3;
  for (const auto& e : errors)
    if (!e.empty()) return fail("bench", e);
  std::vector<double> all_lat, all_enq;
  for (int c = 0; c < concurrency; ++c) {
    all_lat.insert(all_lat.end(), lat[c].begin(), lat[c].end());
    all_enq.insert(all_enq.end(), enq[c].begin(), enq[c].end());
  }
  const Stats L = stats_of(all_lat), E = stats_of(all_enq);
  ExecutionContext::IssueTime issued;
  for (size_t c = 0; c < ctxs.size(); ++c) {
    issued.ns += ctxs[c]->opencl_issue_time().ns - issue0[c].ns;
    issued.launches += ctxs[c]->opencl_issue_time().launches - issue0[c].launches;
  }
  const double issue_us = issued.launches ? issued.ns / 1e3 / issued.launches : 0;
  const double throughput = all_lat.size() / wall_s;

  // Where one inference's time goes, from a few profiled runs after the measurement.
  Profiler prof;
  ctxs[0]->set_profiler(&prof);
  const int prof_runs = 5;
  // On the thread the measured runs used (see cmd_profile.cpp's warm-up for why it matters).
  for (int i = 0; i < prof_runs && st; ++i) {
    std::string msg;
    if (!infer(0, &msg)) st = Status(StatusCode::kDevice, msg);
  }
  ctxs[0]->set_profiler(nullptr);
  if (!st) return fail("bench", st.message());
  double h2d = 0, d2h = 0, compute = 0;
  for (const ProfileEvent& e : prof.events()) {
    const double ms = (e.end_ns - e.start_ns) / 1e6 / prof_runs;
    if (e.kind == ProfileEvent::Kind::kUpload) h2d += ms;
    else if (e.kind == ProfileEvent::Kind::kDownload) d2h += ms;
    else compute += ms;
  }

  std::vector<std::string> warnings;
  char w[256];
  if (L.median > 0 && L.stddev / L.mean > 0.10) {
    std::snprintf(w, sizeof w, "unstable: latency varies by %.0f%% (stddev/mean); results may not be reproducible",
                  100 * L.stddev / L.mean);
    warnings.push_back(w);
  }
  if (compute > 0 && h2d + d2h > compute) {
    std::snprintf(w, sizeof w, "transfer-bound: host<->device copies (%.3f ms) exceed compute (%.3f ms)", h2d + d2h,
                  compute);
    warnings.push_back(w);
  }
  if (L.median > 0 && compute + h2d + d2h < 0.5 * L.median / concurrency) {
    std::snprintf(w, sizeof w,
                  "enqueue-bound: kernels and copies account for %.0f%% of the latency; host-side launch "
                  "overhead dominates",
                  100 * (compute + h2d + d2h) / L.median);
    warnings.push_back(w);
  }

  std::printf("bench %s on %s: concurrency %d, %zu inferences in %.2f s\n", args.positional()[0].c_str(),
              ctxs[0]->device().label.c_str(), concurrency, all_lat.size(), wall_s);
  std::printf("throughput: %.2f inferences/s\n", throughput);
  std::printf("latency ms: min %.4f  mean %.4f  median %.4f  p90 %.4f  p95 %.4f  p99 %.4f  max %.4f\n", L.min, L.mean,
              L.median, L.p90, L.p95, L.p99, L.max);
  if (sync) std::printf("enqueue ms: - (one context: synchronous runs)\n");
  else std::printf("enqueue ms: mean %.4f  median %.4f\n", E.mean, E.median);
  if (issued.launches)
    std::printf("host time issuing OpenCL kernels: %.2f us per launch (%.1f launches, %.3f ms per inference)\n",
                issue_us, static_cast<double>(issued.launches) / std::max<size_t>(all_lat.size(), 1),
                issued.ns / 1e6 / std::max<size_t>(all_lat.size(), 1));
  std::printf("per inference (profiled): H2D %.4f ms, compute %.4f ms, D2H %.4f ms\n", h2d, compute, d2h);
  for (const auto& warning : warnings) std::printf("warning: %s\n", warning.c_str());

  if (args.has("--json")) {
    std::ofstream f(args.get("--json"));
    f << "{\n  \"plan\": \"" << args.positional()[0] << "\",\n  \"device\": \"" << ctxs[0]->device().label
      << "\",\n  \"concurrency\": " << concurrency << ",\n  \"inferences\": " << all_lat.size()
      << ",\n  \"duration_s\": " << wall_s << ",\n  \"throughput_per_s\": " << throughput
      << ",\n  \"latency_ms\": " << stats_json(L) << ",\n  \"enqueue_ms\": " << stats_json(E)
      << ",\n  \"h2d_ms\": " << h2d << ",\n  \"compute_ms\": " << compute << ",\n  \"d2h_ms\": " << d2h
      << ",\n  \"issue_us_per_launch\": " << issue_us << ",\n  \"warnings\": [";
    for (size_t i = 0; i < warnings.size(); ++i) f << (i ? ", " : "") << "\"" << warnings[i] << "\"";
    f << "]\n}\n";
    if (!f) return fail("bench", "cannot write '" + args.get("--json") + "': " + last_os_error());
  }
  return 0;
}

}  // namespace kiln::cli
