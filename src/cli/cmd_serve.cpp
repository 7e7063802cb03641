#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/stop_signals.h"
#include "serve/server.h"

namespace difftx::cli {

Runner add_serve(CLI::App& app) {
  auto o = std::make_shared<serve::ServeOptions>();
  add_model_dir(app, o->model_dir, "model directory (with a tokenizer)");
  app.add_option("--host", o->host, "address to listen on")->capture_default_str();
  app.add_option("--port", o->port, "port to listen on (0: any free port, printed on stderr)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--parallel", o->parallel, "sequences decoded together; more wait in a queue")
      ->check(integer_in(1, 256))->capture_default_str();
  app.add_option("--api-key", o->api_key, "require the header Authorization: Bearer KEY");
  app.add_option("--drain-seconds", o->drain_seconds,
                 "on SIGTERM/SIGINT: time in-flight requests get to finish before being cancelled")
      ->check(real_in(0, 3600))->capture_default_str();
  return [o]() {
    StopSignals signals;
    serve::serve(*o, signals.flag());
    return 0;
  };
}

}  // namespace difftx::cli
