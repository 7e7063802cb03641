#include <cstdio>
#include <memory>
#include <string>

#include "analysis/attention_job.h"
#include "cli/commands.h"
#include "cli/options.h"
#include "core/error.h"

namespace difftx::cli {

Runner add_attention(CLI::App& app) {
  struct Opts {
    std::string model, text, tokens, out, span, compare;
    double threshold = 0.1;
    bool activations = false;
  };
  auto o = std::make_shared<Opts>();
  add_model_dir(app, o->model, "model directory (config.json + model.safetensors)");
  CLI::Option* text =
      app.add_option("--text", o->text, "text to look at (needs the model's tokenizer)");
  CLI::Option* tokens = app.add_option("--tokens", o->tokens, "comma-separated token ids, e.g. 5,17,3");
  text->excludes(tokens);
  app.add_option("--out", o->out,
                 "new output directory: maps.safetensors, stats.json, heatmaps/, report.html")
      ->required();
  CLI::Option* span = app.add_option(
      "--span", o->span,
      "START:END token indices (END exclusive): report the attention on this span and the "
      "attention noise, from the query tokens after it");
  CLI::Option* compare = app.add_option(
      "--compare", o->compare, "a second model (e.g. the baseline) on the same text, side by side");
  app.add_option("--threshold", o->threshold, "sparsity threshold on |attention|")
      ->check(real_in(0, 1e30))
      ->capture_default_str();
  app.add_flag("--activations", o->activations,
               "also the largest and median |attention logits| and |hidden states| (Table 5)");
  return [o, text, tokens, span, compare]() {
    AttentionJob job;
    job.model_dir = o->model;
    if (text->count()) job.text = o->text;
    if (tokens->count()) job.tokens = o->tokens;
    if (!job.text && !job.tokens) throw Error("give the input with --text TEXT or --tokens IDS");
    job.out_dir = o->out;
    if (span->count()) job.span = o->span;
    if (compare->count()) job.compare_dir = o->compare;
    job.threshold = o->threshold;
    job.activations = o->activations;
    const AttentionJobSummary s = run_attention_job(job);
    std::printf("wrote %s: %zu files (%lld tokens, %lld layers); open %s/report.html\n",
                o->out.c_str(), s.files.size(), static_cast<long long>(s.tokens),
                static_cast<long long>(s.layers), o->out.c_str());
    return 0;
  };
}

}  // namespace difftx::cli
