#include "compiler/capi/log_stream.h"

namespace kiln {

LogStream::LogStream(kiln_build_log_fn fn, void* user) : fn_(fn), user_(user) {
  if (!fn_) return;
  cookie_io_functions_t io{};
  io.write = &LogStream::write;
  file_ = fopencookie(this, "w", io);
  // Unbuffered: each fprintf reaches write() whole, so a progress update shows at once.
  if (file_) std::setvbuf(file_, nullptr, _IONBF, 0);
}

LogStream::~LogStream() {
  if (file_) std::fclose(file_);
  if (!pending_.empty() && !shown_) emit(progress_ ? KILN_LOG_PROGRESS : KILN_LOG_INFO);
}

void LogStream::emit(int32_t level) {
  // The callback belongs to the caller: an exception from it must not unwind through stdio.
  try {
    fn_(level, pending_.c_str(), user_);
  } catch (...) {
  }
}

ssize_t LogStream::write(void* cookie, const char* buf, size_t size) {
  auto* s = static_cast<LogStream*>(cookie);
  for (size_t i = 0; i < size; ++i) {
    const char c = buf[i];
    if (c == '\n') {
      s->emit(KILN_LOG_INFO);
      s->pending_.clear();
      s->progress_ = s->shown_ = false;
    } else if (c == '\r') {
      if (!s->pending_.empty() && !s->shown_) s->emit(s->progress_ ? KILN_LOG_PROGRESS : KILN_LOG_INFO);
      s->pending_.clear();
      s->progress_ = true;
      s->shown_ = false;
    } else {
      s->pending_ += c;
    }
  }
  if (s->progress_ && !s->pending_.empty()) {
    s->emit(KILN_LOG_PROGRESS);
    s->shown_ = true;
  }
  return static_cast<ssize_t>(size);
}

}  // namespace kiln
