#include "runtime/cli/crash_report.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <initializer_list>

namespace kiln::cli {
namespace {
const char* g_program = "kiln";

void on_crash(int sig) {
  // Only async-signal-safe calls here.
  const char* name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE"
                     : sig == SIGILL ? "SIGILL" : "SIGABRT";
  (void)!write(2, g_program, strlen(g_program));
  static const char msg[] = ": internal error: crashed with ";
  (void)!write(2, msg, sizeof msg - 1);
  (void)!write(2, name, strlen(name));
  (void)!write(2, " (please report this with the backtrace below)\n", 47);
  void* frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, 2);
  _exit(128 + sig);
}
}  // namespace

void install_crash_report(const char* program) {
  g_program = program;
  // Loads libgcc's unwinder now: the first backtrace() call may allocate, which a handler must not.
  void* warm[1];
  backtrace(warm, 1);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_crash;
  sa.sa_flags = SA_RESETHAND;
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &sa, nullptr);
}

}  // namespace kiln::cli
