// What run/profile/bench share: load a plan, open contexts on a device, fill inputs from .npy
// files or random values, bind outputs.
#pragma once
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtime/core/tensor.h"
#include "runtime/exec/execution_context.h"

namespace kiln::cli {

struct PlanSession {
  std::shared_ptr<const Plan> plan;
  std::map<std::string, HostTensor> inputs;  // by input name

  // `expect_sha256` (--plan-sha256): "" or the content hash the plan file must have.
  Status load(const std::string& path, const std::string& expect_sha256 = "");
  // `specs` are NAME=FILE.npy; inputs not given get random values (floats uniform in [-1,1),
  // integers in [0,3], bools 0/1) from a fixed seed, of the plan's (max) shape or the one
  // `shapes` (NAME=DIMS, for dynamic plans) gives.
  Status prepare_inputs(const std::vector<std::string>& specs, const std::vector<std::string>& shapes = {});
  // A context on `device` with every input bound and every output bound to `outputs`. With
  // `pinned` (bench, profile: how a deployment feeds a GPU, as trtexec does) the inputs are
  // copied into the context's page-locked host buffers and the outputs land in its own
  // buffers instead (`outputs` stays empty).
  Status open_context(const std::string& device, std::unique_ptr<ExecutionContext>* ctx,
                      std::vector<HostTensor>* outputs, std::string* notice, bool pinned = false) const;
};

}  // namespace kiln::cli
