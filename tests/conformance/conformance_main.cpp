// kiln_conformance: runs the ONNX backend node tests (Debian's libonnx-testdata) through the
// real compiler and runtime on one device and compares against the reference outputs stored
// with each test (rtol 1e-3, atol 1e-5; integers and bools exactly).
//
// A case counts when every op in its model is in kiln's op set (every op with a registered
// schema). Cases listed in the known-failures file are expected to fail (each with its reason);
// the run fails when an unlisted case fails, or when the pass rate of the counted cases, or of
// the cases of any one op, falls below --min-pass-rate.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/compiler.h"
#include "compiler/import/onnx/onnx_import.h"
#include "compiler/ops/op_schema.h"
#include "compiler/ir/graph.h"
#include "runtime/cli/crash_report.h"
#include "runtime/exec/execution_context.h"

namespace {

using namespace kiln;

// The op set kiln promises is every ONNX op it registers a schema for (compiler/ops, through
// runtime/ops/ops.def): an op's node tests count from the commit that registers it.
bool in_op_set(const std::string& op) {
  const OpSchema* s = schema_registry().find(op);
  return s && !s->internal;
}

// --ops A,B: count only the cases that use at least one of these ops (one family's run).
std::set<std::string> g_only_ops;

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') out.push_back(e->d_name);
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Loads input_N.pb / output_N.pb of a data set in index order.
bool load_tensors(const std::string& dir, const std::string& prefix, std::vector<HostTensor>* out, std::string* err) {
  for (int i = 0;; ++i) {
    std::string bytes;
    if (!read_file(dir + "/" + prefix + "_" + std::to_string(i) + ".pb", &bytes)) return true;
    HostTensor t;
    Status st = parse_tensor_proto(bytes, &t, nullptr);
    if (!st) {
      *err = prefix + "_" + std::to_string(i) + ": " + st.message();
      return false;
    }
    out->push_back(std::move(t));
  }
}

// ONNX 1.12's test data stores bfloat16 tensors with the uint16 type code: same bits.
bool same_dtype(DType a, DType b) {
  auto norm = [](DType t) { return t == DType::kBFloat16 ? DType::kUInt16 : t; };
  return norm(a) == norm(b);
}

std::string compare(const HostTensor& got, const HostTensor& want) {
  if (!same_dtype(got.dtype(), want.dtype())) return "dtype " + dtype_name(got.dtype()) + ", expected " + dtype_name(want.dtype());
  if (got.shape() != want.shape()) return "shape " + shape_str(got.shape()) + ", expected " + shape_str(want.shape());
  const bool bf16 = got.dtype() == DType::kBFloat16 || want.dtype() == DType::kBFloat16;
  const bool exact = !dtype_is_float(want.dtype()) || bf16;
  // bfloat16 compares bit for bit, as the uint16 the test data holds.
  TensorView gv = got.view(), wv = want.view();
  if (bf16) gv.dtype = wv.dtype = DType::kUInt16;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double g = tensor_double_at(gv, i), w = tensor_double_at(wv, i);
    if (std::isnan(w) && std::isnan(g)) continue;
    const bool ok = exact ? g == w : (g == w || std::fabs(g - w) <= 1e-5 + 1e-3 * std::fabs(w));
    if (!ok) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "element %lld: got %.8g, expected %.8g", static_cast<long long>(i), g, w);
      return buf;
    }
  }
  return "";
}

struct CaseResult {
  enum Kind { kPass, kFail, kOutOfSet } kind;
  std::string reason;
};

