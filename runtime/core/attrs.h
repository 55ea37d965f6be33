// Node attributes as stored in plans and in the compiler IR. Same value kinds as ONNX
// (int, float, string, ints, floats, tensor, strings), so the importer copies them through
// unchanged and each op reads them with the spec's defaults. Graph attributes (If/Loop/Scan
// bodies) are not attributes here: the compiler keeps them on its nodes and plans as subgraphs.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "runtime/core/tensor.h"

namespace kiln {

enum class AttrKind : uint8_t { kInt = 1, kFloat = 2, kString = 3, kInts = 4, kFloats = 5, kTensor = 6, kStrings = 7 };

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                               std::shared_ptr<const HostTensor>, std::vector<std::string>>;

AttrKind attr_kind(const AttrValue& v);

class Attributes {
 public:
  bool has(const std::string& name) const { return values_.count(name) != 0; }
  void set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  void erase(const std::string& name) { values_.erase(name); }
  const std::map<std::string, AttrValue>& all() const { return values_; }
  // In-place access (reshaping a dynamic plan's context rewrites integers without allocating).
  AttrValue* find_mutable(const std::string& name) {
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
  }
  bool empty() const { return values_.empty(); }

  // Typed getters with the ONNX default when the attribute is absent. A present attribute of
  // the wrong kind also yields the default; the compiler validates kinds on import.
  int64_t get_int(const std::string& name, int64_t def) const;
  float get_float(const std::string& name, float def) const;
  std::string get_string(const std::string& name, const std::string& def) const;
  std::vector<int64_t> get_ints(const std::string& name, std::vector<int64_t> def = {}) const;
  std::vector<float> get_floats(const std::string& name, std::vector<float> def = {}) const;
  std::shared_ptr<const HostTensor> get_tensor(const std::string& name) const;
  std::vector<std::string> get_strings(const std::string& name, std::vector<std::string> def = {}) const;

  // "axis=1 pads=[0,0,1,1]" for inspect and error messages.
  std::string to_string() const;

 private:
  std::map<std::string, AttrValue> values_;
};

}  // namespace kiln
