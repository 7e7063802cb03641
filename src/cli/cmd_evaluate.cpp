// difftx evaluate: flags only; the work is src/tasks/evaluate_models.h's.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/files.h"
#include "tasks/evaluate_models.h"

namespace difftx::cli {

Runner add_evaluate(CLI::App& app) {
  struct Opts {
    EvaluateRequest req;
    TokenSource tokens;
    std::string md;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  o->req.decoding.sampling.temperature = 0;
  app.footer("lm: --data is text (file, folder or glob) and the metric is evaluate's loss; "
             "classify / summarize: --data is JSON lines and --model a classifier / summarizer. "
             "Attention quality is measured on the first --attn-examples inputs. docs/tasks.md "
             "defines every number.");
  add_model_dir(app, o->req.model, "the model to evaluate");
  app.add_option("--compare", o->req.compare, "a second model, evaluated the same way");
  app.add_option("--task", o->req.task, "lm, classify or summarize")->required()
      ->check(CLI::IsMember({"lm", "classify", "summarize"}));
  add_token_source(app, o->tokens, "evaluation data")->required();
  app.add_option("--md", o->md, "also write a markdown report here");
  add_batch(app, o->req.batch, "inputs per forward pass");
  add_seq(app, o->req.seq, "lm: window length")->capture_default_str();
  app.add_option("--max-tokens", o->req.max_tokens, "lm: score at most N tokens (0: all)")
      ->check(integer_in(0, int64_t{1} << 50))->capture_default_str();
  app.add_option("--max-examples", o->req.decoding.max_examples,
                 "summarize: only the first N documents (0: all)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
  app.add_option("--lead", o->req.lead, "summarize: k of the lead-k baseline")
      ->check(integer_in(1, 1 << 20))->capture_default_str();
  app.add_option("--attn-examples", o->req.attn_examples, "inputs for attention quality")
      ->check(integer_in(0, 1 << 20))->capture_default_str();
  app.add_option("--attn-seq", o->req.attn_seq, "their tokens, at most")
      ->check(integer_in(1, 1 << 16))->capture_default_str();
  app.add_option("--span", o->req.span, "START:END key tokens for span attention and noise");
  add_threads(app, o->threads);
  return [o]() {
    apply_threads(o->threads);
    EvaluateRequest req = o->req;
    req.data = o->tokens.data;
    req.cache_dir = o->tokens.token_cache_dir();
    const nlohmann::json j = evaluate_models(req);
    if (!o->md.empty()) write_file_atomic(o->md, evaluate_markdown(j));
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
}

}  // namespace difftx::cli
