#include "cli/stop_signals.h"

#include <cstdio>

namespace difftx::cli {
namespace {
std::atomic<bool> g_stop{false};
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  g_stop.store(true);
}
}  // namespace

StopSignals::StopSignals() {
  g_stop.store(false);
  g_stop_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

const std::atomic<bool>* StopSignals::flag() const { return &g_stop; }
int StopSignals::signal() const { return g_stop_signal.load(); }

int StopSignals::report_stop(long long step, const std::string& dir) const {
  const int sig = signal() == SIGTERM ? SIGTERM : SIGINT;
  std::fprintf(stderr, "interrupted by %s: saved step %lld in %s; continue with --resume\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", step, dir.c_str());
  return 128 + sig;
}

}  // namespace difftx::cli
