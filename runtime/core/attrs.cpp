#include "runtime/core/attrs.h"

#include <sstream>

namespace kiln {

AttrKind attr_kind(const AttrValue& v) { return static_cast<AttrKind>(v.index() + 1); }

namespace {
template <typename T>
const T* get_if_present(const std::map<std::string, AttrValue>& m, const std::string& name) {
  auto it = m.find(name);
  if (it == m.end()) return nullptr;
  return std::get_if<T>(&it->second);
}
}  // namespace

int64_t Attributes::get_int(const std::string& name, int64_t def) const {
  const int64_t* v = get_if_present<int64_t>(values_, name);
  return v ? *v : def;
}
float Attributes::get_float(const std::string& name, float def) const {
  const float* v = get_if_present<float>(values_, name);
  return v ? *v : def;
}
std::string Attributes::get_string(const std::string& name, const std::string& def) const {
  const std::string* v = get_if_present<std::string>(values_, name);
  return v ? *v : def;
}
std::vector<int64_t> Attributes::get_ints(const std::string& name, std::vector<int64_t> def) const {
  const auto* v = get_if_present<std::vector<int64_t>>(values_, name);
  return v ? *v : def;
}
std::vector<float> Attributes::get_floats(const std::string& name, std::vector<float> def) const {
  const auto* v = get_if_present<std::vector<float>>(values_, name);
  return v ? *v : def;
}
std::vector<std::string> Attributes::get_strings(const std::string& name, std::vector<std::string> def) const {
  const auto* v = get_if_present<std::vector<std::string>>(values_, name);
  return v ? *v : def;
}
std::shared_ptr<const HostTensor> Attributes::get_tensor(const std::string& name) const {
  const auto* v = get_if_present<std::shared_ptr<const HostTensor>>(values_, name);
  return v ? *v : nullptr;
}

std::string Attributes::to_string() const {
  std::ostringstream os;
  bool first = true;
  for (const auto& [name, v] : values_) {
    if (!first) os << ' ';
    first = false;
    os << name << '=';
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float>) {
            os << x;
          } else if constexpr (std::is_same_v<T, std::string>) {
            os << '"' << x << '"';
          } else if constexpr (std::is_same_v<T, std::shared_ptr<const HostTensor>>) {
            os << "tensor(" << dtype_name(x->dtype()) << ' ' << shape_str(x->shape()) << ')';
          } else {
            os << '[';
            for (size_t i = 0; i < x.size(); ++i) os << (i ? "," : "") << x[i];
            os << ']';
          }
        },
        v);
  }
  return os.str();
}

}  // namespace kiln
