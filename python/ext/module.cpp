#include <cstdlib>
#include <cstring>

#include <nanobind/stl/string.h>

#include "ext.h"

namespace kiln_py {

void check(kiln_status s) {
  if (s != KILN_OK) throw Error(kiln_last_error());
}
void check_build(kiln_status s) {
  if (s != KILN_OK) throw Error(kiln_build_last_error());
}

namespace {
struct DtypeEntry {
  int32_t kiln;
  uint8_t code;
  uint8_t bits;
  const char* name;
};
constexpr DtypeEntry kDtypes[] = {
    {KILN_DTYPE_FLOAT32, (uint8_t)nb::dlpack::dtype_code::Float, 32, "float32"},
    {KILN_DTYPE_UINT8, (uint8_t)nb::dlpack::dtype_code::UInt, 8, "uint8"},
    {KILN_DTYPE_INT8, (uint8_t)nb::dlpack::dtype_code::Int, 8, "int8"},
    {4, (uint8_t)nb::dlpack::dtype_code::UInt, 16, "uint16"},
    {5, (uint8_t)nb::dlpack::dtype_code::Int, 16, "int16"},
    {KILN_DTYPE_INT32, (uint8_t)nb::dlpack::dtype_code::Int, 32, "int32"},
    {KILN_DTYPE_INT64, (uint8_t)nb::dlpack::dtype_code::Int, 64, "int64"},
    {KILN_DTYPE_BOOL, (uint8_t)nb::dlpack::dtype_code::Bool, 8, "bool"},
    {KILN_DTYPE_FLOAT16, (uint8_t)nb::dlpack::dtype_code::Float, 16, "float16"},
    {KILN_DTYPE_FLOAT64, (uint8_t)nb::dlpack::dtype_code::Float, 64, "float64"},
    {12, (uint8_t)nb::dlpack::dtype_code::UInt, 32, "uint32"},
    {13, (uint8_t)nb::dlpack::dtype_code::UInt, 64, "uint64"},
};
}  // namespace

int32_t kiln_dtype_of(const nb::dlpack::dtype& dt, const std::string& what) {
  for (const DtypeEntry& e : kDtypes)
    if (dt.code == e.code && dt.bits == e.bits && dt.lanes == 1) return e.kiln;
  throw Error(what + ": numpy dtype (code " + std::to_string(dt.code) + ", " + std::to_string(dt.bits) +
              " bits) has no kiln dtype");
}

nb::dlpack::dtype dlpack_dtype_of(int32_t kiln_dtype) {
  for (const DtypeEntry& e : kDtypes)
    if (e.kiln == kiln_dtype) return nb::dlpack::dtype{e.code, e.bits, 1};
  throw Error("kiln dtype " + std::to_string(kiln_dtype) + " has no numpy dtype");
}

const char* dtype_name(int32_t kiln_dtype) {
  for (const DtypeEntry& e : kDtypes)
    if (e.kiln == kiln_dtype) return e.name;
  return "unknown";
}

nb::object new_array(int32_t dtype, const int64_t* dims, int32_t rank, void** data) {
  const nb::dlpack::dtype dt = dlpack_dtype_of(dtype);
  size_t n = dt.bits / 8;
  size_t shape[KILN_MAX_RANK];
  for (int32_t i = 0; i < rank; ++i) {
    shape[i] = static_cast<size_t>(dims[i]);
    n *= shape[i];
  }
  // At least one byte, so an empty tensor still has an owner to free.
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  nb::capsule owner(p, [](void* q) noexcept { std::free(q); });
  *data = p;
  return nb::cast(nb::ndarray<nb::numpy>(p, static_cast<size_t>(rank), shape, owner, nullptr, dt));
}

}  // namespace kiln_py

NB_MODULE(_kiln, m) {
  using namespace kiln_py;
  m.doc() = "kiln's C APIs for the kiln package (use `import kiln`)";
  nb::exception<Error>(m, "Error", PyExc_RuntimeError);
  m.def("version", [] { return std::string(kiln_version()); });
  m.def("device_count", [] { return kiln_device_count(); });
  m.def("device_name", [](int32_t i) {
    const char* n = kiln_device_name(i);
    if (!n) throw Error("no OpenCL device " + std::to_string(i));
    return std::string(n);
  });
  bind_runtime(m);
  bind_build(m);
}
