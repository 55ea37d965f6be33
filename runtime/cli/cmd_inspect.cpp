#include <cstdio>
#include <fstream>
#include <algorithm>
#include <iterator>

#include "runtime/cli/args.h"
#include "runtime/cli/verbs.h"
#include "runtime/exec/memory_plan.h"
#include "runtime/plan/plan_format.h"

namespace kiln::cli {

namespace {
std::string tensor_line(const PlanTensor& t) {
  return t.name + "  " + dtype_name(t.dtype) + " " + shape_str(t.shape);
}
std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1u << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}
// What a node computes in: the integer ops' input type, a conversion for Q/DQ and for the
// Casts between fp32 and fp16 regions, else the dtype of its first output. Float32/float16
// read as the --precision names fp32/fp16.
std::string node_precision(const Plan& p, const PlanNode& n) {
  auto is_float = [&](int32_t t) {
    return t >= 0 && (p.tensors[t].dtype == DType::kFloat32 || p.tensors[t].dtype == DType::kFloat16);
  };
  auto dt = [&](int32_t t) {
    if (t < 0) return std::string("?");
    const DType d = p.tensors[t].dtype;
    return d == DType::kFloat32 ? std::string("fp32") : d == DType::kFloat16 ? std::string("fp16") : dtype_name(d);
  };
  if (n.op == "QLinearConv" || n.op == "QLinearMatMul" || n.op == "ConvInteger" || n.op == "MatMulInteger")
    return dt(n.inputs.empty() ? -1 : n.inputs[0]);
  if ((n.op == "QuantizeLinear" || n.op == "DequantizeLinear") && !n.inputs.empty() && !n.outputs.empty())
    return dt(n.inputs[0]) + "->" + dt(n.outputs[0]);
  if (n.op == "Elementwise" && n.inputs.size() == 1 && n.outputs.size() == 1 && is_float(n.inputs[0]) &&
      is_float(n.outputs[0]) && p.tensors[n.inputs[0]].dtype != p.tensors[n.outputs[0]].dtype)
    return dt(n.inputs[0]) + "->" + dt(n.outputs[0]);
  return n.outputs.empty() ? "?" : dt(n.outputs[0]);
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args;
  Status st = Args::parse(argc, argv, 1, {{"--help", "-h", false}}, &args);
  if (!st) return fail("inspect", st.message());
  if (args.has("--help")) {
    std::puts("usage: kiln inspect PLAN\n\nPrints a plan's format version, target device, inputs, outputs, "
              "segments with their transfers, every node with its backend, kernel and precision (fp32, fp16, "
              "int8, ... and conversions such as fp32->fp16), fused groups and "
              "weight bytes.");
    return 0;
  }
  if (args.positional().size() != 1) return fail("inspect", "expected one PLAN argument (see --help)");
  const std::string path = args.positional()[0];
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail("inspect", "cannot open plan file '" + path + "'");
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Plan p;
  st = parse_plan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &p);
  if (!st) return fail("inspect", "plan '" + path + "': " + st.message());

  std::printf("plan: %s\n", path.c_str());
  std::printf("format version: %u (written by %s)\n", p.format_version, p.writer_version.c_str());
  std::printf("model: %s\n", p.model_name.empty() ? "(unnamed)" : p.model_name.c_str());
  std::printf("target device: %s '%s'%s%s\n", p.target.kind.c_str(), p.target.name.c_str(),
              p.target.driver_version.empty() ? "" : ", driver ", p.target.driver_version.c_str());
  std::string caps;
  for (const auto& c : p.required_caps) caps += (caps.empty() ? "" : ", ") + c;
  std::printf("required capabilities: %s\n", caps.empty() ? "(none)" : caps.c_str());
  std::printf("weights: %s in %zu constant tensors\n", human_bytes(p.weights.size()).c_str(),
              static_cast<size_t>(std::count_if(p.tensors.begin(), p.tensors.end(),
                                                [](const PlanTensor& t) { return t.kind == TensorKind::kConstant; })));
  {
    std::vector<Backend> backends;
    for (const PlanNode& n : p.nodes) backends.push_back(n.backend);
    const ArenaPlan host = plan_arena(p, backends, Backend::kCpu, 64);
    const SharedBuffersPlan dev = plan_shared_buffers(p, backends, Backend::kOpenCL, 256);
    std::printf("peak activation memory: host %s (%s without reuse), device %s in %zu buffers (%s without reuse)\n",
                human_bytes(host.size).c_str(), human_bytes(host.unplanned).c_str(), human_bytes(dev.total).c_str(),
                dev.sizes.size(), human_bytes(dev.unplanned).c_str());
  }
  std::printf("\ninputs:\n");
  for (int32_t t : p.inputs) std::printf("  %s\n", tensor_line(p.tensors[t]).c_str());
  std::printf("outputs:\n");
  for (int32_t t : p.outputs) std::printf("  %s\n", tensor_line(p.tensors[t]).c_str());

  std::printf("\nsegments:\n");
  for (size_t s = 0; s < p.segments.size(); ++s) {
    const Segment& seg = p.segments[s];
    std::printf("  #%zu %-6s nodes %d..%d\n", s, backend_name(seg.backend), seg.first_node, seg.end_node - 1);
    for (int32_t t : seg.copy_in)
      std::printf("      transfer in: %s (%s, %s)\n", p.tensors[t].name.c_str(),
                  seg.backend == Backend::kOpenCL ? "host->device" : "device->host",
                  human_bytes(p.tensors[t].bytes()).c_str());
  }

  std::printf("\nnodes (%zu):\n", p.nodes.size());
  size_t fused_groups = 0;
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const PlanNode& n = p.nodes[i];
    std::printf("  [%zu] %s  op=%s  backend=%s  kernel=%s  precision=%s\n", i, n.name.c_str(), n.op.c_str(),
                backend_name(n.backend), n.kernel.c_str(), node_precision(p, n).c_str());
    std::string ins, outs;
    for (int32_t t : n.inputs) ins += (ins.empty() ? "" : ", ") + (t < 0 ? std::string("-") : p.tensors[t].name);
    for (int32_t t : n.outputs) outs += (outs.empty() ? "" : ", ") + p.tensors[t].name + " " + shape_str(p.tensors[t].shape);
    std::printf("       in: %s\n       out: %s\n", ins.c_str(), outs.c_str());
    if (!n.attrs.empty()) std::printf("       attrs: %s\n", n.attrs.to_string().c_str());
    if (n.fused.size() > 1) {
      ++fused_groups;
      std::string names;
      for (const auto& f2 : n.fused) names += (names.empty() ? "" : " + ") + f2;
      std::printf("       fused: %s\n", names.c_str());
    }
  }
  std::printf("\nfused groups: %zu\n", fused_groups);
  return 0;
}

}  // namespace kiln::cli
