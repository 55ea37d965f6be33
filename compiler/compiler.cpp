#include "compiler/compiler.h"
#include "runtime/core/file_io.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "compiler/import/onnx/onnx_import.h"
#include "compiler/passes/passes.h"
#include "compiler/plan/dynamic_shapes.h"
#include "compiler/plan/lower.h"
#include "compiler/plan/select_kernels.h"
#include "runtime/plan/plan_memory.h"
#include "compiler/quant/precision.h"
#include "compiler/quant/precision_search.h"
#include "runtime/ops/linear_epilogue.h"
#include "runtime/device/devices.h"
#include "runtime/plan/plan_format.h"

namespace kiln {

Status parse_shape_arg(const std::string& arg, std::string* name, Shape* dims) {
  const size_t eq = arg.rfind('=');
  if (eq == std::string::npos || eq == 0)
    return invalid_argument("bad --shapes '" + arg + "': expected NAME=DIMS, e.g. input=1x3x224x224");
  *name = arg.substr(0, eq);
  return parse_dims(arg.substr(eq + 1), dims).with_context("--shapes " + arg);
}

Status resolve_build_device(const std::string& spec, ResolvedDevice* out) {
  if (spec.find(',') == std::string::npos) return resolve_device(spec, out);
  // A preference list: its OpenCL entry is the target; "cpu" entries only allow the fallback,
  // which is always allowed since the CPU backend runs every op.
  std::string target = "cpu";
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    if (comma == std::string::npos) comma = spec.size();
    const std::string part = spec.substr(pos, comma - pos);
    pos = comma + 1;
    ResolvedDevice d;
    KILN_TRY_CTX(resolve_device(part, &d), "--device " + spec);
    if (d.backend != Backend::kOpenCL) continue;
    if (target != "cpu") return unsupported("--device " + spec + ": a plan targets one OpenCL device (plus the cpu)");
    target = part;
  }
  return resolve_device(target, out);
}

Status build_plan_from_graph(ir::Graph& g, const BuildOptions& opts, Plan* out) {
  ResolvedDevice target;
  KILN_TRY(resolve_build_device(opts.device, &target));
  PassContext ctx{opts, target.backend == Backend::kOpenCL, target.caps};
  KILN_TRY(run_fix_input_shapes(g, ctx));
  KILN_TRY(run_infer_and_fold(g, ctx));
  KILN_TRY(run_dead_code(g, ctx));
  KILN_TRY(check_layer_precision(g, opts));
  // The search builds the model many times: it runs from the model file or bytes (below), and
  // this function builds each of its plans (the default accuracy check of a calibrated build,
  // precision_search.h, is left to those callers too).
  if (opts.precision == "best" || opts.accuracy_budget > 0)
    return invalid_argument("--precision best and --accuracy-budget need the model file, not an imported graph");
  KILN_TRY(run_fold_qdq(g, ctx));
  KILN_TRY(run_dead_code(g, ctx));
  // BN folds into the weights first, so INT8/FP8 calibrate and quantize the folded convolutions.
  if (opts.fuse) KILN_TRY(run_fold_batchnorm(g, ctx));
  // GELU becomes one node before quantization, so that it fuses into the integer/FP8 epilogues.
  if (opts.fuse) KILN_TRY(run_fuse_gelu(g, ctx));
  KILN_TRY(run_quantize_ptq(g, ctx));
  KILN_TRY(run_merge_quantize(g, ctx));
  if (opts.fuse) KILN_TRY(run_fuse_quantized(g, ctx));
  if (opts.fuse) {
    // Linear epilogues: bias/residual Adds before the activation (Conv+Add+Relu), then the
    // activation, then a residual Add after it (Conv+Relu+Add).
    KILN_TRY(run_fuse_residual_add(g, ctx));
    KILN_TRY(run_fuse_activation(g, ctx));
    KILN_TRY(run_fuse_residual_add(g, ctx));
  }
  // After the linear epilogues (fused as one fp16 node), before elementwise chains fuse (so
  // they fuse as float16 programs).
  KILN_TRY(run_convert_fp16(g, ctx));
  KILN_TRY(run_io_precision(g, ctx));
  if (opts.fuse) KILN_TRY(run_fuse_elementwise(g, ctx));
  if (opts.fuse) KILN_TRY(run_fuse_attention(g, ctx));
  if (opts.fuse) KILN_TRY(run_fuse_quantize_output(g, ctx));
  if (opts.fuse && opts.pack_qkv) KILN_TRY(run_pack_qkv(g, ctx));
  KILN_TRY(run_channels_last(g, ctx));
  KILN_TRY(run_dead_code(g, ctx));
  KILN_TRY(lower_to_plan(g, target, opts.partition, out));
  if (opts.allow_tf32)
    for (PlanNode& n : out->nodes)
      if (n.backend == Backend::kOpenCL && (n.op == "Conv" || n.op == "Gemm" || n.op == "MatMul") &&
          out->tensors[n.outputs[0]].dtype == DType::kFloat32)
        n.attrs.set(linear::kAttrAllowTf32, int64_t{1});
  // The cost estimates pick here; tuning (timing on the device) runs once on the finished plan.
  KILN_TRY(select_kernels(out, target, KernelSelectOptions{}));
  // What the plan needs against the target device's memory and the host's (or --max-memory),
  // before anything writes it: a plan that cannot fit is an error here, not at run time.
  if (!opts.allow_over_memory) {
    std::vector<Backend> backends;
    for (const PlanNode& n : out->nodes) backends.push_back(n.backend);
    const uint64_t align = target.backend == Backend::kOpenCL ? opencl_devices()[target.opencl_index].base_addr_align : 64;
    const uint64_t host_limit = opts.max_memory ? opts.max_memory : host_physical_memory();
    KILN_TRY(check_plan_memory(plan_memory(*out, backends, align), host_limit, "allowed", &target.caps,
                               std::string(opts.max_memory ? "--max-memory" : "the host's physical memory") +
                                   "; --allow-over-memory writes the plan anyway"));
  }
  for (const std::string& name : opts.partition.cpu_nodes) {
    bool found = false;
    for (const PlanNode& n : out->nodes) found |= n.name == name || std::count(n.fused.begin(), n.fused.end(), name);
    if (!found) return invalid_argument("--cpu-nodes names '" + name + "', which is not a node of the optimized graph");
  }
  return Status::ok();
}

