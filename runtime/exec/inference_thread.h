// The thread an ExecutionContext runs its asynchronous inferences on (their CPU segments, and
// the waits on OpenCL work in between), off the caller's thread: one per context, so contexts
// never wait for each other's threads.
//
// Why a thread of its own rather than a shared pool: the cpu fast path's kernels (oneDNN and
// kiln's loops) run OpenMP teams, and libgomp keeps one team of worker threads per thread that
// starts them. Inferences hopping between pool threads left several teams alive; once libgomp
// manages more threads than there are cores it stops spinning between parallel regions and
// puts workers to sleep after each one, which cost a futex wake-up per node (a batch-1 MLP ran
// at 0.37 ms instead of 0.16 on 2 cores). For the same reason a context prepares its cpu
// kernels (weight packing, host speed measurement) on a passing thread (run_on_passing_thread),
// so that only the thread running inferences, this one or the caller of a synchronous run,
// owns a team. A context used both ways has two (correct, slower between nodes).
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln {

// Runs `task` on a new thread and waits for it; the thread (and any OpenMP team it started)
// ends with the task.
void run_on_passing_thread(const std::function<void()>& task);

class InferenceThread {
 public:
  InferenceThread() = default;
  InferenceThread(const InferenceThread&) = delete;
  InferenceThread& operator=(const InferenceThread&) = delete;
  // Runs the tasks already submitted, then ends the thread.
  ~InferenceThread();
  // Runs `task` on the worker thread after the tasks before it (the thread starts with the first).
  void submit(std::function<void()> task);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::thread thread_;
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
