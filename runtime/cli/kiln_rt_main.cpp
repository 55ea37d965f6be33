// kiln-rt: the deployment command line. The runtime verbs of `kiln` with the same flags,
// linked against the runtime library only (no compiler, protobuf or ONNX).
#include "runtime/cli/cli_main.h"

int main(int argc, char** argv) {
  return kiln::cli::cli_main(argc, argv, "kiln-rt", "kiln runtime: run, benchmark and profile kiln plans",
                             kiln::cli::runtime_verbs());
}
