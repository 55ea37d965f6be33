#include "compiler/compiler.h"

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "compiler/import/onnx/onnx_import.h"
#include "compiler/passes/passes.h"
#include "compiler/plan/lower.h"
#include "runtime/device/devices.h"
#include "runtime/plan/plan_format.h"

namespace kiln {

Status parse_dims(const std::string& text, Shape* out) {
  out->clear();
  if (text.empty() || text == "scalar") return Status::ok();
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of("x,", pos);
    if (end == std::string::npos) end = text.size();
    const std::string d = text.substr(pos, end - pos);
    if (d.empty() || d.size() > 12 || d.find_first_not_of("0123456789") != std::string::npos)
      return invalid_argument("bad dims '" + text + "': expected numbers separated by 'x', e.g. 1x3x224x224");
    out->push_back(std::stoll(d));
    pos = end + 1;
  }
  return Status::ok();
}

Status parse_shape_arg(const std::string& arg, std::string* name, Shape* dims) {
  const size_t eq = arg.rfind('=');
  if (eq == std::string::npos || eq == 0)
    return invalid_argument("bad --shapes '" + arg + "': expected NAME=DIMS, e.g. input=1x3x224x224");
  *name = arg.substr(0, eq);
  return parse_dims(arg.substr(eq + 1), dims).with_context("--shapes " + arg);
}

Status build_plan_from_graph(ir::Graph& g, const BuildOptions& opts, Plan* out) {
  ResolvedDevice target;
  KILN_TRY(resolve_device(opts.device, &target));
  PassContext ctx{opts};
  KILN_TRY(run_fix_input_shapes(g, ctx));
  KILN_TRY(run_infer_and_fold(g, ctx));
  KILN_TRY(run_dead_code(g, ctx));
  if (opts.fuse) {
    // Linear epilogues: BN folds into the weights first; bias/residual Adds before the
    // activation (Conv+Add+Relu), then the activation, then a residual Add after it (Conv+Relu+Add).
    KILN_TRY(run_fold_batchnorm(g, ctx));
    KILN_TRY(run_fuse_residual_add(g, ctx));
    KILN_TRY(run_fuse_activation(g, ctx));
    KILN_TRY(run_fuse_residual_add(g, ctx));
    KILN_TRY(run_fuse_elementwise(g, ctx));
    KILN_TRY(run_dead_code(g, ctx));
  }
  return lower_to_plan(g, target, out);
}

Status build_plan_from_file(const std::string& onnx_path, const BuildOptions& opts, Plan* out) {
  ir::Graph g;
  KILN_TRY(import_onnx_file(onnx_path, &g));
  return build_plan_from_graph(g, opts, out).with_context("model '" + onnx_path + "'");
}

Status build_plan_from_bytes(const std::string& model_bytes, const std::string& base_dir,
                             const BuildOptions& opts, Plan* out) {
  ir::Graph g;
  KILN_TRY(import_onnx_bytes(model_bytes, base_dir, &g));
  return build_plan_from_graph(g, opts, out);
}

Status write_plan_file(const Plan& plan, const std::string& path) {
  const std::vector<uint8_t> bytes = serialize_plan(plan);
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) return io_error("cannot write '" + path + "'");
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) {
      std::remove(tmp.c_str());
      return io_error("error writing '" + path + "' (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return io_error("cannot move the plan into place at '" + path + "'");
  }
  return Status::ok();
}

}  // namespace kiln
