#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "train/evaluate.h"

namespace difftx::cli {

Runner add_eval(CLI::App& app) {
  struct Opts {
    std::string model;
    TokenSource tokens;
    EvalSpec spec;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  o->spec.seq = 0;  // 0: min(1024, max_position_embeddings)
  app.footer(
      "The loss is the token-weighted mean cross-entropy over the first --max-tokens predicted "
      "tokens of the text (all when 0), cut into consecutive windows of --seq predictions "
      "(window w reads tokens w*seq .. w*seq+seq-1 and predicts the next one of each). "
      "`difftx train` logs val_loss the same way, with --seq and --batch of the run and "
      "--max-tokens = --eval-windows x --seq.");
  add_model_dir(app, o->model, "model directory (with its tokenizer)");
  add_token_source(app, o->tokens, "text to evaluate on: a file, a folder or a glob")->required();
  add_seq(app, o->spec.seq, "window length (default: min(1024, max_position_embeddings))");
  add_batch(app, o->spec.batch, "windows per forward pass");
  app.add_option("--max-tokens", o->spec.max_tokens, "score at most N tokens (0: all)")
      ->check(integer_in(0, int64_t{1} << 50))->capture_default_str();
  add_precision(app, o->spec.precision);
  app.add_option("--attention-logit-bits", o->spec.attention_logit_bits,
                 "quantise every attention map's logits to N bits (2-16, dynamic absmax, "
                 "reference kernel; 0: exact)")
      ->check(integer_in(0, 16))->capture_default_str();
  add_threads(app, o->threads);
  return [o]() {
    check(o->spec.attention_logit_bits != 1, "--attention-logit-bits must be 0 or in [2, 16]");
    apply_threads(o->threads);
    const auto model = load_model(o->model);
    const auto tok = load_tokenizer(o->model);
    EvalSpec spec = o->spec;
    if (spec.seq == 0) spec.seq = std::min<int64_t>(1024, model->config.max_position_embeddings);
    const auto data = TokenData::open(o->tokens.data, *tok, o->tokens.token_cache_dir());
    const EvalResult r = evaluate_loss(*model, *data, spec, tok.get());
    std::printf("%s\n", nlohmann::json{{"loss", r.loss}, {"perplexity", r.perplexity},
                                       {"bits_per_byte", r.bits_per_byte}, {"tokens", r.tokens},
                                       {"bytes", r.bytes}, {"seq", spec.seq},
                                       {"attention_logit_bits", spec.attention_logit_bits}}
                                       .dump().c_str());
    return 0;
  };
}

}  // namespace difftx::cli
