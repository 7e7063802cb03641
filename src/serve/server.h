#pragma once
// The HTTP side of `difftx serve` (cpp-httplib): routes, the API key, JSON errors, SSE
// streaming, request log lines on stderr. Generation runs on the Scheduler's thread.
#include <atomic>
#include <cstdint>
#include <string>

namespace difftx::serve {

struct ServeOptions {
  std::string model_dir, host = "127.0.0.1", api_key;
  int port = 8080;  // 0: any free port (the one chosen is printed)
  int64_t parallel = 4;
  double drain_seconds = 30;  // on SIGTERM: time given to in-flight requests to finish
};

// Serves until *stop becomes true (polled), then stops accepting, lets in-flight requests
// finish for drain_seconds, cancels the rest and returns. Throws Error for a model that does
// not load or a port that cannot be bound.
void serve(const ServeOptions& o, const std::atomic<bool>* stop);

}  // namespace difftx::serve
