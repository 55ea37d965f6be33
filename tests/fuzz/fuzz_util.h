// Shared by the fuzz targets (tests/fuzz/*_fuzz.cpp). Each target defines
// LLVMFuzzerTestOneInput; built with -fsanitize=fuzzer it is a libFuzzer binary (scripts/fuzz.sh),
// built with replay_main.cpp it replays the committed seeds and crashers as a ctest
// (fuzz_regress.<target>) in every build, sanitized or not.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runtime/core/status.h"

namespace kiln::fuzz {

// A path naming `data` as a regular file (a memfd: no disk I/O per execution), for readers that
// take paths. Valid until the next call.
inline std::string as_file(const uint8_t* data, size_t size) {
  static int fd = -1;
  if (fd < 0) fd = memfd_create("kiln-fuzz", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0) std::abort();
  for (size_t done = 0; done < size;) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

// Bad input must get one clear line: a failure labelled internal (a kiln bug by definition), an
// empty message or one that echoes kilobytes of the input is a finding, reported like a crash.
inline void check_refusal(const Status& st) {
  if (st.is_ok()) return;
  // Newlines are escaped where errors are reported (one_line); a message that echoes kilobytes
  // of file content is not clear either.
  if (st.code() == StatusCode::kInternal || st.message().size() > 2000 || st.message().empty()) {
    std::fprintf(stderr, "fuzz: unclear refusal (%s): %s\n", status_code_name(st.code()), st.message().c_str());
    // A trap, not abort(): libFuzzer then writes the input that did it to artifacts/.
    __builtin_trap();
  }
}

}  // namespace kiln::fuzz
