#include "runtime/exec/worker_pool.h"

namespace kiln {

WorkerPool& WorkerPool::instance() {
  // Leaked on purpose: joining threads from a static destructor at exit races with the OpenCL
  // ICD unloading its drivers; the OS reclaims the threads.
  static WorkerPool* pool = new WorkerPool();
  return *pool;
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::submit(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mu_);
  tasks_.push_back(std::move(task));
  if (idle_ < tasks_.size() && threads_.size() < 64) threads_.emplace_back([this] { loop(); });
  cv_.notify_one();
}

void WorkerPool::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    ++idle_;
    cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
    --idle_;
    if (stop_ && tasks_.empty()) return;
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
