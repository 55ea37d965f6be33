// kiln serve: Triton serving is Python (python/kiln/serve.py, on the nvidia-pytriton wheel's
// tritonserver); this verb hands its arguments to `$KILN_PYTHON -m kiln.serve` (default python3),
// the interpreter where the kiln package and nvidia-pytriton are installed.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/cli/verbs.h"

namespace kiln::cli {

int cmd_serve(int argc, char** argv) {
  const char* env = std::getenv("KILN_PYTHON");
  const std::string python = env && *env ? env : "python3";
  std::vector<std::string> args = {python, "-m", "kiln.serve"};
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(&a[0]);
  cargs.push_back(nullptr);
  ::execvp(cargs[0], cargs.data());
  return fail("serve", "cannot start '" + python + "' (" + std::strerror(errno) +
                           "): kiln serve runs `python -m kiln.serve` from the kiln Python package; set KILN_PYTHON "
                           "to the python where `pip install .` and nvidia-pytriton are installed");
}

}  // namespace kiln::cli
