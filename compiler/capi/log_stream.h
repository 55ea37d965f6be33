// A FILE* whose text reaches a line callback: the compiler writes its report with fprintf
// (calibration tables, progress bars, moved layers), and the C API hands it to the caller one
// line at a time. '\n' ends a line (KILN_LOG_INFO); text after '\r' is a progress update that
// replaces the previous one (KILN_LOG_PROGRESS).
#pragma once
#include <cstdio>
#include <string>

#include "kiln/kiln_build.h"

namespace kiln {

class LogStream {
 public:
  LogStream(kiln_build_log_fn fn, void* user);
  ~LogStream();
  LogStream(const LogStream&) = delete;
  LogStream& operator=(const LogStream&) = delete;
  // nullptr when no callback was given (the report is then not produced at all).
  std::FILE* file() const { return file_; }

 private:
  static ssize_t write(void* cookie, const char* buf, size_t size);
  void emit(int32_t level);
  kiln_build_log_fn fn_;
  void* user_;
  std::FILE* file_ = nullptr;
  std::string pending_;
  bool progress_ = false;  // pending_ follows a '\r'
  bool shown_ = false;     // pending_ was already reported as progress
};

}  // namespace kiln