namespace {

// --tune: times the kernel variants of the finished plan (static, dynamic or searched alike).
Status tune_kernels(const BuildOptions& opts, Plan* out) {
  if (!opts.tune) return Status::ok();
  ResolvedDevice target;
  KILN_TRY(resolve_build_device(opts.device, &target));
  return select_kernels(out, target, KernelSelectOptions{true, opts.tuning_cache, opts.report});
}

Status build_untuned_from_file(const std::string& onnx_path, const BuildOptions& opts, Plan* out) {
  if (!opts.min_shapes.empty() || !opts.max_shapes.empty())
    return build_dynamic_plan([&](ir::Graph* g) { return import_onnx_file(onnx_path, g); }, opts, out)
        .with_context("model '" + onnx_path + "'");
  if (needs_precision_search(opts)) {
    auto build = [&](const BuildOptions& o, Plan* p) {
      ir::Graph g;
      KILN_TRY(import_onnx_file(onnx_path, &g));
      return build_plan_from_graph(g, o, p);
    };
    return build_with_precision_search(build, opts, out).with_context("model '" + onnx_path + "'");
  }
  ir::Graph g;
  KILN_TRY(import_onnx_file(onnx_path, &g));
  return build_plan_from_graph(g, opts, out).with_context("model '" + onnx_path + "'");
}

Status build_untuned_from_bytes(const std::string& model_bytes, const std::string& base_dir,
                                const BuildOptions& opts, Plan* out) {
  if (!opts.min_shapes.empty() || !opts.max_shapes.empty())
    return build_dynamic_plan([&](ir::Graph* g) { return import_onnx_bytes(model_bytes, base_dir, g); }, opts, out);
  if (needs_precision_search(opts)) {
    auto build = [&](const BuildOptions& o, Plan* p) {
      ir::Graph g;
      KILN_TRY(import_onnx_bytes(model_bytes, base_dir, &g));
      return build_plan_from_graph(g, o, p);
    };
    return build_with_precision_search(build, opts, out);
  }
  ir::Graph g;
  KILN_TRY(import_onnx_bytes(model_bytes, base_dir, &g));
  return build_plan_from_graph(g, opts, out);
}

}  // namespace

Status build_plan_from_file(const std::string& onnx_path, const BuildOptions& opts, Plan* out) {
  if (opts.tune) KILN_TRY(check_tuning_cache(opts.tuning_cache));
  KILN_TRY(build_untuned_from_file(onnx_path, opts, out));
  return tune_kernels(opts, out).with_context("model '" + onnx_path + "'");
}

Status build_plan_from_bytes(const std::string& model_bytes, const std::string& base_dir,
                             const BuildOptions& opts, Plan* out) {
  if (opts.tune) KILN_TRY(check_tuning_cache(opts.tuning_cache));
  KILN_TRY(build_untuned_from_bytes(model_bytes, base_dir, opts, out));
  return tune_kernels(opts, out);
}

Status write_plan_file(const Plan& plan, const std::string& path) { return write_plan_bytes(serialize_plan(plan), path); }

Status write_plan_bytes(const std::vector<uint8_t>& bytes, const std::string& path) {
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) return io_error("cannot write '" + path + "': " + last_os_error());
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::remove(tmp.c_str());
      return io_error("error writing '" + path + "': " + last_os_error());
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = last_os_error();
    std::remove(tmp.c_str());
    return io_error("cannot write the plan to '" + path + "': " + why);
  }
  return Status::ok();
}

}  // namespace kiln
