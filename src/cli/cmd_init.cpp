#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "io/checkpoint.h"
#include "model/config.h"
#include "model/params.h"

namespace difftx::cli {

Runner add_init(CLI::App& app) {
  struct Opts {
    std::string config, out;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--config", o->config, "config.json with the model's sizes (SPEC keys)")
      ->required();
  app.add_option("--out", o->out, "new model directory to create (must not exist or be empty)")
      ->required();
  add_seed(app, o->seed, "random seed for the initial weights");
  return [o]() {
    const Config config = load_config(o->config, LayoutDefaults::kOfficial);
    Model model(config);
    init_parameters(model, o->seed);
    save_new_model(o->out, model);
    const ParameterCounts n = count_parameters(model.layout);
    std::printf(
        "wrote %s: %s, %zu parameters (%zu without embedding and LM head): embedding %zu, "
        "lm_head %zu, attention %zu (lambda %zu), mlp %zu, norms %zu, extensions %zu\n",
        o->out.c_str(), model_type_name(config.model_type), n.total, n.non_embedding(),
        n.embedding, n.lm_head, n.attention, n.lambda, n.mlp, n.norm, n.extension);
    return 0;
  };
}

}  // namespace difftx::cli
