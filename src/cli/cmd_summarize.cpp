// difftx summarize train|eval|run: flags only; the work is src/tasks/summarize.h's.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/stop_signals.h"
#include "cli/task_flags.h"
#include "core/error.h"
#include "tasks/summarize.h"

namespace difftx::cli {
namespace {

void add_decoding(CLI::App& app, SummarizeOptions& o) {
  add_batch(app, o.batch, "documents decoded together");
  app.add_option("--temperature", o.sampling.temperature, "0: greedy; > 0: sampled")
      ->check(real_in(0, 100))->capture_default_str();
  app.add_option("--top-p", o.sampling.top_p, "nucleus sampling")->check(real_in(1e-9, 1));
  add_seed(app, o.seed, "sampling seed");
  app.add_option("--max-examples", o.max_examples, "only the first N documents (0: all)")
      ->check(integer_in(0, int64_t{1} << 40))->capture_default_str();
}

void add_train(CLI::App& parent, Runner& runner, CLI::App*& sub) {
  sub = parent.add_subcommand("train", "Train a model to write the summary after a document");
  struct Opts {
    SummarizeTrainRequest req;
    int threads = 0;
    int64_t log_every = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App& app = *sub;
  app.footer("Each example is document + separator + summary + end; the loss counts only the "
             "summary and its end. Early stopping keeps the weights of the lowest validation "
             "summary loss. --resume continues the run in --out (--steps may grow).");
  app.add_option("--out", o->req.out, "run directory: the summarizer (created)")->required();
  app.add_flag("--resume", o->req.resume, "continue the run in --out after a crash");
  app.add_option("--data", o->req.data, "training JSON lines {\"document\", \"summary\"}");
  app.add_option("--val", o->req.val, "validation JSON lines (early stopping)");
  app.add_option("--val-max", o->req.val_max, "validation loss over the first N pairs")
      ->check(integer_in(1, int64_t{1} << 30))->capture_default_str();
  app.add_option("--init-from", o->req.init_from, "a trained language model directory");
  app.add_option("--preset", o->req.preset, "a model trained from scratch: tiny|small|ref-diff|llama");
  app.add_option("--config", o->req.config, "a model trained from scratch: config.json");
  add_tokenizer_spec(app, o->req.tokenizer);
  app.add_option("--separator", o->req.separator, "text between document and summary")
      ->capture_default_str();
  app.add_option("--max-document-tokens", o->req.max_document_tokens, "documents are cut to N tokens")
      ->check(integer_in(1, 1 << 20))->capture_default_str();
  app.add_option("--max-summary-tokens", o->req.max_summary_tokens, "summaries are cut to N tokens")
      ->check(integer_in(1, 1 << 20))->capture_default_str();
  add_task_train_flags(app, o->req.opts);
  app.add_option("--log-every", o->log_every, "print a line every N steps (not on a terminal)")
      ->check(integer_in(1, int64_t{1} << 40))->capture_default_str();
  add_threads(app, o->threads);
  runner = [o, &app]() {
    SummarizeTrainRequest req = o->req;
    if (req.resume) {
      for (const char* flag : {"--data", "--val", "--init-from", "--preset", "--config",
                               "--separator", "--max-document-tokens", "--max-summary-tokens",
                               "--batch", "--lr", "--seed"})
        check(app.count(flag) == 0, flag, " cannot change a run being resumed (it keeps its "
              "stored value); give only --out, --resume and optionally --steps");
      if (app.count("--steps") > 0) req.resume_steps = req.opts.steps;
    } else {
      check(!req.data.empty(), "--data is required for a new run (or give --resume)");
    }
    apply_threads(o->threads);
    StopSignals signals;
    TaskRunObserver obs = task_progress(o->log_every);
    obs.stop = signals.flag();
    const TaskRunResult r = summarize_train(req, obs);
    std::fprintf(stderr, "\n");
    if (r.interrupted) return signals.report_stop(r.steps, req.out);
    std::printf("%s\n", nlohmann::json{{"out", req.out}, {"steps", r.steps},
                                       {"best_step", r.best_step}, {"best_val_loss", r.has_validation ? nlohmann::json(-r.best_score) : nlohmann::json()},
                                       {"stopped_early", r.stopped_early}}.dump().c_str());
    return 0;
  };
}

void add_eval(CLI::App& parent, Runner& runner, CLI::App*& sub) {
  sub = parent.add_subcommand("eval", "ROUGE-1/2/L of generated summaries, the lead baseline beside");
  struct Opts {
    std::string model, data;
    SummarizeOptions dec;
    int64_t lead = 10;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  o->dec.sampling.temperature = 0;
  CLI::App& app = *sub;
  app.footer("Without --model, only the lead baseline (the first --lead words) is scored.");
  app.add_option("--model", o->model, "summarizer directory (from summarize train)");
  app.add_option("--data", o->data, "JSON lines {\"document\", \"summary\"}")->required();
  app.add_option("--lead", o->lead, "k of the lead-k baseline")->check(integer_in(1, 1 << 20))
      ->capture_default_str();
  add_decoding(app, o->dec);
  add_threads(app, o->threads);
  runner = [o]() {
    apply_threads(o->threads);
    const nlohmann::json j = o->model.empty() ? lead_eval(o->data, o->lead, o->dec.max_examples)
                                              : summarize_eval(o->model, o->data, o->dec, o->lead);
    std::printf("%s\n", j.dump().c_str());
    return 0;
  };
}

void add_run(CLI::App& parent, Runner& runner, CLI::App*& sub) {
  sub = parent.add_subcommand("run", "Write a summary of each document");
  struct Opts {
    std::string model, data, out;
    SummarizeOptions dec;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  o->dec.sampling.temperature = 0;
  CLI::App& app = *sub;
  add_model_dir(app, o->model, "summarizer directory (from summarize train)");
  app.add_option("--data", o->data, "JSON lines with a \"document\" each")->required();
  app.add_option("--out", o->out, "write the JSON lines here (default: stdout)");
  add_decoding(app, o->dec);
  add_threads(app, o->threads);
  runner = [o]() {
    apply_threads(o->threads);
    write_output(o->out, summarize_run(o->model, o->data, o->dec));
    return 0;
  };
}

}  // namespace

Runner add_summarize(CLI::App& app) {
  app.require_subcommand(1);
  struct Subs {
    CLI::App *train = nullptr, *eval = nullptr, *run = nullptr;
    Runner run_train, run_eval, run_run;
  };
  auto s = std::make_shared<Subs>();
  add_train(app, s->run_train, s->train);
  add_eval(app, s->run_eval, s->eval);
  add_run(app, s->run_run, s->run);
  return [s]() {
    if (s->train->parsed()) return s->run_train();
    if (s->eval->parsed()) return s->run_eval();
    return s->run_run();
  };
}

}  // namespace difftx::cli
