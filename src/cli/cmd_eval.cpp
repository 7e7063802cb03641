#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "io/checkpoint.h"
#include "io/tokenizer.h"
#include "train/evaluate.h"

namespace difftx::cli {

Runner add_eval(CLI::App& app) {
  struct Opts {
    std::string model, data, precision = "fp32", cache_dir;
    int64_t seq = 0, batch = 4, max_tokens = 0;
  };
  auto o = std::make_shared<Opts>();
  app.add_option("--model", o->model, "model directory (with its tokenizer)")->required();
  app.add_option("--data", o->data, "text to evaluate on: a file, a folder or a glob")->required();
  app.add_option("--seq", o->seq, "window length (default: min(1024, max_position_embeddings))");
  app.add_option("--batch", o->batch, "windows per forward pass")->capture_default_str();
  app.add_option("--max-tokens", o->max_tokens, "score at most N tokens (0: all)")->capture_default_str();
  app.add_option("--precision", o->precision, "fp32 or bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  app.add_option("--cache-dir", o->cache_dir, "token cache folder (default ~/.cache/difftx)");
  return [o]() {
    const auto model = load_model(o->model);
    const auto tok = load_tokenizer(o->model);
    check(o->batch >= 1 && o->batch <= 4096, "--batch must be in [1, 4096]");
    check(o->max_tokens >= 0, "--max-tokens must be >= 0");
    const int64_t T = o->seq > 0 ? o->seq : std::min<int64_t>(1024, model->config.max_position_embeddings);
    const auto data = TokenData::open(o->data, *tok, o->cache_dir.empty() ? default_cache_dir() : o->cache_dir);
    const EvalResult r = evaluate_stream(*model, *tok, *data, T, o->batch, o->max_tokens,
                                         o->precision == "bf16" ? Precision::kBF16 : Precision::kFP32);
    std::printf("%s\n", nlohmann::json{{"loss", r.loss}, {"perplexity", r.perplexity},
                                       {"bits_per_byte", r.bits_per_byte}, {"tokens", r.tokens},
                                       {"bytes", r.bytes}, {"seq", T}}.dump().c_str());
    return 0;
  };
}

}  // namespace difftx::cli
