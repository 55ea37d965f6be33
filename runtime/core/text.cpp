#include "runtime/core/text.h"

namespace kiln {

std::string one_line(const std::string& message) {
  std::string line;
  line.reserve(message.size());
  for (unsigned char c : message) {
    if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      line += "\\x";
      line += kHex[c >> 4];
      line += kHex[c & 15];
    } else {
      line += static_cast<char>(c);
    }
  }
  return line;
}

std::string clip_text(const std::string& text, size_t max) {
  std::string s = one_line(text.size() > max ? text.substr(0, max) : text);
  if (text.size() > max) s += "...";
  return s;
}

}  // namespace kiln