// `ops_out`: the distinct ops of the case's model (for the per-op pass rates).
CaseResult run_case(const std::string& dir, const std::string& device, std::set<std::string>* ops_out) {
  std::string bytes;
  if (!read_file(dir + "/model.onnx", &bytes)) return {CaseResult::kFail, "cannot read model.onnx"};
  // Ops outside the set decide first: a model kiln is not asked to support is out of set,
  // even when it also uses features (subgraphs, sequences) the importer refuses.
  std::vector<std::string> ops;
  Status st = list_onnx_ops(bytes, &ops);
  if (!st) return {CaseResult::kFail, "import: " + st.message()};
  ops_out->insert(ops.begin(), ops.end());
  bool uses_listed = g_only_ops.empty();
  for (const std::string& op : ops) {
    if (!in_op_set(op)) return {CaseResult::kOutOfSet, op};
    uses_listed = uses_listed || g_only_ops.count(op);
  }
  if (!uses_listed) return {CaseResult::kOutOfSet, "(none of --ops)"};
  ir::Graph g;
  st = import_onnx_bytes(bytes, dir, &g);
  if (!st) return {CaseResult::kFail, "import: " + st.message()};

  std::vector<std::string> sets;
  for (const std::string& e : list_dir(dir))
    if (e.rfind("test_data_set_", 0) == 0) sets.push_back(e);
  if (sets.empty()) return {CaseResult::kFail, "no test_data_set"};

  std::vector<HostTensor> inputs, expected;
  std::string err;
  if (!load_tensors(dir + "/" + sets[0], "input", &inputs, &err) ||
      !load_tensors(dir + "/" + sets[0], "output", &expected, &err))
    return {CaseResult::kFail, "test data: " + err};
  if (inputs.size() != g.inputs.size())
    return {CaseResult::kFail, "test has " + std::to_string(inputs.size()) + " inputs, model " +
                                   std::to_string(g.inputs.size())};

  BuildOptions opts;
  opts.device = device;
  for (size_t i = 0; i < inputs.size(); ++i) opts.shapes[g.inputs[i]->name] = inputs[i].shape();
  auto plan = std::make_shared<Plan>();
  // kiln plans are statically shaped: an input that carries a shape (a Reshape target fed as a
  // graph input, say) must be frozen at build time, as TensorRT does with shape tensors. Freeze
  // exactly the inputs the compiler asks for, by name, and rebuild.
  for (;;) {
    ir::Graph gb;
    st = import_onnx_bytes(bytes, dir, &gb);
    if (!st) return {CaseResult::kFail, "import: " + st.message()};
    st = build_plan_from_graph(gb, opts, plan.get());
    if (st || st.message().find("must be known at build time") == std::string::npos) break;
    bool froze = false;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const std::string& name = g.inputs[i]->name;
      if (st.message().find("'" + name + "'") == std::string::npos || opts.frozen_inputs.count(name)) continue;
      opts.frozen_inputs[name] = inputs[i];
      opts.shapes.erase(name);
      froze = true;
    }
    if (!froze) break;
  }
  if (!st) return {CaseResult::kFail, "build: " + st.message()};
  std::unique_ptr<ExecutionContext> ctx;
  std::string notice;
  st = ExecutionContext::create(plan, device, &ctx, &notice);
  if (!st) return {CaseResult::kFail, "context: " + st.message()};
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (opts.frozen_inputs.count(g.inputs[i]->name)) continue;
    const DType dt = same_dtype(inputs[i].dtype(), g.inputs[i]->dtype) ? g.inputs[i]->dtype : inputs[i].dtype();
    st = ctx->bind_input(g.inputs[i]->name, dt, inputs[i].shape(), inputs[i].data(), inputs[i].size_bytes());
    if (!st) return {CaseResult::kFail, "bind: " + st.message()};
  }
  if (plan->outputs.size() != expected.size())
    return {CaseResult::kFail, "model has " + std::to_string(plan->outputs.size()) + " outputs, test " +
                                   std::to_string(expected.size())};
  std::vector<HostTensor> got;
  got.reserve(plan->outputs.size());
  for (int32_t t : plan->outputs) {
    const PlanTensor& pt = plan->tensors[t];
    got.emplace_back(pt.dtype, pt.shape);
    st = ctx->bind_output(pt.name, got.back().data(), got.back().size_bytes());
    if (!st) return {CaseResult::kFail, "bind: " + st.message()};
  }
  st = ctx->run();
  if (!st) return {CaseResult::kFail, "run: " + st.message()};
  for (size_t i = 0; i < got.size(); ++i) {
    std::string diff = compare(got[i], expected[i]);
    if (!diff.empty()) return {CaseResult::kFail, "output " + std::to_string(i) + ": " + diff};
  }
  return {CaseResult::kPass, ""};
}

// known-failures file: "<case> <reason...>" per line; '#' comments. A case may be limited to
// one device with "<case>@cpu" or "<case>@opencl". A line "scope <Op> <reason...>" says the
// op's known failures test something outside what kiln runs (training mode, string or
// sequence types): they do not count against that op's own pass rate (they still count in the
// total).
void load_known(const std::string& path, const std::string& device, std::map<std::string, std::string>* known_out,
                std::set<std::string>* scoped_ops) {
  std::map<std::string, std::string>& known = *known_out;
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "kiln_conformance: cannot read known-failures file '%s'\n", path.c_str());
    std::exit(2);
  }
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    std::string name, reason;
    ss >> name;
    if (name == "scope") {
      std::string op;
      ss >> op;
      scoped_ops->insert(op);
      continue;
    }
    std::getline(ss, reason);
    const size_t at = name.find('@');
    if (at != std::string::npos) {
      if (name.substr(at + 1) != device) continue;
      name = name.substr(0, at);
    }
    known[name] = reason;
  }
}

}  // namespace

