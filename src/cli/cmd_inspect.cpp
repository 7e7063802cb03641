#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/buffer.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokens.h"
#include "model/transformer.h"

namespace difftx::cli {

Runner add_inspect(CLI::App& app) {
  struct Opts {
    std::string model, tokens, out;
    bool grads = false;
  };
  auto o = std::make_shared<Opts>();
  add_model_dir(app, o->model, "model directory (config.json + model.safetensors)");
  app.add_option("--tokens", o->tokens, "comma-separated token ids, e.g. 5,17,3")->required();
  app.add_option("--out", o->out, "output .safetensors file (logits, loss[, grad.*])")
      ->required();
  app.add_flag("--grads", o->grads, "also write grad.<name> for every parameter tensor");
  return [o]() {
    const auto model = load_model(o->model);
    const std::vector<int32_t> tokens = parse_token_list(o->tokens, model->config.vocab_size);
    const int64_t T = static_cast<int64_t>(tokens.size());
    const std::vector<int32_t> targets = next_token_targets(tokens, 1, T);
    Activations acts;
    const float loss = static_cast<float>(forward(*model, tokens.data(), targets.data(), 1, T, acts));
    std::vector<TensorToWrite> out{{"logits", {T, model->config.vocab_size}, acts.logits.data()},
                                   {"loss", {1}, &loss}};
    AlignedFloats grads;
    if (o->grads) {
      grads = AlignedFloats(model->layout.total);
      backward(*model, acts, grads.data());
      for (const auto& spec : model->layout.tensors)
        out.push_back({"grad." + spec.name, spec.shape, grads.data() + spec.offset});
    }
    write_safetensors(o->out, out);
    std::printf("loss %.6f over %lld predicted tokens; wrote %s\n", static_cast<double>(loss),
                static_cast<long long>(acts.counted), o->out.c_str());
    return 0;
  };
}

}  // namespace difftx::cli
