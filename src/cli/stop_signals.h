#pragma once
// SIGINT and SIGTERM both ask a long command (train, experiment run) to save and stop; while a
// StopSignals lives, the signals set its flag, and the previous handlers come back after.
#include <signal.h>

#include <atomic>

namespace difftx::cli {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  const std::atomic<bool>* flag() const;
  int signal() const;  // the signal that set the flag (0: none)

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace difftx::cli
