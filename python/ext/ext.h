// The kiln Python extension (_kiln): the runtime C API (kiln.h) and the compiler C API
// (kiln_build.h) for kiln/__init__.py. Errors become kiln.Error with kiln's one-line message;
// every call into kiln that can take time releases the GIL.
#pragma once
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <stdexcept>
#include <string>

#include "kiln/kiln.h"
#include "kiln/kiln_build.h"

namespace kiln_py {

namespace nb = nanobind;

// Raised as kiln.Error (registered in module.cpp).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws Error with the runtime's / the compiler's last message unless `s` is KILN_OK.
void check(kiln_status s);
void check_build(kiln_status s);

// numpy dtype <-> kiln dtype code (ONNX TensorProto codes); throws Error for other dtypes.
int32_t kiln_dtype_of(const nb::dlpack::dtype& dt, const std::string& what);
nb::dlpack::dtype dlpack_dtype_of(int32_t kiln_dtype);
const char* dtype_name(int32_t kiln_dtype);  // numpy's name: "float32", ...

using Array = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;

// A new numpy array of `dims` with kiln dtype `dtype`, uninitialized; *data receives its memory.
nb::object new_array(int32_t dtype, const int64_t* dims, int32_t rank, void** data);

void bind_build(nb::module_& m);
void bind_runtime(nb::module_& m);

}  // namespace kiln_py
