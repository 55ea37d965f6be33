#include "runtime/cli/cli_main.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>

#include "runtime/cli/crash_report.h"
#include "runtime/core/text.h"
#include "runtime/cli/verbs.h"
#include "runtime/version.h"

namespace kiln::cli {
namespace {
const char* g_program = "kiln";
}

int fail(const char* verb, const std::string& message) {
  // Errors are one line: names taken from a damaged model or plan may hold control
  // characters (newlines even), so those are printed as \xNN escapes.
  std::fprintf(stderr, "%s %s: %s\n", g_program, verb, one_line(message).c_str());
  return 1;
}

std::vector<Verb> runtime_verbs() {
  return {
      {"run", cmd_run, "run PLAN -i NAME=FILE.npy [-i ...] -o OUTDIR [--device D] [--repeat N]"},
      {"inspect", cmd_inspect, "inspect PLAN"},
      {"profile", cmd_profile, "profile PLAN [-i NAME=FILE.npy ...] [--device D] [--iterations N] [--trace FILE.json]"},
      {"bench", cmd_bench,
       "bench PLAN [-i NAME=FILE.npy ...] [--device D] [--warmup-ms N] [--duration-s N | --iterations N]\n"
       "        [--concurrency N] [--json FILE]"},
      {"devices", cmd_devices, "devices"},
  };
}

namespace {
int dispatch(int argc, char** argv, const char* tagline, const std::vector<Verb>& verbs) {
  const bool help = argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
                                  !std::strcmp(argv[1], "help"));
  if (argc < 2 || help) {
    FILE* out = help ? stdout : stderr;
    std::fprintf(out, "%s %s - %s\n\nusage: %s <verb> [options]   (%s <verb> --help for each)\n\nverbs:\n", g_program,
                 KILN_VERSION_STRING, tagline, g_program, g_program);
    for (const Verb& v : verbs) std::fprintf(out, "  %s\n", v.usage);
    std::fprintf(out,
                 "\ndevices: cpu | opencl | opencl:N | auto (default: an OpenCL GPU, else any OpenCL device, "
                 "else cpu)\n");
    return help ? 0 : 2;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("%s %s\n", g_program, KILN_VERSION_STRING);
    return 0;
  }
  for (const Verb& v : verbs)
    if (!std::strcmp(argv[1], v.name)) return v.run(argc - 1, argv + 1);
  std::fprintf(stderr, "%s: unknown verb '%s' (see %s --help)\n", g_program, argv[1], g_program);
  return 2;
}
}  // namespace

int cli_main(int argc, char** argv, const char* program, const char* tagline, const std::vector<Verb>& verbs) {
  g_program = program;
  install_crash_report(program);
  // Last line of defence: the verbs report errors as Status, but an exception escaping one
  // (bad_alloc on a huge tensor, say) must still end in one stderr line, not an abort.
  try {
    return dispatch(argc, argv, tagline, verbs);
  } catch (const std::bad_alloc&) {
    // Sizes are checked before the large allocations (plans, tensors, arenas), so this is a
    // small one failing: the machine itself is out of memory.
    std::fprintf(stderr, "%s %s: out of memory (a host allocation failed; the system has no memory left)\n", program,
                 argc > 1 ? argv[1] : "");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", program, e.what());
  }
  return 1;
}

}  // namespace kiln::cli
