// The CPU worker pool that runs inferences (their CPU segments, and the waits on OpenCL work in
// between) off the caller's thread. One process-wide pool; it grows up to a limit so that
// inferences of different contexts never wait for each other's threads.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

class WorkerPool {
 public:
  static WorkerPool& instance();
  // Runs `task` on a pool thread; starts another thread when every thread is busy (up to a
  // limit of 64), so a task never waits behind a long-running one while threads can be added.
  void submit(std::function<void()> task);
  ~WorkerPool();

 private:
  WorkerPool() = default;
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stop_ = false;
};

// Completion of one asynchronous inference: its status, waiters and callbacks.
class InferenceEvent {
 public:
  using Callback = std::function<void(int status_code, const std::string& message)>;
  void complete(int code, std::string message);
  // Blocks until complete; returns the status code (0 = ok) and fills `message`.
  int wait(std::string* message);
  bool done();
  // Runs `cb` on completion (immediately, on the caller's thread, if already complete).
  void on_complete(Callback cb);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  int code_ = 0;
  std::string message_;
  std::vector<Callback> callbacks_;
};

}  // namespace kiln
