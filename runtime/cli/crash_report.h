// A last-resort report for crashes (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT): one line saying
// kiln crashed, then the raw backtrace (binary+offset, resolvable with addr2line), then exit
// with 128+signal. kiln never means to crash; this makes a crash on a device we cannot debug
// interactively (a lent GPU machine) diagnosable from its log.
#pragma once

namespace kiln::cli {
void install_crash_report(const char* program);
}