int main(int argc, char** argv) {
  kiln::cli::install_crash_report("kiln_conformance");
  std::string data = "/usr/share/libonnx-testdata/data/node", device = "cpu", filter;
  std::vector<std::string> known_paths;
  double min_rate = 0.95;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--data") data = next();
    else if (a == "--device") device = next();
    else if (a == "--filter") filter = next();
    else if (a == "--known-failures") known_paths.push_back(next());
    else if (a == "--min-pass-rate") min_rate = std::stod(next());
    else if (a == "-v" || a == "--verbose") verbose = true;
    else if (a == "--ops") {
      std::stringstream ops(next());
      for (std::string op; std::getline(ops, op, ',');)
        if (!op.empty()) g_only_ops.insert(op);
    } else {
      std::fprintf(stderr,
                   "usage: kiln_conformance [--data DIR] [--device cpu|opencl] [--filter SUBSTR]\n"
                   "                        [--known-failures FILE ...] [--min-pass-rate 0.95] [-v]\n"
                   "                        [--ops OP,OP,...]\n");
      return 2;
    }
  }
  if (!is_dir(data)) {
    std::fprintf(stderr, "kiln_conformance: test data folder '%s' not found (apt-get install libonnx-testdata)\n",
                 data.c_str());
    return 1;
  }
  std::map<std::string, std::string> known;
  std::set<std::string> scoped_ops;
  for (const std::string& p : known_paths) load_known(p, device, &known, &scoped_ops);
  int pass = 0, fail = 0, known_fail = 0, out_of_set = 0, unexpected = 0, fixed = 0;
  std::map<std::string, std::pair<int, int>> per_op;  // op -> (passed, counted) cases using it
  const auto t0 = std::chrono::steady_clock::now();
  for (const std::string& name : list_dir(data)) {
    if (!filter.empty() && name.find(filter) == std::string::npos) continue;
    const std::string dir = data + "/" + name;
    if (!is_dir(dir)) continue;
    std::set<std::string> case_ops;
    CaseResult r = run_case(dir, device, &case_ops);
    if (r.kind == CaseResult::kOutOfSet) {
      ++out_of_set;
      if (verbose) std::printf("SKIP %s (op %s not in kiln's op set)\n", name.c_str(), r.reason.c_str());
      continue;
    }
    const bool is_known = known.count(name) != 0;
    for (const std::string& op : case_ops) {
      if (is_known && r.kind != CaseResult::kPass && scoped_ops.count(op)) continue;
      ++per_op[op].second;
      per_op[op].first += r.kind == CaseResult::kPass;
    }
    if (r.kind == CaseResult::kPass) {
      ++pass;
      if (is_known) {
        ++fixed;
        std::printf("FIXED %s passes but is listed as a known failure\n", name.c_str());
      } else if (verbose) {
        std::printf("PASS %s\n", name.c_str());
      }
    } else {
      ++fail;
      if (is_known) {
        ++known_fail;
        if (verbose) std::printf("KNOWN %s: %s\n", name.c_str(), r.reason.c_str());
      } else {
        ++unexpected;
        std::printf("FAIL %s: %s\n", name.c_str(), r.reason.c_str());
      }
    }
    std::fflush(stdout);
  }
  const int counted = pass + fail;
  const double rate = counted ? static_cast<double>(pass) / counted : 0.0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("conformance [%s]: %d of %d cases in kiln's op set pass (%.1f%%); %d known failures, %d "
              "unexpected failures, %d outside the op set; %.1f s\n",
              device.c_str(), pass, counted, 100.0 * rate, known_fail, unexpected, out_of_set, secs);
  // Every op claimed keeps the bar on its own cases (its known failures count against it unless
  // a "scope" line exempts them).
  int ops_below = 0;
  for (const auto& [op, pc] : per_op) {
    const double op_rate = static_cast<double>(pc.first) / pc.second;
    if (op_rate >= min_rate && !verbose) continue;
    ops_below += op_rate < min_rate;
    std::printf("%s %s: %d of %d cases pass (%.1f%%)\n", op_rate < min_rate ? "OP BELOW BAR" : "op", op.c_str(),
                pc.first, pc.second, 100.0 * op_rate);
  }
  if (unexpected > 0 || (filter.empty() && (rate < min_rate || ops_below > 0))) return 1;
  return 0;
}
