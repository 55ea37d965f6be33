#include "runtime/exec/inference_thread.h"

namespace kiln {

void run_on_passing_thread(const std::function<void()>& task) { std::thread(task).join(); }

InferenceThread::~InferenceThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (!thread_.joinable()) return;
  // Never from a task of its own (~ExecutionContext first waits for its inferences, which a
  // task of this thread would wait for forever); detach rather than throw if it ever is.
  if (thread_.get_id() == std::this_thread::get_id()) thread_.detach();
  else thread_.join();
}

void InferenceThread::submit(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.push_back(std::move(task));
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  cv_.notify_one();
}

void InferenceThread::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
    if (tasks_.empty()) return;  // stop_ and nothing left
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
}

void InferenceEvent::complete(int code, std::string message) {
  // Callbacks run before waiters are released, so a caller that waited sees every callback's
  // effect; callbacks registered meanwhile are picked up by the loop.
  std::unique_lock<std::mutex> lock(mu_);
  code_ = code;
  message_ = std::move(message);
  while (!callbacks_.empty()) {
    std::vector<Callback> cbs;
    cbs.swap(callbacks_);
    lock.unlock();
    for (auto& cb : cbs) cb(code_, message_);
    lock.lock();
  }
  done_ = true;
  cv_.notify_all();
}

int InferenceEvent::wait(std::string* message) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
  if (message) *message = message_;
  return code_;
}

bool InferenceEvent::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void InferenceEvent::on_complete(Callback cb) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!done_) {
    callbacks_.push_back(std::move(cb));
    return;
  }
  lock.unlock();
  cb(code_, message_);
}

}  // namespace kiln
