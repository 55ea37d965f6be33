# Turns kernels/*.cl into one C++ file defining kiln::embedded_kernel_source(name).
# Invoked at build time: cmake -DOUT=... -DSOURCES="a.cl;b.cl" -P embed_kernels.cmake
set(body "")
set(table "")
foreach(src IN LISTS SOURCES)
  get_filename_component(name "${src}" NAME_WE)
  file(READ "${src}" text)
  # Raw string literals cap at 64 KiB on some compilers: split into chunks.
  string(LENGTH "${text}" len)
  set(chunks "")
  set(pos 0)
  while(pos LESS len)
    string(SUBSTRING "${text}" ${pos} 16000 part)
    string(APPEND chunks "R\"KILNCL(${part})KILNCL\"\n")
    math(EXPR pos "${pos} + 16000")
  endwhile()
  if(chunks STREQUAL "")
    set(chunks "\"\"")
  endif()
  string(APPEND body "static const char k_${name}[] =\n${chunks};\n")
  string(APPEND table "  {\"${name}\", k_${name}},\n")
endforeach()
file(WRITE "${OUT}.tmp" "// Generated from kernels/*.cl by cmake/embed_kernels.cmake. Do not edit.
#include <cstring>
#include <string>
namespace kiln {
${body}
struct EmbeddedKernel { const char* name; const char* source; };
static const EmbeddedKernel k_table[] = {
${table}  {nullptr, nullptr}};
const char* embedded_kernel_source(const std::string& name) {
  for (const EmbeddedKernel* e = k_table; e->name; ++e)
    if (name == e->name) return e->source;
  return nullptr;
}
}  // namespace kiln
")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
