// Messages are one line: text taken from files (names, dtype strings) may hold control
// characters, newlines even. one_line escapes them as \xNN (the CLI and the C API report errors
// through it); clip_text also shortens file-supplied text to `max` characters for quoting.
#pragma once
#include <cstddef>
#include <string>

namespace kiln {

std::string one_line(const std::string& message);
std::string clip_text(const std::string& text, size_t max = 80);

}  // namespace kiln
