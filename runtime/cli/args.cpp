#include "runtime/cli/args.h"

#include "runtime/backends/cpu/cpu_threads.h"

namespace kiln::cli {

Status Args::parse(int argc, char** argv, int first, const std::vector<FlagSpec>& specs, Args* out) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-' || a == "-") {
      out->positional_.push_back(a);
      continue;
    }
    std::string value;
    bool inline_value = false;
    if (a.rfind("--", 0) == 0) {
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
        inline_value = true;
      }
    }
    const FlagSpec* spec = nullptr;
    for (const auto& s : specs)
      if (a == s.name || (!s.alias.empty() && a == s.alias)) spec = &s;
    if (!spec) return invalid_argument("unknown option '" + a + "' (see --help)");
    if (spec->optional_value) {
      // value stays "" without '='
    } else if (spec->takes_value && !inline_value) {
      if (i + 1 >= argc) return invalid_argument("option " + spec->name + " needs a value");
      value = argv[++i];
    } else if (!spec->takes_value && inline_value) {
      return invalid_argument("option " + spec->name + " takes no value");
    }
    auto& slot = out->values_[spec->name];
    if (!spec->repeatable && !slot.empty())
      return invalid_argument("option " + spec->name + " given more than once");
    slot.push_back(value);
  }
  return Status::ok();
}

Status split_name_value(const std::string& arg, const std::string& flag, std::string* name,
                        std::string* value) {
  const size_t eq = arg.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
    return invalid_argument("bad " + flag + " '" + arg + "': expected NAME=VALUE");
  *name = arg.substr(0, eq);
  *value = arg.substr(eq + 1);
  return Status::ok();
}

bool parse_positive(const std::string& text, int* out) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::stoi(text);
  return *out > 0;
}

Status apply_threads_option(const Args& args) {
  if (!args.has("--threads")) return Status::ok();
  int n = 0;
  if (!parse_positive(args.get("--threads"), &n) || n > 1024)
    return invalid_argument("--threads needs a number from 1 to 1024, got '" + args.get("--threads") + "'");
  set_default_cpu_threads(n);
  return Status::ok();
}

}  // namespace kiln::cli
