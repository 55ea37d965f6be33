// An enum argument of a C API function as the int a C caller may have put there: C lets any int
// pass as an enum, while loading an enum object outside its values is undefined in C++ (UBSan
// traps it), so the bytes are read as an int before any comparison. Take the parameter by
// reference: even copying such an enum (passing it on by value) is a load.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace kiln {

template <typename E>
int32_t c_enum_value(const E& e) {
  static_assert(std::is_enum<E>::value && sizeof(E) == sizeof(int32_t), "a C enum of int size");
  int32_t v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

}  // namespace kiln
