#pragma once
// SIGINT and SIGTERM both ask a long command (train, experiment run) to save and stop; while a
// StopSignals lives, the signals set its flag, and the previous handlers come back after.
#include <signal.h>

#include <atomic>
#include <string>

namespace difftx::cli {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  const std::atomic<bool>* flag() const;
  int signal() const;  // the signal that set the flag (0: none)
  // After a run stopped by the flag: says on stderr which signal stopped it, the step saved in
  // dir and how to continue; returns the exit status, 128 + the signal.
  int report_stop(long long step, const std::string& dir) const;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace difftx::cli
