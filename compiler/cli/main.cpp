// kiln: the compiler's `build` verb plus every runtime verb (see runtime/cli/).
#include "runtime/cli/cli_main.h"

namespace kiln::cli {
int cmd_build(int argc, char** argv);
int cmd_compare(int argc, char** argv);
int cmd_sweep(int argc, char** argv);
int cmd_serve(int argc, char** argv);
}

int main(int argc, char** argv) {
  std::vector<kiln::cli::Verb> verbs = {
      {"build", kiln::cli::cmd_build,
       "build MODEL.onnx -o PLAN [--device D] [--shapes NAME=DIMS ...] [--freeze NAME=FILE.npy ...]\n"
       "        [--partition device|cost] [--cpu-nodes A,B] [--no-fuse]\n"
       "        [--precision fp32|int8|best] [--calib DIR] [--accuracy-budget X]"}};
  verbs.push_back({"compare", kiln::cli::cmd_compare,
                   "compare PLAN --reference MODEL.onnx [-i NAME=FILE.npy ...] [--device D] [--per-layer]"});
  verbs.push_back({"sweep", kiln::cli::cmd_sweep,
                   "sweep MODEL.onnx --calib DIR [--eval DIR --labels FILE.npy] [--device D]"});
  verbs.push_back({"serve", kiln::cli::cmd_serve,
                   "serve PLAN... [--instances N] [--max-batch B] [--http-port P] [--grpc-port Q]  (Triton; runs\n"
                   "        $KILN_PYTHON -m kiln.serve)"});
  for (const auto& v : kiln::cli::runtime_verbs()) verbs.push_back(v);
  return kiln::cli::cli_main(argc, argv, "kiln", "ONNX to OpenCL inference compiler", verbs);
}
