// Reading files that come from outside (plans, models, external data, .npy/.npz inputs,
// calibration caches) without trusting them: only regular files (a FIFO would block forever,
// /dev/zero never ends, a directory gives libstdc++'s "basic_filebuf::underflow"), sizes known
// from fstat before anything is allocated, and external data opened beneath the model's folder
// one path component at a time with O_NOFOLLOW, so no symlink can lead outside it.
#pragma once
#include <cstdint>
#include <string>

#include "runtime/core/status.h"

namespace kiln {

// An open, read-only regular file; closed on destruction.
class InputFile {
 public:
  InputFile() = default;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  InputFile(InputFile&& o) noexcept { *this = std::move(o); }
  InputFile& operator=(InputFile&& o) noexcept;
  ~InputFile();

  // Opens `path`; `what` names the file's role in errors ("plan file", "model", ...).
  static Status open(const std::string& path, const std::string& what, InputFile* out);
  // Opens `relative` (no absolute path, no "..", no symlink anywhere along it) inside the folder
  // `base_dir` ("" = the current folder).
  static Status open_beneath(const std::string& base_dir, const std::string& relative, const std::string& what,
                             InputFile* out);

  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Reads exactly n bytes at `offset`; the range must lie inside the file.
  Status read_at(uint64_t offset, void* buf, size_t n) const;
  // The whole file, refused when larger than max_bytes (`limit_hint` says what to do instead).
  Status read_all(uint64_t max_bytes, const std::string& limit_hint, std::string* out) const;

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
  std::string what_;
};

// Reads a whole regular file of at most max_bytes (InputFile::open + read_all).
Status read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes, std::string* out);

// Parses a non-negative decimal integer (no sign, spaces or suffix); false otherwise.
bool parse_uint64(const std::string& text, uint64_t* out);

// strerror(errno) of the call that just failed ("No such file or directory", "Is a directory"):
// what a "cannot write 'x'" message needs to say why.
std::string last_os_error();

// Creates `dir` and every missing parent (mkdir -p); an error names the component that failed.
Status make_directories(const std::string& dir);

}  // namespace kiln
