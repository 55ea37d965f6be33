// A small flag parser shared by the verbs (kept dependency-free so the runtime-only `kiln-rt`
// can reuse it). Flags: "--name value", "--name=value", repeatable; "-x value" short forms;
// "--name[=value]" for flags with optional_value.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "runtime/core/status.h"

namespace kiln::cli {

struct FlagSpec {
  std::string name;   // "--device"
  std::string alias;  // "-d" or ""
  bool takes_value = true;
  bool repeatable = false;
  // The value may be left out ("--flag" or "--flag=value"; never the next argument): get() then
  // returns "".
  bool optional_value = false;
};

class Args {
 public:
  // Parses argv[first..]; unknown flags and missing values are errors naming the flag.
  static Status parse(int argc, char** argv, int first, const std::vector<FlagSpec>& specs, Args* out);

  const std::vector<std::string>& positional() const { return positional_; }
  bool has(const std::string& flag) const { return values_.count(flag) != 0; }
  std::string get(const std::string& flag, const std::string& def = "") const {
    auto it = values_.find(flag);
    return it == values_.end() || it->second.empty() ? def : it->second.back();
  }
  std::vector<std::string> all(const std::string& flag) const {
    auto it = values_.find(flag);
    return it == values_.end() ? std::vector<std::string>{} : it->second;
  }

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> values_;
};

// Parses "NAME=VALUE" at the last '=' (tensor names may contain ':' and '=').
Status split_name_value(const std::string& arg, const std::string& flag, std::string* name, std::string* value);

// Parses a positive decimal integer (at most 9 digits).
bool parse_positive(const std::string& text, int* out);

// --threads N (run, bench, profile, compare): the threads each inference's CPU nodes use, for
// every context this process opens (runtime/backends/cpu/cpu_threads.h). Fails on a bad N.
Status apply_threads_option(const Args& args);
// Its line in a verb's --help.
constexpr const char* kThreadsHelp =
    "  --threads N              CPU threads per inference (default: KILN_CPU_THREADS, else the\n"
    "                           physical cores; concurrent inferences share the cores)\n";

}  // namespace kiln::cli
