#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "compiler/cli/verbs.h"
#include "runtime/version.h"

namespace kiln::cli {
int fail(const char* verb, const std::string& message) {
  // Errors are one line: names taken from a damaged model or plan may hold control
  // characters (newlines even), so those are printed as \xNN escapes.
  std::string line;
  for (unsigned char c : message) {
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      line += esc;
    } else {
      line += static_cast<char>(c);
    }
  }
  std::fprintf(stderr, "kiln %s: %s\n", verb, line.c_str());
  return 1;
}
}  // namespace kiln::cli

namespace {
const char* kUsage =
    "kiln " KILN_VERSION_STRING " - ONNX to OpenCL inference compiler\n"
    "\n"
    "usage: kiln <verb> [options]   (kiln <verb> --help for each)\n"
    "\n"
    "verbs:\n"
    "  build MODEL.onnx -o PLAN [--device D] [--shapes NAME=DIMS ...] [--no-fuse]\n"
    "  run PLAN -i NAME=FILE.npy [-i ...] -o OUTDIR [--device D]\n"
    "  inspect PLAN\n"
    "  profile PLAN [-i NAME=FILE.npy ...] [--device D] [--iterations N] [--trace FILE.json]\n"
    "  bench PLAN [-i NAME=FILE.npy ...] [--device D] [--warmup-ms N] [--duration-s N | --iterations N]\n"
    "        [--concurrency N] [--json FILE]\n"
    "  devices\n"
    "\n"
    "devices: cpu | opencl | opencl:N | auto (default: an OpenCL GPU, else any OpenCL device, else cpu)\n";
}  // namespace

namespace {
int dispatch(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("kiln %s\n", KILN_VERSION_STRING);
    return 0;
  }
  const std::string verb = argv[1];
  if (verb == "build") return kiln::cli::cmd_build(argc - 1, argv + 1);
  if (verb == "run") return kiln::cli::cmd_run(argc - 1, argv + 1);
  if (verb == "inspect") return kiln::cli::cmd_inspect(argc - 1, argv + 1);
  if (verb == "devices") return kiln::cli::cmd_devices(argc - 1, argv + 1);
  if (verb == "profile") return kiln::cli::cmd_profile(argc - 1, argv + 1);
  if (verb == "bench") return kiln::cli::cmd_bench(argc - 1, argv + 1);
  std::fprintf(stderr, "kiln: unknown verb '%s' (see kiln --help)\n", verb.c_str());
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  // Last line of defence: the verbs report errors as Status, but an exception escaping one
  // (bad_alloc on a huge tensor, say) must still end in one stderr line, not an abort.
  try {
    return dispatch(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: internal error: %s\n", e.what());
  }
  return 1;
}
