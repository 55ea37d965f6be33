// Each `kiln` verb: int cmd_<verb>(argc, argv) with argv[0] the verb itself. They return the
// process exit code and print one line on stderr on failure.
#pragma once
#include <string>

namespace kiln::cli {

int cmd_build(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_devices(int argc, char** argv);
int cmd_profile(int argc, char** argv);
int cmd_bench(int argc, char** argv);

// Prints "kiln <verb>: <message>" on stderr and returns the exit code for a failure.
int fail(const char* verb, const std::string& message);

}  // namespace kiln::cli
