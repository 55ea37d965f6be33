// The C API's registry of live handles. Every entry point looks its handle up here, so a pointer
// that was released (a second kiln_context_release, a stale event) or never issued gets
// KILN_ERROR_INVALID_ARGUMENT instead of a crash. Lookups hand out a shared reference to the
// object, so a release racing with a call on another thread frees nothing under that call.
// Released shells wait in a quarantine before their memory is reused, so an immediate double
// release is always recognized (after 4096 later releases an address may be reissued, and a
// very stale pointer could then name a new handle: like a reused file descriptor, misuse but not
// a memory error).
#pragma once
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_set>

namespace kiln {

template <typename Shell>
class HandleTable {
 public:
  ~HandleTable() {
    for (Shell* p : quarantine_) delete p;
  }
  Shell* add(std::unique_ptr<Shell> shell) {
    std::lock_guard<std::mutex> lock(mu_);
    Shell* p = shell.release();
    live_.insert(p);
    return p;
  }
  // The shell's payload (a shared_ptr member chosen by `get`) when `p` is live, else null.
  template <typename Get>
  auto lookup(const Shell* p, Get get) -> decltype(get(*p)) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!p || !live_.count(p)) return nullptr;
    return get(*p);
  }
  // Releases `p`: false when it is not a live handle. The payload is destroyed outside the
  // lock (a context waits for its inferences).
  template <typename Take>
  bool remove(Shell* p, Take take) {
    decltype(take(*p)) payload;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!live_.erase(p)) return false;
      payload = take(*p);
      quarantine_.push_back(p);
      if (quarantine_.size() > kQuarantine) {
        delete quarantine_.front();
        quarantine_.pop_front();
      }
    }
    return true;
  }

 private:
  static constexpr size_t kQuarantine = 4096;
  std::mutex mu_;
  std::unordered_set<const Shell*> live_;
  std::deque<Shell*> quarantine_;
};

}  // namespace kiln
