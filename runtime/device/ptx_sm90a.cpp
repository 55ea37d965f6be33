#include "runtime/device/ptx_sm90a.h"

#include <cctype>
#include <cstdlib>

namespace kiln {

int ptx_max_registers(const std::string& options) {
  const size_t at = options.find(kPtxMaxnregOption);
  if (at == std::string::npos) return 0;
  return std::atoi(options.c_str() + at + std::string(kPtxMaxnregOption).size());
}

Status ptx_for_sm90a(const std::string& ptx, int max_registers, std::string* out) {
  if (ptx.find(".version") == std::string::npos)
    return unsupported("the device's OpenCL program binary is not PTX text, so it cannot be raised to sm_90a");
  // `.target sm_90` followed by its modifiers (", texmode_independent") or the line's end, not
  // by another digit or letter (sm_90a already, sm_900).
  const std::string target = ".target sm_90";
  const size_t at = ptx.find(target);
  const size_t after = at + target.size();
  if (at == std::string::npos || (after < ptx.size() && std::isalnum(static_cast<unsigned char>(ptx[after]))))
    return unsupported("the device's PTX does not target sm_90, so wgmma cannot be enabled in it");
  std::string s = ptx;
  s.insert(after, "a");
  size_t n = 0;
  for (size_t p = s.find("//@@"); p != std::string::npos; p = s.find("//@@", p)) {
    s.erase(p, 4);
    ++n;
  }
  if (n == 0) return internal_error("the program asked for sm_90a has no //@@ instructions to open");
  if (max_registers > 0) {
    // Performance directives go between the kernel's parameter list and its body.
    const size_t entry = s.find(".entry");
    const size_t body = entry == std::string::npos ? entry : s.find("\n{", entry);
    if (body == std::string::npos) return internal_error("no kernel body in the PTX to cap the registers of");
    s.insert(body, "\n.maxnreg " + std::to_string(max_registers));
  }
  *out = std::move(s);
  return Status::ok();
}

}  // namespace kiln
