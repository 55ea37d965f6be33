#include "runtime/core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace kiln {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

// Why `st` is not a file kiln reads, or "" when it is a regular file.
std::string not_regular(const struct stat& st) {
  if (S_ISREG(st.st_mode)) return "";
  if (S_ISDIR(st.st_mode)) return "is a directory";
  if (S_ISFIFO(st.st_mode)) return "is a FIFO, not a regular file";
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return "is a device, not a regular file";
  if (S_ISSOCK(st.st_mode)) return "is a socket, not a regular file";
  return "is not a regular file";
}

Status open_error(const std::string& what, const std::string& path, int e) {
  if (e == ENOENT) return not_found("cannot open " + what + " '" + path + "': not found");
  if (e == ELOOP) return invalid_argument(what + " '" + path + "' is a symbolic link, which kiln does not follow here");
  if (e == ENOTDIR) return invalid_argument(what + " '" + path + "': a folder on the path is not a folder");
  return io_error("cannot open " + what + " '" + path + "': " + errno_text(e));
}

// fstat's verdict on an open fd: a regular file, its size.
Status check_regular(int fd, const std::string& what, const std::string& path, uint64_t* size) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return io_error("cannot stat " + what + " '" + path + "': " + errno_text(errno));
  const std::string why = not_regular(st);
  if (!why.empty()) return invalid_argument(what + " '" + path + "' " + why);
  *size = static_cast<uint64_t>(st.st_size);
  return Status::ok();
}

}  // namespace

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

InputFile& InputFile::operator=(InputFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    what_ = std::move(o.what_);
    o.fd_ = -1;
  }
  return *this;
}

Status InputFile::open(const std::string& path, const std::string& what, InputFile* out) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; the type
  // check below then refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return open_error(what, path, errno);
  InputFile f;
  f.fd_ = fd;
  f.path_ = path;
  f.what_ = what;
  KILN_TRY(check_regular(fd, what, path, &f.size_));
  *out = std::move(f);
  return Status::ok();
}

Status InputFile::open_beneath(const std::string& base_dir, const std::string& relative, const std::string& what,
                               InputFile* out) {
  const std::string shown = (base_dir.empty() ? "" : base_dir + "/") + relative;
  if (relative.empty() || relative[0] == '/')
    return invalid_argument(what + " '" + relative + "' must be a relative path inside the model's folder");
  std::vector<std::string> parts;
  for (size_t at = 0; at <= relative.size();) {
    size_t end = relative.find('/', at);
    if (end == std::string::npos) end = relative.size();
    const std::string part = relative.substr(at, end - at);
    if (part == "..")
      return invalid_argument(what + " '" + relative + "' must be a relative path inside the model's folder");
    if (!part.empty() && part != ".") parts.push_back(part);
    at = end + 1;
  }
  if (parts.empty()) return invalid_argument(what + " '" + relative + "' names no file");
  int dir = ::open(base_dir.empty() ? "." : base_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return open_error("model folder", base_dir.empty() ? "." : base_dir, errno);
  // Walk down one component at a time, refusing symlinks at every step: the resolved path can
  // only be inside the model's folder, and nothing can swap a component between a check and
  // the open.
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const int next = ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    struct stat st;
    // O_DIRECTORY | O_NOFOLLOW on a symlink reports ENOTDIR: say which it really is.
    if (next < 0 && e == ENOTDIR && ::fstatat(dir, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
      e = ELOOP;
    ::close(dir);
    if (next < 0) return open_error(what, shown, e);
    dir = next;
  }
  const int fd = ::openat(dir, parts.back().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  const int e = errno;
  ::close(dir);
  if (fd < 0) return open_error(what, shown, e);
  InputFile f;
  f.fd_ = fd;
  f.path_ = shown;
  f.what_ = what;
  KILN_TRY(check_regular(fd, what, shown, &f.size_));
  *out = std::move(f);
  return Status::ok();
}

Status InputFile::read_at(uint64_t offset, void* buf, size_t n) const {
  if (offset > size_ || n > size_ - offset)
    return invalid_argument(what_ + " '" + path_ + "' is " + std::to_string(size_) + " bytes; reading " +
                            std::to_string(n) + " bytes at offset " + std::to_string(offset) + " goes past its end");
  uint8_t* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    const ssize_t got = ::pread(fd_, p, n, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return io_error("error reading " + what_ + " '" + path_ + "': " + errno_text(errno));
    if (got == 0) return io_error(what_ + " '" + path_ + "' shrank while it was read");
    p += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
  return Status::ok();
}

Status InputFile::read_all(uint64_t max_bytes, const std::string& limit_hint, std::string* out) const {
  if (size_ > max_bytes)
    return invalid_argument(what_ + " '" + path_ + "' is " + std::to_string(size_) + " bytes, more than the " +
                            std::to_string(max_bytes) + " kiln reads" + (limit_hint.empty() ? "" : " (" + limit_hint + ")"));
  std::string s;
  s.resize(static_cast<size_t>(size_));
  KILN_TRY(read_at(0, s.data(), s.size()));
  *out = std::move(s);
  return Status::ok();
}

Status read_regular_file(const std::string& path, const std::string& what, uint64_t max_bytes, std::string* out) {
  InputFile f;
  KILN_TRY(InputFile::open(path, what, &f));
  return f.read_all(max_bytes, "", out);
}

bool parse_uint64(const std::string& text, uint64_t* out) {
  if (text.empty() || text.size() > 19) return false;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  *out = v;
  return true;
}

std::string last_os_error() { return errno ? errno_text(errno) : "unknown error"; }

Status make_directories(const std::string& dir) {
  if (dir.empty()) return Status::ok();
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string prefix = dir.substr(0, i);
    if (::mkdir(prefix.c_str(), 0755) == 0 || errno == EEXIST) {
      struct stat st;
      if (::stat(prefix.c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
        return io_error("cannot create folder '" + dir + "': '" + prefix + "' exists and is not a folder");
      continue;
    }
    return io_error("cannot create folder '" + prefix + "': " + errno_text(errno));
  }
  return Status::ok();
}

}  // namespace kiln
