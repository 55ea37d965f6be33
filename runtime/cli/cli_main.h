// The command-line front shared by `kiln` (compiler + runtime) and `kiln-rt` (runtime only):
// verb dispatch, --help/--version, and the one-line error convention.
#pragma once
#include <string>
#include <vector>

namespace kiln::cli {

struct Verb {
  const char* name;
  int (*run)(int argc, char** argv);  // argv[0] is the verb
  const char* usage;                  // one or more lines for the overview
};

// The runtime verbs: run, inspect, profile, bench, devices.
std::vector<Verb> runtime_verbs();

// Runs the verb named by argv[1]; `program` names the executable in messages.
int cli_main(int argc, char** argv, const char* program, const char* tagline, const std::vector<Verb>& verbs);

}  // namespace kiln::cli
